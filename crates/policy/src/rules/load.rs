//! Loading `policies/rules/*.toml`: parse strictly, check every rule, then run every
//! rule's examples against the loaded policies. Anything doubtful refuses the whole load,
//! naming the file, the rule and the field, like the Cedar files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};
use steward_protocol::EventSource;
use tracing::debug;

use super::examples::{self, ExampleDef};
use super::model::{Rule, Rulebook, Step, Throttle, Until};
use super::{syntax, template};
use crate::error::{PolicyError, Result};
use crate::principal::{Principal, PrincipalKind};
use crate::vet::PolicySet;

/// One rulebook file: one or more `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    #[serde(default)]
    description: String,
    on: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(rename = "for")]
    debounce: Option<String>,
    once_within: Option<String>,
    group_by: Option<Vec<String>>,
    #[serde(default)]
    step: Vec<StepDef>,
    #[serde(default)]
    example: Vec<ExampleDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepDef {
    tool: String,
    #[serde(default)]
    args: Map<String, Value>,
    when: Option<String>,
    until: Option<String>,
}

impl Rulebook {
    /// Every `*.toml` in `dir` (sorted), parsed and checked; errors name the file, rule id and
    /// field. An absent dir is an empty rulebook. `policies` is used to check examples'
    /// expected decisions.
    pub fn load_dir(dir: &Path, policies: &PolicySet) -> Result<Rulebook> {
        if !dir.exists() {
            debug!(dir = %dir.display(), "no rules directory; the rulebook is empty");
            return Ok(Rulebook::default());
        }
        let io = |path: &Path, source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        let mut rules: Vec<Rule> = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for path in &files {
            let src = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
            for rule in parse_file(path, &src, policies)? {
                if let Some(first) = seen.get(&rule.id) {
                    return Err(rule_error(
                        path,
                        &rule.id,
                        "id",
                        format!("duplicate rule id; it is already defined in {first}"),
                    ));
                }
                seen.insert(rule.id.clone(), rule.file.clone());
                rules.push(rule);
            }
        }
        debug!(dir = %dir.display(), files = files.len(), rules = rules.len(), "rulebook loaded");
        Ok(Rulebook { rules })
    }
}

/// Parses and checks one file's rules, examples included.
fn parse_file(path: &Path, src: &str, policies: &PolicySet) -> Result<Vec<Rule>> {
    let file: RuleFile = toml::from_str(src).map_err(|e| PolicyError::Rule {
        path: path.to_path_buf(),
        message: format!("{}{}", which_rule(src, e.span()), e.to_string().trim_end()),
    })?;
    if file.rule.is_empty() {
        return Err(PolicyError::Rule {
            path: path.to_path_buf(),
            message: "no [[rule]] in this file".into(),
        });
    }
    let mut out = Vec::with_capacity(file.rule.len());
    for def in file.rule {
        out.push(check_rule(path, def, policies)?);
    }
    Ok(out)
}

/// For a parse error, which rule it is in (`rule service-down: `), found by counting the
/// `[[rule]]` headers before the error and reading that rule's id leniently.
fn which_rule(src: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return String::new();
    };
    let before = src.get(..span.start).unwrap_or(src);
    let index = before
        .lines()
        .filter(|l| l.trim_start().starts_with("[[rule]]"))
        .count();
    let Some(index) = index.checked_sub(1) else {
        return String::new();
    };
    let id = toml::from_str::<toml::Table>(src).ok().and_then(|t| {
        t.get("rule")?
            .as_array()?
            .get(index)?
            .get("id")?
            .as_str()
            .map(str::to_string)
    });
    match id {
        Some(id) => format!("rule {id}: "),
        None => format!("rule #{}: ", index + 1),
    }
}

fn rule_error(path: &Path, id: &str, field: &str, message: String) -> PolicyError {
    PolicyError::Rule {
        path: path.to_path_buf(),
        message: format!("rule {id}: {field}: {message}"),
    }
}

