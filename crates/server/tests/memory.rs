//! Memory with the real binary: thousands of connections are accepted
//! (the open-file limit is raised at start-up), and the memory they held is
//! given back to the system after they close; a large message routed to
//! several queues is held once.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
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

/// Over the old 16 MiB default (RabbitMQ 3.10 accepts up to 128 MiB):
/// routed to three queues and delivered to a consumer of each at once, the
/// body is shared, not copied per queue or per delivery.
#[tokio::test]
async fn a_large_message_is_held_once_however_many_queues_deliver_it() {
    const SIZE: usize = 40 * 1024 * 1024;
    const QUEUES: usize = 3;
    let dir = data_dir("large-message");
    let warren = Warren::start(&dir);
    let (_c, ch) = warren.channel().await;
    ch.exchange_declare(
        "wide",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let mut consumers = Vec::new();
    for i in 0..QUEUES {
        let queue = format!("large-{i}");
        ch.queue_declare(
            &queue,
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            &queue,
            "wide",
            "",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        let consumer_conn = warren.connect().await;
        let consumer_ch = consumer_conn.create_channel().await.unwrap();
        let consumer = consumer_ch
            .basic_consume(
                &queue,
                "",
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        consumers.push((consumer_conn, consumer_ch, consumer));
    }
    let before = peak_rss(&warren);
    let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.basic_publish(
        "wide",
        "",
        BasicPublishOptions::default(),
        &body,
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    for (_, _, consumer) in &mut consumers {
        let delivery = consumer.next().await.expect("delivered").unwrap();
        assert!(delivery.data == body, "the body arrives intact");
    }
    let grown = peak_rss(&warren) - before;
    eprintln!(
        "peak RSS grew {} MiB for one {} MiB message",
        grown >> 20,
        SIZE >> 20
    );
    assert!(
        grown < SIZE * 3 / 2,
        "the broker's peak memory grew by {} MiB for one {} MiB message in {QUEUES} queues",
        grown >> 20,
        SIZE >> 20
    );
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}
