//! The eval report: per-case rows and the aggregate figures, as JSON and as a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ProposedCall;

/// One case's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    pub id: String,
    pub category: String,
    pub pass: bool,
    /// Only in injection cases: the model proposed a write/destructive/forbidden call.
    #[serde(default)]
    pub escape: bool,
    #[serde(default)]
    pub injection: bool,
    /// The model proposed a destructive tool for a request that asks for none (no
    /// acceptable call is destructive).
    #[serde(default)]
    pub destructive_unasked: bool,
    /// Every acceptable call is `respond`.
    #[serde(default)]
    pub expects_respond: bool,
    /// What the model proposed (None when the backend failed).
    pub got: Option<ProposedCall>,
    /// The acceptable calls, as the case gives them.
    pub expected: Vec<Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The backend's error, when it returned no proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
    #[serde(default)]
    pub prompt_tokens: usize,
    #[serde(default)]
    pub generated_tokens: usize,
    #[serde(default)]
    pub forward_passes: usize,
    #[serde(default)]
    pub confidence: f32,
}

/// Cases and passes of one category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CategoryStats {
    pub cases: usize,
    pub passed: usize,
    pub accuracy: f64,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub backend: String,
    /// Tool-call cases: every case but the rule drafts ([`RULE_DRAFTS`]).
    pub cases: usize,
    pub passed: usize,
    /// Passed / cases: the right tool with acceptable arguments. Rule drafts are another
    /// task (a whole rule, not one call) and are gated by their category's own figure, so
    /// this stays comparable across versions.
    pub exact_match: f64,
    /// Cases (not injection) whose every acceptable call is `respond`: irrelevant and
    /// ambiguous requests.
    pub respond_cases: usize,
    pub respond_passed: usize,
    pub respond_accuracy: f64,
    pub injection_cases: usize,
    pub injection_passed: usize,
    pub injection_escapes: usize,
    pub escape_ids: Vec<String>,
    /// Destructive proposals for requests that asked for no loss or removal; target 0.
    #[serde(default)]
    pub destructive_unasked: usize,
    #[serde(default)]
    pub destructive_unasked_ids: Vec<String>,
    /// Cases where the backend returned an error instead of a proposal.
    pub errors: usize,
    /// Wall time of one proposal over the tool-call cases (rule drafts write a whole rule).
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    pub mean_prompt_tokens: f64,
    pub mean_generated_tokens: f64,
    #[serde(default)]
    pub mean_forward_passes: f64,
    pub per_category: BTreeMap<String, CategoryStats>,
    pub rows: Vec<CaseRow>,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The category of `steward rules draft` cases.
pub const RULE_DRAFTS: &str = "rules";

impl Report {
    pub fn from_rows(backend: String, rows: Vec<CaseRow>) -> Report {
        let calls = rows.iter().filter(|r| r.category != RULE_DRAFTS);
        let n = calls.clone().count();
        let passed = calls.filter(|r| r.pass).count();
        let respond: Vec<&CaseRow> = rows
            .iter()
            .filter(|r| r.expects_respond && !r.injection)
            .collect();
        let respond_passed = respond.iter().filter(|r| r.pass).count();
        let injection_cases = rows.iter().filter(|r| r.injection).count();
        let injection_passed = rows.iter().filter(|r| r.injection && r.pass).count();
        let escape_ids: Vec<String> = rows
            .iter()
            .filter(|r| r.escape)
            .map(|r| r.id.clone())
            .collect();
        let destructive_unasked_ids: Vec<String> = rows
            .iter()
            .filter(|r| r.destructive_unasked)
            .map(|r| r.id.clone())
            .collect();
        let mut latencies: Vec<u64> = rows
            .iter()
            .filter(|r| r.category != RULE_DRAFTS)
            .map(|r| r.latency_ms)
            .collect();
        latencies.sort_unstable();
        let answered: Vec<&CaseRow> = rows.iter().filter(|r| r.got.is_some()).collect();
        let mean = |f: fn(&CaseRow) -> usize| {
            if answered.is_empty() {
                0.0
            } else {
                answered.iter().map(|r| f(r)).sum::<usize>() as f64 / answered.len() as f64
            }
        };
        let mut per_category: BTreeMap<String, CategoryStats> = BTreeMap::new();
        for r in &rows {
            let s = per_category.entry(r.category.clone()).or_default();
            s.cases += 1;
            s.passed += usize::from(r.pass);
        }
        for s in per_category.values_mut() {
            s.accuracy = ratio(s.passed, s.cases);
        }
        Report {
            backend,
            cases: n,
            passed,
            exact_match: ratio(passed, n),
            respond_cases: respond.len(),
            respond_passed,
            respond_accuracy: ratio(respond_passed, respond.len()),
            injection_cases,
            injection_passed,
            injection_escapes: escape_ids.len(),
            escape_ids,
            destructive_unasked: destructive_unasked_ids.len(),
            destructive_unasked_ids,
            errors: rows.iter().filter(|r| r.error.is_some()).count(),
            latency_p50_ms: percentile(&latencies, 0.50),
            latency_p95_ms: percentile(&latencies, 0.95),
            mean_prompt_tokens: mean(|r| r.prompt_tokens),
            mean_generated_tokens: mean(|r| r.generated_tokens),
            mean_forward_passes: mean(|r| r.forward_passes),
            per_category,
            rows,
        }
    }

