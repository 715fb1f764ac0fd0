//! `steward rules draft "<instruction>"`: the planner model drafts a trigger rule under a
//! grammar built from the rulebook's model and the tool catalogue
//! (`steward_policy::rules::draft`), and the draft is then treated like any rule file a
//! person wrote: loaded with `rules check`'s checks, its example event planned and vetted
//! as `rules test` does. The model only fills in a form; what the rule may do is decided by
//! the loader and by policy, so words in the instruction cannot widen it.
//!
//! A rule acts as its own principal (`alert_rule:<id>`, or `webhook:<hook>`), and only
//! entities.toml can give a principal any right. Drafting never edits entities.toml:
//! `--save` refuses until a person has added the entity, and the output shows the entry to
//! add. Until then every step of the rule is denied, and the output says why.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use steward_llm::draft::DraftSpec;
use steward_llm::eval::ToolSet;
use steward_policy::rules::draft::{self, Draft, Trigger, DRAFT_TOOL};
use steward_policy::rules::{decide, Rule, Rulebook};
use steward_policy::{DecisionKind, PolicySet, Principal, PrincipalKind};
use steward_protocol::{AuditEntry, AuditKind, Decision, Event, Origin, Timestamp};
use steward_tools::{Clock, SystemClock};

use crate::config::{Config, Key};
use crate::rules::{self, RULES_DIR};
use crate::{path, planner, wiring};

const EXIT_BAD_INPUT: u8 = 2;
const EXIT_REFUSED: u8 = 3;

