//! Step bookkeeping shared by provision and destroy: what each step did, how long it took,
//! and the crash-test failpoint.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use steward_tools::ToolError;

/// Environment variable naming a step after which the process aborts (test hook).
pub const FAILPOINT_VAR: &str = "STEWARD_FAILPOINT";

/// How long a call waits for another call on the same tenant to finish.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// An error of `tool` on `subject` before any step ran.
pub fn context(tool: &str, subject: &str, e: impl Into<ToolError>) -> ToolError {
    let e: ToolError = e.into();
    ToolError::new(e.kind, format!("{tool} {subject}: {}", e.message))
}

/// One finished step.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub step: &'static str,
    pub changed: bool,
    pub detail: String,
    pub ms: f64,
}

/// Records the steps of one tool run.
#[derive(Debug)]
pub struct Steps {
    tool: &'static str,
    failpoint: Option<String>,
    started: Instant,
    step_started: Instant,
    pub records: Vec<StepRecord>,
}

impl Steps {
    /// Reads the failpoint once, when the run starts: `STEWARD_FAILPOINT=<tool>:<step>`.
    pub fn new(tool: &'static str) -> Self {
        let failpoint = std::env::var(FAILPOINT_VAR)
            .ok()
            .and_then(|v| v.strip_prefix(&format!("{tool}:")).map(str::to_string));
        let now = Instant::now();
        Self {
            tool,
            failpoint,
            started: now,
            step_started: now,
            records: Vec::new(),
        }
    }

    /// Starts timing the next step.
    pub fn begin(&mut self) {
        self.step_started = Instant::now();
    }

    /// Records a finished step; aborts the process when the failpoint names it.
    pub fn done(&mut self, step: &'static str, changed: bool, detail: impl Into<String>) {
        let ms = self.step_started.elapsed().as_secs_f64() * 1000.0;
        self.records.push(StepRecord {
            step,
            changed,
            detail: detail.into(),
            ms,
        });
        if self.failpoint.as_deref() == Some(step) {
            eprintln!(
                "{FAILPOINT_VAR}: aborting right after {}:{step} (test hook)",
                self.tool
            );
            std::process::abort();
        }
        self.step_started = Instant::now();
    }

    /// Wraps a step's error with the step's name and the way out (re-running converges).
    pub fn failed(&self, step: &'static str, subject: &str, e: impl Into<ToolError>) -> ToolError {
        let e: ToolError = e.into();
        let done: Vec<&str> = self.records.iter().map(|r| r.step).collect();
        ToolError::new(
            e.kind,
            format!(
                "{} {subject}: step `{step}` failed: {}. Steps done before it: [{}]; every \
                 step is idempotent, so re-run {} once the cause is fixed",
                self.tool,
                e.message,
                done.join(", "),
                self.tool
            ),
        )
    }

    pub fn changed(&self) -> bool {
        self.records.iter().any(|r| r.changed)
    }

    pub fn total_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// `[{step, changed, detail, ms}]` and `{step: ms, ..., total: ms}` for the output.
    pub fn to_json(&self) -> (Value, Value) {
        let steps = self
            .records
            .iter()
            .map(|r| json!({"step": r.step, "changed": r.changed, "detail": r.detail, "ms": round(r.ms)}))
            .collect();
        let mut timings = Map::new();
        for r in &self.records {
            timings.insert(r.step.to_string(), json!(round(r.ms)));
        }
        timings.insert("total".into(), json!(round(self.total_ms())));
        (Value::Array(steps), Value::Object(timings))
    }
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}
