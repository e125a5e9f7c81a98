//! The corruption matrix: damage at several places in the newest and older
//! segments. For each case recovery keeps every message outside the damaged
//! bytes, brings back no message whose acknowledgement is outside them,
//! reports the damage, and does not report it again on the next start.

use bytes::Bytes;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use warren_store::{MessageStore, PublishRecord};

const MESSAGES: u64 = 400;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("warren-corrupt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn key() -> (Bytes, Bytes) {
    (Bytes::from_static(b"/"), Bytes::from_static(b"q"))
}

/// Segments of about 20 KB: 400 messages of 200 bytes fill five. Every
/// fifth message is acknowledged, in batches written between the publishes.
async fn write_store(d: &Path) {
    let (store, _) = MessageStore::open(d).unwrap();
    let mut acked = Vec::new();
    for i in 0..MESSAGES {
        let id = store.next_id();
        let body = format!("{i:06}-{}", "x".repeat(190));
        let record = PublishRecord {
            id,
            vhost: Bytes::from_static(b"/"),
            exchange: Bytes::from_static(b""),
            routing_key: Bytes::from_static(b"q"),
            queues: vec![Bytes::from_static(b"q")],
            header: Bytes::from_static(b"\x00\x3c\x00\x00"),
            body: Bytes::from(body),
            published_at: 0,
            expires_at: 0,
        };
        assert!(store.publish(record, None).await);
        if id % 5 == 0 {
            acked.push(id);
        }
        if acked.len() == 8 {
            store
                .ack(key().0, key().1, std::mem::take(&mut acked))
                .await;
            assert!(store.sync().await);
        }
    }
    store.ack(key().0, key().1, acked).await;
    assert!(store.sync().await);
}

/// A record as the test reads a pristine segment: its byte range, and the
/// ids it publishes or acknowledges.
struct Record {
    range: Range<usize>,
    published: Option<u64>,
    acked: Vec<u64>,
}

fn parse(data: &[u8]) -> Vec<Record> {
    assert!(data.starts_with(b"WARREN2\n"));
    let mut out = Vec::new();
    let mut at = 8;
    while at < data.len() {
        let len = u32::from_be_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        let payload = &data[at + 12..at + 12 + len];
        let (published, acked) = match payload[0] {
            b'P' => (
                Some(u64::from_be_bytes(payload[1..9].try_into().unwrap())),
                Vec::new(),
            ),
            b'A' => {
                // vhost, queue (short strings), count, ids.
                let mut p = 1;
                p += 1 + payload[p] as usize;
                p += 1 + payload[p] as usize;
                let count = u32::from_be_bytes(payload[p..p + 4].try_into().unwrap()) as usize;
                p += 4;
                let ids = (0..count)
                    .map(|i| {
                        u64::from_be_bytes(payload[p + 8 * i..p + 8 * i + 8].try_into().unwrap())
                    })
                    .collect();
                (None, ids)
            }
            other => panic!("unexpected record type {other}"),
        };
        out.push(Record {
            range: at..at + 12 + len,
            published,
            acked,
        });
        at += 12 + len;
    }
    out
}

fn segments(d: &Path) -> Vec<PathBuf> {
    let mut list: Vec<PathBuf> = std::fs::read_dir(d.join("messages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    list.sort();
    list
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to.join("messages")).unwrap();
    for seg in segments(from) {
        std::fs::copy(&seg, to.join("messages").join(seg.file_name().unwrap())).unwrap();
    }
}

enum Harm {
    Flip(usize),
    Zero(Range<usize>),
    /// The segment ends here.
    Cut(usize),
}

struct Case {
    name: &'static str,
    /// Index into the segments, oldest first; -1 for the newest.
    segment: isize,
    harm: fn(len: usize) -> Harm,
    /// A torn tail: cut off silently rather than reported.
    torn: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "flip a quarter into the oldest",
        segment: 0,
        harm: |l| Harm::Flip(l / 4),
        torn: false,
    },
    Case {
        name: "flip the first record's marker",
        segment: 0,
        harm: |_| Harm::Flip(9),
        torn: false,
    },
    Case {
        name: "flip a length",
        segment: 1,
        harm: |l| Harm::Flip(l / 2),
        torn: false,
    },
    Case {
        name: "flip in the newest",
        segment: -1,
        harm: |l| Harm::Flip(l / 3),
        torn: false,
    },
    Case {
        name: "zero a middle range",
        segment: 2,
        harm: |l| Harm::Zero(l / 3..l / 3 + 1500),
        torn: false,
    },
    Case {
        name: "zero the newest's tail",
        segment: -1,
        harm: |l| Harm::Zero(l - 700..l),
        torn: true,
    },
    Case {
        name: "cut a middle segment short",
        segment: 1,
        harm: |l| Harm::Cut(l - 500),
        torn: false,
    },
    Case {
        name: "tear the newest",
        segment: -1,
        harm: |l| Harm::Cut(l - 5),
        torn: true,
    },
];

/// Every id recovered for queue `q`, and the damage reported.
fn recover(d: &Path) -> (BTreeSet<u64>, usize, usize) {
    let (store, recovered) = MessageStore::open(d).unwrap();
    let ids: BTreeSet<u64> = recovered
        .queues
        .get(&key())
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    // Bodies of what came back are intact.
    for message in store.read(&ids.iter().copied().collect::<Vec<_>>()) {
        let message = message.expect("a recovered message is readable");
        assert_eq!(message.body.len(), 197);
    }
    let lost = recovered.damage.iter().map(|d| d.messages_lost).sum();
    (ids, recovered.damage.len(), lost)
}

