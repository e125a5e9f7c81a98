//! What a SIGHUP changes while Warren runs: the TLS certificates and key
//! (read again even when their paths stay the same, so that renewed files
//! take effect), the limits new connections are offered or held to, and
//! (in main) the log level. Everything else is reported as needing a
//! restart.

use tracing::{info, warn};

use crate::config::Config;
use crate::server::{connection_config, Server};

/// What a reload did.
#[derive(Debug, Default, PartialEq)]
pub struct Reloaded {
    /// Keys now in effect (for connections accepted from now on).
    pub changed: Vec<&'static str>,
    /// Keys that differ but take a restart.
    pub need_restart: Vec<&'static str>,
}

impl Server {
    /// Applies what can change at run time from `new`, and logs what it
    /// changed and what it could not. Certificates that do not load keep
    /// the old ones in use (and are an error).
    pub fn reload(&self, new: &Config) -> Result<Reloaded, String> {
        let mut old = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = Reloaded::default();
        let tls = match &new.tls {
            Some(tls) if !new.listeners.tls.is_empty() => {
                Some((crate::tls::acceptor(tls)?, tls.ssl_handshake_timeout))
            }
            _ => None,
        };
        if tls.is_some() || old.tls.is_some() {
            *self.shared.tls.write().unwrap_or_else(|e| e.into_inner()) = tls;
            report.changed.push("tls");
        }
        let (was, now) = (&old.limits, &new.limits);
        for (key, differs) in [
            ("limits.channel_max", was.channel_max != now.channel_max),
            ("limits.frame_max", was.frame_max != now.frame_max),
            ("limits.heartbeat", was.heartbeat != now.heartbeat),
            (
                "limits.max_message_size",
                was.max_message_size != now.max_message_size,
            ),
            (
                "limits.handshake_timeout",
                was.handshake_timeout != now.handshake_timeout,
            ),
            (
                "limits.max_transaction_bytes",
                was.max_transaction_bytes != now.max_transaction_bytes,
            ),
        ] {
            if differs {
                report.changed.push(key);
            }
        }
        *self
            .shared
            .connection_config
            .write()
            .unwrap_or_else(|e| e.into_inner()) = connection_config(new);
        self.shared
            .broker
            .memory
            .set_transaction_limit(now.max_transaction_bytes);
        for (key, differs) in [
            ("data_dir", old.data_dir != new.data_dir),
            ("listeners", old.listeners != new.listeners),
            ("vhosts", old.vhosts != new.vhosts),
            ("users", old.users != new.users),
            ("loopback_users", old.loopback_users != new.loopback_users),
            ("log_format", old.log_format != new.log_format),
            ("log_file", old.log_file != new.log_file),
            (
                "log_file_rotation",
                old.log_file_rotation != new.log_file_rotation,
            ),
            ("log_file_count", old.log_file_count != new.log_file_count),
            (
                "limits.connection_max",
                was.connection_max != now.connection_max,
            ),
            (
                "limits.vm_memory_high_watermark",
                was.vm_memory_high_watermark != now.vm_memory_high_watermark,
            ),
            (
                "limits.queue_memory_bytes",
                was.queue_memory_bytes != now.queue_memory_bytes,
            ),
        ] {
            if differs {
                report.need_restart.push(key);
            }
        }
        // What runs now: the new configuration, but for what takes a restart.
        let mut running = new.clone();
        running.data_dir = old.data_dir.clone();
        running.listeners = old.listeners.clone();
        running.vhosts = old.vhosts.clone();
        running.users = old.users.clone();
        running.loopback_users = old.loopback_users.clone();
        running.quarantine_orphans = old.quarantine_orphans;
        running.log_format = old.log_format;
        running.log_file = old.log_file.clone();
        running.log_file_rotation = old.log_file_rotation;
        running.log_file_count = old.log_file_count;
        running.limits.connection_max = was.connection_max;
        running.limits.vm_memory_high_watermark = was.vm_memory_high_watermark.clone();
        running.limits.queue_memory_bytes = was.queue_memory_bytes;
        *old = running;
        info!(changed = ?report.changed, "configuration reloaded");
        if !report.need_restart.is_empty() {
            warn!(keys = ?report.need_restart, "configuration changes that take a restart were not applied");
        }
        Ok(report)
    }
}
