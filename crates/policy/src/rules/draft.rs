//! Rules drafted from plain words (`steward rules draft`): the grammar a planner fills in,
//! built from the rulebook's own model (its sources, labels, durations and `until`) and the
//! tool catalogue's argument schemas, and the way back from a filled-in draft to a rule file
//! with an example event.
//!
//! The grammar is a JSON Schema, because that is what the planner's constrained decoder
//! follows (`steward_llm::shape`): triggers and steps are tagged unions (`source`, `tool`),
//! so a new tool, monitor kind or alert name needs no change here. A draft is never trusted:
//! it becomes TOML that goes through the loader's checks and policy like any rule file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use steward_protocol::EventSource;
use steward_tools::CATALOGUE;

use super::examples::EventInput;
use super::render::duration;
use super::syntax;
use super::template::{self, Piece};
use crate::examples::DecisionKind;

/// The name of the one "tool" a drafting planner calls; its arguments are the draft.
pub const DRAFT_TOOL: &str = "rule";

/// The kinds of event the Docker monitor emits (`on = "monitor:<kind>"`).
pub const MONITOR_KINDS: [&str; 4] = ["unhealthy", "died", "oom", "restart_loop"];

/// Labels a rule may narrow on, per source, with their values when they are a closed set.
const ALERT_LABELS: [(&str, Option<&[&str]>); 2] = [
    ("service", None),
    ("severity", Some(&["critical", "warning", "info"])),
];
const MONITOR_LABELS: [(&str, Option<&[&str]>); 2] =
    [("service", None), ("kind", Some(&["platform", "tenant"]))];

/// Schema keywords that constrain a literal value: a step's argument may be a `{name}`
/// placeholder instead, which the tool's schema checks only once rendered for an event.
const VALUE_CONSTRAINTS: [&str; 4] = ["pattern", "minLength", "maxLength", "format"];

