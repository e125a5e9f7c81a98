//! What the state machine's less frequent events do: open the broker
//! session, open and close channels, log channel and connection errors.
//! (Methods and publishes are carried out in the read loop.)

use bytes::Bytes;
use tracing::{info, warn};
use warren_broker::{Escaped, Outbox, Session};
use warren_codec::{DeliverFields, FieldValue, Method, ReplyCode};
use warren_protocol::{Connection, Event};

use super::Handler;

/// Writes the state machine's output into the connection.
pub(super) struct ConnOutbox<'a> {
    pub conn: &'a mut Connection,
    pub now: std::time::Instant,
}

impl Outbox for ConnOutbox<'_> {
    fn send_method(&mut self, channel: u16, method: Method) {
        self.conn.send_method(channel, method, self.now);
    }

    fn send_content(&mut self, channel: u16, method: Method, header: &Bytes, body: &Bytes) {
        self.conn
            .send_content(channel, &method, header, body, self.now);
    }

    fn send_delivery(
        &mut self,
        channel: u16,
        fields: &DeliverFields<'_>,
        header: &Bytes,
        body: &Bytes,
    ) {
        self.conn
            .send_delivery(channel, fields, header, body, self.now);
    }
}

impl Handler {
    /// `now`: when the batch of input being handled was read (one clock
    /// read per batch, not per event).
    pub(super) async fn handle_event(&mut self, event: Event, now: std::time::Instant) {
        let peer = self.peer;
        let conn = &mut self.conn;
        match event {
            Event::Opened { user, vhost } => {
                let Some(vh) = self.shared.broker.vhost(&vhost) else {
                    // Checked by the authenticator; only a vhost removed since could be missing.
                    conn.close(
                        ReplyCode::NotAllowed,
                        format!("vhost {vhost} not found"),
                        now,
                    );
                    return;
                };
                self.name = match conn.client_properties().get("connection_name") {
                    Some(FieldValue::LongString(name)) => {
                        Some(Escaped(name.as_bytes()).to_string())
                    }
                    _ => None,
                };
                info!(%peer, user, vhost, connection_name = self.name.as_deref(), "connection opened");
                let id = self.shared.broker.next_connection_id();
                let mut session =
                    Session::new(vh, id, user.clone(), conn.capabilities(), self.port.clone());
                session.set_consumer_timeout(self.shared.consumer_timeout);
                self.session = Some(session);
                self.user = user;
                self.vhost_name = vhost;
            }
            Event::ChannelOpened(channel) => {
                if let Some(session) = &mut self.session {
                    session.channel_opened(channel);
                }
            }
            // The read loop carries these out itself (see `Handler::run`).
            Event::Method { .. } | Event::Publish(_) => {}
            Event::ChannelClosed { channel, error } => {
                if let Some(error) = error {
                    warn!(%peer, user = self.user, connection_name = self.name.as_deref(), channel, code = error.code.code(), "channel error: {}", Escaped(error.reply_text().as_bytes()));
                }
                if let Some(session) = &mut self.session {
                    session.channel_closed(channel).await;
                }
            }
            Event::ConnectionClosing { error } => {
                if let Some(error) = error {
                    warn!(%peer, user = self.user, connection_name = self.name.as_deref(), code = error.code.code(), "connection error: {}", Escaped(error.reply_text().as_bytes()));
                }
            }
        }
    }
}