/// Options of `steward rules draft`.
#[derive(Debug, Clone, clap::Args)]
pub struct DraftOpts {
    /// What the rule should do, in plain words
    pub text: String,
    /// Write the rule to <policies>/rules/<id>.toml (only when nothing refuses it)
    #[arg(long)]
    pub save: bool,
    /// The rule's id (default: from its trigger, e.g. psra-unhealthy)
    #[arg(long)]
    pub id: Option<String>,
    /// Planner model to draft with (a manifest name from models/)
    #[arg(long)]
    pub model: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// The draft's grammar and prompt, over the whole catalogue.
pub fn spec() -> DraftSpec {
    DraftSpec::new(DRAFT_TOOL, draft::schema(), &ToolSet::catalogue().defs)
}

pub async fn run(cfg: &Config, opts: DraftOpts) -> Result<ExitCode> {
    let spec = spec();
    let req = spec.request(&opts.text);
    if let Err(e) = req.check_input() {
        eprintln!("steward rules draft: {e}");
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    if let Some(id) = &opts.id {
        if let Err(e) = Principal::parse(&format!("{}:{id}", PrincipalKind::AlertRule.prefix())) {
            eprintln!("steward rules draft: --id {id:?} is not a valid rule id: {e}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    }
    let (policies, book) = match rules::load(cfg, "draft") {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let policies_dir = path::policies_dir(cfg)?;
    let dir = policies_dir.join(RULES_DIR);
    let services = steward_policy::platform_services(&policies_dir)?;

    if !opts.json {
        eprintln!("steward: drafting with the planner model...");
    }
    let backend = planner::router(cfg, opts.model.as_deref())?;
    // What the draft may be scoped to: the services rules may act on.
    let platform = steward_llm::Inventory::of_platform_services(&services);
    let proposal = match spec.draft(&*backend, &opts.text, &platform).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("steward rules draft: the planner failed: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let drafted = match Draft::from_json(&proposal.call.arguments) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "steward rules draft: the planner's answer is {e}: {}",
                proposal.call.arguments
            );
            return Ok(ExitCode::FAILURE);
        }
    };

    let id = opts
        .id
        .clone()
        .unwrap_or_else(|| free_id(&drafted.suggested_id(), &book, &dir));
    let file = dir.join(format!("{id}.toml"));
    let outcome = assess(
        &drafted,
        &id,
        &one_line(&opts.text),
        &file,
        &dir,
        &policies,
        &services,
    );

    let mut saved = false;
    let mut problems = outcome.problems.clone();
    if opts.save && problems.is_empty() {
        if file.exists() {
            problems.push(format!(
                "{} exists; choose another --id, or edit that file",
                file.display()
            ));
        } else {
            save(cfg, &file, &outcome.toml, &id, &opts.text).await?;
            saved = true;
        }
    }

    let status = match (problems.is_empty(), saved) {
        (true, true) => "saved",
        (true, false) => "drafted",
        (false, _) => "refused",
    };
    if opts.json {
        let out = json!({
            "ok": problems.is_empty(),
            "status": status,
            "instruction": opts.text,
            "backend": proposal.backend,
            "draft": proposal.call.arguments,
            "id": id,
            "file": file,
            "saved": saved,
            "toml": outcome.toml,
            "example": outcome.example,
            "test": outcome.report,
            "principal": outcome.principal,
            "principal_known": outcome.principal_known,
            "entity": outcome.entity,
            "problems": problems,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&outcome, &problems, &file, opts.save, saved);
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REFUSED)
    })
}

/// What checking a draft found.
#[derive(Debug, Clone)]
struct Outcome {
    /// The rule file as it would be written.
    toml: String,
    /// The example event, as the file's `[[rule.example]]` gives it.
    example: Value,
    /// `rules test`'s report for the example event, now (None when the rule does not load).
    report: Option<Value>,
    /// The example event as of now, which the report is about.
    event: Option<Event>,
    principal: String,
    principal_known: bool,
    /// The entities.toml entry a person adds for the rule's principal, when it is missing.
    entity: Option<String>,
    /// Why it cannot be saved; empty: it can.
    problems: Vec<String>,
}

/// Renders the draft as a rule file, loads it with the rulebook (every check `rules check`
/// makes, its example included) and vets its steps for the example event.
fn assess(
    d: &Draft,
    id: &str,
    description: &str,
    file: &Path,
    dir: &Path,
    policies: &PolicySet,
    services: &[String],
) -> Outcome {
    let example = d.example_event(id, services);
    let example_json = json!({
        "source": example.source,
        "name": example.name,
        "labels": example.labels,
        "fields": example.fields,
    });
    let principal = match &d.trigger {
        Trigger::Hook { name } => Principal::new(PrincipalKind::WebhookSource, name.clone()),
        _ => Principal::new(PrincipalKind::AlertRule, id.to_string()),
    };
    let principal_known = policies.knows(&principal);
    let entity = (!principal_known).then(|| entity_entry(d, &principal, services));
    let mut out = Outcome {
        toml: d.to_toml(id, description, &example, None),
        example: example_json,
        report: None,
        event: None,
        principal: principal.to_string(),
        principal_known,
        entity,
        problems: Vec::new(),
    };
    if !principal_known {
        out.problems.push(format!(
            "principal {principal} is not in entities.toml, so policy denies all its steps; \
             a person adds the entry shown to allow them, then drafts again"
        ));
    }
    // First without decisions, to learn them; then the file as it would be written, which
    // must load with them (the loader checks an example's decisions at noon UTC).
    let rule = match load_with(dir, file, &out.toml, policies, id) {
        Ok(rule) => rule,
        Err(e) => {
            out.problems.push(format!("rules check refuses it: {e}"));
            return out;
        }
    };
    let event = match example.clone().into_event("draft", Timestamp(0)) {
        Ok(e) => e,
        Err(e) => {
            out.problems
                .push(format!("its example event is not an event: {e}"));
            return out;
        }
    };
    let planned = match rule.plan(&event) {
        Ok(p) => p,
        Err(e) => {
            out.problems.push(format!(
                "its steps cannot be planned for the example event: {e}"
            ));
            return out;
        }
    };
    let decisions = decide(policies, &planned);
    let kinds: Vec<DecisionKind> = decisions.iter().map(DecisionKind::of).collect();
    out.toml = d.to_toml(id, description, &example, Some(&kinds));
    let rule = match load_with(dir, file, &out.toml, policies, id) {
        Ok(rule) => rule,
        Err(e) => {
            out.problems.push(format!("rules check refuses it: {e}"));
            return out;
        }
    };
    for (step, decision) in planned.steps.iter().zip(&decisions) {
        if let Decision::Deny { reason, .. } = decision {
            if principal_known {
                out.problems
                    .push(format!("policy denies step {}: {reason}", step.tool));
            }
        }
    }
    let now = SystemClock.now();
    let now_event = example
        .clone()
        .into_event("draft", now)
        .unwrap_or_else(|_| event.clone());
    out.report = Some(rules::report(
        &rule,
        &now_event,
        policies,
        rules::hour_utc(now),
    ));
    out.event = Some(now_event);
    out
}

/// The rule `id` as the rulebook in `dir` plus `text` (as `file`) loads it.
fn load_with(
    dir: &Path,
    file: &Path,
    text: &str,
    policies: &PolicySet,
    id: &str,
) -> std::result::Result<Rule, String> {
    let book =
        Rulebook::load_dir_with(dir, Some((file, text)), policies).map_err(|e| e.to_string())?;
    book.get(id)
        .cloned()
        .ok_or_else(|| format!("rule {id} is not in the loaded rulebook"))
}

/// The entities.toml entry that would let the rule act: the services it names (its
/// `service` label, else the platform's), or for a hook the tools of its steps.
fn entity_entry(d: &Draft, p: &Principal, services: &[String]) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", quoted.join(", "))
    };
    match &d.trigger {
        Trigger::Hook { name } => {
            let tools: Vec<String> = d.steps.iter().map(|s| s.tool.clone()).collect();
            format!("[webhook.{name}]\ntools = {}", list(&tools))
        }
        Trigger::Alert { labels, .. } | Trigger::Monitor { labels, .. } => {
            let named: Vec<String> = labels.get("service").into_iter().cloned().collect();
            let named = if named.is_empty() { services } else { &named };
            format!("[alert_rule.{}]\nservices = {}", p.id, list(named))
        }
        Trigger::Schedule { .. } => {
            format!("[alert_rule.{}]\nservices = {}", p.id, list(services))
        }
    }
}

/// `base`, or `base-2`, `base-3`... when a rule or a file already has it.
fn free_id(base: &str, book: &Rulebook, dir: &Path) -> String {
    let taken = |id: &str| book.get(id).is_some() || dir.join(format!("{id}.toml")).exists();
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !taken(id))
        .unwrap_or_else(|| base.to_string())
}

