//! lapin helpers for the scenario: connections, declarations, publishing,
//! draining, error codes, and a headers table with every field type.

use lapin::options::*;
use lapin::types::{AMQPValue, DecimalValue, FieldArray, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

use crate::env;

pub fn properties() -> ConnectionProperties {
    ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
}

pub async fn connect() -> Result<Connection, String> {
    Connection::connect(&env("WARREN_URL"), properties())
        .await
        .map_err(|e| e.to_string())
}

pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn no_args() -> FieldTable {
    FieldTable::default()
}

pub async fn declare(
    ch: &Channel,
    name: &str,
    options: QueueDeclareOptions,
) -> Result<String, String> {
    Ok(ch
        .queue_declare(name, options, no_args())
        .await
        .map_err(err)?
        .name()
        .to_string())
}

/// An exclusive queue (server-named when `name` is empty); its name.
pub async fn exclusive_queue(ch: &Channel, name: &str) -> Result<String, String> {
    let options = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    declare(ch, name, options).await
}

/// Ready messages in `queue`, by a passive declare.
pub async fn message_count(ch: &Channel, queue: &str) -> Result<u32, String> {
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    Ok(ch
        .queue_declare(queue, options, no_args())
        .await
        .map_err(err)?
        .message_count())
}

pub async fn publish(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Result<(), String> {
    ch.basic_publish(exchange, key, BasicPublishOptions::default(), body, props)
        .await
        .map_err(err)?
        .await
        .map_err(err)?;
    Ok(())
}

/// Bodies waiting in a queue, by basic.get.
pub async fn drain(ch: &Channel, queue: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue, BasicGetOptions { no_ack: true })
        .await
        .map_err(err)?
    {
        out.push(String::from_utf8_lossy(&m.delivery.data).into_owned());
    }
    Ok(out)
}

pub async fn confirmed_channel(conn: &Connection) -> Result<Channel, String> {
    let ch = conn.create_channel().await.map_err(err)?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(err)?;
    Ok(ch)
}

/// The reply code of a protocol error.
pub fn code(e: &lapin::Error) -> u16 {
    match e {
        lapin::Error::ProtocolError(e) => e.get_id(),
        _ => 0,
    }
}

/// A new channel on `conn` that answers a synchronous method.
pub async fn new_channel_works(conn: &Connection) -> Result<(), String> {
    let ch = conn.create_channel().await.map_err(err)?;
    ch.queue_declare(
        "",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        no_args(),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("new channel failed: {e}"))
}

pub fn all_field_types() -> FieldTable {
    let mut nested = FieldTable::default();
    nested.insert("inner".into(), AMQPValue::LongString("x".into()));
    let mut h = FieldTable::default();
    h.insert("bool".into(), AMQPValue::Boolean(true));
    h.insert("i8".into(), AMQPValue::ShortShortInt(-8));
    h.insert("u8".into(), AMQPValue::ShortShortUInt(250));
    h.insert("i16".into(), AMQPValue::ShortInt(-16_000));
    h.insert("u16".into(), AMQPValue::ShortUInt(65_000));
    h.insert("i32".into(), AMQPValue::LongInt(-2_000_000_000));
    h.insert("u32".into(), AMQPValue::LongUInt(4_000_000_000));
    h.insert("i64".into(), AMQPValue::LongLongInt(-(1 << 50)));
    h.insert("float".into(), AMQPValue::Float(1.25));
    h.insert("double".into(), AMQPValue::Double(-2.5e10));
    h.insert(
        "decimal".into(),
        AMQPValue::DecimalValue(DecimalValue {
            scale: 2,
            value: 12345,
        }),
    );
    h.insert(
        "longstr".into(),
        AMQPValue::LongString(LongString::from("long string")),
    );
    h.insert(
        "bytes".into(),
        AMQPValue::ByteArray(vec![0, 1, 2, 255].into()),
    );
    h.insert("timestamp".into(), AMQPValue::Timestamp(1_700_000_000));
    h.insert("void".into(), AMQPValue::Void);
    h.insert("table".into(), AMQPValue::FieldTable(nested));
    h.insert(
        "array".into(),
        AMQPValue::FieldArray(FieldArray::from(vec![
            AMQPValue::LongInt(1),
            AMQPValue::LongString("two".into()),
        ])),
    );
    h
}