fn check_rule(path: &Path, def: RuleDef, policies: &PolicySet) -> Result<Rule> {
    let id = def.id.clone();
    let fail = |field: &str, message: String| rule_error(path, &id, field, message);

    Principal::parse(&format!("{}:{id}", PrincipalKind::AlertRule.prefix()))
        .map_err(|e| fail("id", format!("not a valid principal id: {e}")))?;
    let on = syntax::matcher(&def.on, def.labels).map_err(|m| fail("on", m))?;

    let for_ms = match &def.debounce {
        None => 0,
        Some(d) => syntax::duration(d).map_err(|m| fail("for", m))?,
    };
    if for_ms > 0 && matches!(on.source(), EventSource::Hook | EventSource::Schedule) {
        return Err(fail(
            "for",
            "a debounce applies to alert and monitor rules, whose conditions last; hooks \
             and schedules fire once"
                .into(),
        ));
    }

    let throttle = match (&def.once_within, def.group_by) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(
                "group_by",
                "groups a throttle; set once_within too".into(),
            ))
        }
        (Some(w), group_by) => {
            let once_within_ms = syntax::duration(w).map_err(|m| fail("once_within", m))?;
            if once_within_ms <= 0 {
                return Err(fail("once_within", "must be longer than 0s".into()));
            }
            let group_by = group_by.unwrap_or_default();
            for name in &group_by {
                template::check_name(name).map_err(|m| fail("group_by", m))?;
            }
            Some(Throttle {
                once_within_ms,
                group_by,
            })
        }
    };

    if def.step.is_empty() {
        return Err(fail(
            "step",
            "a rule needs at least one [[rule.step]]".into(),
        ));
    }
    let mut steps = Vec::with_capacity(def.step.len());
    for (i, s) in def.step.into_iter().enumerate() {
        steps.push(check_step(i, s).map_err(|(field, m)| fail(&field, m))?);
    }

    let rule = Rule {
        id: id.clone(),
        description: def.description,
        file: path.display().to_string(),
        on,
        for_ms,
        throttle,
        steps,
    };

    if !def.example.iter().any(|e| !e.steps.is_empty()) {
        return Err(fail(
            "example",
            "a rule needs at least one [[rule.example]] with an event it matches and its \
             steps; examples are how a rule proves what it does at load"
                .into(),
        ));
    }
    for (i, ex) in def.example.iter().enumerate() {
        examples::check(&rule, ex, policies).map_err(|m| fail(&format!("example {}", i + 1), m))?;
    }
    Ok(rule)
}

/// One step; `Err` carries the field (`step 2 until`) and the message.
fn check_step(i: usize, s: StepDef) -> std::result::Result<Step, (String, String)> {
    let at = |field: &str| format!("step {} ({}) {field}", i + 1, s.tool);
    let Some(spec) = steward_tools::find(&s.tool) else {
        return Err((
            format!("step {} tool", i + 1),
            format!(
                "unknown tool {:?}; `steward tools list` lists the catalogue",
                s.tool
            ),
        ));
    };
    if spec.name == "respond" {
        return Err((
            format!("step {} tool", i + 1),
            "`respond` answers a person in chat; a rule has nobody to answer (use notify)".into(),
        ));
    }
    for (k, v) in &s.args {
        template::check(v).map_err(|m| (at(&format!("args.{k}")), m))?;
    }
    let when = match &s.when {
        None => None,
        Some(_) if i == 0 => {
            return Err((
                at("when"),
                "the first step has no previous step to look at".into(),
            ))
        }
        Some(w) => Some(syntax::when(w).map_err(|m| (at("when"), m))?),
    };
    let until = match &s.until {
        None => None,
        Some(u) => Some(syntax::until(u).map_err(|m| (at("until"), m))?),
    };
    if matches!(until, Some(Until::Healthy { .. })) && !s.args.contains_key("service") {
        return Err((
            at("until"),
            "`healthy` watches the service named by the step's `service` argument, and this \
             step has none"
                .into(),
        ));
    }
    Ok(Step {
        tool: s.tool,
        args: s.args,
        when,
        until,
    })
}
