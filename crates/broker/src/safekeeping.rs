//! How a publish becomes safe before it is confirmed, whichever kind of
//! queue holds it.
//!
//! A queue that keeps messages across restarts names its [`Keeper`]: the
//! one that makes a persistent message safe for it. Each keeper raises a
//! [`DurableMark`] per channel to the channel's confirm sequence numbers as
//! it makes their publishes safe: the message store after its group
//! commit's fsync (classic durable queues, one record for all of them); a
//! replicated queue would once a majority of its members hold the message.
//! The session keeps, for each publish not yet confirmed, which keepers it
//! waits for ([`Awaited`]): confirmed when every one has it, nacked when
//! one failed. A set of keepers is a bit set, so waiting allocates nothing.

use std::sync::Arc;
use warren_store::DurableMark;

/// Who keeps a persistent message safe for a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeper {
    /// The broker's message store (fsync after a group commit).
    Store,
}

impl Keeper {
    fn bit(self) -> u8 {
        match self {
            Keeper::Store => 1,
        }
    }
}

/// Keepers, as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keepers(u8);

impl Keepers {
    pub fn with(self, keeper: Keeper) -> Keepers {
        Keepers(self.0 | keeper.bit())
    }

    pub fn contains(self, keeper: Keeper) -> bool {
        self.0 & keeper.bit() != 0
    }
}

/// One channel's marks, one per keeper.
#[derive(Debug)]
pub struct Marks {
    pub store: Arc<DurableMark>,
}

impl Marks {
    fn of(&self, keeper: Keeper) -> &DurableMark {
        match keeper {
            Keeper::Store => &self.store,
        }
    }
}

/// Where an unconfirmed publish stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    Waiting,
    Safe,
    /// A keeper could not keep it (or refused it at once): nack.
    Failed,
}

/// A publish waiting for its keepers before its confirm.
#[derive(Debug, Clone, Copy)]
pub struct Awaited {
    pub seq: u64,
    keepers: Keepers,
    refused: bool,
}

impl Awaited {
    pub fn on(seq: u64, keepers: Keepers) -> Self {
        Awaited {
            seq,
            keepers,
            refused: false,
        }
    }

    /// Refused before any keeper had it: nacked in its turn.
    pub fn refused(seq: u64) -> Self {
        Awaited {
            seq,
            keepers: Keepers::default(),
            refused: true,
        }
    }

    pub fn safety(&self, marks: &Marks) -> Safety {
        if self.refused {
            return Safety::Failed;
        }
        let mut safe = true;
        for keeper in [Keeper::Store] {
            if self.keepers.contains(keeper) {
                let mark = marks.of(keeper);
                if mark.failed() >= self.seq {
                    return Safety::Failed;
                }
                safe &= mark.synced() >= self.seq;
            }
        }
        if safe {
            Safety::Safe
        } else {
            Safety::Waiting
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Notify;

    #[test]
    fn a_publish_is_safe_once_its_keepers_have_it_and_failed_if_one_failed() {
        let marks = Marks {
            store: Arc::new(DurableMark::new(Arc::new(Notify::new()))),
        };
        let store = Keepers::default().with(Keeper::Store);
        let (first, second) = (Awaited::on(1, store), Awaited::on(2, store));
        assert_eq!(first.safety(&marks), Safety::Waiting);
        marks.store.advance(1, true);
        assert_eq!(first.safety(&marks), Safety::Safe);
        assert_eq!(second.safety(&marks), Safety::Waiting);
        marks.store.advance(2, false);
        assert_eq!(second.safety(&marks), Safety::Failed);
        assert_eq!(Awaited::refused(3).safety(&marks), Safety::Failed);
        // No keeper: nothing to wait for.
        assert_eq!(
            Awaited::on(9, Keepers::default()).safety(&marks),
            Safety::Safe
        );
    }
}
