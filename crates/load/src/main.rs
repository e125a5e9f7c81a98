//! `warren-load`: publish or consume at full speed and report the rate.
//!
//! ```sh
//! warren-load publish --queue q --count 1000000 --size 1024 --persistent
//! warren-load consume --queue q --count 1000000
//! ```
//! It speaks plain AMQP through lapin, so the same runs work against RabbitMQ.

mod raw;

use clap::{Parser, Subcommand};
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Publishes or consumes over AMQP at full speed and reports the rate")]
struct Cli {
    /// Broker to use.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publishes `count` messages of `size` bytes to a queue (declared durable if --persistent).
    Publish {
        #[arg(long)]
        queue: String,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 16)]
        size: usize,
        /// delivery-mode 2 into a durable queue.
        #[arg(long)]
        persistent: bool,
        /// Unconfirmed publishes in flight (publisher confirms); 0 disables confirms.
        #[arg(long, default_value_t = 1000)]
        window: usize,
        /// Publish with Warren's own codec, pipelined (always with confirms),
        /// instead of lapin: measures the broker rather than the client.
        #[arg(long)]
        raw: bool,
    },
    /// Consumes `count` messages with manual acks (multiple, every 100) and the given prefetch.
    Consume {
        #[arg(long)]
        queue: String,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 1000)]
        prefetch: u16,
    },
}

fn report(what: &str, count: u64, bytes: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{what}: {count} messages in {secs:.2} s: {:.0} msg/s, {:.1} MB/s",
        count as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let props = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let conn = Connection::connect(&cli.url, props).await?;
    let ch = conn.create_channel().await?;
    match cli.command {
        Command::Publish {
            queue,
            count,
            size,
            persistent,
            window,
            raw: true,
        } => {
            let elapsed = raw::publish(&cli.url, &queue, count, size, persistent, window)
                .await
                .map_err(|e| e.to_string())?;
            let secs = elapsed.as_secs_f64();
            println!(
                "published (raw): {count} messages in {secs:.2} s: {:.0} msg/s, {:.1} MB/s",
                count as f64 / secs,
                (count * size as u64) as f64 / secs / 1e6
            );
        }
        Command::Publish {
            queue,
            count,
            size,
            persistent,
            window,
            raw: false,
        } => {
            let durable = QueueDeclareOptions {
                durable: persistent,
                ..Default::default()
            };
            ch.queue_declare(&queue, durable, FieldTable::default())
                .await?;
            let properties = if persistent {
                BasicProperties::default().with_delivery_mode(2)
            } else {
                BasicProperties::default()
            };
            if window > 0 {
                ch.confirm_select(ConfirmSelectOptions::default()).await?;
            }
            let body = vec![b'x'; size];
            let mut in_flight = VecDeque::new();
            let start = Instant::now();
            for _ in 0..count {
                let confirm = ch
                    .basic_publish(
                        "",
                        &queue,
                        BasicPublishOptions::default(),
                        &body,
                        properties.clone(),
                    )
                    .await?;
                if window > 0 {
                    in_flight.push_back(confirm);
                    if in_flight.len() >= window {
                        in_flight.pop_front().expect("not empty").await?;
                    }
                }
            }
            for confirm in in_flight {
                confirm.await?;
            }
            report("published", count, count * size as u64, start);
        }
        Command::Consume {
            queue,
            count,
            prefetch,
        } => {
            ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
            let mut consumer = ch
                .basic_consume(
                    &queue,
                    "warren-load",
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            let start = Instant::now();
            let (mut n, mut bytes) = (0u64, 0u64);
            while n < count {
                let Some(delivery) = consumer.next().await else {
                    break;
                };
                let delivery = delivery?;
                n += 1;
                bytes += delivery.data.len() as u64;
                if n % 100 == 0 || n == count {
                    delivery.ack(BasicAckOptions { multiple: true }).await?;
                }
            }
            report("consumed", n, bytes, start);
        }
    }
    conn.close(200, "done").await?;
    Ok(())
}
