//! Transactions: tx.select, and publishes and settlements held until
//! tx.commit applies them (commit-ok once persistent ones are on disk) or
//! tx.rollback drops them.

use warren_codec::*;
use warren_protocol::AmqpError;

use super::channel::Transaction;
use super::publish::Enqueued;
use super::{Outbox, Session};

impl Session {
    pub(super) fn tx_select(&mut self, ch: u16, out: &mut dyn Outbox) -> Result<(), AmqpError> {
        let state = self.channel(ch)?;
        if state.confirm.is_some() {
            return Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                "cannot switch from confirm to tx mode",
            ));
        }
        state.tx.get_or_insert_with(Transaction::default);
        out.send_method(ch, TxSelectOk {}.into());
        Ok(())
    }

    pub(super) async fn tx_commit(
        &mut self,
        ch: u16,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let mut held = self.transaction(ch)?;
        let mut stored = false;
        for p in std::mem::take(&mut held.publishes) {
            let outcome = self
                .route_and_enqueue(
                    ch,
                    &p.exchange,
                    p.message,
                    p.headers.as_ref(),
                    &p.cc,
                    p.mandatory,
                    p.persistent,
                    None,
                    out,
                )
                .await;
            match outcome {
                Enqueued::InMemory => {}
                Enqueued::Kept(_) => stored = true,
                Enqueued::Refused => {
                    return Err(AmqpError::new(
                        ReplyCode::InternalError,
                        "message store unavailable",
                    ));
                }
            }
        }
        self.flush_publishes().await;
        for settle in std::mem::take(&mut held.settles) {
            self.apply_settle(ch, &settle.entries, settle.requeue).await;
        }
        // commit-ok promises the persistent messages are on disk.
        if let (true, Some(storage)) = (stored, &self.vhost.storage) {
            if !storage.messages.sync().await {
                return Err(AmqpError::new(
                    ReplyCode::InternalError,
                    "message store unavailable",
                ));
            }
        }
        out.send_method(ch, TxCommitOk {}.into());
        Ok(())
    }

    pub(super) fn tx_rollback(&mut self, ch: u16, out: &mut dyn Outbox) -> Result<(), AmqpError> {
        let mut held = self.transaction(ch)?;
        let state = self.channel(ch)?;
        for settle in std::mem::take(&mut held.settles) {
            state.restore(settle.entries);
        }
        out.send_method(ch, TxRollbackOk {}.into());
        Ok(())
    }

    /// Takes the channel's held transaction, leaving a fresh one.
    fn transaction(&mut self, ch: u16) -> Result<Transaction, AmqpError> {
        match &mut self.channel(ch)?.tx {
            Some(tx) => Ok(std::mem::take(tx)),
            None => Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                "channel is not transactional",
            )),
        }
    }
}
