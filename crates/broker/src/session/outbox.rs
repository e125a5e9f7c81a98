//! Where a session's replies go: the connection's state machine, in the server.

use bytes::Bytes;
use warren_codec::Method;

pub trait Outbox: Send {
    fn send_method(&mut self, channel: u16, method: Method);
    /// A content-carrying method with the header payload and body it carries.
    fn send_content(&mut self, channel: u16, method: Method, header: &Bytes, body: &Bytes);
}
