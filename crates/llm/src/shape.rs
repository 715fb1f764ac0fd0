//! The shape of a tool's arguments, compiled from its JSON Schema into what the constrained
//! decoder can follow: objects with ordered properties, strings (free or one of a set),
//! numbers, booleans, arrays and tagged unions (a `oneOf` of objects told apart by one
//! constant property, like a rule's steps by their `tool`). `$ref`s are resolved, `["string","null"]`-style unions keep
//! their first non-null type, and anything else becomes a free string. The decoder only
//! guarantees this shape; the full schema is still checked afterwards with `jsonschema`.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Object(Vec<Property>),
    /// A string; with `options`, exactly one of them.
    Str {
        options: Option<Vec<String>>,
    },
    Integer,
    Number,
    Bool,
    /// A list; the decoder closes it only after `min_items` items (the schema's
    /// `minItems`).
    Array {
        item: Box<Shape>,
        min_items: usize,
    },
    /// An object whose first property, `tag`, is a constant that picks the variant: the
    /// model chooses the tag, and the rest follows that variant's properties (without it).
    Tagged {
        tag: String,
        variants: Vec<(String, Vec<Property>)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub name: String,
    pub shape: Shape,
    pub required: bool,
}

/// Nesting deeper than this is decoded as a free string (and then fails validation).
const MAX_DEPTH: usize = 6;

impl Shape {
    /// Compiles `schema`, resolving `#/$defs/..` and `#/definitions/..` against `schema`
    /// itself (the arguments schema is the document root).
    pub fn of(schema: &Value) -> Shape {
        compile(schema, schema, 0)
    }
}

