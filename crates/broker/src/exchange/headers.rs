//! Headers: bindings match on the message's headers table, by `x-match`
//! `all` (default), `any`, `all-with-x` or `any-with-x`.

use warren_codec::{FieldTable, FieldValue};

use super::fanout::BindingList;
use super::{Binding, Destination};

#[derive(Default)]
pub struct HeadersRouter {
    list: BindingList,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MatchMode {
    All,
    Any,
}

/// Compares header values as RabbitMQ (Erlang `==`) does: integers of any
/// width are equal when their values are, strings and byte arrays by content.
fn values_equal(a: &FieldValue, b: &FieldValue) -> bool {
    fn integer(v: &FieldValue) -> Option<i128> {
        Some(match *v {
            FieldValue::I8(x) => x.into(),
            FieldValue::U8(x) => x.into(),
            FieldValue::I16(x) => x.into(),
            FieldValue::U16(x) => x.into(),
            FieldValue::I32(x) => x.into(),
            FieldValue::U32(x) => x.into(),
            FieldValue::I64(x) => x.into(),
            FieldValue::Timestamp(x) => x.into(),
            _ => return None,
        })
    }
    match (a, b) {
        (
            FieldValue::LongString(x) | FieldValue::Bytes(x),
            FieldValue::LongString(y) | FieldValue::Bytes(y),
        ) => x == y,
        _ => match (integer(a), integer(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn matches(arguments: &FieldTable, headers: Option<&FieldTable>) -> bool {
    let (mode, with_x) = match arguments.get("x-match") {
        Some(FieldValue::LongString(s)) if s == "any" => (MatchMode::Any, false),
        Some(FieldValue::LongString(s)) if s == "any-with-x" => (MatchMode::Any, true),
        Some(FieldValue::LongString(s)) if s == "all-with-x" => (MatchMode::All, true),
        _ => (MatchMode::All, false),
    };
    let empty = FieldTable::new();
    let headers = headers.unwrap_or(&empty);
    let mut any_matched = false;
    for (key, expected) in arguments.iter() {
        if key == "x-match" || (!with_x && key.as_bytes().starts_with(b"x-")) {
            continue;
        }
        let Some(key) = key.as_str() else { continue };
        let found = match headers.get(key) {
            // A void binding value only asks that the header be present.
            Some(_) if expected == FieldValue::Void => true,
            Some(actual) => values_equal(&actual, &expected),
            None => false,
        };
        match (mode, found) {
            (MatchMode::All, false) => return false,
            (MatchMode::Any, true) => return true,
            _ => any_matched |= found,
        }
    }
    match mode {
        MatchMode::All => true,
        MatchMode::Any => any_matched,
    }
}

impl HeadersRouter {
    pub fn bind(&mut self, binding: Binding) -> bool {
        self.list.bind(binding)
    }

    pub fn unbind(&mut self, binding: &Binding) -> bool {
        self.list.unbind(binding)
    }

    pub fn route(&self, headers: Option<&FieldTable>, out: &mut Vec<Destination>) {
        for binding in &self.list.bindings {
            if matches(&binding.arguments, headers) {
                out.push(binding.destination.clone());
            }
        }
    }

    pub fn bindings(&self) -> Vec<Binding> {
        self.list.bindings.clone()
    }

    pub fn is_empty(&self) -> bool {
        self.list.bindings.is_empty()
    }
}

/// Whether `arguments` are valid for a headers binding.
pub fn validate_x_match(arguments: &FieldTable) -> Result<(), String> {
    match arguments.get("x-match") {
        None => Ok(()),
        Some(FieldValue::LongString(s))
            if ["all", "any", "all-with-x", "any-with-x"]
                .iter()
                .any(|m| s == *m) =>
        {
            Ok(())
        }
        Some(other) => Err(format!(
            "Invalid x-match field value {other:?}; expected all, any, all-with-x, or any-with-x"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(mode: &str, pairs: &[(&'static str, FieldValue)]) -> FieldTable {
        let mut t = FieldTable::new().with("x-match", FieldValue::LongString(mode.into()));
        for (k, v) in pairs {
            t = t.with(k, v.clone());
        }
        t
    }

    #[test]
    fn all_and_any() {
        let headers = FieldTable::new()
            .with("format", FieldValue::LongString("pdf".into()))
            .with("type", FieldValue::LongString("report".into()));
        let pdf = ("format", FieldValue::LongString("pdf".into()));
        let log = ("type", FieldValue::LongString("log".into()));
        assert!(matches(
            &args("all", std::slice::from_ref(&pdf)),
            Some(&headers)
        ));
        assert!(!matches(
            &args("all", &[pdf.clone(), log.clone()]),
            Some(&headers)
        ));
        assert!(matches(
            &args("any", &[pdf.clone(), log.clone()]),
            Some(&headers)
        ));
        assert!(!matches(&args("any", &[log]), Some(&headers)));
        assert!(
            !matches(&args("any", &[]), Some(&headers)),
            "any with nothing to match"
        );
        assert!(
            matches(&args("all", &[]), None),
            "all with nothing to match"
        );
    }

    #[test]
    fn integers_compare_by_value_and_void_means_present() {
        let headers = FieldTable::new().with("n", FieldValue::I64(5));
        assert!(matches(
            &args("all", &[("n", FieldValue::I32(5))]),
            Some(&headers)
        ));
        assert!(matches(
            &args("all", &[("n", FieldValue::Void)]),
            Some(&headers)
        ));
        assert!(!matches(
            &args("all", &[("m", FieldValue::Void)]),
            Some(&headers)
        ));
    }

    #[test]
    fn x_headers_count_only_with_x() {
        let headers = FieldTable::new().with("x-tenant", FieldValue::LongString("a".into()));
        let tenant = [("x-tenant", FieldValue::LongString("b".into()))];
        assert!(
            matches(&args("all", &tenant), Some(&headers)),
            "x- arguments are ignored"
        );
        assert!(!matches(&args("all-with-x", &tenant), Some(&headers)));
    }
}
