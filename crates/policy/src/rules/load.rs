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
use super::model::{CatchUp, Matcher, Rule, Rulebook, Step, Throttle, Until, FOR_EACH};
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
    throttle_key: Option<String>,
    timezone: Option<String>,
    for_each: Option<String>,
    catch_up: Option<String>,
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
        Rulebook::load_dir_with(dir, None, policies)
    }

    /// [`Rulebook::load_dir`] as if `extra` (a path and its text) were one more file of
    /// `dir`: how a drafted rule is checked before it is written (`steward rules draft`).
    pub fn load_dir_with(
        dir: &Path,
        extra: Option<(&Path, &str)>,
        policies: &PolicySet,
    ) -> Result<Rulebook> {
        let io = |path: &Path, source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = if dir.exists() {
            std::fs::read_dir(dir)
                .map_err(|e| io(dir, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .collect()
        } else {
            debug!(dir = %dir.display(), "no rules directory; the rulebook is empty");
            Vec::new()
        };
        files.sort();
        let mut sources: Vec<(PathBuf, String)> = Vec::with_capacity(files.len() + 1);
        for path in files {
            let src = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            sources.push((path, src));
        }
        if let Some((path, src)) = extra {
            sources.push((path.to_path_buf(), src.to_string()));
        }
        let mut rules: Vec<Rule> = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for (path, src) in &sources {
            let path = path.as_path();
            for rule in parse_file(path, src, policies)? {
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
        debug!(dir = %dir.display(), files = sources.len(), rules = rules.len(), "rulebook loaded");
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
    let mut on = syntax::matcher(&def.on, def.labels).map_err(|m| fail("on", m))?;
    schedule_fields(&mut on, &def.timezone, &def.for_each, &def.catch_up)
        .map_err(|(field, m)| fail(field, m))?;

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

    if def.once_within.is_none() && def.throttle_key.is_some() {
        return Err(fail(
            "throttle_key",
            "names a shared throttle; set once_within too".into(),
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
            let key = match &def.throttle_key {
                Some(k)
                    if !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) =>
                {
                    k.clone()
                }
                Some(k) => {
                    return Err(fail(
                        "throttle_key",
                        format!("{k:?} may contain only letters, digits, - and _"),
                    ))
                }
                None => id.clone(),
            };
            Some(Throttle {
                once_within_ms,
                key,
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

/// Fills a schedule's `timezone`, `for_each` and `catch_up`, which only schedules take.
fn schedule_fields(
    on: &mut Matcher,
    tz: &Option<String>,
    for_each_def: &Option<String>,
    catch_up_def: &Option<String>,
) -> std::result::Result<(), (&'static str, String)> {
    let Matcher::Schedule {
        timezone,
        for_each,
        catch_up,
        ..
    } = on
    else {
        for (field, set) in [
            ("timezone", tz.is_some()),
            ("for_each", for_each_def.is_some()),
            ("catch_up", catch_up_def.is_some()),
        ] {
            if set {
                return Err((field, "applies to schedule rules only".into()));
            }
        }
        return Ok(());
    };
    let Some(tz) = tz else {
        return Err((
            "timezone",
            "a schedule needs an explicit time zone, e.g. timezone = \"UTC\" or \
             \"Europe/Amsterdam\""
                .into(),
        ));
    };
    syntax::timezone(tz).map_err(|m| ("timezone", m))?;
    *timezone = tz.clone();
    if let Some(what) = for_each_def {
        if !FOR_EACH.contains(&what.as_str()) {
            return Err((
                "for_each",
                format!("{what:?}: expected one of {}", FOR_EACH.join(", ")),
            ));
        }
        *for_each = Some(what.clone());
    }
    *catch_up = match catch_up_def.as_deref() {
        None | Some("once") => CatchUp::Once,
        Some("skip") => CatchUp::Skip,
        Some(other) => {
            return Err((
                "catch_up",
                format!("{other:?}: expected once (run the latest missed slot at start) or skip"),
            ))
        }
    };
    Ok(())
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
