//! Memory with the real binary: thousands of connections are accepted
//! (the open-file limit is raised at start-up), and the memory they held is
//! given back to the system after they close.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Warren(Child);

impl Drop for Warren {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn memory_of_closed_connections_goes_back_to_the_system() {
    const CONNECTIONS: usize = 3000;
    warren::fd_limit::raise();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = std::env::temp_dir().join(format!("warren-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _warren = Warren(child);
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "warren did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = rss_kib(pid);

    // Each connection gets as far as connection.start, so its task,
    // buffers and state machine exist.
    let mut sockets = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"AMQP\x00\x00\x09\x01").unwrap();
        sockets.push(s);
    }
    for s in &mut sockets {
        let mut start = [0u8; 7];
        s.read_exact(&mut start).unwrap();
        assert_eq!(start[0], 1, "connection.start arrives on every connection");
    }
    let open = rss_kib(pid);
    assert!(
        open > before + 10_000,
        "{before} KiB before, {open} KiB with {CONNECTIONS} connections"
    );
    drop(sockets);

    // The trimmer looks every 5 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = rss_kib(pid);
        if now < before + (open - before) / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS still {now} KiB (before {before}, open {open})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
