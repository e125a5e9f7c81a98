//! Alternate exchanges (RabbitMQ's `alternate-exchange` exchange argument):
//! a message that an exchange's bindings route nowhere is routed, unchanged
//! (its CC and BCC keys too), by that exchange's alternate, then by the
//! alternate's alternate, each exchange at most once. A message routed by
//! an alternate counts as routed (no basic.return for mandatory).

use std::sync::Arc;
use warren_codec::{FieldTable, ShortString};

use super::Session;
use crate::exchange::Exchange;
use crate::queue::QueueHandle;

impl Session {
    /// Fills `routed` through `exchange`'s alternates, if it has any and
    /// `routed` is empty. A missing alternate ends the chain quietly.
    pub(super) fn route_alternates(
        &mut self,
        exchange: &Exchange,
        routing_key: &ShortString,
        cc: &[ShortString],
        headers: Option<&FieldTable>,
        routed: &mut Vec<Arc<QueueHandle>>,
    ) {
        let mut next = exchange.args.alternate_exchange.clone();
        let mut visited: smallvec::SmallVec<[ShortString; 4]> =
            smallvec::smallvec![exchange.name.clone()];
        while let Some(name) = next.take() {
            if !routed.is_empty() || visited.contains(&name) {
                return;
            }
            let Some(alternate) = self.vhost.exchange(&name) else {
                return;
            };
            self.vhost
                .route_named(&alternate, routing_key, headers, &mut self.scratch, routed);
            if !cc.is_empty() {
                self.route_cc(&alternate, cc, headers, routed);
            }
            next = alternate.args.alternate_exchange.clone();
            visited.push(name);
        }
    }
}
