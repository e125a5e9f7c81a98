//! Emits `warren-codec/src/generated_strategies.rs`: a proptest strategy for
//! every method and for the content properties, for the codec's round-trip tests.

use crate::names;
use crate::spec::{Field, FieldType, Spec};
use std::fmt::Write;

/// proptest implements `Strategy` for tuples of up to 12; group fields in sixes.
const GROUP: usize = 6;

pub fn emit(spec: &Spec) -> String {
    let mut out = String::from(crate::emit_codec::HEADER);
    out.push_str(
        "
use proptest::prelude::*;

use crate::generated::*;
use crate::strategies::{field_table, long_string, short_string};
",
    );
    out.push_str("\n/// Any method of the spec, with any field values.\npub(crate) fn any_method() -> BoxedStrategy<Method> {\n    proptest::strategy::Union::new(vec![\n");
    for class in &spec.classes {
        for method in &class.methods {
            let name = names::pascal(&[&class.name, &method.name]);
            writeln!(
                out,
                "        {}.prop_map(Method::{name}).boxed(),",
                struct_strategy(&name, &method.fields, false)
            )
            .unwrap();
        }
    }
    out.push_str("    ])\n    .boxed()\n}\n");
    for class in spec.classes.iter().filter(|c| !c.properties.is_empty()) {
        let name = names::pascal(&[&class.name, "properties"]);
        let fn_name = format!("any_{}_properties", class.name);
        writeln!(
            out,
            "\npub(crate) fn {fn_name}() -> BoxedStrategy<{name}> {{\n    {}.boxed()\n}}",
            struct_strategy(&name, &class.properties, true)
        )
        .unwrap();
    }
    out
}

fn field_strategy(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Bit => "any::<bool>()",
        FieldType::Octet => "any::<u8>()",
        FieldType::Short => "any::<u16>()",
        FieldType::Long => "any::<u32>()",
        FieldType::LongLong | FieldType::Timestamp => "any::<u64>()",
        FieldType::ShortStr => "short_string()",
        FieldType::LongStr => "long_string()",
        FieldType::Table => "field_table()",
    }
}

/// `(strategies...).prop_map(|(fields...)| Name { fields... })`, grouped in tuples of tuples.
fn struct_strategy(name: &str, fields: &[Field], optional: bool) -> String {
    if fields.is_empty() {
        return format!("Just({name} {{}})");
    }
    let strategy = |f: &Field| {
        let s = field_strategy(f.ty);
        if optional {
            format!("proptest::option::of({s})")
        } else {
            s.to_string()
        }
    };
    let groups: Vec<&[Field]> = fields.chunks(GROUP).collect();
    let strategies: Vec<String> = groups
        .iter()
        .map(|g| {
            format!(
                "({},)",
                g.iter().map(strategy).collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    let patterns: Vec<String> = groups
        .iter()
        .map(|g| {
            format!(
                "({},)",
                g.iter()
                    .map(|f| names::field(&f.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let vars: Vec<String> = fields.iter().map(|f| names::field(&f.name)).collect();
    format!(
        "({},).prop_map(|({},)| {name} {{ {} }})",
        strategies.join(", "),
        patterns.join(", "),
        vars.join(", ")
    )
}
