//! Eval cases: one JSON object per line of `evals/cases/*.jsonl` (format in evals/README.md).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::rule::ExpectedRule;
use super::score::EVAL_NOW;
use super::tools::ToolSet;
use crate::{Error, Inventory, Result, Turn};

/// One acceptable value of one argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Accept {
    /// `null`: the argument may be absent (or null).
    Absent,
    /// A literal: equal JSON (numbers compare by value).
    Value(Value),
    /// `{"$any": true}`: present, any value.
    Any,
    /// `{"$contains": "x"}` or `{"$contains": ["x", "y"]}`: a string containing every
    /// fragment, ignoring case.
    Contains(Vec<String>),
    /// `{"$time": "24h"}`: a time or rollback target that resolves to the same thing as this
    /// one (`yesterday` = `24h ago` = `1d`; `previous` = `prev`; release ids literally).
    Time(String),
}

impl Accept {
    pub(crate) fn parse(value: &Value, at: &str) -> Result<Accept> {
        let Value::Object(obj) = value else {
            return Ok(match value {
                Value::Null => Accept::Absent,
                v => Accept::Value(v.clone()),
            });
        };
        let matcher = obj.len() == 1 && obj.keys().all(|k| k.starts_with('$'));
        if !matcher {
            return Ok(Accept::Value(value.clone()));
        }
        let bad = |what: &str| Error::Data(format!("{at}: {what}"));
        match obj.iter().next() {
            Some((k, Value::Bool(true))) if k == "$any" => Ok(Accept::Any),
            Some((k, Value::String(s))) if k == "$contains" && !s.is_empty() => {
                Ok(Accept::Contains(vec![s.clone()]))
            }
            Some((k, Value::Array(list))) if k == "$contains" && !list.is_empty() => list
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    _ => Err(bad("$contains takes non-empty strings")),
                })
                .collect::<Result<Vec<_>>>()
                .map(Accept::Contains),
            Some((k, Value::String(s))) if k == "$time" => {
                steward_tools::when::RollbackTarget::parse(s, EVAL_NOW)
                    .map_err(|e| bad(&format!("$time {s:?}: {e}")))?;
                Ok(Accept::Time(s.clone()))
            }
            _ => Err(bad(&format!(
                "unknown matcher {value}; use {{\"$any\": true}}, {{\"$contains\": \"text\"}} or \
                 {{\"$time\": \"24h\"}}"
            ))),
        }
    }

    /// The form it was written in, for reports.
    pub fn to_json(&self) -> Value {
        match self {
            Accept::Absent => Value::Null,
            Accept::Value(v) => v.clone(),
            Accept::Any => serde_json::json!({"$any": true}),
            Accept::Contains(parts) if parts.len() == 1 => {
                serde_json::json!({"$contains": parts[0]})
            }
            Accept::Contains(parts) => serde_json::json!({ "$contains": parts }),
            Accept::Time(t) => serde_json::json!({ "$time": t }),
        }
    }
}

/// One acceptable call.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub tool: String,
    /// Per argument, the acceptable values. `None`: any arguments (only sensible for
    /// `respond`).
    pub args: Option<BTreeMap<String, Vec<Accept>>>,
}

impl Expected {
    /// A call that matches this expectation: the first acceptable value of each argument
    /// (`$contains` fragments joined, `$time` as written, `$any` as `"x"`), and a fixed text
    /// for a bare `respond`. What a perfect planner would say; tests use it to check that
    /// every case can be passed.
    pub fn example_call(&self) -> crate::ProposedCall {
        let mut args = Map::new();
        match &self.args {
            None => {
                args.insert("text".into(), Value::String("ok".into()));
            }
            Some(expected) => {
                for (key, alts) in expected {
                    let value = alts.iter().find_map(|a| match a {
                        Accept::Absent => None,
                        Accept::Value(v) => Some(v.clone()),
                        Accept::Any => Some(Value::String("x".into())),
                        Accept::Contains(parts) => Some(Value::String(parts.join(" "))),
                        Accept::Time(t) => Some(Value::String(t.clone())),
                    });
                    if let Some(v) = value {
                        args.insert(key.clone(), v);
                    }
                }
            }
        }
        crate::ProposedCall {
            name: self.tool.clone(),
            arguments: Value::Object(args),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("tool".into(), Value::String(self.tool.clone()));
        if let Some(args) = &self.args {
            let args: Map<String, Value> = args
                .iter()
                .map(|(k, alts)| (k.clone(), alts.iter().map(Accept::to_json).collect()))
                .collect();
            obj.insert("args".into(), Value::Object(args));
        }
        Value::Object(obj)
    }
}

/// Which inventory the model sees for a case.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseInventory {
    /// The run's inventory (`evals/inventory.json`).
    Default,
    /// Given in the case, or named by it (`"inventory": "bare"` is
    /// `evals/inventories/bare.json`).
    Inline(Inventory),
}

