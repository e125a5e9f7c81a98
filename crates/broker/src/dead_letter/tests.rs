use super::*;
use warren_codec::BasicProperties;

fn header(properties: BasicProperties) -> Bytes {
    let mut buf = BytesMut::new();
    ContentHeader {
        class_id: 60,
        weight: 0,
        body_size: 3,
        properties,
    }
    .encode(&mut buf);
    buf.freeze()
}

fn props(h: &Bytes) -> BasicProperties {
    ContentHeader::decode(h).unwrap().properties
}

fn entries(t: &FieldTable) -> Vec<(String, FieldValue)> {
    t.iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn s(v: &str) -> FieldValue {
    text(v.as_bytes())
}

fn deaths(h: &Bytes) -> Vec<Vec<(String, FieldValue)>> {
    let headers = props(h).headers.unwrap();
    let Some(FieldValue::Array(list)) = headers.get("x-death") else {
        panic!("no x-death")
    };
    list.iter()
        .map(|v| match v {
            FieldValue::Table(t) => entries(&t),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn die(h: &Bytes, queue: &'static str, reason: Reason, dlrk: Option<&ShortString>) -> Rewritten {
    let q = ShortString::from_static(queue);
    rewrite(
        h,
        &Death {
            queue: &q,
            reason,
            exchange: &ShortString::from_static(""),
            routing_key: &ShortString::from_static("q"),
            time: 1_700_000_000,
            dead_letter_routing_key: dlrk,
        },
    )
    .unwrap()
}

#[test]
fn a_first_death_writes_x_death_and_the_first_death_headers() {
    let cc = FieldValue::Array([s("c1")].into_iter().collect());
    let h = header(BasicProperties {
        headers: Some(FieldTable::new().with("a", s("kept")).with("CC", cc)),
        expiration: Some(ShortString::from_static("60000")),
        delivery_mode: Some(2),
        ..Default::default()
    });
    let dead = die(&h, "q", Reason::Rejected, None);
    assert!(dead.persistent);
    assert_eq!(dead.routing_keys, ["q", "c1"].map(ShortString::from_static));
    let p = props(&dead.header);
    assert_eq!(p.expiration, None, "expiration removed");
    let keys: Vec<String> = entries(p.headers.as_ref().unwrap())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            "a",
            "CC",
            "x-death",
            "x-first-death-reason",
            "x-first-death-queue",
            "x-first-death-exchange"
        ]
    );
    assert_eq!(
        deaths(&dead.header),
        [vec![
            ("count".to_string(), FieldValue::I64(1)),
            ("reason".to_string(), s("rejected")),
            ("queue".to_string(), s("q")),
            ("time".to_string(), FieldValue::Timestamp(1_700_000_000)),
            ("exchange".to_string(), s("")),
            (
                "routing-keys".to_string(),
                FieldValue::Array([s("q"), s("c1")].into_iter().collect())
            ),
            ("original-expiration".to_string(), s("60000")),
        ]]
    );
    // A dead-letter routing key replaces the keys and drops CC.
    let fixed = ShortString::from_static("fixed.rk");
    let dead = die(&h, "q", Reason::Rejected, Some(&fixed));
    assert_eq!(dead.routing_keys, [fixed]);
    assert!(props(&dead.header).headers.unwrap().get("CC").is_none());
}

#[test]
fn later_deaths_count_per_queue_and_reason_newest_first() {
    let h = header(BasicProperties::default());
    let once = die(&h, "a", Reason::Rejected, None);
    let twice = die(&once.header, "b", Reason::Expired, None);
    let thrice = die(&twice.header, "a", Reason::Rejected, None);
    let d = deaths(&thrice.header);
    assert_eq!(d.len(), 2);
    assert_eq!(
        d[0][0].1,
        FieldValue::I64(2),
        "a/rejected counted and moved first"
    );
    assert_eq!(d[0][2].1, s("a"));
    assert_eq!(d[1][2].1, s("b"));
    // The first-death headers are written once.
    let headers = props(&thrice.header).headers.unwrap();
    assert_eq!(
        headers
            .iter()
            .filter(|(k, _)| k.as_bytes() == b"x-first-death-queue")
            .count(),
        1
    );
    assert_eq!(headers.get("x-first-death-queue"), Some(s("a")));
    // An x-death that is not an array is replaced, without first-death headers.
    let odd = header(BasicProperties {
        headers: Some(FieldTable::new().with("x-death", s("junk"))),
        ..Default::default()
    });
    let dead = die(&odd, "q", Reason::Expired, None);
    assert_eq!(deaths(&dead.header).len(), 1);
    assert!(dead.headers.get("x-first-death-reason").is_none());
}

#[test]
fn cycles_are_expiries_back_to_a_queue_without_a_rejection_between() {
    let h = header(BasicProperties::default());
    let q = |n: &'static str| ShortString::from_static(n);
    let expired_in_a = die(&h, "a", Reason::Expired, None);
    assert!(
        is_cycle(&expired_in_a.headers, Reason::Expired, &q("a")),
        "self TTL loop"
    );
    assert!(!is_cycle(&expired_in_a.headers, Reason::Expired, &q("b")));
    assert!(
        !is_cycle(&expired_in_a.headers, Reason::Rejected, &q("a")),
        "rejections loop on"
    );
    // a rejected, then expired in b: back to a has a rejection on the way.
    let rejected_in_a = die(&h, "a", Reason::Rejected, None);
    let then_b = die(&rejected_in_a.header, "b", Reason::Expired, None);
    assert!(!is_cycle(&then_b.headers, Reason::Expired, &q("a")));
    assert!(is_cycle(&then_b.headers, Reason::Expired, &q("b")));
}
