//! Memory with the real binary: thousands of connections are accepted
//! (the open-file limit is raised at start-up), and the memory they held is
//! given back to the system after they close.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn memory_of_closed_connections_goes_back_to_the_system() {
    const CONNECTIONS: usize = 3000;
    warren::fd_limit::raise();
    let dir = data_dir("memory");
    let warren = Warren::start(&dir);
    let port = warren.port;
    let rss_kib = |_: ()| rss(&warren) as u64 / 1024;
    let before = rss_kib(());

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
    let open = rss_kib(());
    assert!(
        open > before + 10_000,
        "{before} KiB before, {open} KiB with {CONNECTIONS} connections"
    );
    drop(sockets);

    // The trimmer looks every 5 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = rss_kib(());
        if now < before + (open - before) / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS still {now} KiB (before {before}, open {open})"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}
