//! One load run: declare, subscribe, publish for the planned time, drain,
//! measure the broker from /proc, clean up, report.

use crate::client::{Client, Error};
use crate::consumer::{new_latency, Consumer, Latency, Subscribed};
use crate::plan::{Plan, Topology};
use crate::proc;
use crate::producer::{Expected, Producer};
use crate::report::{format_count, Report};
use crate::stats::Shared;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Connections are opened this many at a time.
const CONNECT_CONCURRENCY: usize = 100;

pub async fn run(plan: Plan, broker: &str, pid: Option<u32>) -> Result<Report, Error> {
    let plan = Arc::new(plan);
    let topology = Arc::new(Topology::new(&plan));
    let shared = Arc::new(Shared::new(plan.queues));
    let mut setup = Client::connect(&plan.target).await?;
    topology.declare(&plan, &mut setup).await?;

    let mut consumers = Vec::new();
    if !plan.consume_after_publish {
        consumers = subscribe(&plan, &topology).await?;
    }
    let quotas = split_quota(plan.messages.unwrap_or(u64::MAX), plan.producers);
    let producer_clients = connect_many(&plan, plan.producers).await?;
    let go = Arc::new(tokio::sync::Barrier::new(plan.producers + 1));
    let producers: Vec<JoinHandle<Result<Expected, Error>>> = producer_clients
        .into_iter()
        .zip(quotas)
        .enumerate()
        .map(|(i, (client, quota))| {
            let producer = Producer {
                index: i as u16,
                quota,
            };
            tokio::spawn(producer.run(
                plan.clone(),
                topology.clone(),
                shared.clone(),
                client,
                go.clone(),
            ))
        })
        .collect();

    let peak_rss = Arc::new(AtomicU64::new(0));
    let watcher = tokio::spawn(watch(shared.clone(), pid, peak_rss.clone()));
    let before = pid.and_then(proc::sample);
    let mut consumer_tasks = start_consumers(consumers, &plan, &shared);
    let consume_start = Instant::now();
    go.wait().await;
    let publish_start = Instant::now();

    let mut expected = vec![0u64; plan.queues];
    for producer in producers {
        for (total, n) in expected.iter_mut().zip(producer.await??) {
            *total += n;
        }
    }
    // Up to the last write: not the producers' closing handshakes.
    let publish_offset_ns = (publish_start - shared.start).as_nanos() as u64;
    let publish_seconds = (shared
        .last_publish_ns
        .load(Relaxed)
        .saturating_sub(publish_offset_ns) as f64
        / 1e9)
        .max(1e-3);

    let mut consume_start = consume_start;
    if plan.consume_after_publish {
        consume_start = Instant::now();
        let subscribed = subscribe(&plan, &topology).await?;
        consumer_tasks = start_consumers(subscribed, &plan, &shared);
    }
    let consume_offset_ns = (consume_start - shared.start).as_nanos() as u64;
    drain(&shared, plan.drain_timeout).await;
    let after = pid.and_then(proc::sample);
    shared.stop_consumers.notify_waiters();
    let mut latency = new_latency();
    for task in consumer_tasks {
        latency.add(task.await??).expect("same bounds");
    }
    watcher.abort();
    topology.delete(&mut setup).await?;
    setup.close().await;

    let deliveries = shared.delivered.load(Relaxed);
    let lost = expected
        .iter()
        .zip(&shared.seen)
        .map(|(want, seen)| want.saturating_sub(seen.lock().expect("not poisoned").distinct))
        .sum();
    let published = shared.published.load(Relaxed);
    let consume_seconds = (shared
        .last_delivery_ns
        .load(Relaxed)
        .saturating_sub(consume_offset_ns)) as f64
        / 1e9;
    let mut report = Report {
        scenario: plan.name.clone(),
        broker: broker.to_string(),
        seconds: publish_seconds,
        size: plan.size,
        published,
        confirmed: shared.confirmed.load(Relaxed),
        nacked: shared.nacked.load(Relaxed),
        deliveries,
        lost,
        duplicates: shared.duplicates.load(Relaxed),
        publish_rate: published as f64 / publish_seconds.max(1e-9),
        consume_rate: if consume_seconds > 0.0 {
            deliveries as f64 / consume_seconds
        } else {
            0.0
        },
        ..Default::default()
    };
    if !latency.is_empty() {
        let us = |q: f64| latency.value_at_quantile(q) as f64 / 1e3;
        report.latency_p50_us = Some(us(0.5));
        report.latency_p99_us = Some(us(0.99));
        report.latency_p999_us = Some(us(0.999));
        report.latency_max_us = Some(latency.max() as f64 / 1e3);
    }
    if let (Some(before), Some(after)) = (before, after) {
        let cpu = after.cpu_seconds - before.cpu_seconds;
        let per = if deliveries > 0 {
            deliveries
        } else {
            published
        };
        report.broker_cpu_seconds = Some(cpu);
        report.broker_cpu_us_per_msg = Some(cpu * 1e6 / per.max(1) as f64);
        report.broker_rss_mb = Some(after.rss_bytes as f64 / 1e6);
        let peak = peak_rss
            .load(Relaxed)
            .max(after.rss_bytes)
            .max(before.rss_bytes);
        report.broker_peak_rss_mb = Some(peak as f64 / 1e6);
    }
    Ok(report)
}

