//! The log: to standard error, coloured only on a terminal, its level from
//! `log_level` (or `RUST_LOG`, which wins) and changeable while running.

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes the level of the installed log.
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set: it stays in charge.
    from_env: bool,
}

/// Installs the log; the handle changes its level later.
pub fn init(level: &str) -> LogLevel {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi),
        )
        .init();
    LogLevel { handle, from_env }
}

impl LogLevel {
    /// Sets the level (one of error, warn, info, debug, trace); false when
    /// `RUST_LOG` decides it instead.
    pub fn set(&self, level: &str) -> bool {
        !self.from_env && self.handle.reload(EnvFilter::new(level)).is_ok()
    }
}
