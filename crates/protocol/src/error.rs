//! An AMQP exception: what goes into channel.close or connection.close.

use warren_codec::{CodecError, ReplyCode, ShortString};

/// A reply code, RabbitMQ-style text and the method that caused it. Soft
/// codes close the channel, hard codes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpError {
    pub code: ReplyCode,
    pub text: String,
    pub class_id: u16,
    pub method_id: u16,
}

impl AmqpError {
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Self {
        AmqpError {
            code,
            text: text.into(),
            class_id: 0,
            method_id: 0,
        }
    }

    /// Names the method the error is about, unless one is named already.
    pub fn on(mut self, class_id: u16, method_id: u16) -> Self {
        if self.class_id == 0 && self.method_id == 0 {
            self.class_id = class_id;
            self.method_id = method_id;
        }
        self
    }

    pub fn is_hard(&self) -> bool {
        self.code.is_hard_error()
    }

    /// `NOT_FOUND - no queue 'q' in vhost '/'`; a text too long for a short
    /// string is cut at a character boundary and ends in `...`, as RabbitMQ's.
    pub fn reply_text(&self) -> ShortString {
        let mut text = format!("{} - {}", self.code.name(), self.text);
        if text.len() > ShortString::MAX_LEN {
            let mut end = ShortString::MAX_LEN - 3;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("...");
        }
        ShortString::try_from(text).expect("cut to 255 bytes")
    }
}

impl std::fmt::Display for AmqpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} - {}",
            self.code.code(),
            self.code.name(),
            self.text
        )
    }
}

impl std::error::Error for AmqpError {}

impl From<CodecError> for AmqpError {
    fn from(e: CodecError) -> Self {
        let (class_id, method_id) = e.class_method();
        AmqpError::new(e.reply_code(), e.to_string()).on(class_id, method_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_text_is_rabbitmq_style_and_fits() {
        let e = AmqpError::new(ReplyCode::NotFound, "no queue 'q' in vhost '/'");
        assert_eq!(e.reply_text(), "NOT_FOUND - no queue 'q' in vhost '/'");
        let long = AmqpError::new(ReplyCode::NotFound, "é".repeat(200));
        assert!(long.reply_text().len() <= 255);
        assert!(long.reply_text().as_str().unwrap().ends_with("..."));
        assert!(long.reply_text().as_str().is_some());
    }
}
