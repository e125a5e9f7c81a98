//! The `warren` binary: flags, config errors, and shutdown on SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads until a connection.close frame arrives; returns its reply code.
fn read_close_code(stream: &mut TcpStream) -> Option<u16> {
    read_until_method(stream, [0, 10, 0, 50])
        .map(|payload| u16::from_be_bytes([payload[4], payload[5]]))
}

/// Reads frames until a method frame with these class and method ids; its payload.
fn read_until_method(stream: &mut TcpStream, ids: [u8; 4]) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        // Frames: type(1) channel(2) size(4) payload end(1).
        let mut at = 0;
        while buf.len() >= at + 7 {
            let size = u32::from_be_bytes(buf[at + 3..at + 7].try_into().unwrap()) as usize;
            if buf.len() < at + 8 + size {
                break;
            }
            let payload = &buf[at + 7..at + 7 + size];
            if buf[at] == 1 && payload[..4] == ids {
                return Some(payload.to_vec());
            }
            at += 8 + size;
        }
        buf.drain(..at);
    }
    None
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
    let port = free_port();
    let data =
        std::env::temp_dir().join(format!("warren-cli-data-{}-{signal}", std::process::id()));
    let mut child = warren()
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..100 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            stream = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stream = stream.expect("warren listens");
    handshake(&mut stream);
    send_signal(child.id(), signal);
    assert_eq!(read_close_code(&mut stream), Some(320));
    // Answer close-ok so the server can finish.
    stream
        .write_all(&[1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xCE])
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(10));
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

/// A minimal blocking handshake as guest: enough to be an open connection.
fn handshake(stream: &mut TcpStream) {
    use bytes::BytesMut;
    use warren_codec::*;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&PROTOCOL_HEADER).unwrap();
    let mut send = |method: Method| {
        let mut buf = BytesMut::new();
        encode_method_frame(0, &method, &mut buf);
        stream.write_all(&buf).unwrap();
    };
    send(
        ConnectionStartOk {
            mechanism: ShortString::from_static("PLAIN"),
            response: LongString::from("\0guest\0guest"),
            locale: ShortString::from_static("en_US"),
            ..Default::default()
        }
        .into(),
    );
    send(
        ConnectionTuneOk {
            channel_max: 10,
            frame_max: 131_072,
            heartbeat: 0,
        }
        .into(),
    );
    send(
        ConnectionOpen {
            virtual_host: ShortString::from_static("/"),
            ..Default::default()
        }
        .into(),
    );
    // Open, so that the shutdown has a connection.close to send.
    assert!(
        read_until_method(stream, [0, 10, 0, 41]).is_some(),
        "connection.open-ok"
    );
}
