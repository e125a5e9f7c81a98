//! A channel close that crosses the server's own, over a real socket: a
//! publish to a missing exchange followed at once by the client closing the
//! channel (what the Go client does). Both closes complete and the
//! connection's other channel goes on.

use warren_codec::*;
use warren_tests::{RawClient, TestServer};

#[tokio::test]
async fn a_client_close_crossing_the_servers_leaves_other_channels_working() {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 0, true).await;
    c.send(2, ChannelOpen::default()).await;
    assert!(matches!(
        c.method().await,
        Some((2, Method::ChannelOpenOk(_)))
    ));
    c.publish(1, "missing", "k", b"m").await;
    c.send(
        1,
        ChannelClose {
            reply_code: 200,
            reply_text: ShortString::from_static("bye"),
            class_id: 0,
            method_id: 0,
        },
    )
    .await;
    let (mut closed, mut close_ok) = (false, false);
    while !(closed && close_ok) {
        match c.method().await {
            Some((1, Method::ChannelClose(close))) => {
                assert_eq!(close.reply_code, 404);
                closed = true;
                c.send(1, ChannelCloseOk {}).await;
            }
            Some((1, Method::ChannelCloseOk(_))) => close_ok = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    c.send(
        2,
        QueueDeclare {
            queue: ShortString::from_static("after-crossing"),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(
        c.method().await,
        Some((2, Method::QueueDeclareOk(_)))
    ));
    c.send(1, ChannelOpen::default()).await;
    assert!(matches!(
        c.method().await,
        Some((1, Method::ChannelOpenOk(_)))
    ));
}
