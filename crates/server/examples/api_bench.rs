//! The API's cost over the request path itself, on loopback:
//! 1. `service_list` through the orchestrator in process, then the same call through
//!    `POST /v1/calls` (keep-alive HTTP/1.1, one client): the added p50 is the API's own
//!    cost (auth, rate limit, JSON both ways, axum);
//! 2. `tools/call` of `service_list` over MCP streamable HTTP (`/mcp`), round trip;
//! 3. `oha` against `POST /v1/calls` for throughput, when `oha` is on PATH.
//!
//! The executor answers from memory, so the figures are Steward's and not Docker's (both
//! paths still vet with Cedar and append two audit records per call, on SQLite).
//!
//!     cargo build --workspace --examples && target/debug/examples/api_bench [CALLS]

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{json, Value};
use steward_agent::approvals::ApprovalStore;
use steward_agent::{Orchestrator, Request, Settings};
use steward_audit::{AuditLog, AuditOptions, Store};
use steward_policy::{Guards, PolicySet, Principal};
use steward_protocol::Origin;
use steward_server::hooks::HookBook;
use steward_server::metrics::Metrics;
use steward_server::{
    app, AppState, Check, Parts, PlatformView, RateLimit, Readiness, Submission, Triggers,
};
use steward_tools::{Call, Done, Executor, Plan, Registry, SystemClock};

/// `service_list` from memory: eight platform services.
#[derive(Debug)]
struct Inventory;

#[async_trait]
impl Executor for Inventory {
    fn tools(&self) -> &'static [&'static str] {
        &["service_list"]
    }
    async fn dry_run(&self, _: &Call) -> steward_tools::Result<Plan> {
        Ok(Plan {
            summary: "list services (read only)".into(),
            steps: vec![],
            changes: false,
        })
    }
    async fn execute(&self, _: &Call) -> steward_tools::Result<Done> {
        let services: Vec<Value> = [
            "rentguy",
            "psra",
            "vps-manager",
            "wpcs",
            "claude-chat",
            "n8n",
            "trading-dashboard",
            "langgraph",
        ]
        .iter()
        .map(|s| json!({"service": s, "kind": "platform", "health": "healthy", "release": "r1"}))
        .collect();
        Ok(Done {
            summary: "8 services".into(),
            output: json!({ "services": services }),
            changed: false,
        })
    }
}

#[derive(Debug)]
struct Nothing;

#[async_trait]
impl Triggers for Nothing {
    async fn submit(&self, _: Vec<Submission>) -> Result<Vec<Value>, String> {
        Err("no engine in this bench".into())
    }
    async fn request(&self, _: &str) -> Result<Option<Value>, String> {
        Ok(None)
    }
}

#[async_trait]
impl Readiness for Nothing {
    async fn check(&self) -> Vec<Check> {
        vec![Check::ok("bench")]
    }
}

#[async_trait]
impl PlatformView for Nothing {
    async fn status(&self) -> Result<Value, String> {
        Ok(json!({}))
    }
}

