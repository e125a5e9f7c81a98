//! Turning spec names (`get-ok`, `reserved-1`) into Rust names.

/// `basic` + `get-ok` → `BasicGetOk`.
pub fn pascal(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|part| part.split('-'))
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// `reply-code` → `reply_code`; names that are Rust keywords or meaningless get a better one.
pub fn field(name: &str) -> String {
    match name {
        "type" => "kind".to_string(),
        // The last basic property: RabbitMQ and every client call it cluster-id.
        "reserved" => "cluster_id".to_string(),
        other => other.replace('-', "_"),
    }
}

/// `frame-min-size` → `FRAME_MIN_SIZE`.
pub fn constant(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(pascal(&["basic", "get-ok"]), "BasicGetOk");
        assert_eq!(field("reserved-1"), "reserved_1");
        assert_eq!(field("type"), "kind");
        assert_eq!(constant("frame-min-size"), "FRAME_MIN_SIZE");
    }
}