#[tokio::test]
async fn every_case_keeps_what_is_outside_the_damage() {
    std::env::set_var("WARREN_STORE_SEGMENT_BYTES", "20000");
    let pristine = dir("pristine");
    write_store(&pristine).await;
    // A full segment is closed at once, so the newest file may hold only
    // its header; without it the store is as a crash just before that
    // left it, and the newest segment has records to damage.
    if let Some(last) = segments(&pristine).last() {
        if std::fs::metadata(last).unwrap().len() == 8 {
            std::fs::remove_file(last).unwrap();
        }
    }
    let files = segments(&pristine);
    assert!(files.len() >= 4, "{} segments", files.len());
    let records: Vec<Vec<Record>> = files
        .iter()
        .map(|f| parse(&std::fs::read(f).unwrap()))
        .collect();
    let published: BTreeSet<u64> = records
        .iter()
        .flatten()
        .filter_map(|r| r.published)
        .collect();
    assert_eq!(published.len() as u64, MESSAGES);

    for case in CASES {
        let index = if case.segment < 0 {
            files.len() - 1
        } else {
            case.segment as usize
        };
        let d = dir("case");
        copy_dir(&pristine, &d);
        let path = d.join("messages").join(files[index].file_name().unwrap());
        let mut data = std::fs::read(&path).unwrap();
        let damaged = match (case.harm)(data.len()) {
            Harm::Flip(at) => {
                data[at] ^= 0x10;
                at..at + 1
            }
            Harm::Zero(range) => {
                data[range.clone()].fill(0);
                range
            }
            Harm::Cut(at) => {
                let len = data.len();
                data.truncate(at);
                at..len
            }
        };
        std::fs::write(&path, &data).unwrap();

        // What the damage may take: records overlapping it.
        let hit = |r: &Record| r.range.start < damaged.end && damaged.start < r.range.end;
        let lost: BTreeSet<u64> = records[index]
            .iter()
            .filter(|r| hit(r))
            .filter_map(|r| r.published)
            .collect();
        let surviving_acks: BTreeSet<u64> = records
            .iter()
            .enumerate()
            .flat_map(|(i, rs)| rs.iter().filter(move |r| i != index || !hit(r)))
            .flat_map(|r| r.acked.iter().copied())
            .collect();
        let must: BTreeSet<u64> = published
            .iter()
            .copied()
            .filter(|id| !lost.contains(id) && !surviving_acks.contains(id))
            .collect();

        let (ids, reports, reported_lost) = recover(&d);
        eprintln!(
            "{}: {} back, {} must, {} hit, {reports} reports, {reported_lost} reported lost",
            case.name,
            ids.len(),
            must.len(),
            lost.len()
        );
        let missing: Vec<_> = must.difference(&ids).collect();
        assert!(
            missing.is_empty(),
            "{}: lost outside the damage: {missing:?}",
            case.name
        );
        let back: Vec<_> = ids.intersection(&surviving_acks).collect();
        assert!(
            back.is_empty(),
            "{}: acknowledged messages came back: {back:?}",
            case.name
        );
        let extra: Vec<_> = ids
            .difference(&must)
            .filter(|id| !lost.contains(id))
            .collect();
        assert!(extra.is_empty(), "{}: unexpected ids {extra:?}", case.name);
        if case.torn {
            assert_eq!(reports, 0, "{}: a torn tail is not damage", case.name);
        } else {
            assert!(reports >= 1, "{}: the damage is reported", case.name);
            assert_eq!(
                reported_lost,
                lost.len(),
                "{}: messages reported lost",
                case.name
            );
        }
        // Reported once: the next start passes over the damage silently
        // and finds the same messages.
        let (again, reports_again, _) = recover(&d);
        assert_eq!(again, ids, "{}", case.name);
        assert_eq!(reports_again, 0, "{}: reported a second time", case.name);
        let _ = std::fs::remove_dir_all(&d);
    }
    let _ = std::fs::remove_dir_all(&pristine);
}

#[test]
fn a_segment_that_is_a_directory_is_an_error_naming_it() {
    let d = dir("segment-dir");
    std::fs::create_dir_all(d.join("messages/0000000003.seg")).unwrap();
    let err = MessageStore::open(&d).err().expect("refused");
    assert!(err.to_string().contains("0000000003.seg"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test]
async fn fully_acknowledged_segments_are_deleted_and_the_space_comes_back() {
    std::env::set_var("WARREN_STORE_SEGMENT_BYTES", "20000");
    let d = dir("space");
    write_store(&d).await;
    let size = |d: &Path| -> u64 {
        segments(d)
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum()
    };
    let (before, files_before) = (size(&d), segments(&d).len());
    assert!(files_before >= 4);
    {
        let (store, recovered) = MessageStore::open(&d).unwrap();
        let left = recovered.queues[&key()].clone();
        assert_eq!(left.len() as u64, MESSAGES - MESSAGES / 5);
        store.ack(key().0, key().1, left).await;
        // A sync answers once the segments its acks emptied are deleted.
        assert!(store.sync().await);
        assert_eq!(
            store.segment_count(),
            1,
            "only the segment being written stays"
        );
    }
    let after = size(&d);
    assert_eq!(segments(&d).len(), 1);
    assert!(
        after * 4 < before,
        "{before} bytes in {files_before} segments, {after} after"
    );
    let (_, recovered) = MessageStore::open(&d).unwrap();
    assert!(recovered.queues.is_empty(), "nothing comes back");
    let _ = std::fs::remove_dir_all(&d);
}
