//! Direct: routing key equals binding key, by hash lookup.

use std::collections::HashMap;
use warren_codec::ShortString;

use super::{Binding, Destination};

#[derive(Default)]
pub struct DirectRouter {
    by_key: HashMap<ShortString, Vec<Binding>>,
}

impl DirectRouter {
    pub fn bind(&mut self, binding: Binding) -> bool {
        let list = self.by_key.entry(binding.routing_key.clone()).or_default();
        if list.iter().any(|b| b.same(&binding)) {
            return false;
        }
        list.push(binding);
        true
    }

    pub fn unbind(&mut self, binding: &Binding) -> bool {
        let Some(list) = self.by_key.get_mut(&binding.routing_key) else {
            return false;
        };
        let before = list.len();
        list.retain(|b| !b.same(binding));
        let removed = before != list.len();
        if list.is_empty() {
            self.by_key.remove(&binding.routing_key);
        }
        removed
    }

    pub fn route(&self, routing_key: &[u8], out: &mut Vec<Destination>) {
        if let Some(list) = self.by_key.get(routing_key) {
            out.extend(list.iter().map(|b| b.destination.clone()));
        }
    }

    pub fn bindings(&self) -> Vec<Binding> {
        self.by_key.values().flatten().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}
