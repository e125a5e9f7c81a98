//! The configuration file (TOML) and the embedded defaults. Every key is
//! documented in `config/warren.toml`.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub log_level: String,
    /// `text`, or `json` (one object per line) for log shippers.
    pub log_format: LogFormat,
    /// Where the log goes instead of standard error, rotated.
    pub log_file: Option<PathBuf>,
    /// `daily`, `hourly` or `never`.
    pub log_file_rotation: LogRotation,
    /// Rotated files kept (RabbitMQ's `log.file.rotation.count`).
    pub log_file_count: usize,
    pub listeners: Listeners,
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub vhosts: Vec<String>,
    pub users: Vec<User>,
    /// Users that may connect only from a loopback address.
    pub loopback_users: Vec<String>,
    /// Keep messages of queues the definitions log does not know in
    /// `quarantine.<queue>` queues instead of refusing to start
    /// (`--quarantine-orphans`; not a file key: it is for one start).
    #[serde(skip)]
    pub quarantine_orphans: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listeners {
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    /// Load balancers (addresses or networks, `10.0.0.0/8`) whose
    /// connections may start with a PROXY protocol header (v1 or v2)
    /// naming the real client.
    pub proxy_protocol_from: Vec<String>,
}

impl Listeners {
    /// `proxy_protocol_from`, parsed (validated at load).
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.proxy_protocol_from
            .iter()
            .filter_map(|text| parse_net(text))
            .collect()
    }
}

/// `10.0.0.0/8`, or a bare address for that address alone.
fn parse_net(text: &str) -> Option<ipnet::IpNet> {
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, server certificate first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle; when set, clients must present a certificate it signed.
    pub ca: Option<PathBuf>,
    /// Milliseconds a client has to finish the TLS handshake (RabbitMQ's
    /// `ssl_handshake_timeout`).
    #[serde(default = "default_ssl_handshake_timeout")]
    pub ssl_handshake_timeout: u64,
}

fn default_ssl_handshake_timeout() -> u64 {
    5000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
    Daily,
    Hourly,
    Never,
}

/// RabbitMQ's `vm_memory_high_watermark`: a fraction of the memory Warren
/// may use (`relative`), or bytes (`absolute`, when not 0).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Watermark {
    pub relative: f64,
    pub absolute: usize,
}

impl Default for Watermark {
    fn default() -> Self {
        Watermark {
            relative: 0.4,
            absolute: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
    pub max_message_size: u64,
    /// Milliseconds from the protocol header to connection.open-ok.
    pub handshake_timeout: u64,
    /// Milliseconds a delivery may wait for its acknowledgement before its
    /// channel is closed (RabbitMQ 3.10's `consumer_timeout`); 0: forever.
    pub consumer_timeout: u64,
    /// 0: unlimited.
    pub connection_max: usize,
    /// How much memory publishers may fill before they are blocked.
    pub vm_memory_high_watermark: Watermark,
    /// Bytes of persistent messages a durable queue keeps in memory; beyond,
    /// they stay on disk only and are read back ahead of delivery.
    pub queue_memory_bytes: usize,
    /// Bytes of publishes one channel's open transaction may hold (0: no
    /// limit); beyond, the channel is closed with 406 PRECONDITION_FAILED.
    pub max_transaction_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// RabbitMQ's format: base64 of a 4-byte salt followed by
    /// SHA-256(salt ++ password). `warren hash-password` makes one.
    pub password_hash: String,
    /// Vhosts the user may open.
    #[serde(default)]
    pub vhosts: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            log_file: None,
            log_file_rotation: LogRotation::Daily,
            log_file_count: 10,
            listeners: Listeners::default(),
            tls: None,
            limits: Limits::default(),
            vhosts: vec!["/".into()],
            users: vec![User {
                name: "guest".into(),
                password_hash: crate::password::hash_password("guest"),
                vhosts: vec!["/".into()],
            }],
            loopback_users: vec!["guest".into()],
            quarantine_orphans: false,
        }
    }
}

impl Default for Listeners {
    fn default() -> Self {
        Listeners {
            // Every interface, IPv4 and IPv6, as RabbitMQ; guest stays
            // loopback-only (`loopback_users`).
            tcp: vec![
                SocketAddr::from(([0u16; 8], 5672)),
                SocketAddr::from(([0, 0, 0, 0], 5672)),
            ],
            tls: Vec::new(),
            proxy_protocol_from: Vec::new(),
        }
    }
}

/// RabbitMQ 3.10's default (4.0 lowered it to 16 MiB); clients' own test
/// suites publish 20 MiB messages.
const DEFAULT_MAX_MESSAGE_SIZE: u64 = 128 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            handshake_timeout: 10_000,
            consumer_timeout: 1_800_000,
            connection_max: 0,
            vm_memory_high_watermark: Watermark::default(),
            queue_memory_bytes: 16 * 1024 * 1024,
            max_transaction_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A configuration error, as one line naming the key.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// serde's Rust type names ("expected u16") as a config reader says them.
