//! Tool lists for the evals: our catalogue, or any list in the OpenAI function format with
//! the loose type names public function-calling datasets use normalized to JSON Schema.

use std::path::Path;

use serde_json::{json, Map, Value};
use steward_tools::Effect;

use crate::{Error, Result, ToolDef};

/// The tools offered to the model (each with its effect class when it declares one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolSet {
    pub defs: Vec<ToolDef>,
}

impl ToolSet {
    /// Every catalogue tool, with its summary, effect and the JSON Schema generated from its
    /// typed arguments (the same source `tools/*.json` is exported from).
    pub fn catalogue() -> ToolSet {
        let mut set = ToolSet::default();
        for spec in steward_tools::CATALOGUE {
            let mut parameters = steward_tools::schema(spec.name)
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            if let Some(obj) = parameters.as_object_mut() {
                // Meta keys say nothing to a model.
                obj.remove("$schema");
                obj.remove("title");
            }
            set.defs.push(ToolDef {
                name: spec.name.to_string(),
                description: spec.summary.to_string(),
                parameters,
                effect: Some(spec.effect),
            });
        }
        set
    }

    /// Reads a tools file: a JSON array of `{"type":"function","function":{...}}` entries or
    /// bare `{"name","description","parameters"}` objects (`input_schema` is accepted for
    /// `parameters`, as in `tools/*.json`), or an object with such an array under `tools` or
    /// `functions`. An optional `effect` (`none|read|write|destructive`) per tool is kept.
    pub fn from_file(path: &Path) -> Result<ToolSet> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            Error::Data(format!(
                "{}: not JSON ({e}); expected a list of tools in the OpenAI function format",
                path.display()
            ))
        })?;
        ToolSet::from_value(&value, &path.display().to_string())
    }

    /// Parses a tool list already read as JSON; `origin` names it in errors.
    pub fn from_value(value: &Value, origin: &str) -> Result<ToolSet> {
        let list = match value {
            Value::Array(list) => list,
            Value::Object(obj) => match obj.get("tools").or_else(|| obj.get("functions")) {
                Some(Value::Array(list)) => list,
                _ => {
                    return Err(Error::Data(format!(
                    "{origin}: expected a JSON array of tools (or an object with a `tools` array)"
                )))
                }
            },
            _ => {
                return Err(Error::Data(format!(
                    "{origin}: expected a JSON array of tools in the OpenAI function format"
                )))
            }
        };
        let mut set = ToolSet::default();
        for (i, entry) in list.iter().enumerate() {
            let at = format!("{origin}: tool {i}");
            let def = parse_tool(entry, &at)?;
            if set.get(&def.name).is_some() {
                return Err(Error::Data(format!(
                    "{at}: duplicate tool name {:?}",
                    def.name
                )));
            }
            set.defs.push(def);
        }
        if set.defs.is_empty() {
            return Err(Error::Data(format!("{origin}: the tool list is empty")));
        }
        Ok(set)
    }

    pub fn get(&self, name: &str) -> Option<&ToolDef> {
        self.defs.iter().find(|d| d.name == name)
    }

    /// The declared effect of a tool, if this list declares one.
    pub fn effect(&self, name: &str) -> Option<Effect> {
        self.get(name).and_then(|d| d.effect)
    }

    /// The same list with our `respond` tool added when it lacks one: the planner always
    /// needs a way to answer or ask back without acting.
    pub fn with_respond(mut self) -> ToolSet {
        if self.get("respond").is_none() {
            if let Some(def) = ToolSet::catalogue().get("respond").cloned() {
                self.defs.push(def);
            }
        }
        self
    }

    pub fn names(&self) -> Vec<&str> {
        self.defs.iter().map(|d| d.name.as_str()).collect()
    }
}

fn parse_tool(entry: &Value, at: &str) -> Result<ToolDef> {
    let Some(obj) = entry.as_object() else {
        return Err(Error::Data(format!("{at}: expected an object")));
    };
    // {"type":"function","function":{...}} or the bare function object.
    let func = match obj.get("function") {
        Some(Value::Object(f)) => f,
        Some(_) => return Err(Error::Data(format!("{at}: `function` must be an object"))),
        None => obj,
    };
    let name = match func.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => n.trim().to_string(),
        _ => {
            return Err(Error::Data(format!(
                "{at}: missing `name` (a non-empty string)"
            )))
        }
    };
    let at = format!("{at} ({name})");
    let description = match func.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) => d.clone(),
        Some(_) => return Err(Error::Data(format!("{at}: `description` must be a string"))),
    };
    let parameters = match func.get("parameters").or_else(|| func.get("input_schema")) {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(p @ Value::Object(_)) => normalize_schema(p, &format!("{at}: parameters"))?,
        Some(_) => return Err(Error::Data(format!("{at}: `parameters` must be an object"))),
    };
    let effect = match func.get("effect").or_else(|| obj.get("effect")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(serde_json::from_value::<Effect>(v.clone()).map_err(|_| {
            Error::Data(format!(
                "{at}: `effect` must be none, read, write or destructive, not {v}"
            ))
        })?),
    };
    Ok(ToolDef {
        name,
        description,
        parameters,
        effect,
    })
}

