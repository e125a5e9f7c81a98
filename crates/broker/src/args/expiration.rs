//! The `expiration` property of a publish: a message's TTL in milliseconds,
//! written as a decimal string and read as RabbitMQ reads it (Erlang's
//! `string:to_integer`), with its reasons for refusing one.

use super::value::MAX_MILLIS;

/// The milliseconds an `expiration` asks for, or RabbitMQ's reason for
/// refusing it (`invalid expiration '<value>': <reason>`).
pub fn parse(text: &[u8]) -> Result<u64, String> {
    let (negative, rest) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return Err("no_integer".into());
    }
    let (number, leftover) = rest.split_at(digits);
    if !leftover.is_empty() {
        return Err(format!("{{leftover_string,{}}}", erlang_string(leftover)));
    }
    // Erlang's integers are unbounded: print what was written, without
    // its leading zeros.
    let start = number.iter().position(|b| *b != b'0').unwrap_or(digits - 1);
    let printed = std::str::from_utf8(&number[start..]).unwrap_or("0");
    if negative && printed != "0" {
        return Err(format!("{{value_negative,-{printed}}}"));
    }
    match printed.parse::<u64>() {
        Ok(ms) if ms <= MAX_MILLIS => Ok(ms),
        _ => Err(format!("{{value_too_large,{printed}}}")),
    }
}

/// A string as Erlang's `~p` prints it: quoted, with `"` and `\` escaped.
fn erlang_string(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for c in String::from_utf8_lossy(bytes).chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_read_as_rabbitmq_reads_them() {
        for (text, expected) in [
            ("0", Ok(0)),
            ("007", Ok(7)),
            ("+5", Ok(5)),
            ("-0", Ok(0)),
            ("60000", Ok(60_000)),
            ("315360000000", Ok(315_360_000_000)),
            ("abc", Err("no_integer")),
            ("", Err("no_integer")),
            (" 100", Err("no_integer")),
            ("+", Err("no_integer")),
            ("1.5", Err("{leftover_string,\".5\"}")),
            ("100 ", Err("{leftover_string,\" \"}")),
            ("-1", Err("{value_negative,-1}")),
            ("315360000001", Err("{value_too_large,315360000001}")),
            (
                "0099999999999999999999999",
                Err("{value_too_large,99999999999999999999999}"),
            ),
        ] {
            assert_eq!(
                parse(text.as_bytes()),
                expected.map_err(String::from),
                "{text:?}"
            );
        }
    }
}
