//! SASL PLAIN and AMQPLAIN responses, and the server's side of checking them.

use warren_codec::{FieldTable, FieldValue};

/// What a client presented to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// PLAIN or AMQPLAIN.
    pub mechanism: &'static str,
    pub username: String,
    pub password: String,
}

/// The server's user database, as the state machine needs it.
pub trait Authenticator: Send + Sync {
    /// Whether the credentials are valid for a client connecting from
    /// `peer_is_loopback` (RabbitMQ lets `guest` in only from loopback).
    fn authenticate(&self, credentials: &Credentials, peer_is_loopback: bool) -> bool;

    fn vhost_access(&self, username: &str, vhost: &str) -> VhostAccess;

    /// A start-ok whose response could not be read as `mechanism`'s (or
    /// whose mechanism is not offered): refused without a user to check.
    fn unreadable(&self, _mechanism: &[u8]) {}
}

/// Whether a user may open a vhost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VhostAccess {
    Granted,
    NoSuchVhost,
    Refused,
}

/// Decodes a start-ok response for `mechanism`; `None` if it is malformed
/// or the mechanism is not one of `PLAIN`, `AMQPLAIN`.
pub fn parse_sasl_response(mechanism: &[u8], response: &[u8]) -> Option<Credentials> {
    match mechanism {
        // authzid NUL authcid NUL password; the authzid is ignored, as RabbitMQ does.
        b"PLAIN" => {
            let mut parts = response.splitn(3, |b| *b == 0);
            let _authzid = parts.next()?;
            let username = String::from_utf8(parts.next()?.to_vec()).ok()?;
            let password = String::from_utf8(parts.next()?.to_vec()).ok()?;
            Some(Credentials {
                mechanism: "PLAIN",
                username,
                password,
            })
        }
        // A field table without its length prefix: LOGIN and PASSWORD.
        b"AMQPLAIN" => {
            let table = FieldTable::from_encoded(bytes::Bytes::copy_from_slice(response))?;
            let text = |key| match table.get(key)? {
                FieldValue::LongString(s) | FieldValue::Bytes(s) => s.as_str().map(str::to_string),
                _ => None,
            };
            Some(Credentials {
                mechanism: "AMQPLAIN",
                username: text("LOGIN")?,
                password: text("PASSWORD")?,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let c = parse_sasl_response(b"PLAIN", b"\0guest\0secret").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("guest", "secret")
        );
        assert!(parse_sasl_response(b"PLAIN", b"guest").is_none());
    }

    #[test]
    fn amqplain() {
        let table = FieldTable::new()
            .with("LOGIN", FieldValue::LongString("bob".into()))
            .with("PASSWORD", FieldValue::LongString("pw".into()));
        let c = parse_sasl_response(b"AMQPLAIN", table.as_bytes()).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "pw"));
    }

    #[test]
    fn other_mechanisms_are_refused() {
        assert!(parse_sasl_response(b"EXTERNAL", b"").is_none());
    }
}
