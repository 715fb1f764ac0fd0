//! `steward rules check` and `steward rules test EVENT.json`: load the trigger rulebooks
//! (`<policies>/rules/*.toml`) the way `steward serve` does, and show what one event would
//! do. Nothing here runs a tool. `steward rules draft` ([`crate::draft`]) reuses both.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value};
use steward_policy::rules::{decide_at, duration, EventInput, Rule, Rulebook};
use steward_policy::{describe, PolicySet};
use steward_protocol::{Event, Timestamp};

use crate::config::Config;
use crate::path;

/// The rulebook directory beside the Cedar files.
pub const RULES_DIR: &str = "rules";

/// Exit code of an event file that cannot be read or is not an event: input to fix.
const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, clap::Subcommand)]
pub enum RulesAction {
    /// Load the policies and every rulebook, checking each rule and its examples; print one
    /// line per rule (id, trigger, ladder). Exit 1, with the file, rule and field, if any
    /// check fails
    Check,
    /// Show what the event in EVENT.json would do: the rules it matches, each ladder step
    /// with its rendered arguments and the policy decision for it (at the current hour).
    /// Runs nothing. EVENT.json holds `source` (alert, hook, monitor, schedule) and `name`,
    /// optionally `labels`, `fields`, `text`, `status` (default firing), `key` (default
    /// "test") and `at` (ms or a time such as RFC3339; default now). Exit 0 when every
    /// matched rule can be planned (or none matches), 1 when one cannot, 2 for a bad file
    Test {
        event: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Draft a rule from plain words with the planner model, under a grammar built from the
    /// rulebook's model and the tool catalogue; print it as TOML with what it would do for
    /// an example event (as `rules test`). Saves nothing unless --save, which writes
    /// <policies>/rules/<id>.toml only when `rules check` passes with it, its principal is
    /// in entities.toml and policy denies none of its steps for the example event (the
    /// write is audited). Exit 0 drafted (and saved), 1 the planner or a file failed, 2 input
    /// to fix, 3 the draft is refused (nothing saved)
    Draft(crate::draft::DraftOpts),
}

pub async fn run(cfg: &Config, action: RulesAction) -> Result<ExitCode> {
    match action {
        RulesAction::Check => check(cfg),
        RulesAction::Test { event, json } => test(cfg, &event, json),
        RulesAction::Draft(opts) => crate::draft::run(cfg, opts).await,
    }
}

/// Policies and rules, or the error printed and exit 1.
pub(crate) fn load(
    cfg: &Config,
    command: &str,
) -> std::result::Result<(PolicySet, Rulebook), ExitCode> {
    let policies = match path::load_policies(cfg) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("steward rules {command}: {e:#}");
            return Err(ExitCode::FAILURE);
        }
    };
    let dir = match path::policies_dir(cfg) {
        Ok(d) => d.join(RULES_DIR),
        Err(e) => {
            eprintln!("steward rules {command}: {e:#}");
            return Err(ExitCode::FAILURE);
        }
    };
    match Rulebook::load_dir(&dir, &policies) {
        Ok(book) => Ok((policies, book)),
        Err(e) => {
            eprintln!(
                "steward rules {command}: cannot load the rules in {}:\n{e}",
                dir.display()
            );
            Err(ExitCode::FAILURE)
        }
    }
}

