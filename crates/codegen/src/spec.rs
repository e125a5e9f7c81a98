//! The parts of the AMQP spec XML that code is generated from.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Bit,
    Octet,
    Short,
    Long,
    LongLong,
    ShortStr,
    LongStr,
    Timestamp,
    Table,
}

impl FieldType {
    fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "bit" => Self::Bit,
            "octet" => Self::Octet,
            "short" => Self::Short,
            "long" => Self::Long,
            "longlong" => Self::LongLong,
            "shortstr" => Self::ShortStr,
            "longstr" => Self::LongStr,
            "timestamp" => Self::Timestamp,
            "table" => Self::Table,
            other => return Err(format!("unknown field type {other:?}")),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
}

#[derive(Debug, Clone)]
pub struct Method {
    pub name: String,
    pub index: u16,
    pub synchronous: bool,
    pub content: bool,
    /// Has `<chassis name="server">`: a client may send it.
    pub server_receives: bool,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct Class {
    pub name: String,
    pub index: u16,
    /// Content-header properties (only `basic` has any in 0-9-1).
    pub properties: Vec<Field>,
    pub methods: Vec<Method>,
}

#[derive(Debug, Clone)]
pub struct Constant {
    pub name: String,
    pub value: u32,
    /// `soft-error` or `hard-error` for reply codes, absent for frame constants.
    pub error_class: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub port: Option<u16>,
    pub constants: Vec<Constant>,
    pub classes: Vec<Class>,
}

impl Spec {
    pub fn parse(xml: &str) -> Result<Self, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let root = doc.root_element();
        let mut domains = HashMap::new();
        for domain in root.children().filter(|n| n.has_tag_name("domain")) {
            domains.insert(
                attr(domain, "name")?,
                FieldType::parse(attr(domain, "type")?)?,
            );
        }
        let parse_field = |node: roxmltree::Node| -> Result<Field, String> {
            let ty = match (node.attribute("type"), node.attribute("domain")) {
                (Some(ty), _) => FieldType::parse(ty)?,
                (None, Some(domain)) => match domains.get(domain) {
                    Some(ty) => *ty,
                    // Builtin domains are named like their types.
                    None => FieldType::parse(domain)?,
                },
                (None, None) => return Err("field without type or domain".into()),
            };
            Ok(Field {
                name: attr(node, "name")?.to_string(),
                ty,
            })
        };
        let mut spec = Spec {
            port: root.attribute("port").and_then(|p| p.parse().ok()),
            ..Spec::default()
        };
        for node in root.children().filter(|n| n.is_element()) {
            match node.tag_name().name() {
                "constant" => spec.constants.push(Constant {
                    name: attr(node, "name")?.to_string(),
                    value: number(node, "index", "value")?,
                    error_class: node.attribute("class").map(str::to_string),
                }),
                "class" => {
                    let mut class = Class {
                        name: attr(node, "name")?.to_string(),
                        index: number(node, "class", "index")?,
                        properties: Vec::new(),
                        methods: Vec::new(),
                    };
                    for child in node.children().filter(|n| n.is_element()) {
                        match child.tag_name().name() {
                            "field" => class.properties.push(parse_field(child)?),
                            "method" => class.methods.push(Method {
                                name: attr(child, "name")?.to_string(),
                                index: number(child, "method", "index")?,
                                synchronous: child.attribute("synchronous") == Some("1"),
                                content: child.attribute("content") == Some("1"),
                                server_receives: child.children().any(|n| {
                                    n.has_tag_name("chassis")
                                        && n.attribute("name") == Some("server")
                                }),
                                fields: child
                                    .children()
                                    .filter(|n| n.has_tag_name("field"))
                                    .map(parse_field)
                                    .collect::<Result<_, _>>()?,
                            }),
                            _ => {}
                        }
                    }
                    spec.classes.push(class);
                }
                _ => {}
            }
        }
        Ok(spec)
    }

    /// Adds the extension's constants, and its methods to the classes of the same index.
    pub fn merge(&mut self, extension: Spec) {
        self.constants.extend(extension.constants);
        for ext_class in extension.classes {
            match self.classes.iter_mut().find(|c| c.index == ext_class.index) {
                Some(class) => {
                    class.methods.extend(ext_class.methods);
                    class.methods.sort_by_key(|m| m.index);
                }
                None => self.classes.push(ext_class),
            }
        }
        self.constants
            .sort_by_key(|c| (c.error_class.is_some(), c.value));
        self.classes.sort_by_key(|c| c.index);
    }

    pub fn method_count(&self) -> usize {
        self.classes.iter().map(|c| c.methods.len()).sum()
    }
}

fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Result<&'a str, String> {
    node.attribute(name)
        .ok_or_else(|| format!("<{}> without {name}", node.tag_name().name()))
}

fn number<T: std::str::FromStr>(
    node: roxmltree::Node,
    what: &str,
    name: &str,
) -> Result<T, String> {
    attr(node, name)?
        .parse()
        .map_err(|_| format!("{what} {name} is not a number"))
}
