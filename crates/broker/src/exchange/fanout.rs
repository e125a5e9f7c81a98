//! Fanout: every binding gets every message.

use super::Binding;

#[derive(Default)]
pub struct FanoutRouter {
    pub bindings: Vec<Binding>,
}

impl FanoutRouter {
    pub fn bind(&mut self, binding: Binding) -> bool {
        if self.bindings.iter().any(|b| b.same(&binding)) {
            return false;
        }
        self.bindings.push(binding);
        true
    }

    pub fn unbind(&mut self, binding: &Binding) -> bool {
        let before = self.bindings.len();
        self.bindings.retain(|b| !b.same(binding));
        before != self.bindings.len()
    }
}
