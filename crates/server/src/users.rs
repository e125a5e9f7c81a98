//! Users and the vhosts they may open; logins checked against their
//! password hashes (see `password.rs`).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use warren_broker::Escaped;
use warren_protocol::{Authenticator, Credentials, VhostAccess};

use crate::config::Config;
use crate::password::{decode_hash, digest};

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
            tracing::warn!(peer = %self.peer, user = %Escaped(c.username.as_bytes()), mechanism = %c.mechanism, "login refused: {why}");
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

    fn unreadable(&self, mechanism: &[u8]) {
        tracing::warn!(peer = %self.peer, mechanism = %Escaped(mechanism), "login refused: unknown mechanism or unreadable response");
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
            mechanism: "PLAIN",
            username: "guest".into(),
            password: "guest".into(),
        };
        assert!(users.authenticate(&guest, true));
        assert!(!users.authenticate(&guest, false));
        let wrong = Credentials {
            mechanism: "PLAIN",
            username: "guest".into(),
            password: "nope".into(),
        };
        assert!(!users.authenticate(&wrong, true));
        assert_eq!(users.vhost_access("guest", "/"), VhostAccess::Granted);
        assert_eq!(users.vhost_access("guest", "x"), VhostAccess::NoSuchVhost);
    }
}
