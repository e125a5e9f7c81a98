//! Where a session's replies go: the connection's state machine, in the server.

use bytes::Bytes;
use warren_codec::{DeliverFields, Method};

pub trait Outbox: Send {
    fn send_method(&mut self, channel: u16, method: Method);
    /// A content-carrying method with the header payload and body it carries.
    fn send_content(&mut self, channel: u16, method: Method, header: &Bytes, body: &Bytes);
    /// basic.deliver with its content, from borrowed fields.
    fn send_delivery(
        &mut self,
        channel: u16,
        fields: &DeliverFields<'_>,
        header: &Bytes,
        body: &Bytes,
    );
}
