//! Benchmark: `service_list` with 50 labelled services (goal: at most 200 ms).
//!
//! Creates 50 small services on the real Docker Engine (steward-demo:v1, unique names, the
//! `steward.test` label for clean-up) with a Traefik route each, times `service_list` over
//! 15 runs after one warm-up, prints the median, and removes everything again. For
//! comparison it also times the inspect-per-container inventory (`inventory::services`).
//!
//! Run: `cargo run -p steward-exec --example bench_service_list` (after `scripts/setup`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use futures_util::{FutureExt, StreamExt};
use steward_exec::lifecycle::LifecycleExecutor;
use steward_exec::platform::NETWORK;
use steward_exec::traefik::Route;
use steward_exec::{inventory, labels};
use steward_tools::{Call, Executor};

const SERVICES: usize = 50;
const RUNS: usize = 15;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let te = common::test_env().await;
    let outcome = AssertUnwindSafe(bench(&te)).catch_unwind().await;
    te.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn bench(te: &common::TestEnv) {
    let docker = &te.env.platform.docker;
    let network = docker
        .ensure_network(NETWORK, &[(labels::OWNED, "true")])
        .await
        .unwrap();
    let names: Vec<String> = (0..SERVICES)
        .map(|i| format!("bench-{}-{i:02}", te.id))
        .collect();

    let setup = Instant::now();
    futures_util::stream::iter(names.iter().cloned())
        .map(|name| {
            let network = network.clone();
            async move {
                let api = docker.api();
                let body = ContainerCreateBody {
                    image: Some("steward-demo:v1".into()),
                    env: Some(vec![format!("SERVICE_NAME={name}")]),
                    labels: Some(HashMap::from([
                        (labels::SERVICE.to_string(), name.clone()),
                        (labels::KIND.to_string(), "tenant".to_string()),
                        (labels::RELEASE.to_string(), "r1".to_string()),
                        (common::TEST_LABEL.to_string(), te.id.clone()),
                    ])),
                    host_config: Some(HostConfig {
                        network_mode: Some(network),
                        memory: Some(32 * 1024 * 1024),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let container = format!("{name}-r1");
                let opts = CreateContainerOptionsBuilder::new()
                    .name(&container)
                    .build();
                api.create_container(Some(opts), body).await.unwrap();
                api.start_container(&container, None).await.unwrap();
                let ip = docker.container(&container).await.unwrap().ip.unwrap();
                let route = Route::new(
                    &name,
                    &format!("{name}.localhost"),
                    &format!("http://{ip}:8080"),
                )
                .unwrap();
                te.env.platform.routes.write(&route).unwrap();
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    println!(
        "created {SERVICES} services with routes in {}",
        ms(setup.elapsed())
    );

    let ex = LifecycleExecutor::new(te.env.clone());
    let list = Call::parse("service_list", serde_json::json!({})).unwrap();
    let warm = ex.execute(&list).await.unwrap();
    let listed = warm.output["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| names.iter().any(|m| m == n))
        })
        .filter(|s| s["live_release"] == "r1" && s["host"].is_string())
        .count();
    assert_eq!(listed, SERVICES, "every bench service is listed as live");
    println!(
        "service_list sees {} services in all: {}",
        warm.output["count"], warm.summary
    );

    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        ex.execute(&list).await.unwrap();
        times.push(t.elapsed());
    }
    let (min, max) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    println!(
        "service_list over {RUNS} runs: median {} (min {}, max {})",
        ms(median(times)),
        ms(min),
        ms(max)
    );

    let mut inspect_times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        inventory::services(&te.env, None).await.unwrap();
        inspect_times.push(t.elapsed());
    }
    println!(
        "for comparison, inventory::services (one inspect per container) median {}",
        ms(median(inspect_times))
    );
}
