//! Client-chosen text (queue, exchange, vhost and user names) as it goes
//! into log lines: control characters and invalid UTF-8 escaped, so that a
//! name with a newline cannot forge a log line.

use std::fmt;

/// Displays bytes with control characters as `\n`, `\u{1b}` and invalid
/// UTF-8 as `\xNN`; everything else as is.
pub struct Escaped<'a>(pub &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_control() {
                    write!(f, "{}", c.escape_debug())?;
                } else {
                    write!(f, "{c}")?;
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn control_characters_and_bad_bytes_are_escaped() {
        let shown = Escaped(b"q\nINFO forged line\r\x1b[31m\xff caf\xc3\xa9").to_string();
        assert_eq!(shown, "q\\nINFO forged line\\r\\u{1b}[31m\\xff café");
        assert!(!shown.contains('\n'));
    }
}
