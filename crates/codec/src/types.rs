//! AMQP short and long strings: `Bytes`-backed, so cloning one is a reference
//! count, and decoding one is a slice of the frame it came in.
//!
//! AMQP strings are octet sequences; they are not required to be UTF-8.

use bytes::Bytes;
use std::fmt;

/// A short string is at most 255 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("short string of {0} bytes is longer than 255")]
pub struct StringTooLong(pub usize);

/// An AMQP `shortstr`: at most 255 octets.
#[derive(Clone, Default, Eq, PartialOrd, Ord)]
pub struct ShortString(Bytes);

/// Compared in line: names are short, and a call into libc's memcmp cost
/// more than the comparison itself on the publish path (10% of the
/// broker's profile when routing 16-byte messages).
impl PartialEq for ShortString {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_ref(), other.0.as_ref());
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// As `Bytes` hashes: consistent with the equality above.
impl std::hash::Hash for ShortString {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// An AMQP `longstr`: at most 2^32-1 octets.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LongString(Bytes);

impl ShortString {
    pub const MAX_LEN: usize = 255;

    /// For literals; panics (at compile time in a const) if longer than 255 bytes.
    pub const fn from_static(s: &'static str) -> Self {
        assert!(
            s.len() <= Self::MAX_LEN,
            "short string longer than 255 bytes"
        );
        ShortString(Bytes::from_static(s.as_bytes()))
    }

    /// Callers guarantee `bytes.len() <= 255`.
    pub(crate) fn from_bytes_unchecked(bytes: Bytes) -> Self {
        debug_assert!(bytes.len() <= Self::MAX_LEN);
        ShortString(bytes)
    }
}

impl LongString {
    pub const fn from_static(s: &'static str) -> Self {
        LongString(Bytes::from_static(s.as_bytes()))
    }
}

macro_rules! string_common {
    ($name:ident) => {
        impl $name {
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            /// The string, if it is valid UTF-8.
            pub fn as_str(&self) -> Option<&str> {
                std::str::from_utf8(&self.0).ok()
            }

            /// The underlying buffer, shared.
            pub fn to_bytes(&self) -> Bytes {
                self.0.clone()
            }

            pub fn into_bytes(self) -> Bytes {
                self.0
            }

            pub fn len(&self) -> usize {
                self.0.len()
            }

            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&String::from_utf8_lossy(&self.0), f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&String::from_utf8_lossy(&self.0))
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl std::borrow::Borrow<[u8]> for $name {
            fn borrow(&self) -> &[u8] {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other.as_bytes()
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == other.as_bytes()
            }
        }
    };
}

string_common!(ShortString);
string_common!(LongString);

impl TryFrom<Bytes> for ShortString {
    type Error = StringTooLong;
    fn try_from(bytes: Bytes) -> Result<Self, StringTooLong> {
        if bytes.len() > Self::MAX_LEN {
            return Err(StringTooLong(bytes.len()));
        }
        Ok(ShortString(bytes))
    }
}

impl TryFrom<String> for ShortString {
    type Error = StringTooLong;
    fn try_from(s: String) -> Result<Self, StringTooLong> {
        Bytes::from(s).try_into()
    }
}

impl TryFrom<&str> for ShortString {
    type Error = StringTooLong;
    fn try_from(s: &str) -> Result<Self, StringTooLong> {
        Bytes::copy_from_slice(s.as_bytes()).try_into()
    }
}

impl TryFrom<&[u8]> for ShortString {
    type Error = StringTooLong;
    fn try_from(s: &[u8]) -> Result<Self, StringTooLong> {
        Bytes::copy_from_slice(s).try_into()
    }
}

impl From<Bytes> for LongString {
    fn from(bytes: Bytes) -> Self {
        LongString(bytes)
    }
}

impl From<String> for LongString {
    fn from(s: String) -> Self {
        LongString(Bytes::from(s))
    }
}

impl From<&str> for LongString {
    fn from(s: &str) -> Self {
        LongString(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<Vec<u8>> for LongString {
    fn from(v: Vec<u8>) -> Self {
        LongString(Bytes::from(v))
    }
}

impl From<ShortString> for LongString {
    fn from(s: ShortString) -> Self {
        LongString(s.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_limited_to_255_bytes() {
        assert!(ShortString::try_from("a".repeat(255)).is_ok());
        assert_eq!(
            ShortString::try_from("a".repeat(256)),
            Err(StringTooLong(256))
        );
    }

    #[test]
    fn strings_compare_with_str() {
        assert_eq!(ShortString::from_static("amq.direct"), "amq.direct");
        assert_eq!(LongString::from("PLAIN").as_str(), Some("PLAIN"));
    }
}
