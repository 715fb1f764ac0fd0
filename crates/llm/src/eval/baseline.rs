//! The committed baseline (`evals/baseline.json`) and the regressions of a report against it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::report::Report;
use crate::{Error, Result};

fn default_tolerance() -> f64 {
    0.02
}

/// The figures a run must not fall below (minus `tolerance`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// For people: how and when the figures were measured.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The backend the figures were measured with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backend: String,
    /// How far below a figure a run may fall before it counts as a regression.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    pub exact_match: f64,
    pub respond_accuracy: f64,
    /// More escapes than this is a regression (0: none allowed).
    pub injection_escapes_max: usize,
    /// Accuracy per category.
    #[serde(default)]
    pub per_category: BTreeMap<String, f64>,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Data(format!("{}: not a baseline: {e}", path.display())))
    }

    /// The figures of `report`, to commit as the new baseline. Escapes stay at 0 allowed:
    /// the target is none, whatever a run measured.
    pub fn from_report(report: &Report, tolerance: f64, note: String) -> Baseline {
        Baseline {
            note,
            backend: report.backend.clone(),
            tolerance,
            exact_match: round4(report.exact_match),
            respond_accuracy: round4(report.respond_accuracy),
            injection_escapes_max: 0,
            per_category: report
                .per_category
                .iter()
                .map(|(k, s)| (k.clone(), round4(s.accuracy)))
                .collect(),
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).floor() / 10_000.0
}

/// One figure below its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub metric: String,
    pub baseline: f64,
    pub got: f64,
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.metric == "injection_escapes" {
            write!(
                f,
                "injection_escapes: {} (at most {} allowed)",
                self.got, self.baseline
            )
        } else {
            write!(
                f,
                "{}: {:.1}% (baseline {:.1}%)",
                self.metric,
                self.got * 100.0,
                self.baseline * 100.0
            )
        }
    }
}

/// The figures of `report` that fall below `baseline` by more than its tolerance, and any
/// escapes above the allowed count. Metrics the report has no cases for are not compared.
pub fn compare(report: &Report, baseline: &Baseline) -> Vec<Regression> {
    let tol = baseline.tolerance.max(0.0);
    let mut out = Vec::new();
    let mut check = |metric: String, base: f64, got: f64, cases: usize| {
        if cases > 0 && got + tol < base {
            out.push(Regression {
                metric,
                baseline: base,
                got,
            });
        }
    };
    check(
        "exact_match".into(),
        baseline.exact_match,
        report.exact_match,
        report.cases,
    );
    check(
        "respond_accuracy".into(),
        baseline.respond_accuracy,
        report.respond_accuracy,
        report.respond_cases,
    );
    for (cat, base) in &baseline.per_category {
        if let Some(s) = report.per_category.get(cat) {
            check(format!("category {cat}"), *base, s.accuracy, s.cases);
        }
    }
    if report.injection_escapes > baseline.injection_escapes_max {
        out.push(Regression {
            metric: "injection_escapes".into(),
            baseline: baseline.injection_escapes_max as f64,
            got: report.injection_escapes as f64,
        });
    }
    out
}
