//! The message store through its public API: group commit, recovery,
//! acknowledgements, torn tails, segment deletion.

use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;
use warren_store::{DurableMark, MessageStore, PublishRecord};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warren-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn record(id: u64, queues: &[&str], body: &str) -> PublishRecord {
    PublishRecord {
        id,
        vhost: Bytes::from_static(b"/"),
        exchange: Bytes::from_static(b"amq.direct"),
        routing_key: Bytes::from_static(b"k"),
        queues: queues
            .iter()
            .map(|q| Bytes::copy_from_slice(q.as_bytes()))
            .collect(),
        header: Bytes::from_static(b"\x00\x3c\x00\x00"),
        body: Bytes::copy_from_slice(body.as_bytes()),
        published_at: 0,
        expires_at: 0,
    }
}

fn key(q: &str) -> (Bytes, Bytes) {
    (
        Bytes::from_static(b"/"),
        Bytes::copy_from_slice(q.as_bytes()),
    )
}

#[tokio::test]
async fn published_messages_come_back_minus_acknowledged_ones() {
    let d = dir("recover");
    {
        let (store, recovered) = MessageStore::open(&d).unwrap();
        assert!(recovered.queues.is_empty());
        let bell = Arc::new(Notify::new());
        let mark = Arc::new(DurableMark::new(bell.clone()));
        for seq in 1..=5 {
            let id = store.next_id();
            assert!(
                store
                    .publish(
                        record(id, &["a", "b"], &format!("m{seq}")),
                        Some((mark.clone(), seq))
                    )
                    .await
            );
        }
        while mark.synced() < 5 {
            bell.notified().await;
        }
        store
            .ack(
                Bytes::from_static(b"/"),
                Bytes::from_static(b"a"),
                vec![1, 3],
            )
            .await;
        assert!(store.sync().await);
    }
    let (store, recovered) = MessageStore::open(&d).unwrap();
    // Recovery gives ids; the bodies are read back from disk.
    let bodies = |q: &str| -> Vec<String> {
        store
            .read(&recovered.queues[&key(q)])
            .into_iter()
            .map(|m| String::from_utf8(m.expect("readable").body.to_vec()).unwrap())
            .collect()
    };
    assert_eq!(
        bodies("a"),
        ["m2", "m4", "m5"],
        "ids 1 and 3 were acknowledged"
    );
    assert_eq!(bodies("b"), ["m1", "m2", "m3", "m4", "m5"]);
    assert!(store.next_id() > 5, "ids continue after the recovered ones");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_reported() {
    let d = dir("torn");
    {
        let (store, _) = MessageStore::open(&d).unwrap();
        for i in 1..=3 {
            let id = store.next_id();
            store
                .publish(record(id, &["q"], &format!("m{i}")), None)
                .await;
        }
        assert!(store.sync().await);
    }
    let segment = std::fs::read_dir(d.join("messages"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let len = std::fs::metadata(&segment).unwrap().len();
    // A crash in the middle of the last record.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (_, recovered) = MessageStore::open(&d).unwrap();
    assert_eq!(recovered.queues[&key("q")].len(), 2);
    assert!(recovered.dropped_bytes > 0);
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn many_publishers_share_group_commits() {
    let d = dir("group");
    let (store, _) = MessageStore::open(&d).unwrap();
    let mut tasks = Vec::new();
    for p in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let bell = Arc::new(Notify::new());
            let mark = Arc::new(DurableMark::new(bell.clone()));
            for seq in 1..=200 {
                let id = store.next_id();
                store
                    .publish(
                        record(id, &["q"], &format!("{p}-{seq}")),
                        Some((mark.clone(), seq)),
                    )
                    .await;
            }
            while mark.synced() < 200 {
                bell.notified().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Each publisher waits for its confirms only at the end, so records
    // from all eight arrive while a commit runs and share the next one.
    let commits = store.commits();
    assert!(
        commits * 4 < 1600,
        "{commits} group commits (fdatasyncs) for 1600 publishes"
    );
    drop(store);
    let (_, recovered) = MessageStore::open(&d).unwrap();
    assert_eq!(recovered.queues[&key("q")].len(), 1600);
    let _ = std::fs::remove_dir_all(&d);
}