/// The JSON Schema of a draft: `trigger` (a union on `source`), `for`, `steps` (a union on
/// `tool` over the catalogue, each with that tool's arguments) and an optional throttle.
pub fn schema() -> Value {
    let string = |description: &str| json!({"type": "string", "description": description});
    let labels = |names: &[(&str, Option<&[&str]>)]| {
        let props: Map<String, Value> = names
            .iter()
            .map(|(name, values)| {
                let v = match values {
                    Some(values) => json!({"type": "string", "enum": values}),
                    None => json!({"type": "string"}),
                };
                (name.to_string(), v)
            })
            .collect();
        json!({"type": "object", "properties": props, "additionalProperties": false})
    };
    let variant = |source: &str, key: &str, value: Value, labels: Option<Value>| {
        let mut props = Map::new();
        props.insert("source".into(), json!({"const": source}));
        props.insert(key.into(), value);
        if let Some(l) = labels {
            props.insert("labels".into(), l);
        }
        json!({"type": "object", "properties": props, "required": ["source", key],
               "additionalProperties": false})
    };
    let trigger = json!({"oneOf": [
        variant("alert", "name", string("the alert's alertname, e.g. ServiceDown"),
                Some(labels(&ALERT_LABELS[..]))),
        variant("monitor", "kind", json!({"type": "string", "enum": MONITOR_KINDS}),
                Some(labels(&MONITOR_LABELS[..]))),
        variant("hook", "name", string("the signed webhook's name"), None),
        variant("schedule", "cron", string("minute hour day-of-month month day-of-week"), None),
    ]});
    let steps: Vec<Value> = CATALOGUE
        .iter()
        .filter(|t| t.name != "respond")
        .filter_map(|t| {
            let args = steward_tools::schema(t.name)?;
            Some(json!({
                "type": "object",
                "properties": {
                    "tool": {"const": t.name},
                    "args": loosen(&args, &args, 0),
                    "until": string("healthy within <duration> or done"),
                },
                "required": ["tool", "args"],
                "additionalProperties": false,
            }))
        })
        .collect();
    json!({
        "type": "object",
        "properties": {
            "trigger": trigger,
            "for": string("how long the condition lasts before the first step, e.g. 2m; 0s: at once"),
            "steps": {"type": "array", "minItems": 1, "items": {"oneOf": steps}},
            "once_within": string("run at most once within this long, e.g. 10m"),
            "group_by": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["trigger", "for", "steps"],
        "additionalProperties": false,
    })
}

/// A tool's argument schema inside the draft's: `$ref`s inlined (the draft is the document
/// root now), the generator's metadata dropped, and string constraints lifted (see
/// [`VALUE_CONSTRAINTS`]).
fn loosen(node: &Value, root: &Value, depth: usize) -> Value {
    match node {
        Value::Object(obj) => {
            if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
                let resolved = target
                    .strip_prefix('#')
                    .and_then(|p| root.pointer(p))
                    .filter(|_| depth < 8);
                // A recursive definition (origin_check's materials) stops being checked
                // here rather than leaving a `$ref` the draft's document cannot resolve.
                return match resolved {
                    Some(t) => loosen(t, root, depth + 1),
                    None => Value::Object(Map::new()),
                };
            }
            let mut out = Map::new();
            for (k, v) in obj {
                if matches!(k.as_str(), "$schema" | "$defs" | "definitions" | "title")
                    || VALUE_CONSTRAINTS.contains(&k.as_str())
                {
                    continue;
                }
                let v = if k == "properties" {
                    // Property names are not keywords: keep every one.
                    match v.as_object() {
                        Some(props) => Value::Object(
                            props
                                .iter()
                                .map(|(n, s)| (n.clone(), loosen(s, root, depth)))
                                .collect(),
                        ),
                        None => v.clone(),
                    }
                } else {
                    loosen(v, root, depth)
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| loosen(v, root, depth)).collect()),
        other => other.clone(),
    }
}

/// What the planner filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub trigger: Trigger,
    #[serde(rename = "for", default)]
    pub debounce: Option<String>,
    pub steps: Vec<DraftStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once_within: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Trigger {
    Alert {
        name: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    },
    Monitor {
        kind: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    },
    Hook {
        name: String,
    },
    Schedule {
        cron: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DraftStep {
    pub tool: String,
    #[serde(default)]
    pub args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

impl Draft {
    /// The draft in a planner's call arguments; `Err` says why it is not one.
    pub fn from_json(value: &Value) -> Result<Draft, String> {
        serde_json::from_value(value.clone()).map_err(|e| format!("not a rule draft: {e}"))
    }

    /// `on` as a rule file writes it.
    pub fn on(&self) -> String {
        match &self.trigger {
            Trigger::Alert { name, .. } => format!("alert:{name}"),
            Trigger::Monitor { kind, .. } => format!("monitor:{kind}"),
            Trigger::Hook { name } => format!("hook:{name}"),
            Trigger::Schedule { cron } => format!("schedule:{cron}"),
        }
    }

    fn labels(&self) -> Option<&BTreeMap<String, String>> {
        match &self.trigger {
            Trigger::Alert { labels, .. } | Trigger::Monitor { labels, .. } => Some(labels),
            Trigger::Hook { .. } | Trigger::Schedule { .. } => None,
        }
    }

    /// An id from what the rule is about: `psra-unhealthy`, `servicedown`,
    /// `schedule-db-backup`; lowercase `a-z 0-9 -`, at most 40 characters.
    pub fn suggested_id(&self) -> String {
        let service = self.labels().and_then(|l| l.get("service")).cloned();
        let what = match &self.trigger {
            Trigger::Alert { name, .. } | Trigger::Hook { name } => name.clone(),
            Trigger::Monitor { kind, .. } => kind.clone(),
            Trigger::Schedule { .. } => format!(
                "schedule-{}",
                self.steps.first().map_or("rule", |s| s.tool.as_str())
            ),
        };
        let raw = match service {
            Some(s) => format!("{s}-{what}"),
            None => what,
        };
        let mut id = String::new();
        for c in raw.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                id.push(c);
            } else if !id.is_empty() && !id.ends_with('-') {
                id.push('-');
            }
        }
        let id: String = id.trim_matches('-').chars().take(40).collect();
        let id = id.trim_end_matches('-').to_string();
        if id.starts_with(|c: char| c.is_ascii_alphabetic()) {
            id
        } else {
            format!("rule-{id}")
        }
    }

    /// An event this rule answers, for its `[[rule.example]]` and `rules test`: the
    /// trigger's source and name, its labels, and a value for every placeholder the steps
    /// use (`service` from `services`, the platform's first, else `example`). A schedule's
    /// events are named after the rule's `id`.
    pub fn example_event(&self, id: &str, services: &[String]) -> EventInput {
        let (source, name) = match &self.trigger {
            Trigger::Alert { name, .. } => (EventSource::Alert, name.clone()),
            Trigger::Monitor { kind, .. } => (EventSource::Monitor, kind.clone()),
            Trigger::Hook { name } => (EventSource::Hook, name.clone()),
            Trigger::Schedule { .. } => (EventSource::Schedule, id.to_string()),
        };
        let mut labels = self.labels().cloned().unwrap_or_default();
        let mut fields = BTreeMap::new();
        for name in self.placeholders() {
            if labels.contains_key(&name) {
                continue;
            }
            let sample = match name.as_str() {
                "service" => services
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "example".into()),
                _ => "example".into(),
            };
            // Hooks carry their typed values as fields; alerts and the monitor as labels.
            if source == EventSource::Hook {
                fields.insert(name, Value::String(sample));
            } else {
                labels.insert(name, sample);
            }
        }
        EventInput {
            source,
            name,
            status: None,
            key: None,
            labels,
            fields,
            text: None,
            at: None,
        }
    }

    /// Every `{name}` the steps' arguments use, in order, once each.
    fn placeholders(&self) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => {
                    for p in template::parse(s).unwrap_or_default() {
                        if let Piece::Value { name, .. } = p {
                            if !out.contains(&name) {
                                out.push(name);
                            }
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                Value::Object(map) => map.values().for_each(|i| walk(i, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for step in &self.steps {
            step.args.values().for_each(|v| walk(v, &mut out));
        }
        out
    }

    /// The rule file: one `[[rule]]` with the draft's fields and steps, and `example` as its
    /// `[[rule.example]]` expecting the draft's steps and, when given, these decisions.
    pub fn to_toml(
        &self,
        id: &str,
        description: &str,
        example: &EventInput,
        decisions: Option<&[DecisionKind]>,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Drafted by `steward rules draft`; checked by `steward rules check` when it loads."
        );
        out.push_str("\n[[rule]]\n");
        let _ = writeln!(out, "id = {}", quote(id));
        let _ = writeln!(out, "description = {}", quote(description));
        let _ = writeln!(out, "on = {}", quote(&self.on()));
        if let Some(labels) = self.labels().filter(|l| !l.is_empty()) {
            let _ = writeln!(out, "labels = {}", inline_strings(labels));
        }
        if let Some(d) = self.debounce.as_deref().map(canonical_duration) {
            if d != "0s" {
                let _ = writeln!(out, "for = {}", quote(&d));
            }
        }
        // A throttle of 0s or an empty group is the model filling a blank: no throttle.
        let throttle = self
            .once_within
            .as_deref()
            .map(canonical_duration)
            .filter(|w| w != "0s");
        if let Some(w) = &throttle {
            let _ = writeln!(out, "once_within = {}", quote(w));
        }
        if let Some(g) = self
            .group_by
            .as_ref()
            .filter(|g| !g.is_empty() && throttle.is_some())
        {
            let items: Vec<String> = g.iter().map(|s| quote(s)).collect();
            let _ = writeln!(out, "group_by = [{}]", items.join(", "));
        }
        for step in &self.steps {
            out.push_str("\n[[rule.step]]\n");
            let _ = writeln!(out, "tool = {}", quote(&step.tool));
            let _ = writeln!(out, "args = {}", inline(&Value::Object(step.args.clone())));
            if let Some(u) = &step.until {
                let _ = writeln!(out, "until = {}", quote(&canonical_until(u)));
            }
        }
        out.push_str("\n[[rule.example]]\n");
        let mut event = format!(
            "{{ source = {}, name = {}",
            quote(example.source.as_str()),
            quote(&example.name)
        );
        if !example.labels.is_empty() {
            let _ = write!(event, ", labels = {}", inline_strings(&example.labels));
        }
        if !example.fields.is_empty() {
            let fields: Map<String, Value> = example
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let _ = write!(event, ", fields = {}", inline(&Value::Object(fields)));
        }
        event.push_str(" }");
        let _ = writeln!(out, "event = {event}");
        let tools: Vec<String> = self.steps.iter().map(|s| quote(&s.tool)).collect();
        let _ = writeln!(out, "steps = [{}]", tools.join(", "));
        if let Some(d) = decisions {
            let kinds: Vec<String> = d.iter().map(|k| quote(&k.to_string())).collect();
            let _ = writeln!(out, "decisions = [{}]", kinds.join(", "));
        }
        out
    }
}

/// `2 minutes` → `2m`; anything that is not a duration stays as written, for the loader
/// to refuse with its own message.
fn canonical_duration(s: &str) -> String {
    syntax::duration(s).map_or_else(|_| s.trim().to_string(), duration)
}

fn canonical_until(s: &str) -> String {
    syntax::until(s).map_or_else(|_| s.trim().to_string(), |u| u.to_string())
}

/// A TOML basic string: quotes, backslashes and control characters escaped, so an
/// instruction's text can never end the string or start a key of its own.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn inline_strings(map: &BTreeMap<String, String>) -> String {
    let obj: Map<String, Value> = map
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    inline(&Value::Object(obj))
}

/// JSON as an inline TOML value (`{ service = "psra" }`); `null`s are left out, as TOML
/// has none and an absent argument means the same.
fn inline(v: &Value) -> String {
    match v {
        // Only reachable at the top, which callers never pass: nulls inside arrays and
        // tables are left out below.
        Value::Null => "{}".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().filter(|i| !i.is_null()).map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let pairs: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            if pairs.is_empty() {
                "{}".into()
            } else {
                format!("{{ {} }}", pairs.join(", "))
            }
        }
    }
}

/// A bare key when TOML allows one, else a quoted one.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn variants(node: &Value, tag: &str) -> Vec<String> {
        node["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["properties"][tag]["const"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_grammar_comes_from_the_rule_model_and_the_whole_catalogue() {
        let s = schema();
        assert_eq!(
            variants(&s["properties"]["trigger"], "source"),
            ["alert", "monitor", "hook", "schedule"]
        );
        let tools = variants(&s["properties"]["steps"]["items"], "tool");
        let catalogue: Vec<&str> = CATALOGUE
            .iter()
            .map(|t| t.name)
            .filter(|n| *n != "respond")
            .collect();
        assert_eq!(
            tools, catalogue,
            "every tool but respond, in catalogue order"
        );
        // Every step's arguments are that tool's own, $refs inlined, so the draft schema
        // compiles on its own; literal constraints are lifted for `{placeholders}`.
        let text = s.to_string();
        assert!(
            !text.contains("$ref") && !text.contains("\"pattern\""),
            "{text}"
        );
        let provision = s["properties"]["steps"]["items"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["properties"]["tool"]["const"] == "tenant_provision")
            .unwrap();
        assert!(provision.to_string().contains("\"large\""));
        assert!(jsonschema::validator_for(&s).is_ok());
    }

    fn psra_draft() -> Draft {
        Draft::from_json(&json!({
            "trigger": {"source": "monitor", "kind": "unhealthy", "labels": {"service": "psra"}},
            "for": "2 minutes",
            "steps": [
                {"tool": "service_restart", "args": {"service": "psra"}, "until": "healthy within 60s"},
                {"tool": "service_rollback", "args": {"service": "psra", "to": "previous"}, "until": "healthy within 1 minute"},
                {"tool": "notify", "args": {"message": "{service} is still unhealthy", "severity": "critical"}}
            ],
            "once_within": "10m",
            "group_by": ["service"]
        }))
        .unwrap()
    }

    #[test]
    fn a_draft_becomes_a_rule_file_with_its_example() {
        let d = psra_draft();
        assert!(jsonschema::validator_for(&schema())
            .unwrap()
            .is_valid(&serde_json::to_value(&d).unwrap()));
        assert_eq!(d.on(), "monitor:unhealthy");
        assert_eq!(d.suggested_id(), "psra-unhealthy");
        let ex = d.example_event("psra-unhealthy", &["rentguy".into()]);
        assert_eq!(ex.labels.get("service").map(String::as_str), Some("psra"));
        let text = d.to_toml(
            "psra-unhealthy",
            "restart \"psra\"",
            &ex,
            Some(&[
                DecisionKind::Allow,
                DecisionKind::Allow,
                DecisionKind::Allow,
            ]),
        );
        for line in [
            "on = \"monitor:unhealthy\"",
            "labels = { service = \"psra\" }",
            "for = \"2m\"",
            "once_within = \"10m\"",
            "until = \"healthy within 1m\"",
            "args = { message = \"{service} is still unhealthy\", severity = \"critical\" }",
            "event = { source = \"monitor\", name = \"unhealthy\", labels = { service = \"psra\" } }",
            "steps = [\"service_restart\", \"service_rollback\", \"notify\"]",
            "decisions = [\"allow\", \"allow\", \"allow\"]",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["rule"][0]["description"].as_str(),
            Some("restart \"psra\"")
        );
    }

    #[test]
    fn placeholders_get_example_values_where_the_event_carries_them() {
        let d = Draft::from_json(&json!({
            "trigger": {"source": "alert", "name": "Service Down!"},
            "for": "0s",
            "steps": [{"tool": "service_restart", "args": {"service": "{service}"}}]
        }))
        .unwrap();
        assert_eq!(d.suggested_id(), "service-down");
        let ex = d.example_event("x", &["rentguy".into()]);
        assert_eq!(
            ex.labels.get("service").map(String::as_str),
            Some("rentguy")
        );
        assert!(!d.to_toml("x", "", &ex, None).contains("for ="));
        let mut blank = d.clone();
        blank.once_within = Some("0s".into());
        blank.group_by = Some(vec![]);
        let text = blank.to_toml("x", "", &ex, None);
        assert!(
            !text.contains("once_within") && !text.contains("group_by"),
            "{text}"
        );
        let hook = Draft::from_json(&json!({
            "trigger": {"source": "hook", "name": "signup"},
            "for": "0s",
            "steps": [{"tool": "tenant_check_subdomain", "args": {"subdomain": "{subdomain}"}}]
        }))
        .unwrap();
        let ex = hook.example_event("x", &[]);
        assert!(ex.labels.is_empty());
        assert_eq!(ex.fields.get("subdomain"), Some(&json!("example")));
        let cron = Draft::from_json(&json!({
            "trigger": {"source": "schedule", "cron": "0 3 * * *"},
            "for": "0s",
            "steps": [{"tool": "db_backup", "args": {"target": "acme"}}]
        }))
        .unwrap();
        assert_eq!(cron.suggested_id(), "schedule-db-backup");
        assert_eq!(cron.example_event("nightly", &[]).name, "nightly");
        assert!(Draft::from_json(&json!({"trigger": {"source": "mail"}})).is_err());
    }
}
