//! Topic: binding keys are patterns of dot-separated words, `*` standing for
//! one word and `#` for zero or more. Patterns live in a trie over words, so
//! routing walks the routing key's words, not the list of bindings.
//!
//! Matching walks the trie depth first. A node is entered at most once per
//! word position, so a match costs at most trie nodes × (words + 1) steps
//! whatever the patterns: plain backtracking (RabbitMQ's too) is
//! exponential in the number of `#` words. Only a `#` below another `#` can
//! be reached twice at one position, so only those are remembered, and
//! patterns with one `#` match as fast as plain backtracking.

use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};

use super::{Binding, Destination};

#[derive(Default)]
struct Node {
    children: HashMap<Vec<u8>, Node>,
    star: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    /// A `#` is above it: if itself a `#`, paths may meet at it.
    under_hash: bool,
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

    /// The child for `word`, and whether it was created. `under_hash`:
    /// a `#` is on the path to the child.
    fn child(&mut self, word: &[u8], under_hash: bool) -> (&mut Node, bool) {
        let new = || Node {
            under_hash,
            ..Default::default()
        };
        match word {
            b"*" => {
                let created = self.star.is_none();
                (
                    &mut **self.star.get_or_insert_with(|| Box::new(new())),
                    created,
                )
            }
            b"#" => {
                let created = self.hash.is_none();
                (
                    &mut **self.hash.get_or_insert_with(|| Box::new(new())),
                    created,
                )
            }
            _ => {
                let created = !self.children.contains_key(word);
                (
                    self.children.entry(word.to_vec()).or_insert_with(new),
                    created,
                )
            }
        }
    }

    /// Enters this node with `words[position..]` left to match.
    fn walk(&self, words: &[&[u8]], position: usize, walk: &mut Walk) {
        walk.visited += 1;
        if let Some(hash) = self.hash.as_deref() {
            // `#` takes zero or more of the remaining words. If it was
            // entered at a position before, a whole walk from there went
            // on to the end of the key: nothing after it is new.
            for start in position..=words.len() {
                if hash.under_hash && !walk.first_entry(hash, start) {
                    break;
                }
                hash.walk(words, start, walk);
            }
        }
        let Some(word) = words.get(position) else {
            walk.out
                .extend(self.bindings.iter().map(|b| b.destination.clone()));
            return;
        };
        if let Some(child) = self.children.get(*word) {
            child.walk(words, position + 1, walk);
        }
        if let Some(star) = self.star.as_deref() {
            star.walk(words, position + 1, walk);
        }
    }

