//! Routing one message through an exchange: the per-publish cost of finding
//! its destinations, for each exchange type, with the bindings of
//! warren-perf's scenarios.
//!
//! `cargo bench -p warren-broker --bench routing`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use warren_broker::{Binding, Destination, Exchange, ExchangeArgs, ExchangeKind};
use warren_codec::{FieldTable, ShortString};

/// Exchange-to-exchange destinations: routing needs no running queues.
fn destination(i: usize) -> Destination {
    Destination::Exchange(ShortString::try_from(format!("dest-{i}").as_str()).unwrap())
}

fn exchange(kind: ExchangeKind, bindings: impl IntoIterator<Item = (usize, String)>) -> Exchange {
    let exchange = Exchange::new(
        ShortString::from_static("bench"),
        kind,
        false,
        false,
        false,
        ExchangeArgs::default(),
    );
    for (i, key) in bindings {
        exchange.bind(Binding {
            destination: destination(i),
            routing_key: ShortString::try_from(key.as_str()).unwrap(),
            arguments: FieldTable::new(),
        });
    }
    exchange
}

fn route(c: &mut Criterion, name: &str, exchange: &Exchange, keys: &[String]) {
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(keys.len() as u64));
    let mut out = Vec::new();
    group.bench_function(name, |b| {
        b.iter(|| {
            for key in keys {
                out.clear();
                exchange.route(black_box(key.as_bytes()), None, &mut out);
                black_box(&out);
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    // The topic scenario: 100 queues bound with `*.i.#`, 1,000 routing keys.
    let topic = exchange(
        ExchangeKind::Topic,
        (0..100).map(|i| (i, format!("*.{i}.#"))),
    );
    let topic_keys: Vec<String> = (0..1000)
        .map(|k| format!("perf.{}.k{}", k % 100, k / 100))
        .collect();
    route(c, "topic 100 patterns", &topic, &topic_keys);

    // Many `#` words against a long key: exponential for a backtracking
    // matcher, trie nodes × words here.
    let hashes = exchange(
        ExchangeKind::Topic,
        [(0, "#.#.#.#.#.#.#.#.#.#.#.#.x".to_string())],
    );
    let long_key = vec!["w"; 100].join(".");
    route(c, "topic 12 hashes, 100-word key", &hashes, &[long_key]);

    let direct = exchange(
        ExchangeKind::Direct,
        (0..1000).map(|i| (i, format!("key-{i}"))),
    );
    let direct_keys: Vec<String> = (0..1000).map(|k| format!("key-{k}")).collect();
    route(c, "direct 1000 keys", &direct, &direct_keys);

    let fanout = exchange(ExchangeKind::Fanout, (0..10).map(|i| (i, String::new())));
    route(c, "fanout 10 queues", &fanout, &direct_keys);
}

criterion_group!(routing, benches);
criterion_main!(routing);
