//! Publisher flow control: the memory alarm as one connection meets it,
//! as RabbitMQ applies it. A publish that finds the alarm on is held and
//! the connection is not read until usage is back under the watermark.
//! Bodies still arriving count against the watermark; a connection in the
//! middle of one is not read under the alarm, and one whose partly received
//! bodies pass its own bound (two maximum-size messages) is not read at
//! all: its heartbeats then go unseen, so a client that never finishes its
//! bodies is closed as silent. The server asks [`may_read`](PublisherFlow::may_read)
//! before each read; the policy is here.

use std::sync::Arc;
use warren_protocol::Publish;

use crate::memory::MemoryMonitor;

pub struct PublisherFlow {
    memory: Arc<MemoryMonitor>,
    /// A publish held back by the alarm; while set, input is not read.
    held: Option<Publish>,
    /// The alarm stopped reading mid-body (no publish to hold yet).
    paused: bool,
    /// Partly received bodies, as counted against the watermark.
    partial_counted: usize,
    partial_bound: usize,
    /// Over `partial_bound`: not read.
    stalled: bool,
}

/// What a change in partly received bodies means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowChange {
    None,
    /// The alarm is on and a body is arriving: the publisher is blocked.
    Blocked,
    /// Past the connection's own bound: it is not read any more.
    Stalled,
}

impl PublisherFlow {
    pub fn new(memory: Arc<MemoryMonitor>, max_message_size: u64) -> Self {
        PublisherFlow {
            memory,
            held: None,
            paused: false,
            partial_counted: 0,
            partial_bound: max_message_size.saturating_mul(2) as usize,
            stalled: false,
        }
    }

    /// Whether the alarm holds publishes now (then [`hold`](Self::hold)
    /// the one at hand and block the publisher).
    pub fn must_hold(&self) -> bool {
        self.memory.is_over()
    }

    pub fn hold(&mut self, publish: Publish) {
        self.held = Some(publish);
    }

    pub fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// Counts the connection's partly received bodies after a batch of input.
    pub fn partial_bodies(&mut self, partial: usize) -> FlowChange {
        if partial != self.partial_counted {
            if partial > self.partial_counted {
                self.memory.add(partial - self.partial_counted);
            } else {
                self.memory.sub(self.partial_counted - partial);
            }
            self.partial_counted = partial;
            let over = partial > self.partial_bound;
            let newly = over && !self.stalled;
            self.stalled = over;
            if newly {
                return FlowChange::Stalled;
            }
        }
        if partial > 0 && self.held.is_none() && !self.paused && self.memory.is_over() {
            self.paused = true;
            return FlowChange::Blocked;
        }
        FlowChange::None
    }

    /// Partly received bodies, and the connection's bound on them.
    pub fn partial(&self) -> (usize, usize) {
        (self.partial_counted, self.partial_bound)
    }

    pub fn may_read(&self) -> bool {
        self.held.is_none() && !self.paused && !self.stalled
    }

    /// Blocked by the alarm (and so waiting for [`wait_below`](Self::wait_below)).
    pub fn is_blocked(&self) -> bool {
        self.held.is_some() || self.paused
    }

    pub async fn wait_below(&self) {
        self.memory.wait_below().await
    }

    /// The alarm cleared: reading resumes; the held publish, if any, is
    /// carried out now.
    pub fn resume(&mut self) -> Option<Publish> {
        self.paused = false;
        self.held.take()
    }
}

impl Drop for PublisherFlow {
    fn drop(&mut self) {
        self.memory.sub(self.partial_counted);
    }
}
