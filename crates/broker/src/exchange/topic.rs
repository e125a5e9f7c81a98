//! Topic: binding keys are patterns of dot-separated words, `*` standing for
//! one word and `#` for zero or more. Patterns live in a trie over words, so
//! routing walks the routing key's words, not the list of bindings.

use smallvec::SmallVec;
use std::collections::HashMap;

use super::{Binding, Destination};

#[derive(Default)]
struct Node {
    children: HashMap<Vec<u8>, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    /// Bindings whose pattern ends here.
    bindings: Vec<Binding>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.bindings.is_empty()
            && self.children.is_empty()
            && self.star.is_none()
            && self.hash.is_none()
    }

    fn child(&mut self, word: &[u8]) -> &mut Node {
        match word {
            b"*" => self.star.get_or_insert_with(Default::default),
            b"#" => self.hash.get_or_insert_with(Default::default),
            _ => self.children.entry(word.to_vec()).or_default(),
        }
    }

    fn matches(&self, words: &[&[u8]], out: &mut Vec<Destination>) {
        if let Some(hash) = &self.hash {
            // `#` takes zero or more of the remaining words.
            for skip in 0..=words.len() {
                hash.matches(&words[skip..], out);
            }
        }
        let Some((first, rest)) = words.split_first() else {
            out.extend(self.bindings.iter().map(|b| b.destination.clone()));
            return;
        };
        if let Some(child) = self.children.get(*first) {
            child.matches(rest, out);
        }
        if let Some(star) = &self.star {
            star.matches(rest, out);
        }
    }

    /// Removes `binding` under `words`; prunes nodes left empty.
    fn remove(&mut self, words: &[&[u8]], binding: &Binding) -> bool {
        let Some((first, rest)) = words.split_first() else {
            let before = self.bindings.len();
            self.bindings.retain(|b| !b.same(binding));
            return before != self.bindings.len();
        };
        match *first {
            b"*" | b"#" => {
                let slot = if *first == b"*" {
                    &mut self.star
                } else {
                    &mut self.hash
                };
                let Some(node) = slot else { return false };
                let removed = node.remove(rest, binding);
                if node.is_empty() {
                    *slot = None;
                }
                removed
            }
            word => {
                let Some(node) = self.children.get_mut(word) else {
                    return false;
                };
                let removed = node.remove(rest, binding);
                if node.is_empty() {
                    self.children.remove(word);
                }
                removed
            }
        }
    }

    fn collect(&self, out: &mut Vec<Binding>) {
        out.extend(self.bindings.iter().cloned());
        for child in self
            .children
            .values()
            .chain(self.star.as_deref())
            .chain(self.hash.as_deref())
        {
            child.collect(out);
        }
    }
}

/// RabbitMQ splits an empty key into no words at all.
fn words(key: &[u8]) -> SmallVec<[&[u8]; 16]> {
    if key.is_empty() {
        return SmallVec::new();
    }
    key.split(|b| *b == b'.').collect()
}

#[derive(Default)]
pub struct TopicRouter {
    root: Node,
}

impl TopicRouter {
    pub fn bind(&mut self, binding: Binding) -> bool {
        let mut node = &mut self.root;
        for word in words(binding.routing_key.as_bytes()) {
            node = node.child(word);
        }
        if node.bindings.iter().any(|b| b.same(&binding)) {
            return false;
        }
        node.bindings.push(binding);
        true
    }

    pub fn unbind(&mut self, binding: &Binding) -> bool {
        let key = binding.routing_key.clone();
        let words = words(key.as_bytes());
        self.root.remove(&words, binding)
    }

    pub fn route(&self, routing_key: &[u8], out: &mut Vec<Destination>) {
        self.root.matches(&words(routing_key), out);
    }

    pub fn bindings(&self) -> Vec<Binding> {
        let mut out = Vec::new();
        self.root.collect(&mut out);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_codec::{FieldTable, ShortString};

    fn binding(pattern: &str) -> Binding {
        Binding {
            destination: Destination::Exchange(ShortString::try_from(pattern).unwrap()),
            routing_key: ShortString::try_from(pattern).unwrap(),
            arguments: FieldTable::new(),
        }
    }

    fn matching(patterns: &[&str], key: &str) -> Vec<String> {
        let mut router = TopicRouter::default();
        for p in patterns {
            router.bind(binding(p));
        }
        let mut out = Vec::new();
        router.route(key.as_bytes(), &mut out);
        let mut names: Vec<String> = out
            .into_iter()
            .map(|d| match d {
                Destination::Exchange(name) => name.to_string(),
                Destination::Queue(_) => unreachable!(),
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }

    #[test]
    fn star_is_exactly_one_word() {
        let patterns = ["a.*", "*.b", "*"];
        assert_eq!(matching(&patterns, "a.b"), ["*.b", "a.*"]);
        assert_eq!(matching(&patterns, "a"), ["*"]);
        assert!(matching(&patterns, "a.b.c").is_empty());
        assert!(matching(&patterns, "").is_empty());
    }

    #[test]
    fn hash_is_zero_or_more_words() {
        let patterns = ["#", "a.#", "#.c", "a.#.c", "a.b.#.#"];
        assert_eq!(matching(&patterns, ""), ["#"]);
        assert_eq!(matching(&patterns, "a"), ["#", "a.#"]);
        assert_eq!(matching(&patterns, "a.c"), ["#", "#.c", "a.#", "a.#.c"]);
        assert_eq!(matching(&patterns, "a.b"), ["#", "a.#", "a.b.#.#"]);
        assert_eq!(matching(&patterns, "a.x.y.c"), ["#", "#.c", "a.#", "a.#.c"]);
        assert_eq!(matching(&patterns, "x.y"), ["#"]);
    }

    #[test]
    fn literal_words_and_empty_words() {
        assert_eq!(
            matching(&["orders.eu.created"], "orders.eu.created"),
            ["orders.eu.created"]
        );
        assert!(matching(&["orders.eu.created"], "orders.us.created").is_empty());
        assert_eq!(matching(&["a..b"], "a..b"), ["a..b"]);
        assert_eq!(matching(&[""], ""), [""]);
    }

    #[test]
    fn unbind_removes_and_prunes() {
        let mut router = TopicRouter::default();
        router.bind(binding("a.*.#"));
        assert!(!router.bind(binding("a.*.#")), "duplicate binding");
        assert!(router.unbind(&binding("a.*.#")));
        assert!(!router.unbind(&binding("a.*.#")));
        assert!(router.is_empty());
    }
}
