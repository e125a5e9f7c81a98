//! Dead-lettering's message rewrite, as RabbitMQ 3.10 does it (reference
//! §2): the `x-death` array (one table per queue and reason, newest first,
//! counted), the `x-first-death-*` headers, `expiration` removed, `CC`
//! removed when a dead-letter routing key replaces the keys; and the cycle
//! rule that drops a message coming back to a queue it expired in.

use bytes::{Bytes, BytesMut};
use warren_codec::{ContentHeader, FieldArray, FieldTable, FieldValue, LongString, ShortString};

/// Why a message was dead-lettered (the `reason` of its `x-death` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rejected,
    Expired,
    Maxlen,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
        }
    }
}

/// A message's death in a queue.
pub struct Death<'a> {
    pub queue: &'a ShortString,
    pub reason: Reason,
    /// Where the message had been published, and with what key.
    pub exchange: &'a ShortString,
    pub routing_key: &'a ShortString,
    /// Seconds since the epoch.
    pub time: u64,
    /// The queue's `x-dead-letter-routing-key`, which replaces the keys.
    pub dead_letter_routing_key: Option<&'a ShortString>,
}

/// The dead-lettered copy of a message.
pub struct Rewritten {
    /// The new content header payload.
    pub header: Bytes,
    /// The routing keys to publish it with to the dead-letter exchange.
    pub routing_keys: Vec<ShortString>,
    /// Its headers, for headers exchanges.
    pub headers: FieldTable,
    /// `delivery-mode` 2.
    pub persistent: bool,
}

fn text(s: &[u8]) -> FieldValue {
    FieldValue::LongString(LongString::from(Bytes::copy_from_slice(s)))
}

fn get<'t>(entries: &'t [(ShortString, FieldValue)], key: &str) -> Option<&'t FieldValue> {
    entries
        .iter()
        .find(|(k, _)| k.as_bytes() == key.as_bytes())
        .map(|(_, v)| v)
}

fn is_text(value: Option<&FieldValue>, expected: &[u8]) -> bool {
    matches!(value, Some(FieldValue::LongString(s)) if s.as_bytes() == expected)
}

/// The message's original routing key followed by its `CC` keys.
fn original_keys(routing_key: &ShortString, headers: Option<&FieldTable>) -> Vec<ShortString> {
    let mut keys = vec![routing_key.clone()];
    if let Some(FieldValue::Array(cc)) = headers.and_then(|h| h.get("CC")) {
        keys.extend(cc.iter().filter_map(|v| match v {
            FieldValue::LongString(s) => ShortString::try_from(s.as_bytes()).ok(),
            _ => None,
        }));
    }
    keys
}