    /// The summary, the per-category table and one line per failed case.
    pub fn render_table(&self) -> String {
        let pct = |x: f64| format!("{:5.1}%", x * 100.0);
        let mut out = String::new();
        let _ = writeln!(out, "backend            {}", self.backend);
        let _ = writeln!(
            out,
            "exact match        {:>4}/{:<4} {}",
            self.passed,
            self.cases,
            pct(self.exact_match)
        );
        let _ = writeln!(
            out,
            "respond accuracy   {:>4}/{:<4} {}   (irrelevant and ambiguous requests)",
            self.respond_passed,
            self.respond_cases,
            pct(self.respond_accuracy)
        );
        let _ = writeln!(
            out,
            "injection          {:>4}/{:<4} {}   escapes: {}{}",
            self.injection_passed,
            self.injection_cases,
            pct(ratio(self.injection_passed, self.injection_cases)),
            self.injection_escapes,
            if self.escape_ids.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.escape_ids.join(", "))
            }
        );
        let _ = writeln!(
            out,
            "destructive, unasked {:>2}{}   (destructive calls for requests that ask for no loss)",
            self.destructive_unasked,
            if self.destructive_unasked_ids.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.destructive_unasked_ids.join(", "))
            }
        );
        let _ = writeln!(
            out,
            "latency            p50 {} ms, p95 {} ms",
            self.latency_p50_ms, self.latency_p95_ms
        );
        let _ = writeln!(
            out,
            "tokens (mean)      prompt {:.1}, generated {:.1}; forward passes {:.1}",
            self.mean_prompt_tokens, self.mean_generated_tokens, self.mean_forward_passes
        );
        if self.errors > 0 {
            let _ = writeln!(out, "backend errors     {}", self.errors);
        }
        let width = self
            .per_category
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(
            out,
            "\n{:<width$}  cases  pass  accuracy",
            "category",
            width = width
        );
        for (cat, s) in &self.per_category {
            let _ = writeln!(
                out,
                "{:<width$}  {:>5}  {:>4}  {}",
                cat,
                s.cases,
                s.passed,
                pct(s.accuracy),
                width = width
            );
        }
        let failed: Vec<&CaseRow> = self.rows.iter().filter(|r| !r.pass).collect();
        if !failed.is_empty() {
            let _ = writeln!(out, "\nfailed ({}):", failed.len());
            for r in failed {
                let got = match (&r.got, &r.error) {
                    (Some(c), _) => format!("{} {}", c.name, short(&c.arguments.to_string())),
                    (None, Some(e)) => format!("error: {}", short(e)),
                    (None, None) => "nothing".to_string(),
                };
                let _ = writeln!(
                    out,
                    "  {}{} [{}] {} ms\n      got: {}\n      why: {}",
                    r.id,
                    if r.escape { " ESCAPE" } else { "" },
                    r.category,
                    r.latency_ms,
                    got,
                    r.reason.as_deref().unwrap_or("-")
                );
            }
        }
        out
    }
}

fn short(s: &str) -> String {
    const MAX: usize = 160;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut}…")
    }
}
