//! The `connections` scenario: open many idle connections (each with a
//! channel, as clients do) and measure the time and the broker's memory.

use crate::client::Error;
use crate::plan::Plan;
use crate::proc;
use crate::report::Report;
use crate::run::connect_many;
use std::time::{Duration, Instant};

pub async fn run(
    plan: Plan,
    count: usize,
    broker: &str,
    pid: Option<u32>,
) -> Result<Report, Error> {
    proc::raise_fd_limit();
    let before = pid.and_then(proc::sample);
    let started = Instant::now();
    let clients = connect_many(&plan, count).await?;
    let connect_seconds = started.elapsed().as_secs_f64();
    // Let the broker settle (lazy allocations, GC) before reading its RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = pid.and_then(proc::sample);
    let mut report = Report {
        scenario: plan.name.clone(),
        broker: broker.to_string(),
        connections: Some(clients.len() as u64),
        connect_seconds: Some(connect_seconds),
        ..Default::default()
    };
    if let (Some(before), Some(after)) = (before, after) {
        let grown = after.rss_bytes.saturating_sub(before.rss_bytes);
        report.rss_per_connection_kib = Some(grown as f64 / 1024.0 / count.max(1) as f64);
        report.broker_rss_mb = Some(after.rss_bytes as f64 / 1e6);
        report.broker_peak_rss_mb = Some(after.rss_bytes as f64 / 1e6);
        report.broker_cpu_seconds = Some(after.cpu_seconds - before.cpu_seconds);
    }
    let closing: Vec<_> = clients
        .into_iter()
        .map(|c| tokio::spawn(c.close()))
        .collect();
    for c in closing {
        let _ = c.await;
    }
    Ok(report)
}