fn split_quota(total: u64, producers: usize) -> Vec<u64> {
    let n = producers.max(1) as u64;
    if total == u64::MAX {
        return vec![u64::MAX; n as usize];
    }
    (0..n)
        .map(|i| total / n + u64::from(i < total % n))
        .collect()
}

pub async fn connect_many(plan: &Plan, count: usize) -> Result<Vec<Client>, Error> {
    let mut clients = Vec::with_capacity(count);
    let mut pending = tokio::task::JoinSet::new();
    let mut started = 0;
    while clients.len() < count {
        while started < count && pending.len() < CONNECT_CONCURRENCY {
            let target = plan.target.clone();
            pending.spawn(async move { Client::connect(&target).await });
            started += 1;
        }
        if let Some(done) = pending.join_next().await {
            clients.push(done??);
        }
    }
    Ok(clients)
}

async fn subscribe(plan: &Plan, topology: &Topology) -> Result<Vec<Subscribed>, Error> {
    let clients = connect_many(plan, plan.consumers).await?;
    let mut subscribed = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let consumer = Consumer::assign(i, plan.consumers, plan.queues);
        subscribed.push(consumer.start(plan, topology, client).await?);
    }
    Ok(subscribed)
}

fn start_consumers(
    subscribed: Vec<Subscribed>,
    plan: &Arc<Plan>,
    shared: &Arc<Shared>,
) -> Vec<JoinHandle<Result<Latency, Error>>> {
    subscribed
        .into_iter()
        .map(|s| tokio::spawn(s.run(plan.clone(), shared.clone())))
        .collect()
}

/// Waits until every routed message is delivered, or deliveries stop coming.
async fn drain(shared: &Shared, timeout: f64) {
    let mut last = (shared.delivered.load(Relaxed), Instant::now());
    loop {
        let delivered = shared.delivered.load(Relaxed);
        if delivered >= shared.routed.load(Relaxed) {
            return;
        }
        if delivered != last.0 {
            last = (delivered, Instant::now());
        } else if last.1.elapsed().as_secs_f64() > timeout {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Prints progress once a second (to stderr) and tracks the broker's peak RSS.
async fn watch(shared: Arc<Shared>, pid: Option<u32>, peak_rss: Arc<AtomicU64>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last = (0u64, 0u64, Instant::now());
    for n in 0u64.. {
        tick.tick().await;
        let rss = pid.and_then(proc::sample).map(|s| s.rss_bytes);
        if let Some(rss) = rss {
            peak_rss.fetch_max(rss, Relaxed);
        }
        if n % 4 != 0 || n == 0 {
            continue;
        }
        let (published, delivered) = (
            shared.published.load(Relaxed),
            shared.delivered.load(Relaxed),
        );
        let secs = last.2.elapsed().as_secs_f64();
        eprintln!(
            "[{:>4.0}s] published {:>8} ({:>7}/s)  delivered {:>8} ({:>7}/s)  in flight {:>7}{}",
            shared.start.elapsed().as_secs_f64(),
            format_count(published as f64),
            format_count((published - last.0) as f64 / secs),
            format_count(delivered as f64),
            format_count((delivered - last.1) as f64 / secs),
            format_count(shared.in_flight() as f64),
            rss.map(|r| format!("  broker RSS {:.0} MB", r as f64 / 1e6))
                .unwrap_or_default(),
        );
        last = (published, delivered, Instant::now());
    }
}
