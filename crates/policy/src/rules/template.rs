//! Argument templates: `{name}` placeholders in a step's string arguments, filled only from
//! an event's typed values (labels, then fields), never from its free text; and
//! `{previous:/pointer}`, a whole argument taken from the previous step's output when that
//! step has run (the backup id `db_backup` made, for `db_verify_backup`).
//!
//! Rendering is one pass over the template: a value that itself contains `{` is copied
//! verbatim and never read as a placeholder, so a hostile label cannot inject a template.

use serde_json::{Map, Value};
use steward_protocol::Event;

/// Event attributes that are not typed values. `text` (alert annotations, webhook bodies)
/// is untrusted free text and must never fill an argument; the others are the event's own
/// envelope, which a rule names in `on`, not in arguments.
const NOT_VALUES: [&str; 8] = [
    "text",
    "annotations",
    "source",
    "status",
    "key",
    "at",
    "labels",
    "fields",
];

/// One piece of a parsed string template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    /// `{name}`, or `{name?}` (only as a whole argument value: omitted when the event has
    /// no such value).
    Value {
        name: String,
        optional: bool,
    },
    /// `{previous:/pointer}` (only as a whole argument value).
    Previous {
        pointer: String,
    },
}

/// What a `{previous:/pointer}` argument is planned as until its step runs: an object no
/// event value can produce (values render as strings or their own JSON type, never as
/// this key), so nothing but the rule's own template becomes one.
pub const PREVIOUS_MARKER: &str = "$previous";

/// Parses one string: `{name}` is a placeholder, `{{` and `}}` are literal braces, any
/// other brace is an error (so a typo never silently becomes literal text).
pub(crate) fn parse(s: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().is_some_and(|&(_, n)| n == '{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().is_some_and(|&(_, n)| n == '}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let rest = &s[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!(
                        "unclosed `{{` in {s:?}; write `{{{{` for a literal brace"
                    ));
                };
                let inner = &rest[..end];
                if let Some(pointer) = inner.strip_prefix("previous:") {
                    if !pointer.starts_with('/') || pointer.contains(char::is_whitespace) {
                        return Err(format!(
                            "{{previous:{pointer}}}: expected a JSON Pointer into the previous \
                             step's output, e.g. {{previous:/backup}}"
                        ));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Previous {
                        pointer: pointer.to_string(),
                    });
                    while chars.peek().is_some_and(|&(j, _)| j <= i + 1 + end) {
                        chars.next();
                    }
                    continue;
                }
                let (name, optional) = match inner.strip_suffix('?') {
                    Some(n) => (n, true),
                    None => (inner, false),
                };
                check_name(name)?;
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Value {
                    name: name.to_string(),
                    optional,
                });
                // Skip the placeholder's characters and its closing brace.
                while chars.peek().is_some_and(|&(j, _)| j <= i + 1 + end) {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "stray `}}` in {s:?}; write `}}}}` for a literal brace"
                ))
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    let optional_inside = pieces.len() > 1
        && pieces
            .iter()
            .any(|p| matches!(p, Piece::Value { optional: true, .. }));
    if optional_inside {
        return Err(format!(
            "an optional placeholder `{{name?}}` must be the whole value, not part of {s:?}"
        ));
    }
    if pieces.len() > 1 && pieces.iter().any(|p| matches!(p, Piece::Previous { .. })) {
        return Err(format!(
            "`{{previous:/pointer}}` must be the whole value, not part of {s:?}"
        ));
    }
    Ok(pieces)
}

/// A placeholder must name a typed value: a label or field name (`[A-Za-z_][A-Za-z0-9_]*`),
/// never the event's free text or envelope.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let root = name.split(['.', '[']).next().unwrap_or(name);
    if NOT_VALUES.contains(&root) {
        return Err(format!(
            "placeholder {{{name}}} does not name a typed value: `{root}` is the event's \
             {}, which can never fill an argument; use a label or field such as {{service}}",
            if root == "text" || root == "annotations" {
                "untrusted free text"
            } else {
                "envelope"
            }
        ));
    }
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "placeholder {{{name}}} is not a label or field name (letters, digits and _, \
             not starting with a digit)"
        ))
    }
}

/// Checks every string inside an argument value (nested arrays and objects too).
pub(crate) fn check(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) => parse(s).map(|_| ()),
        Value::Array(items) => items.iter().try_for_each(check),
        Value::Object(map) => map.values().try_for_each(check),
        _ => Ok(()),
    }
}

/// Renders the arguments of one step. `Err` names the argument (a JSON Pointer into the
/// arguments) and what is missing or wrong.
pub(crate) fn render_args(args: &Map<String, Value>, event: &Event) -> Result<Value, String> {
    let mut out = Map::new();
    for (k, v) in args {
        if let Some(v) = render(v, event, &format!("/{k}"))? {
            out.insert(k.clone(), v);
        }
    }
    Ok(Value::Object(out))
}

