//! The Docker-events health monitor of `steward serve`, end to end on the real Docker
//! Engine: nobody posts an alert; Docker's own health check turns a release unhealthy, the
//! monitor sees it, and the shipped `container-unhealthy` ladder restarts the service (no
//! help: the release is broken for good), rolls it back, and the incident resolves.
//!
//! Serve talks to Docker through a small proxy in front of the socket, which the test cuts
//! while the service breaks and then restores: the monitor reconnects, reconciles from a
//! container list, and the unhealthy service is still healed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::serve::*;
use common::*;
use serde_json::Value;
use steward_exec::docker::ManagedContainer;
use steward_exec::platform::Platform;
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// A proxy on a Unix socket in front of the Docker Engine's socket, that can drop every
/// connection and refuse new ones (a Docker restart, a socket gone) and come back.
struct DockerProxy {
    path: PathBuf,
    upstream: PathBuf,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl DockerProxy {
    fn start(dir: &Path) -> DockerProxy {
        let upstream = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"));
        let mut proxy = DockerProxy {
            path: dir.join("docker.sock"),
            upstream,
            accept: None,
            connections: Arc::default(),
        };
        proxy.open();
        proxy
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn open(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).unwrap();
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = UnixStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(task);
            }
        }));
    }

    /// Drops every connection (the event stream included) and refuses new ones.
    fn cut(&mut self) {
        if let Some(a) = self.accept.take() {
            a.abort();
        }
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn wait_health(platform: &Platform, container: &str, want: &str) -> ManagedContainer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = platform.docker.container(container).await.unwrap();
        if c.health == want {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{container} is {}, not {want}",
            c.health
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The incidents of this home as `steward incidents --json` shows them.
fn incidents(home: &TestHome) -> Vec<Value> {
    let out = home.run(&["incidents", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits for the home's only monitor incident to close; returns it with its timeline.
async fn closed_monitor_incident(home: &TestHome) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let found: Vec<Value> = incidents(home)
            .into_iter()
            .filter(|i| i["principal"] == "alert_rule:container-unhealthy")
            .collect();
        if let [i] = found.as_slice() {
            if !["open", "waiting_approval"].contains(&i["status"].as_str().unwrap_or("")) {
                let id = i["id"].as_str().unwrap();
                let out = home.run(&["incident", id, "--json"]);
                return serde_json::from_slice(&out.stdout).unwrap();
            }
        }
        assert!(found.len() <= 1, "one outage, one incident: {found:#?}");
        assert!(
            Instant::now() < deadline,
            "no closed monitor incident: {found:#?}\n{}",
            serve_log(home)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_container_heals_with_no_alert_even_across_a_cut_event_stream() {
    on_heal_service("m", healed_across_a_cut).await;
}

async fn healed_across_a_cut(home: &TestHome, platform: &Platform, service: &str) {
    let r2 = two_releases(home, platform, service).await;
    let mut proxy = DockerProxy::start(&home.dir);
    let label = format!("steward.service={service}");
    let (mut server, base) = start_serve_with(
        home,
        &[
            ("DOCKER_HOST", proxy.docker_host().as_str()),
            ("STEWARD_MONITOR_LABELS", label.as_str()),
        ],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;
    let ready: Value = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready.to_string().contains("monitor"), "{ready}");

    // The stream goes away; meanwhile the live release breaks for good and Docker's health
    // check marks it unhealthy. Nobody is listening.
    proxy.cut();
    break_for_good(&client, &r2).await;
    wait_health(platform, &r2.name, "unhealthy").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let not_ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(not_ready.status(), 503, "the monitor is cut off: not ready");
    assert!(
        incidents(home).is_empty(),
        "nothing can be seen while the stream is cut"
    );

    // The proxy comes back: the monitor reconnects, reconciles, and the ladder heals.
    proxy.open();
    let mut incident = closed_monitor_incident(home).await;
    assert_eq!(incident["status"], "resolved", "{incident:#}");
    // The rolled-back release turns healthy while the rollback call still waits for it, so
    // the monitor's `healthy` may close the incident first; the call's end follows.
    let deadline = Instant::now() + Duration::from_secs(60);
    while finished_tools(&incident).len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let out = home.run(&["incident", incident["id"].as_str().unwrap(), "--json"]);
        incident = serde_json::from_slice(&out.stdout).unwrap();
    }
    assert_eq!(
        finished_tools(&incident),
        ["service_restart", "service_rollback"],
        "{incident:#}"
    );
    assert_eq!(incident["event"]["source"], "monitor");
    assert_eq!(incident["event"]["labels"]["service"], service);
    assert_eq!(
        incident["event"]["fields"]["reconciled"], true,
        "seen by the reconcile after the reconnect: {incident:#}"
    );
    let r1 = wait_health(platform, &format!("{service}-r1"), "healthy").await;
    assert_eq!(r1.state, "running");
    assert!(
        serve_log(home).contains("reconnecting"),
        "{}",
        serve_log(home)
    );
    stop_serve(server, home).await;
}

/// Docker's `health_status: unhealthy` to the restart executor beginning: the event's own
/// time against the incident's `step_started`. Run by hand (`--ignored --nocapture`); the
/// figures are in the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by hand"]
async fn bench_unhealthy_event_to_restart() {
    on_heal_service("mb", bench).await;
}

async fn bench(home: &TestHome, platform: &Platform, service: &str) {
    // Each round is its own outage: no throttle window between them.
    let heal = home.policies.join("rules/heal.toml");
    let text = std::fs::read_to_string(&heal).unwrap();
    std::fs::write(
        &heal,
        text.replace("once_within = \"10m\"", "once_within = \"1s\""),
    )
    .unwrap();
    let label = format!("steward.service={service}");
    let spec = steward_cli::demo::spec(&home.config(), service, "v1").unwrap();
    platform
        .ensure_service(&spec, Duration::from_secs(30))
        .await
        .unwrap();
    let (mut server, base) = start_serve_with(home, &[("STEWARD_MONITOR_LABELS", label.as_str())]);
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;
    let mut detect = Vec::new();
    let mut total = Vec::new();
    for round in 0..5 {
        let live = platform
            .docker
            .container(&format!("{service}-r1"))
            .await
            .unwrap();
        let broke = Instant::now();
        // Not for good: `health/fail` lives in memory, so the restart heals it and each
        // round is break -> unhealthy -> restart -> healthy.
        let ip = live.ip.clone().unwrap();
        let r = client
            .post(format!("http://{ip}:8080/admin/health/fail"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "round {round}");
        let deadline = Instant::now() + Duration::from_secs(120);
        let incident = loop {
            let found: Vec<Value> = incidents(home)
                .into_iter()
                .filter(|i| i["status"] == "resolved")
                .collect();
            if found.len() > round {
                let id = found[0]["id"].as_str().unwrap();
                let out = home.run(&["incident", id, "--json"]);
                break serde_json::from_slice::<Value>(&out.stdout).unwrap();
            }
            assert!(Instant::now() < deadline, "{}", serve_log(home));
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        total.push(broke.elapsed());
        let event_at = incident["event"]["at"].as_i64().unwrap();
        let started = incident["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["kind"] == "step_started")
            .unwrap()["at"]
            .as_i64()
            .unwrap();
        detect.push(started - event_at);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    detect.sort();
    total.sort();
    println!(
        "unhealthy event -> restart begins (ms): {detect:?}, median {}",
        detect[detect.len() / 2]
    );
    println!(
        "break -> healthy again: {total:?}, median {:?}",
        total[total.len() / 2]
    );
    stop_serve(server, home).await;
}