/// Where a case file's named inventories and tool sets live: `inventories/<name>.json` and
/// `toolsets/<name>.json` next to the folder of the case file (`evals/cases/x.jsonl` names
/// `evals/inventories/`).
#[derive(Debug, Clone, Copy)]
struct Shared<'a> {
    evals: Option<&'a Path>,
}

impl Shared<'_> {
    fn file(&self, folder: &str, name: &str, at: &str) -> Result<std::path::PathBuf> {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plain {
            return Err(Error::Data(format!(
                "{at}: {name:?} is not a name of a file in evals/{folder}/ (letters, digits, - and _)"
            )));
        }
        let Some(evals) = self.evals else {
            return Err(Error::Data(format!(
                "{at}: {name:?} names a file in evals/{folder}/, which only cases read from a file can do"
            )));
        };
        Ok(evals.join(folder).join(format!("{name}.json")))
    }
}

/// One eval case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: String,
    pub category: String,
    /// What the person typed: the newest user turn.
    pub text: String,
    /// Earlier turns, in order.
    pub turns: Vec<Turn>,
    /// The user text comes before `turns` (the person asked, a tool result or alert arrived,
    /// the model decides the next step) instead of after them.
    pub text_first: bool,
    pub inventory: CaseInventory,
    /// The case's own tool list; the run's list when absent.
    pub tools: Option<ToolSet>,
    /// Acceptable calls; any one matching passes. Empty in a rule-drafting case.
    pub expect: Vec<Expected>,
    /// A rule-drafting case: the instruction is drafted into a rule, scored against this.
    pub rule: Option<ExpectedRule>,
    pub injection: bool,
    /// Arguments the expectation does not list are allowed.
    pub extra_args_ok: bool,
    /// Tools that count as an escape in an injection case, besides write/destructive ones.
    pub forbidden: Vec<String>,
    /// `file:line`, for messages.
    pub origin: String,
}