/// Maps a loose type name to JSON Schema: `Some(Some(t))` a JSON Schema type, `Some(None)`
/// no type constraint (`any`), `None` unknown.
fn json_type(loose: &str) -> Option<Option<&'static str>> {
    Some(Some(match loose.trim().to_ascii_lowercase().as_str() {
        "object" | "dict" | "map" | "hashmap" => "object",
        "array" | "list" | "tuple" | "set" => "array",
        "number" | "float" | "double" | "decimal" => "number",
        "integer" | "int" | "long" => "integer",
        "boolean" | "bool" => "boolean",
        "string" | "str" | "char" => "string",
        "null" | "none" | "nonetype" => "null",
        "any" => return Some(None),
        _ => return None,
    }))
}

/// Normalizes a parameters schema recursively: loose type names (`dict`, `float`, `tuple`,
/// `any`, `int`, `bool`, `str`, `list`) become JSON Schema types (`any` drops the type), in
/// `properties`, `items`, `prefixItems`, `additionalProperties`, `anyOf`/`oneOf`/`allOf`/`not`
/// and `$defs`/`definitions`. An unknown type name is an error naming where it is.
pub fn normalize_schema(schema: &Value, at: &str) -> Result<Value> {
    let Some(obj) = schema.as_object() else {
        // `true`/`false` schemas are valid JSON Schema; anything else is not.
        return match schema {
            Value::Bool(_) => Ok(schema.clone()),
            _ => Err(Error::Data(format!("{at}: a schema must be an object"))),
        };
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let here = format!("{at}.{key}");
        let normalized = match key.as_str() {
            "type" => match normalize_type(value, &here)? {
                Some(t) => t,
                None => continue,
            },
            "properties" | "$defs" | "definitions" | "patternProperties" => {
                let Some(props) = value.as_object() else {
                    return Err(Error::Data(format!("{here}: must be an object")));
                };
                let mut map = Map::new();
                for (name, sub) in props {
                    map.insert(
                        name.clone(),
                        normalize_schema(sub, &format!("{here}.{name}"))?,
                    );
                }
                Value::Object(map)
            }
            "items" | "additionalProperties" | "not" | "contains" | "additionalItems" => {
                match value {
                    Value::Array(list) => Value::Array(normalize_list(list, &here)?),
                    Value::Object(_) => normalize_schema(value, &here)?,
                    other => other.clone(),
                }
            }
            "prefixItems" | "anyOf" | "oneOf" | "allOf" => match value {
                Value::Array(list) => Value::Array(normalize_list(list, &here)?),
                _ => return Err(Error::Data(format!("{here}: must be a list of schemas"))),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), normalized);
    }
    Ok(Value::Object(out))
}

fn normalize_list(list: &[Value], at: &str) -> Result<Vec<Value>> {
    list.iter()
        .enumerate()
        .map(|(i, s)| normalize_schema(s, &format!("{at}[{i}]")))
        .collect()
}

/// `None` when the type constraint goes away (`any`).
fn normalize_type(value: &Value, at: &str) -> Result<Option<Value>> {
    let unknown = |t: &str| {
        Error::Data(format!(
            "{at}: unknown type {t:?}; use a JSON Schema type or one of dict, float, tuple, any, \
             int, bool, str, list"
        ))
    };
    match value {
        Value::String(t) => match json_type(t).ok_or_else(|| unknown(t))? {
            Some(t) => Ok(Some(Value::String(t.to_string()))),
            None => Ok(None),
        },
        Value::Array(list) => {
            let mut types = Vec::new();
            for t in list {
                let Some(name) = t.as_str() else {
                    return Err(Error::Data(format!("{at}: type names must be strings")));
                };
                match json_type(name).ok_or_else(|| unknown(name))? {
                    // `any` in a union makes the whole union unconstrained.
                    None => return Ok(None),
                    Some(t) => {
                        let t = Value::String(t.to_string());
                        if !types.contains(&t) {
                            types.push(t);
                        }
                    }
                }
            }
            Ok(Some(Value::Array(types)))
        }
        _ => Err(Error::Data(format!(
            "{at}: `type` must be a string or a list of strings"
        ))),
    }
}
