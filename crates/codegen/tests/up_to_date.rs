//! The checked-in generated code must be what the generator makes of the XML.

#[test]
fn generated_files_are_up_to_date() {
    for (path, expected) in warren_codegen::generate_from_codec_dir().unwrap() {
        let actual = std::fs::read_to_string(warren_codegen::codec_dir().join(path)).unwrap();
        assert!(
            actual == expected,
            "crates/codec/{path} is out of date: run `cargo run -p warren-codegen`"
        );
    }
}

#[test]
fn every_method_of_the_xml_is_generated() {
    let dir = warren_codegen::codec_dir().join("spec");
    let count = |name: &str| {
        let xml = std::fs::read_to_string(dir.join(name)).unwrap();
        xml.matches("<method ").count()
    };
    let in_xml = count("amqp0-9-1-rabbit.xml") + count("warren-extensions.xml");
    let spec = warren_codegen::load(
        &std::fs::read_to_string(dir.join("amqp0-9-1-rabbit.xml")).unwrap(),
        &std::fs::read_to_string(dir.join("warren-extensions.xml")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec.method_count(), in_xml);
    assert_eq!(in_xml, 64, "60 in RabbitMQ's XML, 4 connection extensions");
}
