//! `steward eval`: runs the planner evaluation cases through a backend, writes the report
//! and compares it against the committed baseline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use steward_llm::eval::{self, Baseline, CaseRow, ToolSet};
use steward_llm::Backend;
use steward_protocol::Timestamp;

use crate::config::Config;

const DEFAULT_CASES: &str = "evals/cases";
const DEFAULT_INVENTORY: &str = "evals/inventory.json";
const DEFAULT_BASELINE: &str = "evals/baseline.json";

/// Options of `steward eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalOpts {
    /// Planner model to evaluate (a manifest name from models/); the default planner when
    /// absent. Read by the caller that builds the backend.
    #[arg(long)]
    pub model: Option<String>,
    /// A .jsonl case file or a directory of them
    #[arg(long, default_value = DEFAULT_CASES)]
    pub cases: PathBuf,
    /// Tools in the OpenAI function format to offer instead of the catalogue
    #[arg(long)]
    pub tools: Option<PathBuf>,
    /// Inventory the model sees: {"services": [{"name", "kind", "description"}]}
    #[arg(long, default_value = DEFAULT_INVENTORY)]
    pub inventory: PathBuf,
    /// Where to write the JSON report (default <home>/evals/report-<timestamp>.json)
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Baseline to compare against; exit 1 on regression. Default: evals/baseline.json when
    /// it exists and the whole default suite runs with the catalogue.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Skip the baseline comparison
    #[arg(long, conflicts_with = "baseline")]
    pub no_baseline: bool,
    /// Write this run's figures as a new baseline to PATH (after a full run)
    #[arg(long)]
    pub write_baseline: Option<PathBuf>,
    /// Run at most N cases (after --category)
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only cases of this category (repeatable)
    #[arg(long)]
    pub category: Vec<String>,
    /// Print the report as JSON instead of the table
    #[arg(long)]
    pub json: bool,
}

/// A default path of the shipped evals, found where the shipped data is (the data root,
/// else the checkout), so `steward eval` runs from any directory; a path the person gave
/// stays as given.
fn shipped(cfg: &Config, given: &Path, default: &str) -> PathBuf {
    if given != Path::new(default) {
        return given.to_path_buf();
    }
    [
        cfg.data_root.dir.clone(),
        crate::config::DataRoot::shipped().dir,
    ]
    .into_iter()
    .map(|root| root.join(default))
    .find(|p| p.exists())
    .unwrap_or_else(|| given.to_path_buf())
}

impl EvalOpts {
    /// The whole default suite with our catalogue: the figures compare to the baseline.
    fn full_default_run(&self) -> bool {
        self.limit.is_none()
            && self.category.is_empty()
            && self.tools.is_none()
            && self.cases == Path::new(DEFAULT_CASES)
    }
}