fn check(cfg: &Config) -> Result<ExitCode> {
    let (_, book) = match load(cfg, "check") {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    for rule in &book.rules {
        println!(
            "{:<24} {:<32} {}",
            rule.id,
            rule.on.to_string(),
            ladder(rule)
        );
    }
    let n = book.rules.len();
    println!("{n} rule{} OK", if n == 1 { "" } else { "s" });
    Ok(ExitCode::SUCCESS)
}

/// `service_restart → service_rollback → notify`.
fn ladder(rule: &Rule) -> String {
    let tools: Vec<&str> = rule.steps.iter().map(|s| s.tool.as_str()).collect();
    tools.join(" → ")
}

fn test(cfg: &Config, file: &Path, as_json: bool) -> Result<ExitCode> {
    let now = steward_tools::Clock::now(&steward_tools::SystemClock);
    let event = match read_event(file, now) {
        Ok(e) => e,
        Err(message) => {
            eprintln!("steward rules test: {message}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let (policies, book) = match load(cfg, "test") {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let hour = hour_utc(now);
    let mut failed = false;
    let mut reports = Vec::new();
    for rule in book.matching(&event) {
        let report = report(rule, &event, &policies, hour);
        failed |= report.get("error").is_some();
        reports.push(report);
    }
    if as_json {
        let out = json!({"event": event, "hour_utc": hour, "rules": reports});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&event, hour, &reports);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The event in `file`, with the defaults filled in; `Err` is the message for the person.
fn read_event(file: &Path, now: Timestamp) -> std::result::Result<Event, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let input: EventInput = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not an event: {e}; expected {{\"source\": \"alert\"|\"hook\"|\"monitor\"|\
             \"schedule\", \"name\": ..., \"labels\": {{...}}, \"fields\": {{...}}}}",
            file.display()
        )
    })?;
    input
        .into_event("test", now)
        .map_err(|e| format!("{}: {e}", file.display()))
}

pub(crate) fn hour_utc(now: Timestamp) -> u8 {
    u8::try_from(now.as_millis().rem_euclid(86_400_000) / 3_600_000).unwrap_or(12)
}

/// One matched rule as JSON: who it acts as, its throttle group, and each step with its
/// arguments and decision, or the reason it cannot be planned.
pub(crate) fn report(rule: &Rule, event: &Event, policies: &PolicySet, hour: u8) -> Value {
    let mut out = json!({
        "rule": rule.id,
        "description": rule.description,
        "file": rule.file,
        "on": rule.on.to_string(),
        "principal": rule.principal().to_string(),
        "origin": rule.origin(),
        "for": duration(rule.for_ms),
        "throttle": rule.throttle.as_ref().map(|t| json!({
            "once_within": duration(t.once_within_ms),
            "group_by": t.group_by,
            "group": rule.group_key(event),
        })),
    });
    match rule.plan(event) {
        Ok(planned) => {
            let decisions = decide_at(policies, &planned, hour);
            let steps: Vec<Value> = planned
                .steps
                .iter()
                .zip(decisions)
                .map(|(s, d)| {
                    json!({
                        "tool": s.tool,
                        "args": s.args,
                        "when": s.when.as_ref().map(ToString::to_string),
                        "until": s.until.as_ref().map(ToString::to_string),
                        "decision": d,
                        "summary": describe(&d),
                    })
                })
                .collect();
            out["steps"] = Value::Array(steps);
        }
        Err(e) => out["error"] = json!(e.to_string()),
    }
    out
}

pub(crate) fn print_text(event: &Event, hour: u8, reports: &[Value]) {
    let source = serde_json::to_value(event.source).unwrap_or_default();
    let source = source.as_str().unwrap_or("?");
    if reports.is_empty() {
        println!("no rule matches {source}:{}", event.name);
        return;
    }
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    for r in reports {
        println!(
            "rule {} ({}): {} as {}, origin {}",
            s(&r["rule"]),
            Path::new(&s(&r["file"]))
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            s(&r["on"]),
            s(&r["principal"]),
            s(&r["origin"]),
        );
        let mut timing = format!("  for {}", s(&r["for"]));
        if let Some(t) = r["throttle"].as_object() {
            timing.push_str(&format!(
                ", once within {} per group {}",
                t.get("once_within").map(s).unwrap_or_default(),
                t.get("group").map(s).unwrap_or_default()
            ));
        }
        println!("{timing}");
        if let Some(e) = r.get("error") {
            println!("  cannot be planned: {}", s(e));
            continue;
        }
        for (i, step) in r["steps"].as_array().into_iter().flatten().enumerate() {
            let mut line = format!("  {}. {} {}", i + 1, s(&step["tool"]), step["args"]);
            if let Some(w) = step["when"].as_str() {
                line.push_str(&format!(" when {w}"));
            }
            if let Some(u) = step["until"].as_str() {
                line.push_str(&format!(" until {u}"));
            }
            println!("{line}");
            println!("     {}", s(&step["summary"]));
        }
    }
    println!("(decisions at {hour:02}:00 UTC; nothing was run)");
}