/// Rewrites a message's content header for its death; None if the header
/// cannot be read (it was checked when published, so never in practice).
pub fn rewrite(header: &Bytes, death: &Death) -> Option<Rewritten> {
    let mut content = ContentHeader::decode(header).ok()?;
    let properties = &mut content.properties;
    let old: Vec<(ShortString, FieldValue)> = properties
        .headers
        .as_ref()
        .map(|h| h.iter().collect())
        .unwrap_or_default();
    let keys = original_keys(death.routing_key, properties.headers.as_ref());
    let mut entry = vec![
        (ShortString::from_static("count"), FieldValue::I64(1)),
        (
            ShortString::from_static("reason"),
            text(death.reason.as_str().as_bytes()),
        ),
        (
            ShortString::from_static("queue"),
            text(death.queue.as_bytes()),
        ),
        (
            ShortString::from_static("time"),
            FieldValue::Timestamp(death.time),
        ),
        (
            ShortString::from_static("exchange"),
            text(death.exchange.as_bytes()),
        ),
        (
            ShortString::from_static("routing-keys"),
            FieldValue::Array(keys.iter().map(|k| text(k.as_bytes())).collect()),
        ),
    ];
    if let Some(expiration) = properties.expiration.take() {
        entry.push((
            ShortString::from_static("original-expiration"),
            text(expiration.as_bytes()),
        ));
    }
    let (deaths, first) = match get(&old, "x-death") {
        Some(FieldValue::Array(list)) => (updated(list, entry, death), false),
        // Absent: a fresh list and the first-death headers; anything else is
        // replaced, without them (as 3.10 does).
        other => (vec![table(entry)], other.is_none()),
    };
    let deaths = FieldValue::Array(deaths.into_iter().collect());
    let mut headers: Vec<(ShortString, FieldValue)> = Vec::with_capacity(old.len() + 4);
    let mut placed = false;
    for (key, value) in old {
        match key.as_bytes() {
            b"x-death" => {
                headers.push((key, deaths.clone()));
                placed = true;
            }
            b"CC" if death.dead_letter_routing_key.is_some() => {}
            _ => headers.push((key, value)),
        }
    }
    if !placed {
        headers.push((ShortString::from_static("x-death"), deaths));
    }
    if first {
        for (key, value) in [
            ("x-first-death-reason", death.reason.as_str().as_bytes()),
            ("x-first-death-queue", death.queue.as_bytes()),
            ("x-first-death-exchange", death.exchange.as_bytes()),
        ] {
            headers.push((ShortString::from_static(key), text(value)));
        }
    }
    let headers: FieldTable = headers.into_iter().collect();
    properties.headers = Some(headers.clone());
    let persistent = properties.delivery_mode == Some(2);
    let mut buf = BytesMut::with_capacity(header.len() + 256);
    content.encode(&mut buf);
    let routing_keys = match death.dead_letter_routing_key {
        Some(key) => vec![key.clone()],
        None => keys,
    };
    Some(Rewritten {
        header: buf.freeze(),
        routing_keys,
        headers,
        persistent,
    })
}

fn table(entries: Vec<(ShortString, FieldValue)>) -> FieldValue {
    FieldValue::Table(entries.into_iter().collect())
}

/// The `x-death` list with this death: the entry of the same queue and
/// reason counted up and moved to the front (its other fields kept from
/// the first time), or a new entry in front.
fn updated(
    list: &FieldArray,
    entry: Vec<(ShortString, FieldValue)>,
    death: &Death,
) -> Vec<FieldValue> {
    let mut others = Vec::new();
    let mut same = None;
    for value in list.iter() {
        let is_same = match &value {
            FieldValue::Table(t) => {
                let e: Vec<_> = t.iter().collect();
                is_text(get(&e, "queue"), death.queue.as_bytes())
                    && is_text(get(&e, "reason"), death.reason.as_str().as_bytes())
            }
            _ => false,
        };
        match (is_same, &value, same.is_none()) {
            (true, FieldValue::Table(t), true) => same = Some(t.clone()),
            _ => others.push(value),
        }
    }
    let front = match same {
        Some(t) => table(
            t.iter()
                .map(|(k, v)| match v {
                    FieldValue::I64(n) if k.as_bytes() == b"count" => {
                        (k, FieldValue::I64(n.saturating_add(1)))
                    }
                    v => (k, v),
                })
                .collect(),
        ),
        None => table(entry),
    };
    let mut all = Vec::with_capacity(others.len() + 1);
    all.push(front);
    all.extend(others);
    all
}

/// Whether delivering the dead-lettered message to `target` would close a
/// cycle: `target` appears in its `x-death` list with no rejection from the
/// newest entry up to that one. Rejections never count as cycles.
pub fn is_cycle(headers: &FieldTable, reason: Reason, target: &ShortString) -> bool {
    if reason == Reason::Rejected {
        return false;
    }
    let Some(FieldValue::Array(list)) = headers.get("x-death") else {
        return false;
    };
    for value in list.iter() {
        let FieldValue::Table(t) = value else {
            continue;
        };
        let e: Vec<_> = t.iter().collect();
        if is_text(get(&e, "reason"), b"rejected") {
            return false;
        }
        if is_text(get(&e, "queue"), target.as_bytes()) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests;
