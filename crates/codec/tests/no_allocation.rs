//! The decode path allocates nothing per frame: a counting allocator shows it.

use bytes::BytesMut;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use warren_codec::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decoding_a_thousand_publishes_allocates_at_most_once() {
    let headers = FieldTable::new()
        .with("retries", FieldValue::I32(3))
        .with("source", FieldValue::LongString("billing".into()));
    let header = ContentHeader {
        class_id: class_id::BASIC,
        weight: 0,
        body_size: 16,
        properties: BasicProperties {
            content_type: Some(ShortString::from_static("application/json")),
            delivery_mode: Some(2),
            headers: Some(headers),
            ..Default::default()
        },
    };
    let publish = Method::BasicPublish(BasicPublish {
        exchange: ShortString::from_static("amq.topic"),
        routing_key: ShortString::from_static("orders.eu.created"),
        ..Default::default()
    });
    let mut buf = BytesMut::new();
    for _ in 0..1000 {
        encode_content(1, &publish, &header, b"0123456789abcdef", 131_072, &mut buf);
    }
    let mut decoder = FrameDecoder::new(131_072);

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut frames = 0;
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        if let Frame::Header { header, .. } = &frame {
            // Reading the table walks its octets; it does not allocate either.
            assert_eq!(
                header.properties.headers.as_ref().unwrap().get("retries"),
                Some(FieldValue::I32(3))
            );
        }
        frames += 1;
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    assert_eq!(frames, 3000);
    // The first split turns the read buffer into a shared one: one allocation
    // for the whole buffer, none per frame.
    assert!(
        allocations <= 1,
        "{allocations} allocations for 3000 frames"
    );
}
