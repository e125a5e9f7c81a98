//! The `warren` binary: flags, config errors, and shutdown on SIGTERM.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};
use warren_codec::{ConnectionCloseOk, Method};

fn warren() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warren"))
}

fn config_file(text: &str) -> tempfile_path::Path {
    tempfile_path::write(text)
}

/// A tiny temporary-file helper, to avoid a dependency for two tests.
mod tempfile_path {
    pub struct Path(pub std::path::PathBuf);
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    pub fn write(text: &str) -> Path {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("warren-cli-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Path(path)
    }
}

#[test]
fn help_and_version() {
    let help = warren().arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--config",
        "--listen",
        "--data-dir",
        "--version",
        "hash-password",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}");
    }
    let version = warren().arg("--version").output().unwrap();
    assert!(String::from_utf8(version.stdout)
        .unwrap()
        .contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_key_is_one_line_naming_it_and_exit_2() {
    let file = config_file("[limits]\nheartbeats = 5\n");
    let out = warren().arg("--config").arg(&file.0).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("heartbeats"), "{err}");
}

#[test]
fn bad_value_is_one_line_naming_the_key_and_exit_2() {
    let file = config_file("[limits]\nframe_max = 1024\n");
    let out = warren().arg("--config").arg(&file.0).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("limits.frame_max"), "{err}");
}

#[test]
fn hash_password_prints_a_usable_hash() {
    let out = warren().args(["hash-password", "s3cret"]).output().unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    let file = config_file(&format!(
        "vhosts = [\"/\"]\n[[users]]\nname = \"app\"\npassword_hash = \"{}\"\nvhosts = [\"/\"]\n",
        hash.trim()
    ));
    warren::Config::load(&file.0).unwrap();
    assert!(warren::password::matches(hash.trim(), "s3cret"));
}

#[test]
fn hash_password_reads_standard_input_without_an_argument() {
    use std::io::Write;
    let mut child = warren()
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(warren::password::matches(hash.trim(), "from stdin"));
}

#[test]
fn sigterm_closes_clients_with_320_and_exits_0() {
    stop_with_signal(15);
}

#[test]
fn sigint_closes_clients_with_320_and_exits_0() {
    stop_with_signal(2);
}

fn stop_with_signal(signal: i32) {
    let data = data_dir(&format!("cli-signal-{signal}"));
    let mut warren = Warren::start(&data);
    // Open, so that the shutdown has a connection.close to send.
    let mut client = Raw::open(warren.port, 0);
    send_signal(warren.child.id(), signal);
    let close = client.method();
    assert!(
        matches!(close, Some((0, Method::ConnectionClose(ref c))) if c.reply_code == 320),
        "{close:?}"
    );
    // Answer close-ok so the server can finish.
    client.send(0, ConnectionCloseOk {});
    let status = wait_timeout(&mut warren.child, Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let _ = std::fs::remove_dir_all(&data);
}

fn wait_timeout(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

fn send_signal(pid: u32, signal: i32) {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

#[test]
fn a_missing_tls_file_names_its_key_before_the_data_directory_is_opened() {
    let data = data_dir("cli-missing-cert");
    let file = config_file(
        "[listeners]\ntls = [\"127.0.0.1:0\"]\n[tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n",
    );
    let config = file.0.to_str().unwrap();
    let err = refused_start(&data, &["--config", config]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("tls.cert: /nonexistent/cert.pem: No such file or directory"),
        "{err}"
    );
    assert!(
        !data.join("warren.lock").exists(),
        "the store was not opened"
    );
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_locked_data_directory_is_one_plain_line() {
    let data = data_dir("cli-locked");
    let _first = Warren::start(&data);
    let err = refused_start(&data, &[]);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(err.matches("data directory").count(), 1, "{err}");
    drop(_first);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn the_default_listeners_take_ipv4_and_ipv6_on_one_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = data_dir("cli-dual-stack");
    // The defaults' shape (config/warren.toml) on a free port.
    let file = config_file(&format!(
        "[listeners]\ntcp = [\"[::]:{port}\", \"0.0.0.0:{port}\"]\n"
    ));
    let log = std::env::temp_dir().join(format!("warren-dual-{}.log", std::process::id()));
    let mut child = warren()
        .arg("--config")
        .arg(&file.0)
        .arg("--data-dir")
        .arg(&data)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("warren started")
    {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        use std::io::{Read, Write};
        s.write_all(b"AMQP\x00\x00\x09\x01").unwrap();
        let mut start = [0u8; 7];
        s.read_exact(&mut start).unwrap();
        assert_eq!(start[0], 1, "connection.start over {addr}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_dir_all(&data);
}
