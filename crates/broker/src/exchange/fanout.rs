//! Fanout: every binding gets every message. Its list of bindings also
//! serves the headers exchange, which tests each one.

use super::Binding;

#[derive(Default)]
pub struct BindingList {
    pub bindings: Vec<Binding>,
}

impl BindingList {
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
