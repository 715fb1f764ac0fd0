//! Benchmark: `tenant_provision` until the first 200 through Traefik (provision only returns
//! once a real request with the tenant's Host header has answered 200), with the median of
//! each step, and `tenant_destroy` (final backup included). Goals of issue 3: provision
//! p50 <= 2.5 s, destroy <= 1.5 s.
//!
//! Runs against the services scripts/setup started:
//!   cargo run -p steward-exec --example bench_tenants -- [runs] [pause_ms]
//! (default 10 runs; each provisions a fresh tenant and destroys it again). `pause_ms`
//! (default 0) waits before each provision: Traefik applies file changes at most once per
//! `providersThrottleDuration` (2 s by default), so a route written less than 2 s after the
//! previous destroy removed one waits for the rest of that window.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};
use steward_exec::tenant::TenantExecutor;
use steward_tools::Executor;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Collects `timings_ms` of one run into per-step series, keeping the step order.
fn collect(order: &mut Vec<String>, series: &mut BTreeMap<String, Vec<f64>>, output: &Value) {
    for s in output["steps"].as_array().into_iter().flatten() {
        let name = s["step"].as_str().unwrap().to_string();
        if !order.contains(&name) {
            order.push(name.clone());
        }
        series
            .entry(name)
            .or_default()
            .push(s["ms"].as_f64().unwrap());
    }
}

fn report(what: &str, walls: &[f64], order: &[String], series: &BTreeMap<String, Vec<f64>>) {
    let mut sorted = walls.to_vec();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{what}: median {:.0} ms (min {:.0}, max {:.0}, n={})",
        median(walls.to_vec()),
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN),
        walls.len()
    );
    for step in order {
        println!(
            "  {step:<10} median {:>7.1} ms",
            median(series[step].clone())
        );
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = common::arg(1, 10);
    let pause_ms: u64 = std::env::args()
        .nth(2)
        .map(|a| a.parse().unwrap())
        .unwrap_or(0);
    let te = common::test_env().await;
    let exec = TenantExecutor::new(te.env.clone());
    let mut subs = Vec::new();

    let (mut p_wall, mut d_wall) = (Vec::new(), Vec::new());
    let (mut p_order, mut d_order) = (Vec::new(), Vec::new());
    let (mut p_steps, mut d_steps) = (BTreeMap::new(), BTreeMap::new());
    for i in 0..runs {
        let sub = format!("tb{}-{i}", te.id);
        subs.push(sub.clone());
        tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
        let started = Instant::now();
        let done = exec
            .execute(&common::call(
                "tenant_provision",
                json!({ "subdomain": sub }),
            ))
            .await
            .unwrap();
        p_wall.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(done.changed);
        collect(&mut p_order, &mut p_steps, &done.output);

        let started = Instant::now();
        let gone = exec
            .execute(&common::call("tenant_destroy", json!({ "tenant": sub })))
            .await
            .unwrap();
        d_wall.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(gone.changed);
        collect(&mut d_order, &mut d_steps, &gone.output);
        eprintln!(
            "run {i}: provision {:.0} ms, destroy {:.0} ms",
            p_wall[i], d_wall[i]
        );
    }
    report(
        "tenant_provision until first 200 through Traefik",
        &p_wall,
        &p_order,
        &p_steps,
    );
    report(
        "tenant_destroy (final backup included)",
        &d_wall,
        &d_order,
        &d_steps,
    );

    // Leave nothing behind even if a destroy above was skipped by a panic elsewhere.
    for sub in subs {
        let _ = exec
            .execute(&common::call("tenant_destroy", json!({ "tenant": sub })))
            .await;
    }
    te.cleanup().await;
}