fn percentiles(mut us: Vec<u128>) -> (f64, f64) {
    us.sort_unstable();
    let at = |q: f64| us[((us.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let calls: usize = std::env::args().nth(1).map_or(2000, |n| n.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("steward-api-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("state.db").display()))
        .await
        .unwrap();
    let audit = AuditLog::with_store(store.clone(), &dir.join("audit"), AuditOptions::default())
        .await
        .unwrap();
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let orchestrator = Arc::new(
        Orchestrator::start(
            Registry::new([Arc::new(Inventory) as Arc<dyn Executor>]),
            PolicySet::load_dir(&policies).unwrap(),
            // The shipped guards allow 60 calls a minute per principal: far below a load test.
            Guards::parse(
                Path::new("bench guards"),
                "[rate_limit]\nper_principal = 1000000000\nper_tool = 1000000000\n",
            )
            .unwrap(),
            Arc::new(audit.clone()),
            ApprovalStore::new(store.clone()),
            Arc::new(SystemClock),
            Settings::default(),
        )
        .await
        .unwrap(),
    );
    let state = AppState::new(Parts {
        audit,
        triggers: Arc::new(Nothing),
        readiness: Arc::new(Nothing),
        hooks: HookBook::parse("", "none").unwrap(),
        secrets_dir: dir.join("secrets"),
        orchestrator: orchestrator.clone(),
        platform: Arc::new(Nothing),
        rate_limit: RateLimit {
            per_second: 1e9,
            burst: 1e9,
        },
        metrics: Arc::new(Metrics::new().unwrap()),
        planner: Arc::new(steward_server::chat::NoPlanner),
    });
    let operator = state
        .tokens()
        .create("operator:local", None)
        .await
        .unwrap()
        .token;
    let agent = state
        .tokens()
        .create("mcp:claude-desktop", None)
        .await
        .unwrap()
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = axum::serve(steward_server::nodelay(listener), app(state.clone()));
    tokio::spawn(async move { server.await });

    // 1. In process, then over HTTP; each warmed first.
    let principal = Principal::parse("operator:local").unwrap();
    let in_process = async || {
        orchestrator
            .handle(Request {
                principal: principal.clone(),
                origin: Origin::Api,
                intent_text: None,
                untrusted_text: false,
                tool: "service_list".into(),
                args: json!({}),
                dry_run_only: false,
            })
            .await
            .unwrap()
    };
    let client = reqwest::Client::new();
    let over_http = async || {
        let r = client
            .post(format!("{base}/v1/calls"))
            .bearer_auth(&operator)
            .json(&json!({"tool": "service_list"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap()
    };
    for _ in 0..100 {
        in_process().await;
        over_http().await;
    }
    let (mut direct, mut http) = (Vec::new(), Vec::new());
    // Interleaved, so both see the same audit log size and machine load.
    for _ in 0..calls {
        let t = Instant::now();
        in_process().await;
        direct.push(t.elapsed().as_micros());
        let t = Instant::now();
        over_http().await;
        http.push(t.elapsed().as_micros());
    }
    let (d50, d99) = percentiles(direct);
    let (h50, h99) = percentiles(http);
    println!("service_list, {calls} calls each, interleaved:");
    println!("  orchestrator in process  p50 {d50:.3} ms  p99 {d99:.3} ms");
    println!("  POST /v1/calls           p50 {h50:.3} ms  p99 {h99:.3} ms");
    println!(
        "  added by the API         p50 {:.3} ms ({:.2}x)",
        h50 - d50,
        h50 / d50
    );

    // 2. MCP over streamable HTTP: initialize, then tools/call round trips.
    let mcp = format!("{base}/mcp");
    let post = |body: Value, session: Option<String>| {
        let mut req = client
            .post(&mcp)
            .bearer_auth(&agent)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        req.send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "api_bench", "version": "1"}}});
    let r = post(init, None).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let session = r
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let _ = r.bytes().await;
    let _ = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        session.clone(),
    )
    .await
    .unwrap()
    .bytes()
    .await;
    let mut mcp_us = Vec::new();
    for i in 0..calls.min(2000) + 100 {
        let body = json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
            "params": {"name": "service_list", "arguments": {}}});
        let t = Instant::now();
        let r = post(body, session.clone()).await.unwrap();
        let text = r.text().await.unwrap();
        if i >= 100 {
            mcp_us.push(t.elapsed().as_micros());
        }
        assert!(text.contains("8 services"), "{text}");
    }
    let (m50, m99) = percentiles(mcp_us);
    println!("MCP tools/call service_list over streamable HTTP: p50 {m50:.3} ms  p99 {m99:.3} ms");

    // 3. Throughput with oha, when it is installed (`cargo install oha`).
    let url = format!("{base}/v1/calls");
    let auth = format!("authorization: Bearer {operator}");
    let oha = tokio::task::spawn_blocking(move || {
        std::process::Command::new("oha")
            .args([
                "-z", "10s", "-c", "32", "--no-tui", "-m", "POST", "-H", &auth,
            ])
            .args([
                "-T",
                "application/json",
                "-d",
                r#"{"tool":"service_list"}"#,
                &url,
            ])
            .output()
    })
    .await
    .unwrap();
    match oha {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            println!("oha -z 10s -c 32 POST /v1/calls service_list:");
            for line in text.lines().filter(|l| {
                l.contains("Requests/sec")
                    || l.contains("Success rate")
                    || l.contains("Slowest")
                    || l.contains("Fastest")
                    || l.contains("[200]")
                    || l.contains("[429]")
                    || l.contains("50.00%")
                    || l.contains("99.00%")
            }) {
                println!("  {}", line.trim());
            }
        }
        _ => println!("oha not found or failed: `cargo install oha` for the throughput figure"),
    }
    state.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
