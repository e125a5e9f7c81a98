//! Feeds bytes to the frame decoder whole and split in two halves; every
//! frame it accepts must survive an encode/decode round trip.
//!
//! `cargo +nightly fuzz run decode -- -max_total_time=600` from crates/codec.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_codec::{decode_protocol_header, Frame, FrameDecoder};

fn decode_in_pieces(data: &[u8], split: usize) -> Vec<Frame> {
    let mut decoder = FrameDecoder::new(131_072);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in [&data[..split], &data[split..]] {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    let _ = e.reply_code();
                    return frames;
                }
            }
        }
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_protocol_header(&mut BytesMut::from(data));
    let whole = decode_in_pieces(data, data.len());
    let halves = decode_in_pieces(data, data.len() / 2);
    assert_eq!(whole, halves, "splitting the input changed what was decoded");
    for frame in whole {
        let mut encoded = BytesMut::new();
        frame.encode(&mut encoded);
        let again = FrameDecoder::new(0).decode(&mut encoded).expect("re-decode");
        assert_eq!(again, Some(frame));
        assert!(encoded.is_empty());
    }
});