fn plain_types(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, plain) in [
        ("expected u8", "expected an integer"),
        ("expected u16", "expected an integer"),
        ("expected u32", "expected an integer"),
        ("expected u64", "expected an integer"),
        ("expected usize", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected f64", "expected a number"),
    ] {
        if let Some(at) = out.find(rust) {
            let end = at + rust.len();
            if !out[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
                out.replace_range(at..end, plain);
            }
        }
    }
    out
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|ConfigError(e)| ConfigError(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let key = e.path().to_string();
                let inner = e.inner();
                // toml's message spans several lines with a source excerpt; keep the gist.
                let message = plain_types(&inner.message().replace('\n', " "));
                let line = inner
                    .span()
                    .map(|span| format!("line {}: ", text[..span.start].lines().count().max(1)))
                    .unwrap_or_default();
                match key.as_str() {
                    "." | "" => ConfigError(format!("{line}{message}")),
                    _ => ConfigError(format!("{line}{key}: {message}")),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, why: String| Err(ConfigError(format!("invalid value for `{key}`: {why}")));
        let l = &self.limits;
        if l.frame_max != 0 && l.frame_max < 4096 {
            return bad(
                "limits.frame_max",
                format!("{} is below the minimum 4096", l.frame_max),
            );
        }
        if l.frame_max == 0 {
            return bad("limits.frame_max", "0 (unlimited) is not supported".into());
        }
        if l.channel_max == 0 {
            return bad("limits.channel_max", "must be at least 1".into());
        }
        if l.max_message_size == 0 || l.max_message_size > 512 * 1024 * 1024 {
            return bad(
                "limits.max_message_size",
                format!("{} is outside 1..=536870912", l.max_message_size),
            );
        }
        let relative = l.vm_memory_high_watermark.relative;
        if !(relative > 0.0 && relative <= 1.0) {
            return bad(
                "limits.vm_memory_high_watermark.relative",
                format!("{relative} is not a fraction in (0, 1]"),
            );
        }
        if let Some(bad_net) = self
            .listeners
            .proxy_protocol_from
            .iter()
            .find(|text| parse_net(text).is_none())
        {
            return bad(
                "listeners.proxy_protocol_from",
                format!("{bad_net:?} is not an address or a network like 10.0.0.0/8"),
            );
        }
        if self.log_file_count == 0 {
            return bad("log_file_count", "must be at least 1".into());
        }
        if l.handshake_timeout == 0 {
            return bad("limits.handshake_timeout", "must be at least 1 ms".into());
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return bad(
                "log_level",
                format!(
                    "{:?} is not one of error, warn, info, debug, trace",
                    self.log_level
                ),
            );
        }
        if !self.listeners.tls.is_empty() && self.tls.is_none() {
            return bad(
                "listeners.tls",
                "TLS listeners need a [tls] section with cert and key".into(),
            );
        }
        for (i, user) in self.users.iter().enumerate() {
            if self.users[..i].iter().any(|u| u.name == user.name) {
                return bad("users", format!("user {:?} is listed twice", user.name));
            }
            if crate::password::decode_hash(&user.password_hash).is_none() {
                return bad(
                    "users.password_hash",
                    format!("user {:?}: not a RabbitMQ SHA-256 password hash", user.name),
                );
            }
            for vhost in &user.vhosts {
                if !self.vhosts.contains(vhost) {
                    return bad(
                        "users.vhosts",
                        format!("user {:?}: vhost {vhost:?} is not in `vhosts`", user.name),
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_rabbitmqs() {
        let c = Config::parse("").unwrap();
        assert_eq!(
            c.listeners.tcp,
            [
                "[::]:5672".parse::<SocketAddr>().unwrap(),
                "0.0.0.0:5672".parse().unwrap()
            ]
        );
        assert_eq!(c.loopback_users, ["guest"]);
        assert_eq!(
            (c.limits.channel_max, c.limits.frame_max, c.limits.heartbeat),
            (2047, 131_072, 60)
        );
        assert_eq!(c.limits.max_message_size, 128 * 1024 * 1024);
        assert_eq!(c.limits.consumer_timeout, 1_800_000);
        assert_eq!(c.vhosts, ["/"]);
        assert_eq!(c.users[0].name, "guest");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("[limits]\nframe_maxx = 3\n").unwrap_err();
        assert!(e.0.contains("frame_maxx"), "{e}");
        assert!(!e.0.contains('\n'));
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::parse("[limits]\nframe_max = 100\n").unwrap_err();
        assert!(e.0.contains("limits.frame_max"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_the_key_and_its_line() {
        let e = Config::parse("vhosts = [\"/\"]\n[limits]\nheartbeat = \"60s\"\n").unwrap_err();
        assert_eq!(
            e.0,
            "line 3: limits.heartbeat: invalid type: string \"60s\", expected an integer"
        );
    }

    #[test]
    fn keys_with_rabbitmqs_names_take_its_units() {
        let c = Config::parse(
            "[limits]\nhandshake_timeout = 500\nconnection_max = 3\nvm_memory_high_watermark.relative = 0.5\n",
        )
        .unwrap();
        assert_eq!(c.limits.handshake_timeout, 500);
        assert_eq!(c.limits.connection_max, 3);
        assert_eq!(c.limits.vm_memory_high_watermark.relative, 0.5);
        assert_eq!(c.limits.vm_memory_high_watermark.absolute, 0);
        let e = Config::parse("[limits]\nmax_connections = 3\n").unwrap_err();
        assert!(e.0.contains("max_connections"), "{e}");
    }

    #[test]
    fn a_user_listed_twice_is_refused() {
        let hash = crate::password::hash_password("x");
        let user = format!("[[users]]\nname = \"app\"\npassword_hash = \"{hash}\"\n");
        let e = Config::parse(&format!("{user}{user}")).unwrap_err();
        assert!(e.0.contains("\"app\" is listed twice"), "{e}");
    }

    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../../config/warren.toml");
        Config::parse(text).unwrap();
    }
}
