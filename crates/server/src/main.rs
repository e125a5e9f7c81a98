//! `warren`: start the broker, or hash a password for the config file.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use warren::{Config, Server};

/// Warren, an AMQP 0-9-1 message broker for stock RabbitMQ clients.
///
/// Without a config file it listens on port 5672 of every IPv4 and IPv6
/// interface with vhost `/` and user guest/guest, which may log in from
/// loopback only, as RabbitMQ does. SIGHUP reloads the config file's TLS
/// certificates and connection limits; SIGTERM and SIGINT shut down
/// gracefully.
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
    /// Exit 0 if a broker answers AMQP at ADDR (a container health check).
    Ping {
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:5672")]
        addr: SocketAddr,
    },
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
    if let Some(Command::Ping { addr }) = &cli.command {
        return match ping(*addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("warren: no AMQP broker at {addr}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("warren: config error: {e}");
            return ExitCode::from(2);
        }
    };
    let logging = match warren::logging::init(&config) {
        Ok(logging) => logging,
        Err(e) => {
            eprintln!("warren: config error: {e}");
            return ExitCode::from(2);
        }
    };

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
    runtime.block_on(run(&cli, config, &logging))
}

/// The config file (or the defaults) with the command line's overrides.
fn load_config(cli: &Cli) -> Result<Config, warren::config::ConfigError> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if !cli.listen.is_empty() {
        config.listeners.tcp = cli.listen.clone();
    }
    config.quarantine_orphans = cli.quarantine_orphans;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

/// Sends the protocol header and waits (5 s at most) for connection.start.
fn ping(addr: SocketAddr) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(b"AMQP\x00\x00\x09\x01")?;
    let mut frame = [0u8; 11];
    stream.read_exact(&mut frame)?;
    // A method frame on channel 0 carrying class 10, method 10.
    if frame[0] == 1 && frame[1..3] == [0, 0] && frame[7..11] == [0, 10, 0, 10] {
        Ok(())
    } else {
        Err(std::io::Error::other("the answer is not connection.start"))
    }
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

async fn run(cli: &Cli, config: Config, logging: &warren::logging::Logging) -> ExitCode {
    // Installed before the listeners open, so that an early signal is not
    // the default (abrupt) one: SIGHUP's default would kill the broker.
    let mut signals = match Signals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("warren: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    warren::notify::notify("READY=1\nSTATUS=accepting connections");
    while signals.next().await == Signal::Reload {
        reload(cli, &server, logging);
    }
    tracing::info!("shutting down");
    warren::notify::notify("STOPPING=1");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGHUP: the config file is read again and what can change at run time
/// changes; a file that does not load changes nothing.
fn reload(cli: &Cli, server: &Server, logging: &warren::logging::Logging) {
    if cli.config.is_none() {
        tracing::info!("SIGHUP: no config file (--config) to reload");
        return;
    }
    let config = match load_config(cli) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("SIGHUP: configuration not reloaded: {e}");
            return;
        }
    };
    if logging.set_level(&config.log_level) {
        tracing::info!(log_level = %config.log_level, "log level set");
    }
    if let Err(e) = server.reload(&config) {
        tracing::error!("SIGHUP: configuration not reloaded: {e}");
    }
}

#[derive(PartialEq)]
enum Signal {
    Stop,
    Reload,
}

/// SIGTERM and SIGINT stop the broker gracefully; SIGHUP reloads.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}
