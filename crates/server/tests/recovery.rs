//! What the broker does with a damaged or unusual data directory, with the
//! real binary: it never deletes confirmed messages on its own, refuses to
//! start (changing nothing) when the definitions do not match the messages,
//! keeps what the config's vhost list leaves out, answers a durable
//! declaration only once it is stored, and upgrades a format-1 directory.

mod common;

use common::*;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::ExchangeKind;
use std::path::Path;

/// A durable queue `q` bound to durable exchange `x`, holding `count`
/// confirmed persistent messages `m0`, `m1`, ...
async fn fill(warren: &Warren, count: usize) {
    let (_c, ch) = warren.channel().await;
    ch.exchange_declare(
        "x",
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    durable_queue(&ch, "q").await;
    ch.queue_bind(
        "q",
        "x",
        "k",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..count {
        let confirm = ch
            .basic_publish(
                "x",
                "k",
                BasicPublishOptions::default(),
                format!("m{i}").as_bytes(),
                persistent(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }
}

fn expected(count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| format!("m{i}").into_bytes()).collect()
}

/// Every file under `dir` but the lock, with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("warren.lock") {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_missing_definitions_log_refuses_to_start_and_destroys_nothing() {
    let dir = data_dir("no-definitions");
    let mut warren = Warren::start(&dir);
    fill(&warren, 50).await;
    warren.stop();
    let log = dir.join("definitions.log");
    let backup = std::fs::read(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    let before = snapshot(&dir);
    let err = refused_start(&dir, &[]);
    for needle in [
        dir.display().to_string().as_str(),
        "definitions.log is missing",
        "50 persistent messages",
        "queue 'q' in vhost '/'",
        "--quarantine-orphans",
    ] {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
    assert_eq!(snapshot(&dir), before, "a refused start changes nothing");
    // With the log back, every message is there.
    std::fs::write(&log, backup).unwrap();
    let warren = Warren::start(&dir);
    let (_c, ch) = warren.channel().await;
    assert_eq!(drain(&ch, "q").await, expected(50));
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_damaged_first_definition_keeps_the_messages_in_quarantine_when_asked() {
    let dir = data_dir("damaged-definitions");
    let mut warren = Warren::start(&dir);
    fill(&warren, 50).await;
    warren.stop();
    // The queue's definition is the log's second record (after the
    // exchange); damage both, as a torn sector would.
    let log = dir.join("definitions.log");
    let mut data = std::fs::read(&log).unwrap();
    let end = 60.min(data.len() - 1);
    for b in &mut data[8..end] {
        *b ^= 0x55;
    }
    std::fs::write(&log, &data).unwrap();
    let err = refused_start(&dir, &[]);
    assert!(err.contains("damaged or incomplete"), "{err}");
    let warren = Warren::start_with(&dir, &["--quarantine-orphans"]);
    {
        let (_c, ch) = warren.channel().await;
        assert_eq!(message_count(&ch, "quarantine.q").await.unwrap(), 50);
    }
    let mut warren = warren;
    warren.stop();
    // Quarantined for good: later starts need no flag and keep them.
    let warren = Warren::start(&dir);
    let (_c, ch) = warren.channel().await;
    assert_eq!(drain(&ch, "quarantine.q").await, expected(50));
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_vhost_left_out_of_the_config_keeps_its_queues_and_messages() {
    let dir = data_dir("vhost-removed");
    let mut warren = Warren::start(&dir);
    fill(&warren, 20).await;
    warren.stop();
    let config = dir.with_extension("toml");
    let hash = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["hash-password", "guest"])
        .output()
        .unwrap()
        .stdout;
    let hash = String::from_utf8(hash).unwrap();
    std::fs::write(
        &config,
        format!(
            "vhosts = [\"other\"]\n[[users]]\nname = \"guest\"\npassword_hash = \"{}\"\nvhosts = [\"other\"]\n",
            hash.trim()
        ),
    )
    .unwrap();
    let mut warren = Warren::start_with(&dir, &["--config", config.to_str().unwrap()]);
    warren.stop();
    assert!(
        warren
            .stderr()
            .contains("vhost '/' restored from the data directory"),
        "{}",
        warren.stderr()
    );
    let warren = Warren::start(&dir);
    let (_c, ch) = warren.channel().await;
    assert_eq!(drain(&ch, "q").await, expected(20));
    drop(warren);
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn messages_of_a_deleted_queue_are_released_at_the_next_start() {
    let dir = data_dir("deleted-queue");
    let mut warren = Warren::start(&dir);
    fill(&warren, 30).await;
    {
        let (_c, ch) = warren.channel().await;
        ch.queue_delete("q", QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    // Before the queue's acknowledgements reach the disk, perhaps.
    warren.kill9();
    for _ in 0..2 {
        let mut warren = Warren::start(&dir);
        let (_c, ch) = warren.channel().await;
        assert!(
            message_count(&ch, "q").await.is_err(),
            "the queue stays deleted"
        );
        drop(ch);
        warren.stop();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_durable_declaration_on_a_full_disk_fails_with_541_and_leaves_nothing_half_done() {
    let disk = TinyDisk::mount("full-declare", "400k");
    let mut warren = Warren::start(&disk.dir);
    {
        let (_c, ch) = warren.channel().await;
        durable_queue(&ch, "filler").await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let body = vec![b'x'; 16 * 1024];
        // Until the store refuses: the disk is full.
        for _ in 0..100 {
            let confirm = ch
                .basic_publish(
                    "",
                    "filler",
                    BasicPublishOptions::default(),
                    &body,
                    persistent(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            if !confirm.is_ack() {
                break;
            }
        }
    }
    // Fill what the message store left, so the definitions log cannot grow.
    let filler = disk.dir.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    // Small appends fit the log's last block; declare until one does not.
    let late = |i: usize| format!("late-{i}-{}", "n".repeat(200));
    let mut failed = None;
    {
        let (_c, ch) = warren.channel().await;
        for i in 0..60 {
            let declared = ch
                .queue_declare(
                    &late(i),
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await;
            if let Err(err) = declared {
                let text = err.to_string();
                assert!(text.contains("INTERNAL_ERROR"), "{text}");
                assert!(
                    text.contains("cannot store the definition of queue 'late-"),
                    "{text}"
                );
                failed = Some(i);
                break;
            }
        }
    }
    let failed = failed.expect("a full disk refuses a durable declaration");
    {
        // The broker is consistent: what was answered exists, the refused
        // queue does not.
        let (_c, ch) = warren.channel().await;
        for i in 0..failed {
            assert!(message_count(&ch, &late(i)).await.is_ok());
        }
        assert!(message_count(&ch, &late(failed)).await.is_err());
    }
    warren.stop();
    let _ = std::fs::remove_file(&filler);
    disk.grow("8m");
    let mut warren = Warren::start(&disk.dir);
    {
        let (_c, ch) = warren.channel().await;
        assert!(
            message_count(&ch, "late").await.is_err(),
            "never answered, never stored"
        );
        fill(&warren, 50).await;
    }
    warren.stop();
    let warren = Warren::start(&disk.dir);
    let (_c, ch) = warren.channel().await;
    assert_eq!(drain(&ch, "q").await, expected(50));
}

/// A data directory written by the release before format 2 (see
/// fixtures/format-1/generate.py): 200 messages published to `fmt1.q`
/// through topic exchange `fmt1.x`, the first 40 acknowledged, and 50 in
/// `fmt1.other`.
#[tokio::test]
async fn a_format_1_data_directory_is_upgraded_in_place_with_every_message() {
    let dir = data_dir("format-1");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1");
    std::fs::create_dir_all(dir.join("messages")).unwrap();
    std::fs::copy(fixture.join("definitions.log"), dir.join("definitions.log")).unwrap();
    std::fs::copy(
        fixture.join("messages/0000000001.seg"),
        dir.join("messages/0000000001.seg"),
    )
    .unwrap();
    let mut warren = Warren::start(&dir);
    {
        let (_c, ch) = warren.channel().await;
        assert_eq!(message_count(&ch, "fmt1.q").await.unwrap(), 160);
        assert_eq!(message_count(&ch, "fmt1.other").await.unwrap(), 50);
        // The binding came back too, and new messages join the old ones.
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        ch.basic_publish(
            "fmt1.x",
            "orders.new",
            BasicPublishOptions::default(),
            b"new",
            persistent(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    warren.stop();
    let format = std::fs::read_to_string(dir.join("FORMAT")).unwrap();
    assert_eq!(format.trim(), "warren data format 2");
    assert!(std::fs::read(dir.join("definitions.log"))
        .unwrap()
        .starts_with(b"WARREN2\n"));
    let warren = Warren::start(&dir);
    let (_c, ch) = warren.channel().await;
    let mut want: Vec<Vec<u8>> = (40..200)
        .map(|i| format!("message {i}").into_bytes())
        .collect();
    want.push(b"new".to_vec());
    assert_eq!(drain(&ch, "fmt1.q").await, want);
    let other: Vec<Vec<u8>> = (0..50).map(|i| format!("other {i}").into_bytes()).collect();
    assert_eq!(drain(&ch, "fmt1.other").await, other);
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_newer_format_is_refused_with_a_clear_message() {
    let dir = data_dir("newer-format");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("FORMAT"), "warren data format 9\n").unwrap();
    let err = refused_start(&dir, &[]);
    assert!(err.contains("format 9"), "{err}");
    assert!(err.contains("newer Warren"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_segment_that_is_a_directory_is_refused_by_name() {
    let dir = data_dir("segment-dir");
    let mut warren = Warren::start(&dir);
    fill(&warren, 5).await;
    warren.stop();
    std::fs::create_dir(dir.join("messages/0000000099.seg")).unwrap();
    let err = refused_start(&dir, &[]);
    assert!(err.contains("0000000099.seg"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
