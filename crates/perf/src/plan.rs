//! What a run does: its load shape, and the exchange, queues and bindings it
//! declares (and deletes afterwards).

use crate::client::{Client, Error, Target};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use warren_codec::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    /// The default exchange: each message goes to one queue by name.
    Default,
    /// One fanout exchange bound to every queue.
    Fanout,
    /// One topic exchange; queue i is bound with `*.i.#`, so each routing key matches one queue.
    Topic,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub target: Target,
    pub name: String,
    /// How long producers publish (unless `messages` ends them first).
    pub seconds: f64,
    /// Total messages to publish, shared among producers.
    pub messages: Option<u64>,
    pub size: usize,
    pub producers: usize,
    pub consumers: usize,
    pub queues: usize,
    pub exchange: ExchangeKind,
    /// Topic routing keys used round robin.
    pub routing_keys: usize,
    /// basic.qos prefetch count per consumer channel; 0 sends no qos.
    pub prefetch: u16,
    /// Manual acks (otherwise no-ack consumers).
    pub ack: bool,
    /// Ack with multiple=true every this many deliveries.
    pub multi_ack: u32,
    /// Publisher confirms with at most this many outstanding; 0 turns them off.
    pub confirm: u32,
    pub persistent: bool,
    /// Messages per second per producer; 0 is as fast as possible.
    pub rate: f64,
    /// Producers wait while more than this many deliveries are outstanding; 0 is no cap.
    pub max_in_flight: u64,
    /// Consumers start only once every message is published (a backlog run).
    pub consume_after_publish: bool,
    /// Seconds without a delivery after which the drain gives up.
    pub drain_timeout: f64,
    /// Publish into a holding queue whose messages expire after this many
    /// ms and are dead-lettered into the consumed queue (one queue only).
    pub dead_letter_after: Option<u32>,
    /// Publish into priority queues of this many levels, with priorities
    /// drawn uniformly (default exchange only).
    pub priorities: Option<u8>,
}

impl Plan {
    pub fn new(target: Target, name: &str) -> Self {
        Plan {
            target,
            name: name.to_string(),
            seconds: 10.0,
            messages: None,
            size: 16,
            producers: 1,
            consumers: 1,
            queues: 1,
            exchange: ExchangeKind::Default,
            routing_keys: 1000,
            prefetch: 0,
            ack: false,
            multi_ack: 1,
            confirm: 0,
            persistent: false,
            rate: 0.0,
            max_in_flight: 100_000,
            consume_after_publish: false,
            drain_timeout: 10.0,
            dead_letter_after: None,
            priorities: None,
        }
    }
}

/// The declared names and, per routing target, the pre-encoded
/// method and header frames plus the queues a message sent there reaches.
pub struct Topology {
    pub exchange: Option<String>,
    pub queues: Vec<String>,
    pub targets: Vec<RouteTarget>,
    /// The holding queue of a dead-letter run.
    pub holding: Option<String>,
}

pub struct RouteTarget {
    /// basic.publish and content header frames, ready to copy.
    pub frames: Bytes,
    pub queues: Vec<usize>,
}

