//! Generates warren-codec's method types, constants and reply codes from the
//! AMQP 0-9-1 spec XML (RabbitMQ's edition) plus Warren's extension XML.

mod emit_codec;
mod emit_strategies;
mod names;
pub mod spec;

use spec::Spec;

/// The generated files, as (path relative to the codec crate, contents).
pub fn generate(
    spec_xml: &str,
    extensions_xml: &str,
) -> Result<Vec<(&'static str, String)>, String> {
    let spec = load(spec_xml, extensions_xml)?;
    Ok(vec![
        ("src/generated.rs", emit_codec::emit(&spec)),
        ("src/generated_strategies.rs", emit_strategies::emit(&spec)),
    ])
}

/// The spec with the extensions merged in.
pub fn load(spec_xml: &str, extensions_xml: &str) -> Result<Spec, String> {
    let mut spec = Spec::parse(spec_xml)?;
    spec.merge(Spec::parse(extensions_xml)?);
    Ok(spec)
}

/// Where the codec crate is, from this crate's manifest directory.
pub fn codec_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../codec")
}

/// Reads the codec crate's spec files and generates from them.
pub fn generate_from_codec_dir() -> Result<Vec<(&'static str, String)>, String> {
    let dir = codec_dir();
    let read = |name: &str| {
        std::fs::read_to_string(dir.join("spec").join(name)).map_err(|e| format!("{name}: {e}"))
    };
    generate(
        &read("amqp0-9-1-rabbit.xml")?,
        &read("warren-extensions.xml")?,
    )
}
