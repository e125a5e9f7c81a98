//! Users, their password hashes (RabbitMQ's salted SHA-256 format, so
//! definitions can move between the two) and the vhosts they may open.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use warren_broker::Escaped;
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

/// Whether a peer is on this host: IPv4 clients of an IPv6 listener
/// arrive as `::ffff:127.0.0.1`.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    }
}

/// The users, as one connection sees them: refusals are logged with the
/// peer's address.
pub struct PeerAuth {
    pub users: Arc<Users>,
    pub peer: SocketAddr,
}

impl Authenticator for PeerAuth {
    fn authenticate(&self, c: &Credentials, peer_is_loopback: bool) -> bool {
        let refused = |why: &str| {
            tracing::warn!(peer = %self.peer, user = %Escaped(c.username.as_bytes()), "login refused: {why}");
            false
        };
        let Some(user) = self.users.users.get(&c.username) else {
            return refused("no such user");
        };
        if self.users.loopback_only.contains(&c.username) && !peer_is_loopback {
            return refused("user can only connect via localhost");
        }
        if digest(&user.salt, &c.password) != user.digest {
            return refused("invalid credentials");
        }
        true
    }

    fn vhost_access(&self, username: &str, vhost: &str) -> VhostAccess {
        self.users.vhost_access(username, vhost)
    }
}

impl Users {
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
    fn ipv4_mapped_loopback_is_loopback() {
        for (ip, loopback) in [
            ("127.0.0.1", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:127.1.2.3", true),
            ("::ffff:10.0.0.1", false),
            ("10.0.0.1", false),
            ("fe80::1", false),
        ] {
            assert_eq!(is_loopback(ip.parse().unwrap()), loopback, "{ip}");
        }
    }

    #[test]
    fn guest_only_from_loopback() {
        let users = PeerAuth {
            users: Arc::new(Users::from_config(&Config::default())),
            peer: "127.0.0.1:1".parse().unwrap(),
        };
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