impl Case {
    /// Every expectation is `respond`: the model should answer or ask back, not act.
    pub fn expects_respond(&self) -> bool {
        !self.expect.is_empty() && self.expect.iter().all(|e| e.tool == "respond")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: String,
    category: String,
    text: String,
    /// [`Turn`]s, or tool results as executors return them (see [`turn`]).
    #[serde(default)]
    turns: Vec<Value>,
    #[serde(default)]
    text_first: bool,
    #[serde(default)]
    inventory: Option<Value>,
    #[serde(default)]
    tools: Option<Value>,
    #[serde(default)]
    expect: Vec<RawExpected>,
    #[serde(default)]
    rule: Option<Value>,
    #[serde(default)]
    injection: bool,
    #[serde(default)]
    extra_args_ok: bool,
    #[serde(default)]
    forbidden: Vec<String>,
    /// Free text for people; ignored.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

/// A tool's result as its executor returned it:
/// `{"role":"result","tool":"service_status","summary":"...","output":{...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResult {
    /// Always "result": [`turn`] chose this shape by it.
    #[serde(rename = "role")]
    _role: String,
    tool: String,
    summary: String,
    output: Value,
}

/// One earlier turn of a case. A tool result is rendered by [`Turn::tool_result`], the
/// function the conversation feeds results back with, so a case replays what `chat` shows
/// the model, however that rendering changes.
fn turn(raw: Value, at: &str) -> Result<Turn> {
    let parsed = if raw.get("role").and_then(Value::as_str) == Some("result") {
        serde_json::from_value::<RawResult>(raw)
            .map(|r| Turn::tool_result(&r.tool, &r.summary, &r.output))
    } else {
        serde_json::from_value(raw)
    };
    parsed.map_err(|e| Error::Data(format!("{at}: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpected {
    tool: String,
    #[serde(default)]
    args: Option<Map<String, Value>>,
}

/// Loads the cases of one `.jsonl` file, or of every `.jsonl` file in a directory (sorted by
/// name). Ids must be unique across everything loaded.
pub fn load_cases(path: &Path) -> Result<Vec<Case>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let files = if path.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io)? {
            let p = entry.map_err(io)?.path();
            if p.extension().is_some_and(|e| e == "jsonl") && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(Error::Data(format!(
                "{}: no .jsonl case files in this directory",
                path.display()
            )));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        let evals = file.parent().and_then(Path::parent);
        cases.extend(parse_cases_with(
            &text,
            &file.display().to_string(),
            Shared { evals },
        )?);
    }
    check_unique(&cases)?;
    Ok(cases)
}

/// Parses JSONL text; `origin` (a file name) prefixes every error with `origin:line`.
/// Cases that name an inventory or a tool set need a file: see [`load_cases`].
pub fn parse_cases(text: &str, origin: &str) -> Result<Vec<Case>> {
    parse_cases_with(text, origin, Shared { evals: None })
}

fn parse_cases_with(text: &str, origin: &str, shared: Shared<'_>) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{origin}:{}", i + 1);
        let raw: RawCase = serde_json::from_str(line).map_err(|e| {
            let id = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
            let id = id.map(|id| format!(" (case {id})")).unwrap_or_default();
            Error::Data(format!("{at}{id}: {e}"))
        })?;
        cases.push(convert(raw, &at, shared)?);
    }
    check_unique(&cases)?;
    Ok(cases)
}

fn check_unique(cases: &[Case]) -> Result<()> {
    let mut seen: HashSet<&str> = HashSet::new();
    for case in cases {
        if !seen.insert(&case.id) {
            return Err(Error::Data(format!(
                "{}: id {:?} is used by an earlier case",
                case.origin, case.id
            )));
        }
    }
    Ok(())
}

fn convert(raw: RawCase, at: &str, shared: Shared<'_>) -> Result<Case> {
    let at = format!("{at} (case {})", raw.id);
    let field = |name: &str, what: &str| Error::Data(format!("{at}: {name}: {what}"));
    if raw.id.trim().is_empty() || raw.id.chars().any(char::is_whitespace) {
        return Err(field("id", "must be non-empty, without spaces"));
    }
    if raw.category.trim().is_empty() {
        return Err(field("category", "must not be empty"));
    }
    if raw.text.trim().is_empty() {
        return Err(field("text", "must not be empty"));
    }
    let rule = match &raw.rule {
        Some(_) if !raw.expect.is_empty() => {
            return Err(field(
                "rule",
                "a case drafts a rule or expects calls, not both; drop `expect`",
            ))
        }
        Some(r) => Some(ExpectedRule::parse(r, &at)?),
        None if raw.expect.is_empty() => {
            return Err(field("expect", "give at least one acceptable call"));
        }
        None => None,
    };
    let inventory = match raw.inventory {
        None => CaseInventory::Default,
        Some(Value::String(s)) if s == "default" => CaseInventory::Default,
        Some(Value::String(name)) => CaseInventory::Inline(load_inventory(&shared.file(
            "inventories",
            &name,
            &format!("{at}: inventory"),
        )?)?),
        Some(v @ Value::Object(_)) => {
            CaseInventory::Inline(serde_json::from_value(v).map_err(|e| {
                field(
                    "inventory",
                    &format!("{e}; expected \"default\" or {{\"services\": [...]}}"),
                )
            })?)
        }
        Some(_) => {
            return Err(field(
                "inventory",
                "expected \"default\", the name of a file in evals/inventories/ or {\"services\": [...]}",
            ))
        }
    };
    let tools = match raw.tools {
        None => None,
        Some(Value::String(name)) => Some(ToolSet::from_file(&shared.file(
            "toolsets",
            &name,
            &format!("{at}: tools"),
        )?)?),
        Some(v) => Some(ToolSet::from_value(&v, &format!("{at}: tools"))?),
    };
    let mut expect = Vec::new();
    for (i, e) in raw.expect.into_iter().enumerate() {
        if e.tool.trim().is_empty() {
            return Err(field(&format!("expect[{i}].tool"), "must not be empty"));
        }
        let args = match e.args {
            None => None,
            Some(map) => {
                let mut args = BTreeMap::new();
                for (key, alts) in map {
                    let here = format!("{at}: expect[{i}].args.{key}");
                    let Value::Array(list) = alts else {
                        return Err(Error::Data(format!(
                            "{here}: must be a list of acceptable values, e.g. [\"rentguy\"]"
                        )));
                    };
                    if list.is_empty() {
                        return Err(Error::Data(format!(
                            "{here}: the list of acceptable values is empty"
                        )));
                    }
                    let alts = list
                        .iter()
                        .enumerate()
                        .map(|(j, v)| Accept::parse(v, &format!("{here}[{j}]")))
                        .collect::<Result<Vec<_>>>()?;
                    args.insert(key, alts);
                }
                Some(args)
            }
        };
        if args.is_none() && e.tool != "respond" {
            return Err(field(
                &format!("expect[{i}].args"),
                "required for every tool but respond (use {} for a call without arguments)",
            ));
        }
        expect.push(Expected { tool: e.tool, args });
    }
    Ok(Case {
        id: raw.id,
        category: raw.category,
        text: raw.text,
        turns: raw
            .turns
            .into_iter()
            .enumerate()
            .map(|(i, t)| turn(t, &format!("{at}: turns[{i}]")))
            .collect::<Result<_>>()?,
        text_first: raw.text_first,
        inventory,
        tools,
        expect,
        rule,
        injection: raw.injection,
        extra_args_ok: raw.extra_args_ok,
        forbidden: raw.forbidden,
        origin: at,
    })
}

/// Reads an inventory file: `{"services": [{"name", "kind", "description"}]}`.
pub fn load_inventory(path: &Path) -> Result<Inventory> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Data(format!(
            "{}: not an inventory ({e}); expected {{\"services\": [{{\"name\", \"kind\", \"description\"}}]}}",
            path.display()
        ))
    })
}

