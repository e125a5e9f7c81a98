//! `crosscheck`: the throughput load through lapin, a stock client, next to
//! the same load through warren-perf's own client, so the lean client's
//! figures can be trusted (same counts, same broker CPU per message).

use crate::client::Error;
use crate::proc;
use crate::report::Report;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Publishes `count` 16-byte messages through lapin to one queue that a lapin
/// consumer (no-ack) drains, keeping at most `max_in_flight` queued.
pub async fn lapin_throughput(
    url: &str,
    count: u64,
    max_in_flight: u64,
    pid: Option<u32>,
) -> Result<Report, Error> {
    let props = || {
        ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio)
    };
    let publisher = Connection::connect(url, props()).await?;
    let consumer = Connection::connect(url, props()).await?;
    let pch = publisher.create_channel().await?;
    let cch = consumer.create_channel().await?;
    let queue = format!("perf-crosscheck-{}", std::process::id());
    pch.queue_declare(
        &queue,
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let mut deliveries = cch
        .basic_consume(
            &queue,
            "crosscheck",
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let counter = delivered.clone();
    let consuming = tokio::spawn(async move {
        let started = Instant::now();
        while counter.load(Relaxed) < count {
            match deliveries.next().await {
                Some(Ok(_)) => {
                    counter.fetch_add(1, Relaxed);
                }
                _ => break,
            }
        }
        started.elapsed().as_secs_f64()
    });
    let before = pid.and_then(proc::sample);
    let started = Instant::now();
    let body = [0u8; 16];
    for n in 0..count {
        while n - delivered.load(Relaxed) > max_in_flight {
            tokio::task::yield_now().await;
        }
        pch.basic_publish(
            "",
            &queue,
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default(),
        )
        .await?;
    }
    let publish_seconds = started.elapsed().as_secs_f64();
    let consume_seconds = consuming.await?;
    let after = pid.and_then(proc::sample);
    pch.queue_delete(&queue, QueueDeleteOptions::default())
        .await?;
    let got = delivered.load(Relaxed);
    let mut report = Report {
        scenario: "crosscheck-lapin".into(),
        broker: String::new(),
        seconds: publish_seconds,
        size: 16,
        published: count,
        deliveries: got,
        lost: count.saturating_sub(got),
        publish_rate: count as f64 / publish_seconds,
        consume_rate: got as f64 / consume_seconds,
        ..Default::default()
    };
    if let (Some(b), Some(a)) = (before, after) {
        let cpu = a.cpu_seconds - b.cpu_seconds;
        report.broker_cpu_seconds = Some(cpu);
        report.broker_cpu_us_per_msg = Some(cpu * 1e6 / got.max(1) as f64);
        report.broker_rss_mb = Some(a.rss_bytes as f64 / 1e6);
    }
    publisher.close(200, "done").await?;
    consumer.close(200, "done").await?;
    Ok(report)
}
