//! Decoding and encoding publish and deliver triplets (method, header, 16-byte body).
//!
//! `cargo bench -p warren-codec --bench frames`

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use warren_codec::*;

const BATCH: usize = 1000;

fn properties() -> BasicProperties {
    BasicProperties {
        content_type: Some(ShortString::from_static("application/json")),
        delivery_mode: Some(2),
        ..Default::default()
    }
}

fn publish() -> Method {
    Method::BasicPublish(BasicPublish {
        exchange: ShortString::from_static("amq.direct"),
        routing_key: ShortString::from_static("orders.created"),
        ..Default::default()
    })
}

fn deliver() -> Method {
    Method::BasicDeliver(BasicDeliver {
        consumer_tag: ShortString::from_static("amq.ctag-0123456789abcdef"),
        delivery_tag: 123_456,
        redelivered: false,
        exchange: ShortString::from_static("amq.direct"),
        routing_key: ShortString::from_static("orders.created"),
    })
}

fn header() -> ContentHeader {
    ContentHeader {
        class_id: class_id::BASIC,
        weight: 0,
        body_size: 16,
        properties: properties(),
    }
}

const BODY: &[u8; 16] = b"0123456789abcdef";

fn triplets(method: &Method, count: usize) -> BytesMut {
    let mut buf = BytesMut::new();
    for _ in 0..count {
        encode_content(1, method, &header(), BODY, 131_072, &mut buf);
    }
    buf
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, method) in [
        ("publish_triplet", publish()),
        ("deliver_triplet", deliver()),
    ] {
        let input = triplets(&method, BATCH);
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || input.clone(),
                |buf| {
                    let mut decoder = FrameDecoder::new(131_072);
                    while let Some(frame) = decoder.decode(buf).unwrap() {
                        black_box(frame);
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(BATCH as u64));
    let body = Bytes::from_static(BODY);
    for (name, method) in [
        ("publish_triplet", publish()),
        ("deliver_triplet", deliver()),
    ] {
        let header = header();
        let mut buf = BytesMut::with_capacity(BATCH * 200);
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                for _ in 0..BATCH {
                    encode_content(1, &method, &header, &body, 131_072, &mut buf);
                }
                black_box(&buf);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
