//! Sender-selected distribution, RabbitMQ's extension: the routing keys in
//! a message's `CC` and `BCC` headers (arrays of long strings) route it as
//! well as its own, each queue getting it once, and `BCC` is taken out of
//! the message before anyone sees it.

use bytes::{Bytes, BytesMut};
use warren_codec::{ContentHeader, FieldTable, FieldValue, ReplyCode, ShortString};
use warren_protocol::AmqpError;

use crate::args::type_name;

/// What a message's `CC` and `BCC` headers ask for.
#[derive(Default)]
pub(super) struct Selected {
    /// The routing keys they add.
    pub keys: Vec<ShortString>,
    /// With a `BCC`: the headers and the content header payload without it.
    pub without_bcc: Option<(FieldTable, Bytes)>,
}

/// Reads `CC` and `BCC`; `None` when the message has neither (the usual
/// case: one pass over the headers, nothing allocated). A `CC` or `BCC`
/// that is not an array is 406, as in RabbitMQ.
pub(super) fn read(
    headers: &FieldTable,
    header_payload: &Bytes,
) -> Result<Option<Selected>, AmqpError> {
    let mut selected: Option<Selected> = None;
    let mut bcc = false;
    for (key, value) in headers.iter() {
        let name = match key.as_bytes() {
            b"CC" => "CC",
            b"BCC" => "BCC",
            _ => continue,
        };
        let FieldValue::Array(routes) = value else {
            return Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                format!(
                    "invalid message: {{unacceptable_type_in_header,\"{name}\",{}}}",
                    type_name(&value)
                ),
            ));
        };
        bcc |= name == "BCC";
        let keys = &mut selected.get_or_insert_with(Selected::default).keys;
        // Like RabbitMQ, elements that are not long strings are skipped;
        // so are keys longer than a routing key can be.
        keys.extend(routes.iter().filter_map(|route| match route {
            FieldValue::LongString(key) => ShortString::try_from(key.to_bytes()).ok(),
            _ => None,
        }));
    }
    if let (true, Some(selected)) = (bcc, selected.as_mut()) {
        selected.without_bcc = Some(strip_bcc(headers, header_payload)?);
    }
    Ok(selected)
}

/// The headers and the content header payload without `BCC`.
fn strip_bcc(
    headers: &FieldTable,
    header_payload: &Bytes,
) -> Result<(FieldTable, Bytes), AmqpError> {
    let kept: FieldTable = headers
        .iter()
        .filter(|(key, _)| key.as_bytes() != b"BCC")
        .collect();
    // The payload was validated on arrival; decoding it again cannot fail.
    let mut header = ContentHeader::decode(header_payload)
        .map_err(|e| AmqpError::new(ReplyCode::InternalError, e.to_string()))?;
    header.properties.headers = Some(kept.clone());
    let mut buf = BytesMut::with_capacity(header_payload.len());
    header.encode(&mut buf);
    Ok((kept, buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_codec::{BasicProperties, FieldArray, LongString};

    fn array(keys: &[&str]) -> FieldValue {
        FieldValue::Array(
            keys.iter()
                .map(|k| FieldValue::LongString(LongString::from(*k)))
                .collect::<FieldArray>(),
        )
    }

    fn payload(headers: &FieldTable) -> Bytes {
        let header = ContentHeader {
            class_id: 60,
            weight: 0,
            body_size: 1,
            properties: BasicProperties {
                headers: Some(headers.clone()),
                ..Default::default()
            },
        };
        let mut buf = BytesMut::new();
        header.encode(&mut buf);
        buf.freeze()
    }

    #[test]
    fn messages_without_cc_or_bcc_pass_untouched() {
        let headers = FieldTable::new().with("x", FieldValue::I32(1));
        assert!(read(&headers, &payload(&headers)).unwrap().is_none());
    }

    #[test]
    fn cc_and_bcc_add_keys_and_bcc_is_removed() {
        let headers = FieldTable::new()
            .with("CC", array(&["a", "b"]))
            .with("BCC", array(&["c"]))
            .with("x", FieldValue::Bool(true));
        let selected = read(&headers, &payload(&headers)).unwrap().unwrap();
        assert_eq!(selected.keys, ["a", "b", "c"]);
        let (kept, header) = selected.without_bcc.unwrap();
        assert!(kept.get("BCC").is_none() && kept.get("CC").is_some());
        let decoded = ContentHeader::decode(&header).unwrap();
        assert_eq!(decoded.properties.headers, Some(kept));
        assert_eq!(decoded.body_size, 1);
    }

    #[test]
    fn a_cc_that_is_not_an_array_is_406_naming_its_type() {
        let headers = FieldTable::new().with("CC", FieldValue::LongString("a".into()));
        let error = read(&headers, &payload(&headers)).err().unwrap();
        assert_eq!(error.code, ReplyCode::PreconditionFailed);
        assert_eq!(
            error.text,
            r#"invalid message: {unacceptable_type_in_header,"CC",longstr}"#
        );
    }
}
