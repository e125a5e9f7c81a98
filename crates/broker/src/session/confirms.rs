//! Publisher confirms: confirm.select, and the basic.ack / basic.nack sent
//! once each publish is safe (at once in memory; once the store has synced
//! it when persistent).

use warren_codec::*;
use warren_protocol::AmqpError;

use super::{Outbox, Session};

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
            let (synced, failed) = (state.mark.synced(), state.mark.failed());
            // Stored publishes wait for the store; a failed one is nacked,
            // after acknowledging everything before it, so that no tag is
            // settled twice.
            while let Some(&(pending, refused)) = state.pending.front() {
                if !refused && pending <= synced {
                    state.pending.pop_front();
                } else if refused || pending <= failed {
                    state.pending.pop_front();
                    ack_up_to(ch, &mut state.confirmed, pending - 1, out);
                    let nack = BasicNack {
                        delivery_tag: pending,
                        multiple: false,
                        requeue: false,
                    };
                    out.send_method(ch, nack.into());
                    state.confirmed = pending;
                } else {
                    break;
                }
            }
            let upto = state.pending.front().map_or(seq, |&(first, _)| first - 1);
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