    /// Removes `binding` under `words`; prunes nodes left empty, counting
    /// them into `pruned`.
    fn remove(&mut self, words: &[&[u8]], binding: &Binding, pruned: &mut usize) -> bool {
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
                let removed = node.remove(rest, binding, pruned);
                if node.is_empty() {
                    *slot = None;
                    *pruned += 1;
                }
                removed
            }
            word => {
                let Some(node) = self.children.get_mut(word) else {
                    return false;
                };
                let removed = node.remove(rest, binding, pruned);
                if node.is_empty() {
                    self.children.remove(word);
                    *pruned += 1;
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

/// Past this many entries the memory of `#` entries is a hash set rather
/// than a list scanned.
const SCAN_LIMIT: usize = 32;

/// One match in progress.
struct Walk<'a> {
    out: &'a mut Vec<Destination>,
    /// (node, position) pairs entered.
    visited: usize,
    /// The (`#` node, position) pairs entered, for `#`s below a `#`.
    entered: SmallVec<[(*const Node, usize); 8]>,
    entered_set: Option<HashSet<(*const Node, usize)>>,
}

impl Walk<'_> {
    /// Whether `node` is entered at `position` for the first time.
    fn first_entry(&mut self, node: &Node, position: usize) -> bool {
        let entry = (node as *const Node, position);
        if let Some(set) = &mut self.entered_set {
            return set.insert(entry);
        }
        if self.entered.contains(&entry) {
            return false;
        }
        self.entered.push(entry);
        if self.entered.len() > SCAN_LIMIT {
            self.entered_set = Some(self.entered.drain(..).collect());
        }
        true
    }
}

#[derive(Default)]
pub struct TopicRouter {
    root: Node,
    /// Trie nodes below the root, the bound on a match's cost per word.
    nodes: usize,
}

impl TopicRouter {
    pub fn bind(&mut self, binding: Binding) -> bool {
        let mut node = &mut self.root;
        // A `#` somewhere above the next node.
        let mut under_hash = false;
        for word in words(binding.routing_key.as_bytes()) {
            let (child, created) = node.child(word, under_hash);
            under_hash |= word == b"#";
            self.nodes += created as usize;
            node = child;
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
        let mut pruned = 0;
        let removed = self.root.remove(&words, binding, &mut pruned);
        self.nodes -= pruned;
        removed
    }

    pub fn route(&self, routing_key: &[u8], out: &mut Vec<Destination>) {
        self.route_counting(routing_key, out);
    }

    /// Routes, returning the (node, position) pairs entered.
    pub fn route_counting(&self, routing_key: &[u8], out: &mut Vec<Destination>) -> usize {
        let mut walk = Walk {
            out,
            visited: 0,
            entered: SmallVec::new(),
            entered_set: None,
        };
        self.root.walk(&words(routing_key), 0, &mut walk);
        walk.visited
    }

    /// An upper bound on the (node, position) pairs routing `routing_key`
    /// visits, without splitting it.
    pub fn cost_bound(&self, routing_key: &[u8]) -> usize {
        let words = routing_key.iter().filter(|b| **b == b'.').count() + 2;
        (self.nodes + 1) * words
    }

    /// Trie nodes below the root.
    pub fn nodes(&self) -> usize {
        self.nodes
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

    /// Routes `key`, returning the matching patterns (sorted, once each)
    /// and the (node, position) pairs visited.
    fn matching_counted(patterns: &[&str], key: &str) -> (Vec<String>, usize, usize) {
        let mut router = TopicRouter::default();
        for p in patterns {
            router.bind(binding(p));
        }
        let mut out = Vec::new();
        let visited = router.route_counting(key.as_bytes(), &mut out);
        let names: Vec<String> = out
            .into_iter()
            .map(|d| match d {
                Destination::Exchange(name) => name.to_string(),
                Destination::Queue(_) => unreachable!(),
            })
            .collect();
        (names, visited, router.nodes())
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

    #[test]
    fn many_hashes_cost_nodes_times_words() {
        // Exponential for a backtracking matcher: 12 `#`s and 100 words.
        let pattern = "#.#.#.#.#.#.#.#.#.#.#.#.x";
        let key = vec!["w"; 100].join(".");
        let (matched, visited, nodes) = matching_counted(&[pattern], &key);
        assert!(matched.is_empty());
        assert_eq!(nodes, 13);
        assert!(
            visited <= (nodes + 1) * 101,
            "{visited} (node, position) pairs visited for {nodes} nodes and 100 words"
        );
        let key = format!("{key}.x");
        let (matched, visited, _) = matching_counted(&[pattern], &key);
        assert_eq!(matched, [pattern]);
        assert!(visited <= (nodes + 1) * 102);
    }

    #[test]
    fn a_pattern_reached_by_many_paths_matches_once() {
        let (matched, _, _) = matching_counted(&["#.#.#", "a.#.#", "#"], "a.a.a.a");
        let mut sorted = matched.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(matched.len(), sorted.len(), "{matched:?}");
        assert_eq!(sorted, ["#", "#.#.#", "a.#.#"]);
    }

    /// The definition, by backtracking: fine for short patterns.
    fn reference(pattern: &[&str], key: &[&str]) -> bool {
        match pattern.split_first() {
            None => key.is_empty(),
            Some((&"#", rest)) => (0..=key.len()).any(|skip| reference(rest, &key[skip..])),
            Some((&"*", rest)) => !key.is_empty() && reference(rest, &key[1..]),
            Some((word, rest)) => key.first() == Some(word) && reference(rest, &key[1..]),
        }
    }

    fn split(s: &str) -> Vec<&str> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split('.').collect()
        }
    }

    proptest::proptest! {
        #[test]
        fn matches_the_reference(
            patterns in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(vec!["#", "*", "a", "b", ""]), 0..7),
                1..6,
            ),
            key in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "c", ""]), 0..9),
        ) {
            let patterns: Vec<String> = patterns.iter().map(|p| p.join(".")).collect();
            let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
            let key = key.join(".");
            let (got, visited, nodes) = matching_counted(&patterns, &key);
            let mut once = got.clone();
            once.sort();
            once.dedup();
            proptest::prop_assert_eq!(got.len(), once.len(), "each binding once");
            let mut expected: Vec<String> = patterns
                .iter()
                .filter(|p| reference(&split(p), &split(&key)))
                .map(|p| p.to_string())
                .collect();
            expected.sort();
            expected.dedup();
            proptest::prop_assert_eq!(once, expected);
            proptest::prop_assert!(visited <= (nodes + 1) * (split(&key).len() + 1));
        }
    }
}
