//! Users, their password hashes (RabbitMQ's salted SHA-256 format, so
//! definitions can move between the two) and the vhosts they may open.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use warren_protocol::{Authenticator, Credentials, VhostAccess};

use crate::config::Config;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn digest(salt: &[u8], password: &str) -> [u8; 32] {
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

struct User {
    salt: [u8; 4],
    digest: [u8; 32],
    vhosts: HashSet<String>,
}

pub struct Users {
    users: HashMap<String, User>,
    vhosts: HashSet<String>,
    loopback_only: HashSet<String>,
}

impl Users {
    pub fn from_config(config: &Config) -> Users {
        let users = config
            .users
            .iter()
            .filter_map(|u| {
                let (salt, digest) = decode_hash(&u.password_hash)?;
                Some((
                    u.name.clone(),
                    User {
                        salt,
                        digest,
                        vhosts: u.vhosts.iter().cloned().collect(),
                    },
                ))
            })
            .collect();
        Users {
            users,
            vhosts: config.vhosts.iter().cloned().collect(),
            loopback_only: config.loopback_users.iter().cloned().collect(),
        }
    }
}

impl Authenticator for Users {
    fn authenticate(&self, c: &Credentials, peer_is_loopback: bool) -> bool {
        let Some(user) = self.users.get(&c.username) else {
            tracing::warn!(user = %c.username, "login refused: no such user");
            return false;
        };
        if self.loopback_only.contains(&c.username) && !peer_is_loopback {
            tracing::warn!(user = %c.username, "login refused: user can only connect via localhost");
            return false;
        }
        let valid = digest(&user.salt, &c.password) == user.digest;
        if !valid {
            tracing::warn!(user = %c.username, "login refused: invalid credentials");
        }
        valid
    }

    fn vhost_access(&self, username: &str, vhost: &str) -> VhostAccess {
        if !self.vhosts.contains(vhost) {
            return VhostAccess::NoSuchVhost;
        }
        match self.users.get(username) {
            Some(user) if user.vhosts.contains(vhost) => VhostAccess::Granted,
            _ => VhostAccess::Refused,
        }
    }
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

    #[test]
    fn guest_only_from_loopback() {
        let users = Users::from_config(&Config::default());
        let guest = Credentials {
            username: "guest".into(),
            password: "guest".into(),
        };
        assert!(users.authenticate(&guest, true));
        assert!(!users.authenticate(&guest, false));
        let wrong = Credentials {
            username: "guest".into(),
            password: "nope".into(),
        };
        assert!(!users.authenticate(&wrong, true));
        assert_eq!(users.vhost_access("guest", "/"), VhostAccess::Granted);
        assert_eq!(users.vhost_access("guest", "x"), VhostAccess::NoSuchVhost);
    }
}