/// `None`: an optional placeholder without a value, so the argument is left out.
fn render(value: &Value, event: &Event, at: &str) -> Result<Option<Value>, String> {
    Ok(Some(match value {
        Value::String(s) => {
            let pieces = parse(s).map_err(|e| format!("argument {at}: {e}"))?;
            if let [Piece::Previous { pointer }] = pieces.as_slice() {
                let mut marker = Map::new();
                marker.insert(PREVIOUS_MARKER.into(), Value::String(pointer.clone()));
                return Ok(Some(Value::Object(marker)));
            }
            if let [Piece::Value { name, optional }] = pieces.as_slice() {
                return match typed(event, name) {
                    Some(v) => Ok(Some(v)),
                    None if *optional => Ok(None),
                    None => Err(missing(at, name)),
                };
            }
            let mut text = String::new();
            for p in pieces {
                match p {
                    Piece::Text(t) => text.push_str(&t),
                    Piece::Value { name, .. } => {
                        text.push_str(&event.value(&name).ok_or_else(|| missing(at, &name))?)
                    }
                    // Refused by `parse` unless whole.
                    Piece::Previous { .. } => {}
                }
            }
            Value::String(text)
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, v) in items.iter().enumerate() {
                out.extend(render(v, event, &format!("{at}/{i}"))?);
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if let Some(v) = render(v, event, &format!("{at}/{k}"))? {
                    out.insert(k.clone(), v);
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }))
}

/// A whole-value placeholder keeps the value's JSON type: a label is a string, a field
/// keeps its type (`{memory_mb}` from a numeric field stays a number for the schema).
fn typed(event: &Event, name: &str) -> Option<Value> {
    if let Some(v) = event.labels.get(name) {
        return Some(Value::String(v.clone()));
    }
    event.fields.get(name).filter(|v| !v.is_null()).cloned()
}

/// Whether rendered arguments still wait for the previous step's output.
pub fn needs_previous(args: &Value) -> bool {
    match args {
        Value::Object(map) => {
            (map.len() == 1 && map.get(PREVIOUS_MARKER).is_some_and(Value::is_string))
                || map.values().any(needs_previous)
        }
        Value::Array(items) => items.iter().any(needs_previous),
        _ => false,
    }
}

/// Fills every `{previous:/pointer}` of rendered arguments from the previous step's
/// output. `Err` names the pointer that has no value.
pub fn fill_previous(args: &Value, previous: Option<&Value>) -> Result<Value, String> {
    match args {
        Value::Object(map) if map.len() == 1 => {
            if let Some(Value::String(pointer)) = map.get(PREVIOUS_MARKER) {
                return previous
                    .and_then(|p| p.pointer(pointer))
                    .filter(|v| !v.is_null())
                    .cloned()
                    .ok_or_else(|| {
                        format!("the previous step's output has no value at {pointer}")
                    });
            }
            fill_object(map, previous)
        }
        Value::Object(map) => fill_object(map, previous),
        Value::Array(items) => items
            .iter()
            .map(|v| fill_previous(v, previous))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn fill_object(map: &Map<String, Value>, previous: Option<&Value>) -> Result<Value, String> {
    let mut out = Map::new();
    for (k, v) in map {
        out.insert(k.clone(), fill_previous(v, previous)?);
    }
    Ok(Value::Object(out))
}

fn missing(at: &str, name: &str) -> String {
    format!("argument {at}: the event has no label or field `{name}` for {{{name}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placeholders_escapes_and_refuses_stray_braces() {
        assert_eq!(
            parse("{a} and {{b}}").unwrap(),
            vec![
                Piece::Value {
                    name: "a".into(),
                    optional: false
                },
                Piece::Text(" and {b}".into())
            ]
        );
        assert_eq!(
            parse("{plan?}").unwrap(),
            vec![Piece::Value {
                name: "plan".into(),
                optional: true
            }]
        );
        for (bad, needle) in [
            ("{a", "unclosed"),
            ("a}", "stray"),
            ("{}", "not a label or field name"),
            ("{1a}", "not a label or field name"),
            ("{a b}", "not a label or field name"),
            ("{text}", "untrusted free text"),
            ("{annotations.summary}", "untrusted free text"),
            ("{key}", "envelope"),
            ("x {plan?}", "whole value"),
            ("id {previous:/backup}", "whole value"),
            ("{previous:backup}", "JSON Pointer"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn previous_placeholders_wait_for_the_previous_output_and_no_value_can_forge_one() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "source": "schedule", "name": "nightly", "status": "firing", "key": "k",
            "labels": {"target": "acme", "evil": "{previous:/backup}"}, "at": 0
        }))
        .unwrap();
        let mut args = Map::new();
        args.insert("backup".into(), Value::String("{previous:/backup}".into()));
        args.insert("note".into(), Value::String("{evil}".into()));
        let rendered = render_args(&args, &event).unwrap();
        assert!(needs_previous(&rendered));
        // A value that looks like the template is copied, never read as one.
        assert_eq!(rendered["note"], "{previous:/backup}");
        let output = serde_json::json!({"backup": "acme-20261201T023000000Z"});
        let filled = fill_previous(&rendered, Some(&output)).unwrap();
        assert_eq!(filled["backup"], "acme-20261201T023000000Z");
        assert!(!needs_previous(&filled));
        let e = fill_previous(&rendered, Some(&serde_json::json!({}))).unwrap_err();
        assert!(e.contains("/backup"), "{e}");
        assert!(fill_previous(&rendered, None).is_err());
    }
}