/// Runs `steward eval` with `backend`. Exit code 0 when there is no regression, 1 on a
/// regression against the baseline; errors (bad case files, a backend failing every case)
/// come back as `Err`.
///
/// `drafter` fills in the rule drafts of category `rules` (the same model, without
/// retrieval and grounding in front: see [`crate::planner::router`]).
pub async fn run(
    cfg: &Config,
    opts: EvalOpts,
    backend: Arc<dyn Backend>,
    drafter: Arc<dyn Backend>,
) -> Result<ExitCode> {
    let full_default_run = opts.full_default_run();
    let mut opts = opts;
    opts.cases = shipped(cfg, &opts.cases, DEFAULT_CASES);
    opts.inventory = shipped(cfg, &opts.inventory, DEFAULT_INVENTORY);
    let mut cases = eval::load_cases(&opts.cases)?;
    let tools = match &opts.tools {
        Some(path) => ToolSet::from_file(path)?,
        None => ToolSet::catalogue(),
    };
    eval::validate(&cases, &tools)?;
    let inventory = eval::load_inventory(&opts.inventory)?;
    if !opts.category.is_empty() {
        cases.retain(|c| opts.category.contains(&c.category));
    }
    if let Some(limit) = opts.limit {
        cases.truncate(limit);
    }
    if cases.is_empty() {
        bail!(
            "no cases to run in {} (categories: {})",
            opts.cases.display(),
            if opts.category.is_empty() {
                "all".to_string()
            } else {
                opts.category.join(", ")
            }
        );
    }

    eprintln!(
        "steward eval: {} cases with {} ({} tools)",
        cases.len(),
        backend.name(),
        tools.defs.len()
    );
    let width = cases.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let mut progress = |i: usize, n: usize, row: &CaseRow| {
        let verdict = match (row.pass, row.escape, &row.error) {
            (true, _, _) => "pass",
            (false, true, _) => "ESCAPE",
            (false, false, Some(_)) => "ERROR",
            (false, false, None) => "FAIL",
        };
        eprintln!(
            "[{:>w$}/{n}] {:<width$}  {:<6} {:>6} ms",
            i + 1,
            row.id,
            verdict,
            row.latency_ms,
            w = n.to_string().len(),
        );
    };
    let spec = crate::draft::spec();
    let drafting = eval::Drafting {
        spec: &spec,
        backend: drafter.as_ref(),
    };
    let report = eval::run(
        &cases,
        backend.as_ref(),
        Some(drafting),
        &tools,
        &inventory,
        &mut progress,
    )
    .await;

    // Rows, not `report.cases`: that counts tool-call cases only, and a run of rule
    // drafts alone has none.
    if !report.rows.is_empty() && report.rows.iter().all(|r| r.error.is_some()) {
        let first = report
            .rows
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_default();
        bail!("the backend failed on every case: {first}");
    }

    let report_path = match &opts.report {
        Some(p) => p.clone(),
        None => cfg
            .home
            .join("evals")
            .join(format!("report-{}.json", file_stamp())),
    };
    if let Some(dir) = report_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", report_path.display()))?;

    if opts.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_table());
        println!("\nreport: {}", report_path.display());
    }

    if let Some(path) = &opts.write_baseline {
        if !opts.full_default_run() {
            eprintln!("steward eval: note: writing a baseline from a partial or non-default run");
        }
        let note = format!(
            "Measured with {} on {} cases ({}); update with `steward eval --write-baseline {}`.",
            report.backend,
            report.cases,
            steward_tools::when::format(now()),
            path.display()
        );
        let baseline = Baseline::from_report(&report, 0.02, note);
        std::fs::write(path, serde_json::to_string_pretty(&baseline)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("baseline written: {}", path.display());
    }

    let baseline_path = match (&opts.baseline, opts.no_baseline) {
        (_, true) => None,
        (Some(p), false) => Some(p.clone()),
        (None, false) => {
            let default = shipped(cfg, Path::new(DEFAULT_BASELINE), DEFAULT_BASELINE);
            if full_default_run && default.is_file() {
                Some(default)
            } else {
                None
            }
        }
    };
    let Some(baseline_path) = baseline_path else {
        return Ok(ExitCode::SUCCESS);
    };
    let baseline = Baseline::load(&baseline_path)?;
    let regressions = eval::compare(&report, &baseline);
    if regressions.is_empty() {
        println!(
            "baseline {}: no regression (tolerance {})",
            baseline_path.display(),
            baseline.tolerance
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "steward eval: {} regression(s) against {}:",
        regressions.len(),
        baseline_path.display()
    );
    for r in &regressions {
        eprintln!("  {r}");
    }
    Ok(ExitCode::FAILURE)
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp(ms)
}

/// `20261123T120000Z`: the current UTC time, safe in a file name.
fn file_stamp() -> String {
    let text = steward_tools::when::format(now());
    // 2026-11-23T12:00:00.000Z -> 20261123T120000Z
    let base = text.split('.').next().unwrap_or(&text);
    let mut stamp: String = base.chars().filter(|c| *c != '-' && *c != ':').collect();
    stamp.push('Z');
    stamp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        opts: EvalOpts,
    }

    #[test]
    fn defaults_and_flags_parse() {
        let cli = Cli::try_parse_from(["eval"]).unwrap();
        assert_eq!(cli.opts.cases, PathBuf::from("evals/cases"));
        assert!(cli.opts.full_default_run());
        let cli = Cli::try_parse_from([
            "eval",
            "--model",
            "smollm2-135m-instruct-q4_1",
            "--category",
            "injection",
            "--category",
            "rollback",
            "--limit",
            "5",
            "--tools",
            "evals/foreign/tools.json",
        ])
        .unwrap();
        assert_eq!(cli.opts.category, ["injection", "rollback"]);
        assert_eq!(cli.opts.limit, Some(5));
        assert!(!cli.opts.full_default_run());
        assert!(Cli::try_parse_from(["eval", "--baseline", "b.json", "--no-baseline"]).is_err());
    }

    fn evals() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../evals")
    }

    /// Answers every case with its first acceptable call (or always with one fixed call).
    #[derive(Debug)]
    struct Scripted {
        answers: std::collections::HashMap<String, steward_llm::ProposedCall>,
        fixed: Option<steward_llm::ProposedCall>,
    }

    type Proposed<'a> = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = steward_llm::Result<steward_llm::Proposal>>
                + Send
                + 'a,
        >,
    >;

    // The shape `#[async_trait]` expands to (this crate does not depend on async-trait).
    impl Backend for Scripted {
        fn name(&self) -> String {
            "scripted".into()
        }
        fn propose<'s, 'r, 'a>(&'s self, req: &'r steward_llm::PlanRequest) -> Proposed<'a>
        where
            's: 'a,
            'r: 'a,
            Self: 'a,
        {
            let key = serde_json::to_string(&req.turns).unwrap();
            let call = self
                .fixed
                .clone()
                .or_else(|| self.answers.get(&key).cloned())
                .unwrap();
            Box::pin(async move {
                Ok(steward_llm::Proposal {
                    call,
                    backend: "scripted".into(),
                    confidence: 1.0,
                    choice: 1.0,
                    prompt_tokens: 10,
                    generated_tokens: 5,
                    forward_passes: 4,
                })
            })
        }
    }

    /// A draft that meets `rule`: its first trigger, the first acceptable value of each
    /// label and argument, and its debounce and throttle.
    fn perfect_draft(rule: &eval::ExpectedRule) -> steward_llm::ProposedCall {
        use serde_json::{json, Map, Value};
        let first = |alts: &[eval::Accept]| {
            alts.iter().find_map(|a| match a {
                eval::Accept::Value(v) => Some(v.clone()),
                eval::Accept::Any => Some(json!("x")),
                eval::Accept::Contains(p) => Some(json!(p.join(" "))),
                eval::Accept::Time(t) => Some(json!(t)),
                eval::Accept::Absent => None,
            })
        };
        let (source, what) = rule.on[0].split_once(':').unwrap();
        let key = match source {
            "monitor" => "kind",
            "schedule" => "cron",
            _ => "name",
        };
        let mut trigger = json!({"source": source, key: what});
        if let Some(labels) = &rule.labels {
            let l: Map<String, Value> = labels
                .iter()
                .filter_map(|(k, alts)| first(alts).map(|v| (k.clone(), v)))
                .collect();
            trigger["labels"] = Value::Object(l);
        }
        let steps: Vec<Value> = rule
            .steps
            .iter()
            .map(|s| {
                let args: Map<String, Value> = s
                    .args
                    .iter()
                    .filter_map(|(k, alts)| first(alts).map(|v| (k.clone(), v)))
                    .collect();
                let mut step = json!({"tool": s.tool, "args": args});
                if let Some(Some(u)) = s.until.as_ref().and_then(|u| u.first()) {
                    step["until"] = json!(u);
                }
                step
            })
            .collect();
        let ms = rule.debounce.as_ref().map_or(0, |d| d[0]);
        let mut draft =
            json!({"trigger": trigger, "for": format!("{}s", ms / 1000), "steps": steps});
        if let Some(Some(w)) = rule.once_within.as_ref().map(|w| w[0]) {
            draft["once_within"] = json!(format!("{}s", w / 1000));
        }
        steward_llm::ProposedCall {
            name: "rule".into(),
            arguments: draft,
        }
    }

    fn opts(dir: &Path) -> EvalOpts {
        let mut o = Cli::try_parse_from(["eval"]).unwrap().opts;
        o.cases = evals().join("cases");
        o.inventory = evals().join("inventory.json");
        o.baseline = Some(evals().join("baseline.json"));
        o.report = Some(dir.join("report.json"));
        o
    }

    #[tokio::test]
    async fn runs_the_suite_writes_the_report_and_checks_the_baseline() {
        let dir = std::env::temp_dir().join(format!("steward-eval-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = Config::load(&dir, &|_| None, &[]).unwrap();
        let cases = eval::load_cases(&evals().join("cases")).unwrap();
        let inventory = eval::load_inventory(&evals().join("inventory.json")).unwrap();
        let tools = ToolSet::catalogue();
        let answers = cases
            .iter()
            .map(|c| {
                let req = eval::request_for(c, &tools, &inventory);
                let answer = match &c.rule {
                    Some(rule) => perfect_draft(rule),
                    None => c.expect[0].example_call(),
                };
                (serde_json::to_string(&req.turns).unwrap(), answer)
            })
            .collect();

        // A perfect planner: everything passes, the baseline holds, a new one is written.
        let perfect = Arc::new(Scripted {
            answers,
            fixed: None,
        });
        let mut o = opts(&dir);
        o.write_baseline = Some(dir.join("baseline.json"));
        let code = run(&cfg, o, perfect.clone(), perfect).await.unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let report: eval::Report =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report.passed, report.cases);
        assert_eq!(report.injection_escapes, 0);
        let written = Baseline::load(&dir.join("baseline.json")).unwrap();
        assert_eq!(written.exact_match, 1.0);

        // A planner that destroys a tenant whatever it is asked: escapes, exit 1.
        let reckless = Arc::new(Scripted {
            answers: Default::default(),
            fixed: Some(steward_llm::ProposedCall {
                name: "tenant_destroy".into(),
                arguments: serde_json::json!({"tenant": "acme-research"}),
            }),
        });
        let mut o = opts(&dir);
        o.category = vec!["injection".into()];
        let code = run(&cfg, o.clone(), reckless.clone(), reckless.clone())
            .await
            .unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        // Against the freshly written baseline, injection accuracy regresses too.
        o.baseline = Some(dir.join("baseline.json"));
        o.limit = Some(3);
        assert_eq!(
            run(&cfg, o, reckless.clone(), reckless).await.unwrap(),
            ExitCode::FAILURE
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_stamp_is_compact_utc() {
        let s = file_stamp();
        assert_eq!(s.len(), "20261123T120000Z".len(), "{s}");
        assert!(s.ends_with('Z') && s.as_bytes()[8] == b'T', "{s}");
    }
}
