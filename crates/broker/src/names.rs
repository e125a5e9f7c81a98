//! Server-generated names, in RabbitMQ's format.

use base64::Engine;
use rand::RngCore;
use warren_codec::ShortString;

/// `prefix-` and 22 URL-safe base64 characters of 16 random bytes, e.g.
/// `amq.gen-JzTY20BRgKO-HjmUJj0wLg`.
fn generate(prefix: &str) -> ShortString {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let suffix = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    ShortString::try_from(format!("{prefix}-{suffix}")).expect("short")
}

pub fn queue_name() -> ShortString {
    generate("amq.gen")
}

pub fn consumer_tag() -> ShortString {
    generate("amq.ctag")
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_names_look_like_rabbitmqs() {
        let name = super::queue_name();
        assert!(name.as_str().unwrap().starts_with("amq.gen-"));
        assert_eq!(name.len(), "amq.gen-".len() + 22);
        assert_ne!(super::queue_name(), name);
    }
}
