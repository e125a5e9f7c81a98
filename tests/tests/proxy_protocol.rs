//! The PROXY protocol from a trusted load balancer: the client's real
//! address is what the loopback rule sees; a LOCAL header or none keeps the
//! peer's own; from anyone else a PROXY line is just a wrong protocol header.

use warren_codec::*;
use warren_tests::{RawClient, TestServer};

/// Login as guest after `prefix` and the protocol header: what the server
/// answers start-ok with.
async fn guest_after(server: &TestServer, prefix: &[u8]) -> Option<(u16, Method)> {
    let mut c = RawClient::connect(server.addr).await;
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(&PROTOCOL_HEADER);
    c.send_bytes(&bytes).await;
    let Some((0, Method::ConnectionStart(_))) = c.method().await else {
        panic!("no connection.start")
    };
    let caps = FieldTable::new().with("authentication_failure_close", FieldValue::Bool(true));
    c.send(
        0,
        ConnectionStartOk {
            client_properties: FieldTable::new().with("capabilities", FieldValue::Table(caps)),
            mechanism: ShortString::from_static("PLAIN"),
            response: LongString::from("\0guest\0guest"),
            locale: ShortString::from_static("en_US"),
        },
    )
    .await;
    c.method().await
}

async fn behind_a_proxy() -> TestServer {
    TestServer::start_with(|c| c.listeners.proxy_protocol_from = vec!["127.0.0.0/8".into()]).await
}

#[tokio::test]
async fn the_real_client_address_decides_the_loopback_rule() {
    let server = behind_a_proxy().await;
    // v1: a client from 203.0.113.7 is not on loopback: guest is refused.
    let refused = guest_after(&server, b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 5672\r\n").await;
    assert!(
        matches!(refused, Some((0, Method::ConnectionClose(ref c))) if c.reply_code == 403),
        "{refused:?}"
    );
    // v2, the same client.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[203, 0, 113, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x16, 0x28]);
    let refused = guest_after(&server, &v2).await;
    assert!(
        matches!(refused, Some((0, Method::ConnectionClose(ref c))) if c.reply_code == 403),
        "{refused:?}"
    );
    // A client on the proxy's own loopback is let in.
    let allowed = guest_after(&server, b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 5672\r\n").await;
    assert!(
        matches!(allowed, Some((0, Method::ConnectionTune(_)))),
        "{allowed:?}"
    );
}

#[tokio::test]
async fn a_local_header_or_none_keeps_the_peers_address() {
    let server = behind_a_proxy().await;
    let local = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";
    let allowed = guest_after(&server, local).await;
    assert!(
        matches!(allowed, Some((0, Method::ConnectionTune(_)))),
        "{allowed:?}"
    );
    let allowed = guest_after(&server, b"").await;
    assert!(
        matches!(allowed, Some((0, Method::ConnectionTune(_)))),
        "{allowed:?}"
    );
}

#[tokio::test]
async fn an_untrusted_peer_cannot_claim_an_address() {
    let server = TestServer::start().await;
    let mut c = RawClient::connect(server.addr).await;
    c.send_bytes(b"PROXY TCP4 127.0.0.1 127.0.0.1 40000 5672\r\n")
        .await;
    assert_eq!(c.read_to_end().await, PROTOCOL_HEADER);
}

#[tokio::test]
async fn a_damaged_header_from_a_trusted_proxy_drops_the_connection() {
    let server = behind_a_proxy().await;
    let mut c = RawClient::connect(server.addr).await;
    c.send_bytes(b"PROXY TCP4 not-an-address 10.0.0.1 1 2\r\nAMQP\x00\x00\x09\x01")
        .await;
    assert!(c.read_to_end().await.is_empty());
}
