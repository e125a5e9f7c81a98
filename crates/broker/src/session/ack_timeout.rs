//! The consumer acknowledgement timeout (RabbitMQ 3.10's
//! `consumer_timeout`): a channel whose oldest unacknowledged delivery
//! (consumer delivery or basic.get) has waited longer is closed with 406,
//! which requeues its deliveries. No-ack deliveries are never tracked, so
//! never time out.

use std::time::{Duration, Instant};
use warren_codec::ReplyCode;
use warren_protocol::AmqpError;

use super::Session;

impl Session {
    /// The clock of the batch about to be handled: deliveries sent in it
    /// are stamped with it (one clock read per batch, not per delivery).
    pub fn set_clock(&mut self, now: Instant) {
        self.now = now;
    }

    /// Sets the timeout; `None` (or zero) disables it.
    pub fn set_consumer_timeout(&mut self, timeout: Option<Duration>) {
        self.consumer_timeout = timeout.filter(|t| !t.is_zero());
    }

    /// Whether a timeout is set and some delivery awaits its acknowledgement
    /// (only then is there anything to check).
    pub fn awaits_acks(&self) -> bool {
        self.consumer_timeout.is_some()
            && self
                .channels
                .values()
                .any(|state| state.oldest_unacked().is_some())
    }

    /// A channel whose oldest unacknowledged delivery is older than the
    /// timeout at `now`, with the error that closes it.
    pub fn overdue_channel(&self, now: Instant) -> Option<(u16, AmqpError)> {
        let timeout = self.consumer_timeout?;
        let (&channel, _) = self.channels.iter().find(|(_, state)| {
            state
                .oldest_unacked()
                .is_some_and(|sent| now.saturating_duration_since(sent) > timeout)
        })?;
        let error = AmqpError::new(
            ReplyCode::PreconditionFailed,
            format!(
                "delivery acknowledgement on channel {channel} timed out. Timeout value used: {} ms. \
                 This timeout value can be configured, see consumers doc guide to learn more",
                timeout.as_millis()
            ),
        );
        Some((channel, error))
    }
}
