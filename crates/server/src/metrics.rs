//! `/metrics`: Steward in the Prometheus text exposition format (the `prometheus` crate, on a
//! registry of Steward's own, not the process-global one).
//!
//! Counters and histograms are fed as things happen: the orchestrator reports every call
//! and stage timing through [`Meter`], refusals are counted where they are answered, and
//! `steward serve` reports the monitor's event lag. Gauges that are facts about the state
//! store (pending approvals, open incidents) are read when scraped, so they are never stale.

use std::sync::Mutex;

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use steward_agent::meter::{Meter, Stage};
use steward_protocol::Origin;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Steward's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: IntCounterVec,
    stages: HistogramVec,
    refusals: IntCounterVec,
    monitor_lag: Histogram,
    pending_approvals: IntGauge,
    open_incidents: IntGauge,
    audit_appended: IntCounter,
    audit_verify_ok: IntGauge,
    audit_verify_time: IntGauge,
    /// Serialises scrapes, so two never both advance the audit counter.
    scrape: Mutex<()>,
}

fn seconds_buckets() -> prometheus::Result<Vec<f64>> {
    // 100 µs to ~105 s: vetting sits at the bottom, planning and executing higher up.
    exponential_buckets(0.0001, 2.0, 21)
}

impl Metrics {
    /// The registry with every family Steward exports. Fails only on a bug (a bad name).
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new_custom(Some("steward".into()), None)?;
        let calls = IntCounterVec::new(
            Opts::new(
                "calls_total",
                "Tool calls that ended, by tool, origin and outcome",
            ),
            &["tool", "origin", "outcome"],
        )?;
        let stages = HistogramVec::new(
            HistogramOpts::new(
                "stage_duration_seconds",
                "Time per request-path stage: plan (one proposal), vet (policy), execute",
            )
            .buckets(seconds_buckets()?),
            &["stage"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "http_refusals_total",
                "HTTP requests refused (webhooks, Alertmanager, API), by source and reason",
            ),
            &["source", "reason"],
        )?;
        let monitor_lag = Histogram::with_opts(
            HistogramOpts::new(
                "monitor_event_lag_seconds",
                "From a Docker event's time to its handover to the trigger engine",
            )
            .buckets(seconds_buckets()?),
        )?;
        let pending_approvals = IntGauge::new("pending_approvals", "Calls waiting for a person")?;
        let open_incidents = IntGauge::new(
            "open_incidents",
            "Incidents still open or waiting for approval",
        )?;
        let audit_appended = IntCounter::new(
            "audit_records_appended_total",
            "Audit records this process appended",
        )?;
        let audit_verify_ok = IntGauge::new(
            "audit_verify_ok",
            "Last audit verify: 1 intact, 0 problems found, -1 not run since start",
        )?;
        audit_verify_ok.set(-1);
        let audit_verify_time = IntGauge::new(
            "audit_verify_timestamp_seconds",
            "When the last audit verify ran (Unix time), 0 if never",
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(stages.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(monitor_lag.clone()))?;
        registry.register(Box::new(pending_approvals.clone()))?;
        registry.register(Box::new(open_incidents.clone()))?;
        registry.register(Box::new(audit_appended.clone()))?;
        registry.register(Box::new(audit_verify_ok.clone()))?;
        registry.register(Box::new(audit_verify_time.clone()))?;
        Ok(Metrics {
            registry,
            calls,
            stages,
            refusals,
            monitor_lag,
            pending_approvals,
            open_incidents,
            audit_appended,
            audit_verify_ok,
            audit_verify_time,
            scrape: Mutex::new(()),
        })
    }

    /// Counts one refused HTTP request.
    pub fn refused(&self, source: &str, reason: &str) {
        self.refusals.with_label_values(&[source, reason]).inc();
    }

    /// A Docker event reached the trigger engine `seconds` after it happened.
    pub fn monitor_lag(&self, seconds: f64) {
        self.monitor_lag.observe(seconds.max(0.0));
    }

    /// Records the result of an audit verify.
    pub fn audit_verified(&self, ok: bool) {
        self.audit_verify_ok.set(i64::from(ok));
        self.audit_verify_time.set(crate::db::now_ms() / 1000);
    }

    /// The exposition text, after setting the scrape-time facts: pending approvals and
    /// open incidents when they could be read, and the audit log's append count.
    pub fn encode(
        &self,
        pending_approvals: Option<usize>,
        open_incidents: Option<usize>,
        audit_appended: u64,
    ) -> String {
        let _one_at_a_time = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = pending_approvals {
            self.pending_approvals.set(n as i64);
        }
        if let Some(n) = open_incidents {
            self.open_incidents.set(n as i64);
        }
        let seen = self.audit_appended.get();
        self.audit_appended
            .inc_by(audit_appended.saturating_sub(seen));
        let mut text = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        String::from_utf8_lossy(&text).into_owned()
    }
}

impl Meter for Metrics {
    fn ended(&self, tool: &str, origin: Origin, outcome: &'static str) {
        // Tool names come from requests: only catalogue names become label values.
        let tool = if steward_tools::find(tool).is_some() {
            tool
        } else {
            "unknown"
        };
        let origin = serde_json::to_value(origin)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.calls
            .with_label_values(&[tool, origin.as_str(), outcome])
            .inc();
    }

    fn timed(&self, stage: Stage, seconds: f64) {
        self.stages
            .with_label_values(&[stage.as_str()])
            .observe(seconds);
    }
}
