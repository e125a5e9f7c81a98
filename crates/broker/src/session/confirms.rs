//! Publisher confirms: confirm.select, and the basic.ack / basic.nack sent
//! once each publish is safe: at once in memory, once every keeper that
//! took it has it when persistent (see `safekeeping.rs`).

use warren_codec::*;
use warren_protocol::AmqpError;

use super::{Outbox, Session};
use crate::safekeeping::Safety;

impl Session {
    pub(super) fn confirm_select(
        &mut self,
        ch: u16,
        s: ConfirmSelect,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let state = self.channel(ch)?;
        if state.tx.is_some() {
            return Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                "cannot switch from tx to confirm mode",
            ));
        }
        state.confirm.get_or_insert(0);
        if !s.nowait {
            out.send_method(ch, ConfirmSelectOk {}.into());
        }
        Ok(())
    }

    /// Sends one basic.ack for every publish confirmed since the last call
    /// (`multiple` when it covers several), and copies each channel's
    /// statistics out. Call after each batch of input.
    pub fn flush_confirms(&mut self, out: &mut dyn Outbox) {
        for (&ch, state) in self.channels.iter_mut() {
            state.report();
            let Some(seq) = state.confirm else { continue };
            // Publishes wait for their keepers; a failed one is nacked,
            // after acknowledging everything before it, so that no tag is
            // settled twice.
            while let Some(&awaited) = state.awaited.front() {
                match awaited.safety(&state.marks) {
                    Safety::Safe => {
                        state.awaited.pop_front();
                    }
                    Safety::Failed => {
                        state.awaited.pop_front();
                        let seq = awaited.seq;
                        ack_up_to(ch, &mut state.confirmed, seq - 1, out);
                        let nack = BasicNack {
                            delivery_tag: seq,
                            multiple: false,
                            requeue: false,
                        };
                        out.send_method(ch, nack.into());
                        state.confirmed = seq;
                    }
                    Safety::Waiting => break,
                }
            }
            let upto = state.awaited.front().map_or(seq, |a| a.seq - 1);
            ack_up_to(ch, &mut state.confirmed, upto, out);
        }
    }
}

/// basic.ack for every publish after `confirmed` up to `upto` (`multiple`
/// when that is several).
fn ack_up_to(ch: u16, confirmed: &mut u64, upto: u64, out: &mut dyn Outbox) {
    if upto > *confirmed {
        let multiple = upto - *confirmed > 1;
        *confirmed = upto;
        out.send_method(
            ch,
            BasicAck {
                delivery_tag: upto,
                multiple,
            }
            .into(),
        );
    }
}
