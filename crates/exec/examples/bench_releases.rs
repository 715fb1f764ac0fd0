//! Benchmark: `service_deploy` and `service_rollback` until the new release serves through
//! Traefik, for one demo service.
//!
//! A poller sends `GET /` through Traefik's web entry point with the service's Host header
//! every 10 ms and notes when the body first reports the target version; that moment, from the
//! start of the call, is "until serving". The call's own duration (which also includes
//! stopping the old release) and its step timings are reported alongside.
//!
//! Run: `cargo run -p steward-exec --example bench_releases [runs]` (default 11 of each)
//! (needs scripts/setup: Docker, Traefik, the steward-demo:v1/v2 images, .steward/config.toml).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_exec::docker::DockerClient;
use steward_exec::env::{Env, ExecConfig};
use steward_exec::platform::{Platform, ServiceSpec};
use steward_exec::releases::ReleaseExecutor;
use steward_exec::traefik::{RouteDir, TraefikApi};
use steward_tools::{Call, Executor, SystemClock};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(11);
    let (env, state_dir) = env().await?;
    let service = format!("bench-rel-{}", std::process::id());
    let result = bench(&env, &service, runs).await;
    // Clean up whatever happened.
    let removed = env.platform.remove_service(&service).await;
    let _ = std::fs::remove_dir_all(&state_dir);
    removed?;
    result
}

async fn bench(env: &Arc<Env>, service: &str, runs: usize) -> Result<(), Error> {
    let host = format!("{service}.{}", env.config.domain);
    let spec = ServiceSpec {
        service: service.into(),
        kind: "platform".into(),
        release: "r1".into(),
        image: "steward-demo:v1".into(),
        env: vec![],
        port: 8080,
        host: host.clone(),
        extra_labels: env.config.extra_labels.clone(),
    };
    env.platform
        .ensure_service(&spec, env.config.health_timeout)
        .await?;
    let ex = ReleaseExecutor::new(env.clone());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;

    let mut deploy = Samples::default();
    for i in 0..runs {
        let tag = if i % 2 == 0 { "v2" } else { "v1" };
        let call = Call::parse(
            "service_deploy",
            json!({"service": service, "image": format!("steward-demo:{tag}")}),
        )?;
        deploy.push(timed(env, &ex, &http, &host, &call, tag).await?);
    }
    // The last deploy left `last` live; `previous` toggles between it and the one before.
    let mut live = if runs % 2 == 1 { "v2" } else { "v1" };
    let mut rollback = Samples::default();
    for _ in 0..runs {
        let want = if live == "v2" { "v1" } else { "v2" };
        let call = Call::parse(
            "service_rollback",
            json!({"service": service, "to": "previous"}),
        )?;
        rollback.push(timed(env, &ex, &http, &host, &call, want).await?);
        live = want;
    }
    println!(
        "runs: {runs} each, service {service}, stop grace {}s",
        steward_exec::releases::STOP_GRACE_SECS
    );
    deploy.print("service_deploy");
    rollback.print("service_rollback");
    Ok(())
}

/// One call, with a concurrent poller noting when Traefik first serves `want`.
async fn timed(
    env: &Env,
    ex: &ReleaseExecutor,
    http: &reqwest::Client,
    host: &str,
    call: &Call,
    want: &str,
) -> Result<Sample, Error> {
    let url = format!("{}/", env.config.traefik_web);
    let started = Instant::now();
    let poll = async {
        loop {
            let version = match http.get(&url).header("Host", host).send().await {
                Ok(r) if r.status().is_success() => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|b| b["version"].as_str().map(str::to_string)),
                _ => None,
            };
            if version.as_deref() == Some(want) {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let exec = async {
        let done = ex.execute(call).await;
        (done, started.elapsed())
    };
    let (serving, (done, total)) = tokio::join!(poll, exec);
    let done = done.map_err(|e| format!("{}: {e}", call.tool()))?;
    let step = |k: &str| done.output["timings_ms"][k].as_f64().unwrap_or(0.0);
    Ok(Sample {
        serving_ms: serving.as_secs_f64() * 1000.0,
        total_ms: total.as_secs_f64() * 1000.0,
        steps: HashMap::from([
            ("healthy", step("healthy")),
            ("route", step("route")),
            ("retire", step("retire")),
        ]),
    })
}

#[derive(Debug)]
struct Sample {
    serving_ms: f64,
    total_ms: f64,
    steps: HashMap<&'static str, f64>,
}

#[derive(Debug, Default)]
struct Samples(Vec<Sample>);

impl Samples {
    fn push(&mut self, s: Sample) {
        self.0.push(s);
    }

    fn print(&self, tool: &str) {
        let col = |f: &dyn Fn(&Sample) -> f64| median(self.0.iter().map(f).collect());
        let serving: Vec<f64> = self.0.iter().map(|s| s.serving_ms).collect();
        let min = serving.iter().copied().fold(f64::INFINITY, f64::min);
        let max = serving.iter().copied().fold(0.0, f64::max);
        println!(
            "{tool:<17} until serving: median {:.0} ms (min {min:.0}, max {max:.0}); \
             call returns: median {:.0} ms",
            col(&|s| s.serving_ms),
            col(&|s| s.total_ms),
        );
        println!(
            "{:<17} steps (median): start→healthy {:.0} ms, route switch+confirm {:.0} ms, \
             stop old {:.0} ms",
            "",
            col(&|s| s.steps["healthy"]),
            col(&|s| s.steps["route"]),
            col(&|s| s.steps["retire"]),
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// An Env from `<home>/config.toml` (as scripts/setup wrote it), with a state dir of its own.
async fn env() -> Result<(Arc<Env>, PathBuf), Error> {
    let home = match std::env::var("STEWARD_HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.steward"),
    };
    let path = home.join("config.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e}; run scripts/setup first", path.display()))?;
    let table: HashMap<String, toml::Value> = toml::from_str(&text)?;
    let get = |k: &str| -> Result<String, Error> {
        Ok(table
            .get(k)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("{k} missing in {}", path.display()))?
            .to_string())
    };
    let state_dir =
        std::env::temp_dir().join(format!("steward-bench-releases-{}", std::process::id()));
    let mut config = ExecConfig::new(state_dir.clone(), get("pg_url")?);
    config.traefik_web = get("traefik_web")?;
    if let Ok(d) = get("domain") {
        config.domain = d;
    }
    config.extra_labels = vec![(
        "steward.test".into(),
        format!("bench-{}", std::process::id()),
    )];
    let platform = Platform {
        docker: DockerClient::connect().await?,
        routes: RouteDir::new(get("traefik_dynamic_dir")?),
        traefik: TraefikApi::new(&get("traefik_api")?)?,
    };
    Ok((
        Arc::new(Env::new(platform, Arc::new(SystemClock), config)),
        state_dir,
    ))
}
