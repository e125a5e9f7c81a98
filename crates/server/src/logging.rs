//! The log: to standard error (coloured only on a terminal) or to a
//! rotated file, as text or as JSON lines; its level from `log_level` (or
//! `RUST_LOG`, which wins), changeable while running.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::Rotation;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

use crate::config::{Config, LogFormat, LogRotation};

/// The installed log: changes its level, and (for a file) flushes what is
/// still buffered when dropped.
pub struct Logging {
    handle: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set: it stays in charge.
    from_env: bool,
    _file: Option<WorkerGuard>,
}

/// Installs the log `config` describes.
pub fn init(config: &Config) -> Result<Logging, String> {
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let (filter, handle) = reload::Layer::new(filter);
    let (writer, ansi, guard) = match &config.log_file {
        Some(path) => {
            let (writer, guard) = tracing_appender::non_blocking(rolling_file(config, path)?);
            (BoxMakeWriter::new(writer), false, Some(guard))
        }
        None => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            None,
        ),
    };
    let output = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let output = match config.log_format {
        LogFormat::Text => output.boxed(),
        LogFormat::Json => output.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .init();
    Ok(Logging {
        handle,
        from_env,
        _file: guard,
    })
}

/// `path` names the file; rotated ones get the date (and hour) appended.
fn rolling_file(
    config: &Config,
    path: &std::path::Path,
) -> Result<tracing_appender::rolling::RollingFileAppender, String> {
    let named = |e: &dyn std::fmt::Display| format!("log_file: {}: {e}", path.display());
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(named(&"not a file path"));
    };
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    std::fs::create_dir_all(dir).map_err(|e| named(&e))?;
    let rotation = match config.log_file_rotation {
        LogRotation::Daily => Rotation::DAILY,
        LogRotation::Hourly => Rotation::HOURLY,
        LogRotation::Never => Rotation::NEVER,
    };
    tracing_appender::rolling::Builder::new()
        .rotation(rotation)
        .filename_prefix(name.to_string_lossy())
        .max_log_files(config.log_file_count)
        .build(dir)
        .map_err(|e| named(&e))
}

impl Logging {
    /// Sets the level (one of error, warn, info, debug, trace); false when
    /// `RUST_LOG` decides it instead.
    pub fn set_level(&self, level: &str) -> bool {
        !self.from_env && self.handle.reload(EnvFilter::new(level)).is_ok()
    }
}
