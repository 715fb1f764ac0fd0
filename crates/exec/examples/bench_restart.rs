//! Benchmark: `service_restart` until the service is healthy again (the tool returns only
//! then), for one demo service, with the median over the runs.
//!
//! Run: `cargo run -p steward-exec --example bench_restart [runs]` (default 10; needs
//! scripts/setup).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use steward_exec::lifecycle::LifecycleExecutor;
use steward_exec::platform::ServiceSpec;
use steward_tools::{Call, Executor};

#[tokio::main]
async fn main() {
    let runs: usize = common::arg(1, 10);
    common::scoped(async |te| bench(te, runs).await).await;
}

async fn bench(te: &common::TestEnv, runs: usize) {
    let service = te.name("restart");
    let spec = ServiceSpec {
        service: service.clone(),
        kind: "platform".into(),
        release: "r1".into(),
        image: "steward-demo:v1".into(),
        env: vec![],
        port: 8080,
        host: format!("{service}.localhost"),
        extra_labels: te.env.config.extra_labels.clone(),
    };
    te.env
        .platform
        .ensure_service(&spec, Duration::from_secs(30))
        .await
        .unwrap();
    let ex = LifecycleExecutor::new(te.env.clone());
    let call = Call::parse("service_restart", serde_json::json!({"service": service})).unwrap();
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        ex.execute(&call).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "service_restart until healthy over {runs} runs: median {:.0} ms (min {:.0}, max {:.0})",
        times[runs / 2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[runs - 1].as_secs_f64() * 1000.0
    );
}
