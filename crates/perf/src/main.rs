//! `warren-perf`: a load tool for any AMQP 0-9-1 broker, after RabbitMQ's
//! PerfTest. Its client is built on warren-codec with pipelined, batched
//! reads and writes, so one core drives well over a million messages a second
//! and the broker, not the tool, is what gets measured.
//!
//! ```sh
//! warren-perf scenario throughput --pid $(pgrep -x warren)
//! warren-perf run --producers 2 --consumers 2 --size 1024 --confirm 500 --seconds 5
//! ```

mod client;
mod consumer;
mod crosscheck;
mod idle;
mod plan;
mod proc;
mod producer;
mod report;
mod run;
mod scenarios;
mod stats;

use clap::{Args, Parser, Subcommand};
use client::{Error, Target};
use plan::{ExchangeKind, Plan};

#[derive(Parser)]
#[command(
    version,
    about = "Load tool for AMQP 0-9-1 brokers: rates, latency, loss, and the broker's CPU and memory per message"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Broker to drive.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    url: String,
    /// The broker's process id: reports its CPU time per message and its RSS (from /proc).
    #[arg(long)]
    pid: Option<u32>,
    /// Name of the broker in the report (for comparisons).
    #[arg(long, default_value = "")]
    broker: String,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a named scenario (see `list`), or `all` of them in turn.
    Scenario {
        /// A scenario from `list`, or `all`.
        name: String,
        #[command(flatten)]
        common: Common,
        /// Seconds of publishing per run (not for backlog or connections).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Multiplies message, queue and connection counts (0.01 for a smoke test).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
    },
    /// Lists the scenarios.
    List,
    /// A run shaped by options.
    Run {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        load: Load,
    },
    /// The throughput load through lapin (a stock client) and then through
    /// warren-perf's own client, for comparing the two.
    Crosscheck {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 200_000)]
        messages: u64,
    },
}

#[derive(Args)]
struct Load {
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop after this many messages in total instead.
    #[arg(long)]
    messages: Option<u64>,
    /// Body size in bytes (at least 16: id and timestamp).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(16..))]
    size: u32,
    #[arg(long, default_value_t = 1)]
    producers: usize,
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    queues: u32,
    #[arg(long, value_enum, default_value_t = ExchangeKind::Default)]
    exchange: ExchangeKind,
    /// Routing keys used with --exchange topic.
    #[arg(long, default_value_t = 1000)]
    routing_keys: usize,
    /// basic.qos prefetch per consumer (0: none).
    #[arg(long, default_value_t = 0)]
    prefetch: u16,
    /// Consumers ack manually.
    #[arg(long)]
    ack: bool,
    /// With --ack: one multiple ack per this many deliveries.
    #[arg(long, default_value_t = 1)]
    multi_ack: u32,
    /// Publisher confirms with at most this many outstanding (0: off).
    #[arg(long, default_value_t = 0)]
    confirm: u32,
    /// Persistent messages into durable queues.
    #[arg(long)]
    persistent: bool,
    /// Messages per second per producer (0: as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Producers pause while more deliveries than this are outstanding (0: no cap).
    #[arg(long, default_value_t = 100_000)]
    max_in_flight: u64,
    /// Start consumers only after everything is published.
    #[arg(long)]
    consume_after_publish: bool,
}

impl Load {
    fn plan(self, target: Target) -> Plan {
        let mut p = Plan::new(target, "run");
        p.seconds = if self.messages.is_some() && self.seconds == 10.0 {
            3600.0
        } else {
            self.seconds
        };
        p.messages = self.messages;
        p.size = self.size as usize;
        p.producers = self.producers.max(1);
        p.consumers = self.consumers;
        p.queues = self.queues as usize;
        p.exchange = self.exchange;
        p.routing_keys = self.routing_keys;
        p.prefetch = self.prefetch;
        p.ack = self.ack;
        p.multi_ack = self.multi_ack;
        p.confirm = self.confirm;
        p.persistent = self.persistent;
        p.rate = self.rate;
        p.max_in_flight = self.max_in_flight;
        p.consume_after_publish = self.consume_after_publish;
        p
    }
}

fn main() {
    let cli = Cli::parse();
    // One thread: the tool takes at most one core from the broker it measures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    proc::raise_fd_limit();
    if let Err(e) = runtime.block_on(execute(cli.command)) {
        eprintln!("warren-perf: {e}");
        std::process::exit(1);
    }
}

async fn execute(command: Command) -> Result<(), Error> {
    match command {
        Command::List => {
            for s in scenarios::SCENARIOS {
                println!("{:<16} {}", s.name, s.about);
            }
        }
        Command::Run { common, load } => {
            let plan = load.plan(Target::parse(&common.url)?);
            finish(run::run(plan, &common.broker, common.pid).await?)?;
        }
        Command::Scenario {
            name,
            common,
            seconds,
            scale,
        } => {
            let names: Vec<&str> = if name == "all" {
                scenarios::SCENARIOS.iter().map(|s| s.name).collect()
            } else {
                vec![name.as_str()]
            };
            for name in names {
                eprintln!("warren-perf: scenario {name}");
                let mut base = Plan::new(Target::parse(&common.url)?, name);
                base.seconds = seconds;
                let report = if name == "connections" {
                    let count = scenarios::connection_count(scale);
                    idle::run(base, count, &common.broker, common.pid).await?
                } else {
                    let plan = scenarios::plan(name, base, scale).ok_or_else(|| {
                        format!("no scenario {name:?}; `warren-perf list` shows them")
                    })?;
                    run::run(plan, &common.broker, common.pid).await?
                };
                finish(report)?;
            }
        }
        Command::Crosscheck { common, messages } => {
            let target = Target::parse(&common.url)?;
            let mut lapin =
                crosscheck::lapin_throughput(&common.url, messages, 10_000, common.pid).await?;
            lapin.broker = common.broker.clone();
            lapin.print();
            // The same load at full speed, then at the rate lapin reached:
            // at equal rates the broker's CPU per message should agree.
            let lapin_rate = lapin.publish_rate;
            for (name, rate) in [
                ("crosscheck-warren-perf", 0.0),
                ("crosscheck-warren-perf-at-lapin-rate", lapin_rate),
            ] {
                let mut plan = Plan::new(target.clone(), name);
                plan.messages = Some(messages);
                plan.seconds = 3600.0;
                plan.max_in_flight = 10_000;
                plan.rate = rate;
                finish(run::run(plan, &common.broker, common.pid).await?)?;
            }
        }
    }
    Ok(())
}

/// Prints the report; lost or duplicated messages make the run fail.
fn finish(report: report::Report) -> Result<(), Error> {
    report.print();
    if report.lost > 0 || report.duplicates > 0 {
        return Err(format!(
            "{}: {} messages lost, {} duplicated",
            report.scenario, report.lost, report.duplicates
        )
        .into());
    }
    Ok(())
}