impl Topology {
    pub fn new(plan: &Plan) -> Self {
        let prefix = format!(
            "perf-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() % 1_000_000)
                .unwrap_or(0)
        );
        let queues: Vec<String> = (0..plan.queues).map(|i| format!("{prefix}-q{i}")).collect();
        let exchange = (plan.exchange != ExchangeKind::Default).then(|| format!("{prefix}-x"));
        let header_with = |priority: Option<u8>| ContentHeader {
            class_id: class_id::BASIC,
            weight: 0,
            body_size: plan.size as u64,
            properties: BasicProperties {
                delivery_mode: Some(if plan.persistent { 2 } else { 1 }),
                priority,
                ..Default::default()
            },
        };
        let framed = |exchange: &str, key: &str, priority: Option<u8>| {
            let publish: Method = BasicPublish {
                exchange: ShortString::try_from(exchange).expect("short name"),
                routing_key: ShortString::try_from(key).expect("short key"),
                ..Default::default()
            }
            .into();
            let mut buf = BytesMut::new();
            encode_method_frame(1, &publish, &mut buf);
            encode_header_frame(1, &header_with(priority), &mut buf);
            buf.freeze()
        };
        let frames = |exchange: &str, key: &str| framed(exchange, key, None);
        let holding = plan.dead_letter_after.map(|_| format!("{prefix}-holding"));
        let targets = match plan.exchange {
            // Published to the holding queue, delivered from queue 0.
            ExchangeKind::Default if holding.is_some() => vec![RouteTarget {
                frames: frames("", holding.as_deref().unwrap_or_default()),
                queues: vec![0],
            }],
            // Each queue gets targets of every priority, in a fixed random
            // order (a small LCG: the same run every time).
            ExchangeKind::Default if plan.priorities.is_some() => {
                let levels = u64::from(plan.priorities.unwrap_or(1).max(1));
                let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
                (0..1000 * queues.len())
                    .map(|k| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let q = k % queues.len();
                        let priority = ((seed >> 33) % levels) as u8;
                        RouteTarget {
                            frames: framed("", &queues[q], Some(priority)),
                            queues: vec![q],
                        }
                    })
                    .collect()
            }
            ExchangeKind::Default => queues
                .iter()
                .enumerate()
                .map(|(i, q)| RouteTarget {
                    frames: frames("", q),
                    queues: vec![i],
                })
                .collect(),
            ExchangeKind::Fanout => vec![RouteTarget {
                frames: frames(exchange.as_deref().unwrap_or_default(), ""),
                queues: (0..queues.len()).collect(),
            }],
            ExchangeKind::Topic => (0..plan.routing_keys.max(1))
                .map(|k| {
                    let q = k % queues.len();
                    let key = format!("perf.{q}.k{}", k / queues.len());
                    RouteTarget {
                        frames: frames(exchange.as_deref().unwrap_or_default(), &key),
                        queues: vec![q],
                    }
                })
                .collect(),
        };
        Topology {
            exchange,
            queues,
            targets,
            holding,
        }
    }

    pub async fn declare(&self, plan: &Plan, setup: &mut Client) -> Result<(), Error> {
        if let Some(exchange) = &self.exchange {
            let kind = match plan.exchange {
                ExchangeKind::Fanout => "fanout",
                _ => "topic",
            };
            let declare = ExchangeDeclare {
                exchange: ShortString::try_from(exchange.as_str())?,
                kind: ShortString::from_static(kind),
                durable: plan.persistent,
                ..Default::default()
            };
            setup.call(declare, "exchange.declare-ok").await?;
        }
        if let (Some(holding), Some(ttl)) = (&self.holding, plan.dead_letter_after) {
            let text = |s: &str| FieldValue::LongString(LongString::from(s));
            let arguments = FieldTable::new()
                .with("x-message-ttl", FieldValue::I64(ttl.into()))
                .with("x-dead-letter-exchange", text(""))
                .with("x-dead-letter-routing-key", text(&self.queues[0]));
            let declare = QueueDeclare {
                queue: ShortString::try_from(holding.as_str())?,
                durable: plan.persistent,
                arguments,
                ..Default::default()
            };
            setup.call(declare, "queue.declare-ok").await?;
        }
        for (i, queue) in self.queues.iter().enumerate() {
            let arguments = match plan.priorities {
                Some(levels) => {
                    FieldTable::new().with("x-max-priority", FieldValue::U8(levels - 1))
                }
                None => FieldTable::new(),
            };
            let declare = QueueDeclare {
                queue: ShortString::try_from(queue.as_str())?,
                durable: plan.persistent,
                arguments,
                ..Default::default()
            };
            setup.call(declare, "queue.declare-ok").await?;
            if let Some(exchange) = &self.exchange {
                let pattern = match plan.exchange {
                    ExchangeKind::Topic => format!("*.{i}.#"),
                    _ => String::new(),
                };
                let bind = QueueBind {
                    queue: ShortString::try_from(queue.as_str())?,
                    exchange: ShortString::try_from(exchange.as_str())?,
                    routing_key: ShortString::try_from(pattern.as_str())?,
                    ..Default::default()
                };
                setup.call(bind, "queue.bind-ok").await?;
            }
        }
        Ok(())
    }

    pub async fn delete(&self, setup: &mut Client) -> Result<(), Error> {
        for queue in self.holding.iter().chain(&self.queues) {
            let delete = QueueDelete {
                queue: ShortString::try_from(queue.as_str())?,
                ..Default::default()
            };
            setup.call(delete, "queue.delete-ok").await?;
        }
        if let Some(exchange) = &self.exchange {
            let delete = ExchangeDelete {
                exchange: ShortString::try_from(exchange.as_str())?,
                ..Default::default()
            };
            setup.call(delete, "exchange.delete-ok").await?;
        }
        Ok(())
    }
}
