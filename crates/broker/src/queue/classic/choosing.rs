//! Which consumers may receive, when not all may alike: consumer priorities
//! (`x-priority`: round-robin among the highest priority with room; lower
//! ones only while all higher ones are full) and single active consumer
//! (only the active one receives; the first to come is active, and when it
//! goes the waiting one of highest priority, earliest first, takes over —
//! the earliest one on quorum queues, as 3.10 does). A queue whose
//! consumers are alike never comes here.

use std::sync::Arc;

use super::consumers::{Consumer, Offer};
use super::QueueState;
use crate::queue::QueueHandle;

#[derive(Default)]
pub(super) struct Choosing {
    /// The active consumer's serial (single active consumer only).
    active: Option<u64>,
    /// Where round-robin resumes within each priority.
    cursors: Vec<(i64, usize)>,
}

impl Choosing {
    fn cursor(&mut self, priority: i64) -> &mut usize {
        let at = match self.cursors.iter().position(|(p, _)| *p == priority) {
            Some(at) => at,
            None => {
                self.cursors.push((priority, 0));
                self.cursors.len() - 1
            }
        };
        &mut self.cursors[at].1
    }
}

impl QueueState {
    /// A new consumer takes its place after those of higher or equal priority.
    pub(super) fn add_consumer(&mut self, consumer: Consumer) {
        let priority = consumer.spec.priority;
        let at = self
            .consumers
            .iter()
            .position(|c| c.spec.priority < priority)
            .unwrap_or(self.consumers.len());
        let serial = consumer.serial;
        self.consumers.insert(at, consumer);
        if self.single_active {
            let choosing = self.choosing.get_or_insert_with(Choosing::default);
            choosing.active.get_or_insert(serial);
        }
        self.consumers_changed();
    }

    pub(super) fn remove_consumer(&mut self, index: usize) {
        self.consumers.remove(index);
        self.consumers_changed();
    }

    /// After consumers came or went: whether they are alike, and who is
    /// active.
    pub(super) fn consumers_changed(&mut self) {
        let mixed = self
            .consumers
            .windows(2)
            .any(|w| w[0].spec.priority != w[1].spec.priority);
        if !self.single_active && !mixed {
            self.choosing = None;
            return;
        }
        let quorum = self.quorum;
        let consumers = &self.consumers;
        let choosing = self.choosing.get_or_insert_with(Choosing::default);
        if self.single_active {
            let present = |serial| consumers.iter().any(|c| c.serial == serial);
            if !choosing.active.is_some_and(present) {
                choosing.active = match quorum {
                    true => consumers.iter().map(|c| c.serial).min(),
                    false => consumers.first().map(|c| c.serial),
                };
            }
        }
    }

    /// The delivery round when consumers are not alike.
    pub(super) fn chosen_delivery_round(&mut self, handle: &Arc<QueueHandle>) {
        if self.single_active {
            while let Some(index) = self.active_index() {
                match self.offer(index, handle) {
                    Offer::Sent => {}
                    Offer::Gone => self.consumers_changed(),
                    Offer::NoRoom | Offer::Empty => return,
                }
            }
            return;
        }
        'message: while self.ready_count() > 0 {
            let mut start = 0;
            while start < self.consumers.len() {
                let priority = self.consumers[start].spec.priority;
                let equals = self.consumers[start..]
                    .iter()
                    .take_while(|c| c.spec.priority == priority)
                    .count();
                let Some(choosing) = self.choosing.as_mut() else {
                    return;
                };
                let cursor = *choosing.cursor(priority);
                for k in 0..equals {
                    let turn = (cursor + k) % equals;
                    match self.offer(start + turn, handle) {
                        Offer::Sent => {
                            if let Some(choosing) = self.choosing.as_mut() {
                                *choosing.cursor(priority) = turn + 1;
                            }
                            continue 'message;
                        }
                        Offer::NoRoom => {}
                        Offer::Gone => continue 'message,
                        Offer::Empty => return,
                    }
                }
                start += equals;
            }
            // Every consumer is full.
            return;
        }
    }

    fn active_index(&self) -> Option<usize> {
        let active = self.choosing.as_ref()?.active?;
        self.consumers.iter().position(|c| c.serial == active)
    }
}
