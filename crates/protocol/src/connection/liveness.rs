//! Heartbeats and deadlines: when the connection next needs the time, and
//! what happens when a deadline passes (a heartbeat to send, a silent
//! peer, a handshake or close that took too long).

use std::time::{Duration, Instant};
use warren_codec::{encode_heartbeat_frame, ReplyCode};

use super::{Connection, Event, Phase};
use crate::error::AmqpError;

impl Connection {
    pub(super) fn heartbeat(&self) -> Option<Duration> {
        match (self.phase, self.tuning.heartbeat) {
            (Phase::Open, secs) if secs > 0 => Some(Duration::from_secs(secs.into())),
            _ => None,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        let heartbeat = self
            .heartbeat()
            .map(|hb| (self.last_sent + hb / 2).min(self.last_received + hb * 2));
        match (heartbeat, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends a heartbeat on a quiet connection; gives up on a silent client
    /// (two intervals, as RabbitMQ), a stalled handshake or a missing close-ok.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            if self.phase != Phase::Closing {
                let error = AmqpError::new(ReplyCode::ConnectionForced, "handshake timeout");
                self.events
                    .push_back(Event::ConnectionClosing { error: Some(error) });
            }
            self.phase = Phase::Closed;
            return;
        }
        let Some(hb) = self.heartbeat() else { return };
        if now >= self.last_received + hb * 2 {
            let error = AmqpError::new(
                ReplyCode::ConnectionForced,
                format!("missed heartbeats from client, timeout: {}s", hb.as_secs()),
            );
            self.events
                .push_back(Event::ConnectionClosing { error: Some(error) });
            self.phase = Phase::Closed;
        } else if now >= self.last_sent + hb / 2 {
            encode_heartbeat_frame(self.output.buf());
            self.last_sent = now;
        }
    }
}
