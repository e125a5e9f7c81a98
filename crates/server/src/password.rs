//! Password hashes in RabbitMQ's salted SHA-256 format, so that
//! definitions and users can move between the two.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn digest(salt: &[u8], password: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(password.as_bytes());
    hasher.finalize().into()
}

/// base64(salt ++ SHA-256(salt ++ password)) with a random 4-byte salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 4];
    rand::rng().fill_bytes(&mut salt);
    let mut out = salt.to_vec();
    out.extend_from_slice(&digest(&salt, password));
    B64.encode(out)
}

/// Salt and digest of a stored hash.
pub fn decode_hash(hash: &str) -> Option<([u8; 4], [u8; 32])> {
    let raw = B64.decode(hash).ok()?;
    if raw.len() != 36 {
        return None;
    }
    Some((raw[..4].try_into().ok()?, raw[4..].try_into().ok()?))
}

/// Whether `password` is the one `hash` was made from.
pub fn matches(hash: &str, password: &str) -> bool {
    decode_hash(hash).is_some_and(|(salt, d)| digest(&salt, password) == d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash_password("secret");
        assert_ne!(a, hash_password("secret"));
        let (salt, d) = decode_hash(&a).unwrap();
        assert_eq!(digest(&salt, "secret"), d);
        assert_ne!(digest(&salt, "other"), d);
    }
}