fn compile(node: &Value, root: &Value, depth: usize) -> Shape {
    let free = Shape::Str { options: None };
    if depth > MAX_DEPTH {
        return free;
    }
    let Some(obj) = node.as_object() else {
        return free;
    };
    if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
        return match resolve(root, target) {
            Some(t) => compile(t, root, depth + 1),
            None => free,
        };
    }
    if let Some(c) = obj.get("const") {
        return Shape::Str {
            options: Some(vec![scalar_text(c)]),
        };
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        let options: Vec<String> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(scalar_text)
            .collect();
        if !options.is_empty() {
            return Shape::Str {
                options: Some(options),
            };
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = obj.get(key).and_then(Value::as_array) {
            if let Some(tagged) = tagged(alts, root, depth) {
                return tagged;
            }
            // A union of constants is a set of options; otherwise the first non-null branch.
            let consts: Option<Vec<String>> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .map(|a| a.get("const").map(scalar_text))
                .collect();
            if let Some(options) = consts.filter(|o| !o.is_empty()) {
                return Shape::Str {
                    options: Some(options),
                };
            }
            if let Some(first) = alts
                .iter()
                .find(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            {
                return compile(first, root, depth + 1);
            }
        }
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        if let [only] = all.as_slice() {
            return compile(only, root, depth + 1);
        }
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ if obj.contains_key("properties") => "object",
        _ => "string",
    };
    match ty {
        "object" => Shape::Object(properties(obj, root, depth)),
        "integer" => Shape::Integer,
        "number" => Shape::Number,
        "boolean" => Shape::Bool,
        "array" => Shape::Array {
            item: Box::new(
                obj.get("items")
                    .map_or(free.clone(), |i| compile(i, root, depth + 1)),
            ),
            min_items: obj
                .get("minItems")
                .and_then(Value::as_u64)
                .map_or(0, |n| n as usize),
        },
        _ => free,
    }
}

/// A union whose every branch is an object that requires, first, the same property with a
/// `const` string value: `{"tool": {"const": "service_restart"}, "args": {...}}`.
fn tagged(alts: &[Value], root: &Value, depth: usize) -> Option<Shape> {
    let mut tag: Option<String> = None;
    let mut variants = Vec::with_capacity(alts.len());
    for alt in alts {
        let alt = match alt.get("$ref").and_then(Value::as_str) {
            Some(r) => resolve(root, r)?,
            None => alt,
        };
        let obj = alt.as_object()?;
        let first = obj.get("required")?.as_array()?.first()?.as_str()?;
        if tag.as_deref().is_some_and(|t| t != first) {
            return None;
        }
        let value = obj.get("properties")?.get(first)?.get("const")?.as_str()?;
        let props: Vec<Property> = properties(obj, root, depth + 1)
            .into_iter()
            .filter(|p| p.name != first)
            .collect();
        tag = Some(first.to_string());
        variants.push((value.to_string(), props));
    }
    Some(Shape::Tagged {
        tag: tag?,
        variants,
    })
}

fn properties(obj: &Map<String, Value>, root: &Value, depth: usize) -> Vec<Property> {
    let required: Vec<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = obj.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    // Required properties first, in the order `required` lists them, then the optional
    // ones: the model commits to what it must give before deciding what to add.
    let property = |name: &str, required: bool| {
        props.get(name).map(|s| Property {
            name: name.to_string(),
            shape: compile(s, root, depth + 1),
            required,
        })
    };
    let mut out: Vec<Property> = required
        .iter()
        .filter_map(|name| property(name, true))
        .collect();
    out.extend(
        props
            .keys()
            .filter(|k| !required.contains(&k.as_str()))
            .filter_map(|name| property(name, false)),
    );
    out
}

fn resolve<'a>(root: &'a Value, target: &str) -> Option<&'a Value> {
    let pointer = target.strip_prefix('#')?;
    root.pointer(pointer)
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn schemars_style_schemas_compile() {
        let schema = json!({
            "type": "object",
            "properties": {
                "service": {"type": "string", "pattern": "^[a-z]"},
                "plan": {"anyOf": [{"$ref": "#/$defs/Plan"}, {"type": "null"}]},
                "tail": {"type": ["integer", "null"]},
                "cpus": {"type": "number"},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["service"],
            "$defs": {"Plan": {"type": "string", "enum": ["small", "medium", "large"]}}
        });
        let Shape::Object(props) = Shape::of(&schema) else {
            panic!("object expected")
        };
        assert_eq!(
            (props[0].name.as_str(), props[0].required),
            ("service", true)
        );
        assert!(props[1..].iter().all(|p| !p.required));
        let by_name = |n: &str| &props.iter().find(|p| p.name == n).unwrap().shape;
        assert_eq!(
            by_name("plan"),
            &Shape::Str {
                options: Some(vec!["small".into(), "medium".into(), "large".into()])
            }
        );
        assert_eq!(by_name("tail"), &Shape::Integer);
        assert_eq!(by_name("cpus"), &Shape::Number);
        assert_eq!(
            by_name("tags"),
            &Shape::Array {
                item: Box::new(Shape::Str { options: None }),
                min_items: 0
            }
        );
    }

    #[test]
    fn unions_of_objects_with_a_constant_first_property_are_tagged() {
        let s = json!({"oneOf": [
            {"type": "object", "required": ["tool", "args"], "properties": {
                "tool": {"const": "service_restart"},
                "args": {"type": "object", "required": ["service"],
                         "properties": {"service": {"type": "string"}}},
                "until": {"type": "string"}}},
            {"type": "object", "required": ["tool", "args"], "properties": {
                "tool": {"const": "notify"},
                "args": {"type": "object", "properties": {}}}}
        ]});
        let Shape::Tagged { tag, variants } = Shape::of(&s) else {
            panic!("tagged expected")
        };
        assert_eq!(tag, "tool");
        let names: Vec<&str> = variants.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["service_restart", "notify"]);
        let restart: Vec<(&str, bool)> = variants[0]
            .1
            .iter()
            .map(|p| (p.name.as_str(), p.required))
            .collect();
        assert_eq!(restart, [("args", true), ("until", false)]);
        // Branches that differ in their first required property are not one union.
        let mixed = json!({"oneOf": [
            {"type": "object", "required": ["a"], "properties": {"a": {"const": "x"}}},
            {"type": "object", "required": ["b"], "properties": {"b": {"const": "y"}}}
        ]});
        assert!(!matches!(Shape::of(&mixed), Shape::Tagged { .. }));
    }

    #[test]
    fn unions_of_constants_and_broken_refs() {
        let s = json!({"oneOf": [{"const": "previous"}, {"const": "latest"}]});
        assert_eq!(
            Shape::of(&s),
            Shape::Str {
                options: Some(vec!["previous".into(), "latest".into()])
            }
        );
        assert_eq!(
            Shape::of(&json!({"$ref": "#/$defs/Missing"})),
            Shape::Str { options: None }
        );
        assert_eq!(Shape::of(&json!({})), Shape::Str { options: None });
    }
}