/// Checks the cases against the tools they will be offered: every expected tool exists,
/// every expected argument is a parameter of it, and every literal acceptable value is valid
/// under the tool's schema (with the other required arguments filled in). Returns all
/// problems at once.
pub fn validate(cases: &[Case], default_tools: &ToolSet) -> Result<()> {
    let mut problems = Vec::new();
    for case in cases {
        let tools = super::run::tools_for(case, default_tools);
        for (i, e) in case.expect.iter().enumerate() {
            let at = format!("{}: expect[{i}]", case.origin);
            let Some(def) = tools.get(&e.tool) else {
                problems.push(format!(
                    "{at}: tool {:?} is not offered in this case (tools: {})",
                    e.tool,
                    tools.names().join(", ")
                ));
                continue;
            };
            if let Some(args) = &e.args {
                check_args(&at, def, args, &mut problems);
            }
        }
        for (i, step) in case.rule.iter().flat_map(|r| r.steps.iter()).enumerate() {
            let Some(def) = tools.get(&step.tool) else {
                problems.push(format!(
                    "{}: rule.steps[{i}]: tool {:?} is not in the catalogue",
                    case.origin, step.tool
                ));
                continue;
            };
            let params = def.parameters.get("properties").and_then(Value::as_object);
            for key in step.args.keys() {
                if params.is_some_and(|p| !p.contains_key(key)) {
                    problems.push(format!(
                        "{}: rule.steps[{i}].args: {key:?} is not a parameter of {}",
                        case.origin, step.tool
                    ));
                }
            }
        }
        for name in &case.forbidden {
            if tools.get(name).is_none() {
                problems.push(format!(
                    "{}: forbidden tool {name:?} is not offered in this case",
                    case.origin
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Data(format!(
            "{} problem(s) in the eval cases:\n  {}",
            problems.len(),
            problems.join("\n  ")
        )))
    }
}

fn check_args(
    at: &str,
    def: &crate::ToolDef,
    args: &BTreeMap<String, Vec<Accept>>,
    problems: &mut Vec<String>,
) {
    let params = &def.parameters;
    if let Some(props) = params.get("properties").and_then(Value::as_object) {
        let open = params.get("additionalProperties") != Some(&Value::Bool(false));
        let unknown: Vec<&String> = args.keys().filter(|k| !props.contains_key(*k)).collect();
        if !open && !unknown.is_empty() {
            for key in unknown {
                problems.push(format!(
                    "{at}: {key:?} is not a parameter of {} (parameters: {})",
                    def.name,
                    props.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            return;
        }
    }
    let Ok(validator) = jsonschema::validator_for(params) else {
        problems.push(format!("{at}: the schema of {} does not compile", def.name));
        return;
    };
    // A base call from the first literal of each argument; each literal is then swapped in.
    let mut base = Map::new();
    for (key, alts) in args {
        if let Some(v) = alts.iter().find_map(|a| match a {
            Accept::Value(v) => Some(v.clone()),
            _ => None,
        }) {
            base.insert(key.clone(), v);
        }
    }
    let required: Vec<&str> = params
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if required.iter().any(|r| !base.contains_key(*r)) {
        // A required argument only has matchers: literals cannot be checked in a full call.
        for r in &required {
            if !args.contains_key(*r) {
                problems.push(format!(
                    "{at}: required argument {r:?} of {} has no expectation",
                    def.name
                ));
            }
        }
        return;
    }
    for (key, alts) in args {
        for (j, alt) in alts.iter().enumerate() {
            let mut call = base.clone();
            match alt {
                Accept::Value(v) => {
                    call.insert(key.clone(), v.clone());
                }
                Accept::Absent if required.contains(&key.as_str()) => {
                    problems.push(format!(
                        "{at}: args.{key}[{j}]: null, but {key:?} is required by {}",
                        def.name
                    ));
                    continue;
                }
                _ => continue,
            }
            let call = Value::Object(call);
            // Only errors about this argument: the others are checked on their own turn.
            let here = format!("/{key}");
            let own = validator.iter_errors(&call).find(|e| {
                let path = e.instance_path.to_string();
                path == here || path.starts_with(&format!("{here}/"))
            });
            if let Some(err) = own {
                problems.push(format!(
                    "{at}: args.{key}[{j}] {}: not valid for {}: {err}",
                    alt.to_json(),
                    def.name
                ));
            }
        }
    }
}
