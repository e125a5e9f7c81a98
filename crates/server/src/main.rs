//! `warren`: start the broker, or hash a password for the config file.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;
use warren::{Config, Server};

/// Warren, an AMQP 0-9-1 message broker for stock RabbitMQ clients.
///
/// Without a config file it listens on 127.0.0.1:5672 with vhost `/` and
/// user guest/guest (allowed from loopback only), as RabbitMQ does.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (see config/warren.toml for every key).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Plain AMQP listener; repeatable. Replaces the config's `listeners.tcp`.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// Where messages and definitions are kept. Overrides `data_dir`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Start even though the message store holds messages of queues the
    /// definitions log does not know (it is missing or damaged): keep them
    /// in durable queues named `quarantine.<queue>` for inspection. Without
    /// it Warren refuses to start and changes nothing.
    #[arg(long)]
    quarantine_orphans: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the RabbitMQ-format hash of a password, for `users.password_hash`.
    ///
    /// Without PASSWORD it is read from standard input (one line), so that
    /// it appears in neither the process list nor the shell history.
    HashPassword { password: Option<String> },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::HashPassword { password }) = &cli.command {
        let password = match password {
            Some(password) => password.clone(),
            None => match read_password() {
                Ok(password) => password,
                Err(e) => {
                    eprintln!("warren: cannot read the password from standard input: {e}");
                    return ExitCode::FAILURE;
                }
            },
        };
        println!("{}", warren::password::hash_password(&password));
        return ExitCode::SUCCESS;
    }
    let mut config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("warren: config error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if !cli.listen.is_empty() {
        config.listeners.tcp = cli.listen.clone();
    }
    config.quarantine_orphans = cli.quarantine_orphans;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, never in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("warren: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

/// One line from standard input, without its line ending; on a terminal
/// the user is asked for it first.
fn read_password() -> std::io::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

async fn run(config: Config) -> ExitCode {
    // Installed before the listeners open, so that an early signal is not
    // the default (abrupt) one.
    let signal = wait_for_signal();
    if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
        eprintln!("warren: data directory {}: {e}", config.data_dir.display());
        return ExitCode::FAILURE;
    }
    let open_files = warren::fd_limit::raise();
    let server = match Server::start(&config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("warren: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        open_files,
        "warren started"
    );
    signal.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Registers for SIGTERM and SIGINT now; the future resolves on either.
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
