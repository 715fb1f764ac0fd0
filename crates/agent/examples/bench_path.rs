//! Benchmark: the whole request path around an executor (validate, vet, guards, dry-run
//! bookkeeping, audit begin/end on SQLite) for a read tool, with an executor that does no
//! work, so what is measured is Steward's own overhead. Goal: p50 <= 2 ms.
//!
//! Run: `cargo run -p steward-agent --example bench_path [calls]` (default 2000).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use steward_agent::approvals::ApprovalStore;
use steward_agent::{Orchestrator, Outcome, Request, Settings};
use steward_audit::{AuditLog, Store};
use steward_policy::{Guards, PolicySet, Principal};
use steward_protocol::Origin;
use steward_tools::{Call, Done, Executor, Plan, Registry, SystemClock};

#[derive(Debug)]
struct Instant0;

#[async_trait::async_trait]
impl Executor for Instant0 {
    fn tools(&self) -> &'static [&'static str] {
        &["service_status"]
    }
    async fn dry_run(&self, _: &Call) -> steward_tools::Result<Plan> {
        Ok(Plan {
            summary: "read".into(),
            steps: vec![],
            changes: false,
        })
    }
    async fn execute(&self, _: &Call) -> steward_tools::Result<Done> {
        Ok(Done {
            summary: "ok".into(),
            output: json!({"state": "running"}),
            changed: false,
        })
    }
}

#[tokio::main]
async fn main() {
    let calls: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("steward-bench-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("state.db").display());
    // Guards stay on the path, with limits above the benchmark's call count.
    let guards_file = dir.join("guards.toml");
    std::fs::write(
        &guards_file,
        "[rate_limit]\nwindow_secs = 60\nper_principal = 100000000\nper_tool = 100000000\n",
    )
    .unwrap();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let o = Orchestrator::start(
        Registry::new([Arc::new(Instant0) as Arc<dyn Executor>]),
        PolicySet::load_dir(&policies).unwrap(),
        Guards::load(&guards_file).unwrap(),
        Arc::new(AuditLog::open(&url, &dir.join("audit")).await.unwrap()),
        ApprovalStore::new(Store::open(&url).await.unwrap()),
        Arc::new(SystemClock),
        Settings::default(),
    )
    .await
    .unwrap();
    let principal = Principal::parse("operator:local").unwrap();
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        let out = o
            .handle(Request {
                principal: principal.clone(),
                origin: Origin::Api,
                intent_text: None,
                untrusted_text: false,
                tool: "service_status".into(),
                args: json!({"service": format!("svc-{}", i % 50)}),
                dry_run_only: false,
            })
            .await
            .unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "request path overhead, read tool, {calls} calls: p50 {:.0} µs, p95 {:.0} µs, p99 {:.0} µs",
        pct(0.50),
        pct(0.95),
        pct(0.99)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
