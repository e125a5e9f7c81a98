//! Running as a service: the systemd readiness protocol over a socket the
//! test binds, the unit file, and what the container image would run (its
//! entrypoint, non-root user, data volume and health check) in a directory
//! tree the test assembles, since images cannot be pulled here.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn receive(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("a notification within 30 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn systemd_hears_ready_once_it_listens_and_stopping_at_shutdown() {
    let dir = data_dir("notify");
    let path = dir.with_extension("sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let log = dir.with_extension("log");
    let mut child = command(&dir, 0)
        .env("NOTIFY_SOCKET", &path)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let ready = receive(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    // Ready means accepting: the listener answers at once.
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("listening"))
        .expect("listening");
    let port = &line[line.find("127.0.0.1:").unwrap()..];
    let addr: String = port.chars().take_while(|c| !c.is_whitespace()).collect();
    let status = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ping", "--addr", &addr])
        .status()
        .unwrap();
    assert!(status.success(), "warren ping {addr}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(receive(&socket), "STOPPING=1");
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ping_fails_where_no_broker_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ping", "--addr", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no AMQP broker"));
}

#[test]
fn the_unit_file_is_notify_with_reload_and_a_state_directory() {
    let unit = std::fs::read_to_string(repo("packaging/systemd/warren.service")).unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in the unit"))
            .to_string()
    };
    assert_eq!(value("Type"), "notify");
    assert_eq!(value("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value("StateDirectory"), "warren");
    assert_eq!(value("User"), "warren");
    let start = value("ExecStart");
    assert!(start.contains("--data-dir /var/lib/warren"), "{start}");
    // The flags it passes exist.
    let help = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in start.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(help.contains(flag), "warren has no {flag}");
    }
}

/// The final stage of the Dockerfile: its instructions, continuation lines joined.
fn image_instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let all: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (op, rest) = l.split_once(' ').unwrap_or((l, ""));
            (op.to_uppercase(), rest.trim().to_string())
        })
        .collect();
    let last_from = all.iter().rposition(|(op, _)| op == "FROM").unwrap();
    all[last_from..].to_vec()
}

fn json_words(text: &str) -> Vec<String> {
    let start = text.find('[').unwrap();
    text[start..]
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|w| w.trim().trim_matches('"').to_string())
        .collect()
}

#[test]
fn the_image_runs_as_a_non_root_user_on_its_data_volume() {
    let image = image_instructions();
    let get = |op: &str| {
        image
            .iter()
            .find(|(o, _)| o == op)
            .map(|(_, rest)| rest.clone())
            .unwrap_or_else(|| panic!("no {op} in the final stage"))
    };
    assert!(get("FROM").starts_with("debian:") && get("FROM").contains("slim"));
    let user = get("USER");
    assert!(user != "root" && user != "0", "runs as {user}");
    assert_eq!(get("VOLUME"), "/var/lib/warren");
    for port in ["5672", "5671"] {
        assert!(get("EXPOSE").split_whitespace().any(|p| p == port));
    }
    let health = json_words(&get("HEALTHCHECK"));
    let entrypoint = json_words(&get("ENTRYPOINT"));
    assert_eq!(entrypoint[0], "/usr/local/bin/warren");
    assert_eq!(health[0], "/usr/local/bin/warren");

    // The image's tree: its config at /etc/warren, the volume empty.
    let root = data_dir("image-root");
    std::fs::create_dir_all(root.join("etc/warren")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/warren")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = std::fs::read_to_string(repo("packaging/docker/warren.toml"))
        .unwrap()
        .replace(
            "/var/lib/warren",
            root.join("var/lib/warren").to_str().unwrap(),
        )
        // One free port for the test, as `docker run -p` would map 5672.
        .replace(":5672", &format!(":{port}"));
    std::fs::write(root.join("etc/warren/warren.toml"), config).unwrap();
    let args: Vec<String> = entrypoint[1..]
        .iter()
        .map(|a| match a.strip_prefix('/') {
            Some(path) if a.starts_with("/etc/") => root.join(path).to_string_lossy().into_owned(),
            _ => a.clone(),
        })
        .collect();
    // As root, run as the image's uid (the volume owned by it, as the
    // Dockerfile's chown makes it); as another user, as that user.
    let uid = current_uid();
    let mut command = if uid == 0 {
        let dir = root.join("var/lib/warren");
        Command::new("chown")
            .args(["10001:10001"])
            .arg(&dir)
            .status()
            .unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=10001", "--regid=10001", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_warren"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_warren"))
    };
    let log = root.join("warren.log");
    let mut child = command
        .args(&args)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("warren started") {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "exited: {text}");
        assert!(Instant::now() < deadline, "did not start: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The health check, as the image runs it, against the mapped port.
    let mut check: Vec<String> = health[1..].to_vec();
    for word in &mut check {
        *word = word.replace(":5672", &format!(":{port}"));
    }
    let status = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(&check)
        .status()
        .unwrap();
    assert!(status.success(), "health check {check:?}");
    // Guest may log in from outside the container: the image's config
    // empties loopback_users, as RabbitMQ's image does.
    let (_raw, answer) = Raw::login(port, "guest", "guest");
    assert!(
        matches!(answer, Some((0, warren_codec::Method::ConnectionTune(_)))),
        "{answer:?}"
    );
    // The data went to the volume, owned by the user the broker ran as.
    let lock = root.join("var/lib/warren/warren.lock");
    assert!(lock.exists(), "the store is on the volume");
    if uid == 0 {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&lock).unwrap().uid(), 10001);
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&root);
}

/// This process's user id, from /proc (no libc call needed).
fn current_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}
