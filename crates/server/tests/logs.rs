//! What the broker's log says about hostile or refused clients: names that
//! clients chose are escaped (no forged lines), and a refused login names
//! the peer.

mod common;

use common::*;
use warren_codec::*;

#[test]
fn client_chosen_names_cannot_forge_log_lines() {
    let dir = data_dir("log-escape");
    let warren = Warren::start(&dir);
    let mut c = Raw::open(warren.port, 1);
    // A purge of a missing queue: its channel error is logged with the
    // name in it (declarations strip line breaks from names; purge, as in
    // RabbitMQ, takes the name as it comes).
    let forged = "q\n2026-01-01T00:00:00Z  INFO forged: all is well";
    c.send(
        1,
        QueuePurge {
            queue: ShortString::try_from(forged).unwrap(),
            ..Default::default()
        },
    );
    let close = c.method();
    assert!(
        matches!(close, Some((1, Method::ChannelClose(ref cl))) if cl.reply_code == 404),
        "{close:?}"
    );
    c.send(1, ChannelCloseOk {});
    c.send(1, ChannelOpen::default());
    c.method();
    let log = warren.stderr();
    assert!(
        !log.lines()
            .any(|l| l.contains("forged: all is well") && !l.contains("channel error")),
        "a client wrote its own log line:\n{log}"
    );
    assert!(log.contains("q\\n2026"), "the newline is escaped:\n{log}");
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refused_login_is_logged_with_the_peer() {
    let dir = data_dir("log-refused");
    let warren = Warren::start(&dir);
    let (c, answer) = Raw::login(warren.port, "guest", "wrong");
    // Without the authentication_failure_close capability the socket is
    // simply closed, as RabbitMQ does; with it, a close 403.
    assert!(
        matches!(answer, None | Some((0, Method::ConnectionClose(_)))),
        "{answer:?}"
    );
    let peer = c.stream.local_addr().unwrap();
    let log = warren.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("login refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(line.contains(&peer.to_string()), "{line}");
    assert!(line.contains("guest"), "{line}");
    assert!(line.contains("mechanism=PLAIN"), "{line}");
    assert_eq!(
        log.matches("login refused").count(),
        1,
        "one line per refusal:\n{log}"
    );
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_memory_alarm_is_logged_when_it_sets_and_when_it_clears() {
    let dir = data_dir("log-alarm");
    let config = dir.with_extension("toml");
    std::fs::write(
        &config,
        "[limits]\nvm_memory_high_watermark.absolute = 33554432\nmax_message_size = 16777216\n",
    )
    .unwrap();
    let warren = Warren::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let mut admin = Raw::open(warren.port, 1);
    admin.send(
        1,
        QueueDeclare {
            queue: ShortString::from_static("alarm"),
            ..Default::default()
        },
    );
    admin.method();
    // Three 15 MiB messages: over the 32 MiB watermark. The publisher is
    // blocked (its socket no longer read), so it writes from its own thread.
    let port = warren.port;
    std::thread::spawn(move || {
        let mut publisher = Raw::open(port, 1);
        let body = vec![7u8; 15 << 20];
        for _ in 0..3 {
            if !publisher.publish(1, "alarm", body.len() as u64, &body) {
                return;
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(60));
    });
    let set = wait_for(&warren, "memory alarm set");
    assert!(set.contains("limit=33554432"), "{set}");
    admin.send(
        1,
        QueuePurge {
            queue: ShortString::from_static("alarm"),
            ..Default::default()
        },
    );
    let cleared = wait_for(&warren, "memory alarm cleared");
    assert!(cleared.contains("limit=33554432"), "{cleared}");
    drop(warren);
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The first log line containing `text`, waiting up to 20 s for it.
fn wait_for(warren: &Warren, text: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(line) = warren.stderr().lines().find(|l| l.contains(text)) {
            return line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {text:?} in:\n{}",
            warren.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_clients_connection_name_is_in_its_connection_lines() {
    let dir = data_dir("log-name");
    let warren = Warren::start(&dir);
    let mut c = Raw::open_named(warren.port, 1, Some("orders-service"));
    c.send(
        1,
        QueuePurge {
            queue: ShortString::from_static("missing"),
            ..Default::default()
        },
    );
    c.method();
    let opened = wait_for(&warren, "connection opened");
    assert!(
        opened.contains("connection_name=\"orders-service\""),
        "{opened}"
    );
    let error = wait_for(&warren, "channel error");
    assert!(
        error.contains("connection_name=\"orders-service\""),
        "{error}"
    );
    // Standard error is a file here, not a terminal: no colour codes.
    assert!(!warren.stderr().contains('\x1b'), "{}", warren.stderr());
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_lines_into_a_rotated_log_file() {
    let dir = data_dir("log-file");
    let logs = dir.with_extension("logs");
    let _ = std::fs::remove_dir_all(&logs);
    let config = dir.with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "log_format = \"json\"\nlog_file = \"{}\"\nlog_file_rotation = \"daily\"\n",
            logs.join("warren.log").display()
        ),
    )
    .unwrap();
    let mut child = command(&dir, 0)
        .arg("--config")
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The daily file is warren.log.<date>.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let text: String = std::fs::read_dir(&logs)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|f| f.file_name().to_string_lossy().starts_with("warren.log."))
            .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
            .collect();
        if text.contains("warren started") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log file in {}",
            logs.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for line in text.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("every line is JSON");
        assert!(
            entry["level"].is_string() && entry["fields"]["message"].is_string(),
            "{line}"
        );
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "nothing on standard error: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&logs);
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&dir);
}
