//! The queue task's loop: commands from the inbox in batches, then a
//! delivery round; and what each command does.

use std::pin::Pin;
use tokio::sync::mpsc;
use tokio::time::Sleep;

use super::unacked::Unacked;
use super::{Consumer, QueueState, BATCH};
use crate::dead_letter::Reason;
use crate::queue::{Command, ConnEvent, ConsumeRefused, DeleteRefused, GetOk};

/// Sets the queue's timer for `next` (ms since the epoch), unless it is
/// set for that already.
fn set_timer(timer: Pin<&mut Sleep>, timer_at: &mut Option<u64>, next: Option<u64>) {
    if next != *timer_at {
        if let Some(at) = next {
            // A millisecond late, so that the deadline has passed.
            let when = crate::clock::instant_of(at + 1, std::time::Instant::now());
            timer.reset(when.into());
        }
        *timer_at = next;
    }
}

impl QueueState {
    pub(super) async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let wake = self.wake.clone();
        // The queue's one timer: for the head's deadline or the lease's end.
        let timer = tokio::time::sleep(std::time::Duration::ZERO);
        tokio::pin!(timer);
        // A restored queue's lease may have run out while the broker was
        // down, so the timer is set before the first wait.
        let mut timer_at = None;
        if self.lease.as_ref().is_some_and(|l| l.stored.is_none()) {
            // A new queue's lease starts now, stored for durable ones.
            self.used();
        }
        let lease_end = self.lease_end();
        set_timer(timer.as_mut(), &mut timer_at, lease_end);
        loop {
            tokio::select! {
                biased;
                command = inbox.recv() => match command {
                    Some(command) => {
                        self.batch_ms = None;
                        self.handle(command)
                    }
                    None => break,
                },
                _ = wake.notified() => self.batch_ms = None,
                _ = &mut timer, if timer_at.is_some() => {
                    self.batch_ms = None;
                    timer_at = None;
                }
            }
            for _ in 0..BATCH {
                match inbox.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(_) => break,
                }
            }
            self.page_out();
            self.write_acks().await;
            if self.deleted {
                break;
            }
            self.deliver();
            self.expire_heads();
            self.enforce_limits();
            self.check_lease();
            self.write_acks().await;
            self.report();
            let next = self.next_deadline();
            set_timer(timer.as_mut(), &mut timer_at, next);
        }
        // Publishes still in the inbox of a deleted queue are dropped, and
        // publishers waiting for room learn the queue is gone.
        self.room.close();
        inbox.close();
        while let Ok(command) = inbox.try_recv() {
            if let Command::PublishMany(messages) = command {
                for message in messages {
                    self.memory.sub(message.size());
                    self.stored_gone.extend(message.stored);
                }
            }
        }
        // Their store records are released too.
        self.write_acks().await;
    }

    /// Ends the queue: consumers told, every message let go.
    fn stop(&mut self) -> u32 {
        for consumer in self.consumers.drain(..) {
            consumer.spec.port.send_later(ConnEvent::Cancelled {
                channel: consumer.spec.channel,
                consumer_tag: consumer.spec.tag,
            });
        }
        let count = self.ready_count();
        self.forget_ready();
        let unacked: Vec<Unacked> = self.unacked.drain().map(|(_, u)| u).collect();
        for u in unacked {
            self.forget(&u.entry);
        }
        self.deleted = true;
        count
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::PublishMany(messages) => {
                let count = messages.len().min(crate::queue::INBOX_MESSAGES);
                for message in messages {
                    self.enqueue(message);
                }
                self.room.add_permits(count);
            }
            Command::Consume(spec, reply) => {
                let exclusive_held = self.consumers.iter().any(|c| c.spec.exclusive);
                // A single-active-consumer queue never takes an exclusive one.
                let exclusive_refused =
                    spec.exclusive && (self.single_active || !self.consumers.is_empty());
                if exclusive_held || exclusive_refused {
                    let _ = reply.send(Err(ConsumeRefused::ExclusiveUse));
                    return;
                }
                self.next_serial += 1;
                self.add_consumer(Consumer {
                    spec,
                    serial: self.next_serial,
                    unacked: 0,
                });
                self.had_consumers = true;
                self.in_use();
                let _ = reply.send(Ok(()));
            }
            Command::Cancel {
                conn,
                channel,
                tag,
                reply,
            } => {
                self.consumers.retain(|c| {
                    let s = &c.spec;
                    !(s.conn == conn
                        && s.channel == channel
                        && tag.as_ref().is_none_or(|t| *t == s.tag))
                });
                self.consumers_changed();
                self.next_consumer = 0;
                if self.consumers.is_empty() {
                    self.used();
                }
                let handle = self.handle.upgrade();
                let unused = self.had_consumers
                    && self.consumers.is_empty()
                    && handle.is_some_and(|h| h.auto_delete);
                let _ = reply.send(unused);
            }
            Command::Ack(ids) => {
                for id in ids {
                    if let Some(entry) = self.settle(id) {
                        self.counts.acked += 1;
                        self.forget(&entry);
                    }
                }
            }
            Command::Reject { ids, requeue } => {
                for id in ids {
                    if let Some(mut entry) = self.settle(id) {
                        if requeue {
                            entry.redelivered = true;
                            entry.message.unpin();
                            self.put_back(entry);
                        } else {
                            self.dead_letter(entry, Reason::Rejected);
                        }
                    }
                }
            }
            Command::Get { no_ack, reply } => {
                self.used();
                self.expire_heads();
                let got = self.pop().map(|entry| {
                    self.counts.delivered += 1;
                    self.counts.redelivered += u64::from(entry.redelivered);
                    // Expired messages now at the head go before the count.
                    self.expire_heads();
                    let remaining = self.ready_count();
                    let ok = GetOk {
                        id: entry.id,
                        message: entry.message.clone(),
                        redelivered: entry.redelivered,
                        remaining,
                    };
                    if no_ack {
                        self.forget(&entry);
                    } else {
                        self.unacked.insert(
                            entry.id,
                            Unacked {
                                entry,
                                consumer: None,
                            },
                        );
                    }
                    ok
                });
                let _ = reply.send(got);
            }
            Command::Purge(reply) => {
                let count = self.ready_count();
                self.forget_ready();
                let _ = reply.send(count);
            }
            Command::Stats(reply) => {
                self.used();
                self.expire_heads();
                let _ = reply.send((self.ready_count(), self.consumers.len() as u32));
            }
            Command::Delete {
                if_unused,
                if_empty,
                reply,
            } => {
                if if_unused && !self.consumers.is_empty() {
                    let _ = reply.send(Err(DeleteRefused::InUse));
                    return;
                }
                if if_empty && self.ready_count() > 0 {
                    let _ = reply.send(Err(DeleteRefused::NotEmpty));
                    return;
                }
                let _ = reply.send(Ok(self.stop()));
            }
            Command::DeadLetterRefused(messages) => self.dead_letter_refused(messages),
            Command::Expire(reply) => {
                // Its messages go with it, not dead-lettered (as RabbitMQ).
                let ran_out = self.lease_ran_out();
                if ran_out {
                    self.stop();
                }
                let _ = reply.send(ran_out);
            }
        }
    }
}
