//! What the broker's log says about hostile or refused clients: names that
//! clients chose are escaped (no forged lines), and a refused login names
//! the peer.

mod common;

use common::*;
use warren_codec::*;

#[test]
fn client_chosen_names_cannot_forge_log_lines() {
    let dir = data_dir("log-escape");
    let warren = Warren::start(&dir);
    let mut c = Raw::open(warren.port, 1);
    // A purge of a missing queue: its channel error is logged with the
    // name in it (declarations strip line breaks from names; purge, as in
    // RabbitMQ, takes the name as it comes).
    let forged = "q\n2026-01-01T00:00:00Z  INFO forged: all is well";
    c.send(
        1,
        QueuePurge {
            queue: ShortString::try_from(forged).unwrap(),
            ..Default::default()
        },
    );
    let close = c.method();
    assert!(
        matches!(close, Some((1, Method::ChannelClose(ref cl))) if cl.reply_code == 404),
        "{close:?}"
    );
    c.send(1, ChannelCloseOk {});
    c.send(1, ChannelOpen::default());
    c.method();
    let log = warren.stderr();
    assert!(
        !log.lines()
            .any(|l| l.contains("forged: all is well") && !l.contains("channel error")),
        "a client wrote its own log line:\n{log}"
    );
    assert!(log.contains("q\\n2026"), "the newline is escaped:\n{log}");
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_refused_login_is_logged_with_the_peer() {
    let dir = data_dir("log-refused");
    let warren = Warren::start(&dir);
    let (c, answer) = Raw::login(warren.port, "guest", "wrong");
    // Without the authentication_failure_close capability the socket is
    // simply closed, as RabbitMQ does; with it, a close 403.
    assert!(
        matches!(answer, None | Some((0, Method::ConnectionClose(_)))),
        "{answer:?}"
    );
    let peer = c.stream.local_addr().unwrap();
    let log = warren.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("login refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(line.contains(&peer.to_string()), "{line}");
    assert!(line.contains("guest"), "{line}");
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}