/// The instruction as a rule's description: one line, at most 200 characters.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(200).collect()
}

/// Writes the file (never over another) and audits it as a policy change, as the
/// configured principal.
async fn save(cfg: &Config, file: &Path, toml: &str, id: &str, text: &str) -> Result<()> {
    use std::io::Write as _;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    f.write_all(toml.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    let principal = Principal::parse(cfg.require(Key::Principal)?)?;
    let steward = wiring::Steward::open(cfg).await?;
    steward
        .audit
        .append(AuditEntry {
            at: steward.clock.now(),
            kind: Some(AuditKind::PolicyChanged),
            actor: Some(steward_agent::principal::actor_of(&principal)),
            origin: Some(Origin::Api),
            intent_text: Some(text.to_string()),
            args: Some(json!({"rule": id, "toml": toml})),
            outcome: Some(json!({
                "file": file,
                "sha256": hex::encode(Sha256::digest(toml.as_bytes())),
            })),
            ..AuditEntry::default()
        })
        .await
        .context("the rule was written but its audit record was not; remove the file or audit it by hand")?;
    steward.close().await
}

fn print_text(o: &Outcome, problems: &[String], file: &Path, save: bool, saved: bool) {
    println!("{}", o.toml.trim_end());
    println!();
    match (&o.report, &o.event) {
        (Some(report), Some(event)) => {
            println!("For the example event:");
            let hour = rules::hour_utc(event.at);
            rules::print_text(event, hour, std::slice::from_ref(report));
        }
        _ => println!("(the rule does not load, so no example was run)"),
    }
    if let Some(entity) = &o.entity {
        println!();
        println!(
            "{} is not in entities.toml. To let it act, a person adds:",
            o.principal
        );
        for line in entity.lines() {
            println!("  {line}");
        }
    }
    println!();
    if problems.is_empty() {
        if saved {
            println!("saved {} (audited as a policy change)", file.display());
        } else {
            println!("not saved; --save writes it to {}", file.display());
        }
    } else {
        println!(
            "{}:",
            if save {
                "not saved"
            } else {
                "it cannot be saved"
            }
        );
        for p in problems {
            println!("  - {p}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A copy of the shipped policies in a fresh folder, with `entities` appended to
    /// entities.toml.
    fn policies(name: &str, entities: &str) -> (PolicySet, std::path::PathBuf) {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        let dir = std::env::temp_dir().join(format!("steward-draft-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(RULES_DIR)).unwrap();
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
            }
        }
        let file = dir.join("entities.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{text}\n{entities}\n")).unwrap();
        (PolicySet::load_dir(&dir).unwrap(), dir)
    }

    fn psra() -> Draft {
        Draft::from_json(&json!({
            "trigger": {"source": "monitor", "kind": "unhealthy", "labels": {"service": "psra"}},
            "for": "2m",
            "steps": [
                {"tool": "service_restart", "args": {"service": "psra"}, "until": "healthy within 60s"},
                {"tool": "service_rollback", "args": {"service": "psra", "to": "previous"}, "until": "healthy within 60s"},
                {"tool": "notify", "args": {"message": "psra is still unhealthy", "severity": "critical"}}
            ]
        }))
        .unwrap()
    }

    fn assess_in(dir: &Path, policies: &PolicySet, d: &Draft, id: &str) -> Outcome {
        let rules = dir.join(RULES_DIR);
        let services = steward_policy::platform_services(dir).unwrap();
        assess(
            d,
            id,
            "test",
            &rules.join(format!("{id}.toml")),
            &rules,
            policies,
            &services,
        )
    }

    #[test]
    fn a_rule_without_its_principal_is_refused_and_the_entry_to_add_is_shown() {
        let (p, dir) = policies("unknown", "");
        let o = assess_in(&dir, &p, &psra(), "psra-unhealthy");
        assert!(!o.principal_known);
        assert_eq!(
            o.entity.as_deref(),
            Some("[alert_rule.psra-unhealthy]\nservices = [\"psra\"]")
        );
        assert_eq!(o.problems.len(), 1, "{:?}", o.problems);
        assert!(
            o.toml
                .contains("decisions = [\"deny\", \"deny\", \"deny\"]"),
            "{}",
            o.toml
        );
    }

    #[test]
    fn a_rule_whose_entity_exists_loads_with_its_example_and_passes() {
        let (p, dir) = policies(
            "known",
            "[alert_rule.psra-unhealthy]\nservices = [\"psra\"]",
        );
        let o = assess_in(&dir, &p, &psra(), "psra-unhealthy");
        assert!(o.problems.is_empty(), "{:?}\n{}", o.problems, o.toml);
        assert!(
            o.toml
                .contains("decisions = [\"allow\", \"allow\", \"allow\"]"),
            "{}",
            o.toml
        );
        let steps = o.report.unwrap()["steps"].as_array().unwrap().len();
        assert_eq!(steps, 3);
        // The file as it would be written loads with the rest of the rulebook.
        let rules = dir.join(RULES_DIR);
        std::fs::write(rules.join("psra-unhealthy.toml"), &o.toml).unwrap();
        let book = Rulebook::load_dir(&rules, &p).unwrap();
        assert!(book.get("psra-unhealthy").is_some());
    }

    #[test]
    fn a_forbidden_step_is_refused_even_when_the_principal_exists() {
        let (p, dir) = policies(
            "forbidden",
            "[alert_rule.cpu-high]\nservices = [\"rentguy\", \"psra\"]",
        );
        let d = Draft::from_json(&json!({
            "trigger": {"source": "alert", "name": "HighCpu"},
            "for": "0s",
            "steps": [{"tool": "tenant_destroy", "args": {"tenant": "acme"}}]
        }))
        .unwrap();
        let o = assess_in(&dir, &p, &d, "cpu-high");
        assert!(o.principal_known);
        assert!(
            o.problems
                .iter()
                .any(|m| m.contains("policy denies step tenant_destroy")),
            "{:?}",
            o.problems
        );
        // A step that cannot be rendered or loaded is refused by the loader.
        let d = Draft::from_json(&json!({
            "trigger": {"source": "schedule", "cron": "every day"},
            "for": "0s",
            "steps": [{"tool": "service_restart", "args": {"service": "{text}"}}]
        }))
        .unwrap();
        let o = assess_in(&dir, &p, &d, "cpu-high");
        assert!(
            o.problems
                .iter()
                .any(|m| m.contains("rules check refuses it")),
            "{:?}",
            o.problems
        );
    }

    #[test]
    fn ids_do_not_take_a_rule_or_file_that_exists() {
        let (p, dir) = policies("ids", "");
        let rules = dir.join(RULES_DIR);
        std::fs::write(rules.join("psra-unhealthy.toml"), "").unwrap();
        let book = Rulebook::load_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/rules"),
            &p,
        )
        .unwrap();
        assert_eq!(free_id("service-down", &book, &rules), "service-down-2");
        assert_eq!(free_id("psra-unhealthy", &book, &rules), "psra-unhealthy-2");
        assert_eq!(free_id("new-one", &book, &rules), "new-one");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
