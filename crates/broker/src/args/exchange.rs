//! An exchange's arguments: read once, at declare.

use warren_codec::{FieldTable, FieldValue, ShortString};

use super::queue::ArgError;
use super::value;

/// An exchange's arguments as declared and what they set.
#[derive(Debug, Clone, Default)]
pub struct ExchangeArgs {
    pub table: FieldTable,
    /// `alternate-exchange`: where messages nothing routes go (it need not
    /// exist).
    pub alternate_exchange: Option<ShortString>,
}

impl ExchangeArgs {
    pub fn parse(table: &FieldTable) -> Result<ExchangeArgs, ArgError> {
        let alternate_exchange = match table.get("alternate-exchange") {
            None => None,
            Some(FieldValue::LongString(name)) => ShortString::try_from(name.as_bytes()).ok(),
            Some(other) => {
                return Err(ArgError::Type {
                    key: "alternate-exchange",
                    kind: value::type_name(&other),
                })
            }
        };
        Ok(ExchangeArgs {
            table: table.clone(),
            alternate_exchange,
        })
    }

    /// Arguments read back from the definitions log (see
    /// [`QueueArgs::restored`](super::QueueArgs::restored)).
    pub fn restored(table: FieldTable) -> ExchangeArgs {
        ExchangeArgs::parse(&table).unwrap_or(ExchangeArgs {
            table,
            alternate_exchange: None,
        })
    }
}
