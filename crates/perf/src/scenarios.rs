//! The named scenarios, after RabbitMQ's own performance suite.

use crate::plan::{ExchangeKind, Plan};

pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "throughput",
        about: "1 producer -> 1 queue -> 1 consumer, 16 B, no acks",
    },
    Scenario {
        name: "ack",
        about: "as throughput, manual acks, prefetch 100, multi-ack every 50",
    },
    Scenario {
        name: "confirm",
        about: "persistent 16 B into a durable queue, confirms with 1000 outstanding, 1 consumer",
    },
    Scenario {
        name: "fanout",
        about: "1 producer -> fanout -> 10 queues, a consumer each",
    },
    Scenario {
        name: "topic",
        about: "1,000 routing keys -> topic -> 100 queues bound by patterns, 10 consumers",
    },
    Scenario {
        name: "many-queues",
        about: "1,000 queues at 10 msg/s each, 10 consumers",
    },
    Scenario {
        name: "many-publishers",
        about: "1,000 connections publishing 1 msg/s each into one queue",
    },
    Scenario {
        name: "latency-1k",
        about: "1 producer at a fixed 1,000 msg/s, 1 consumer: latency percentiles",
    },
    Scenario {
        name: "latency-10k",
        about: "1 producer at a fixed 10,000 msg/s, 1 consumer: latency percentiles",
    },
    Scenario {
        name: "connections",
        about: "open 5,000 idle connections: time and broker RSS per connection",
    },
    Scenario {
        name: "ttl-dlx",
        about: "1 producer -> a queue with x-message-ttl 100 ms dead-lettering into a second queue -> 1 consumer",
    },
    Scenario {
        name: "priority",
        about: "as throughput into a priority queue of 10 levels, uniformly random priorities",
    },
    Scenario {
        name: "backlog",
        about: "1M x 1 KiB persistent, confirmed, no consumer; then drain (ack, prefetch 1000)",
    },
];

/// The plan of a named scenario; `scale` shrinks counts for quick runs (CI).
pub fn plan(name: &str, base: Plan, scale: f64) -> Option<Plan> {
    let scaled = |n: f64| ((n * scale).round() as usize).max(1);
    let mut p = base;
    p.name = name.to_string();
    match name {
        "throughput" => {}
        "ack" => {
            p.ack = true;
            p.prefetch = 100;
            p.multi_ack = 50;
        }
        "confirm" => {
            p.persistent = true;
            p.confirm = 1000;
        }
        "fanout" => {
            p.exchange = ExchangeKind::Fanout;
            p.queues = 10;
            p.consumers = 10;
        }
        "topic" => {
            p.exchange = ExchangeKind::Topic;
            p.routing_keys = scaled(1000.0);
            p.queues = scaled(100.0);
            p.consumers = scaled(10.0);
        }
        "many-queues" => {
            p.queues = scaled(1000.0);
            p.consumers = scaled(10.0);
            p.rate = 10.0 * p.queues as f64;
        }
        "many-publishers" => {
            p.producers = scaled(1000.0);
            p.rate = 1.0;
        }
        "latency-1k" => p.rate = 1_000.0,
        "latency-10k" => p.rate = 10_000.0,
        "connections" => {}
        "ttl-dlx" => {
            p.dead_letter_after = Some(100);
            // Messages wait out their TTL: the cap keeps the wait bounded.
            p.max_in_flight = 200_000;
        }
        "priority" => p.priorities = Some(10),
        "backlog" => {
            p.messages = Some(scaled(1_000_000.0) as u64);
            p.seconds = 3600.0;
            p.size = 1024;
            p.persistent = true;
            p.confirm = 1000;
            p.consume_after_publish = true;
            p.ack = true;
            p.prefetch = 1000;
            p.multi_ack = 100;
        }
        _ => return None,
    }
    Some(p)
}

/// Idle connections the `connections` scenario opens.
pub fn connection_count(scale: f64) -> usize {
    ((5000.0 * scale).round() as usize).max(1)
}
