//! Notification channels end to end: `steward call notify` stores notifications (and their
//! deliveries) while `steward serve` pushes them to a signed JSON webhook and a
//! Slack-compatible hook, both local HTTP receivers. The receiver is down for a minute and
//! serve restarts meanwhile; when the receiver is back, every message arrives, signed, and
//! none twice under the same id.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::serve::*;
use common::*;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// What a receiver got, in order.
type Log = Arc<Mutex<Vec<Received>>>;

struct Received {
    path: String,
    id: String,
    body: Value,
    signed: bool,
    at: std::time::SystemTime,
}

/// A local receiver for both channels, on a fixed port so it can go down and come back.
struct Receiver {
    port: u16,
    log: Log,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    fn new() -> Receiver {
        Receiver {
            port: free_port(),
            log: Arc::default(),
            task: None,
        }
    }

    async fn up(&mut self) {
        let record = |path: &'static str| {
            move |State(log): State<Log>, headers: HeaderMap, body: String| async move {
                let header = |h: &str| {
                    headers
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let signed = steward_server::hooks::verify_signature(
                    &header("steward-signature"),
                    &[SECRET.as_bytes().to_vec()],
                    body.as_bytes(),
                    now_secs(),
                )
                .is_ok();
                let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                log.lock().unwrap().push(Received {
                    path: path.to_string(),
                    id: header("steward-delivery"),
                    body: value,
                    signed,
                    at: std::time::SystemTime::now(),
                });
                StatusCode::OK
            }
        };
        let app = Router::new()
            .route("/hook", post(record("hook")))
            .route("/slack", post(record("slack")))
            .with_state(self.log.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }

    fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Delivery ids per path, with how many times each arrived.
    fn received(&self, path: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.log.lock().unwrap().iter() {
            if r.path == path {
                *out.entry(r.id.clone()).or_default() += 1;
            }
        }
        out
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A home whose config sends warnings and criticals to the webhook, criticals to Slack.
fn home_with_channels(port: u16) -> TestHome {
    let home = TestHome::new();
    std::fs::write(home.dir.join("ops.key"), SECRET).unwrap();
    let config = home.dir.join("config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[notify.ops]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\
         secret_file = \"ops.key\"\nseverities = [\"warning\", \"critical\"]\n\
         \n[notify.chat]\nkind = \"slack\"\nurl = \"http://127.0.0.1:{port}/slack\"\n\
         severities = [\"critical\"]\n"
    ));
    std::fs::write(&config, text).unwrap();
    home
}

fn notify(home: &TestHome, message: &str, severity: &str) -> String {
    let args = json!({"message": message, "severity": severity}).to_string();
    let out = home.run(&["call", "notify", &args, "--json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["output"]["id"]
        .as_str()
        .or_else(|| v["result"]["output"]["id"].as_str())
        .unwrap_or_else(|| panic!("no notification id in {v:#}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_minute_gets_every_message_once_after_a_serve_restart() {
    let mut receiver = Receiver::new();
    let home = home_with_channels(receiver.port);
    let (mut server, base) = start_serve(&home);
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;

    let mut critical = Vec::new();
    let mut warning = Vec::new();
    for i in 0..10 {
        critical.push(notify(&home, &format!("disk {i} is full"), "critical"));
        warning.push(notify(&home, &format!("disk {i} is filling"), "warning"));
    }
    let info = notify(&home, "a quiet night", "info");
    let down_since = Instant::now();

    // Retries pile up against a closed port; then serve stops and starts again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop_serve(server, &home).await;
    let (mut server, base) = start_serve(&home);
    wait_ready(&client, &base, &mut server).await;
    let out = home.run(&["notifications", "--json"]);
    let shown: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let pending = shown
        .iter()
        .flat_map(|n| n["deliveries"].as_array().unwrap().clone())
        .filter(|d| d["state"] == "pending" && d["attempts"].as_i64().unwrap() > 0)
        .count();
    assert_eq!(
        pending, 30,
        "every push attempted, failed, queued: {shown:#?}"
    );

    let down_for = Duration::from_secs(60).saturating_sub(down_since.elapsed());
    tokio::time::sleep(down_for).await;
    receiver.up().await;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let hook = receiver.received("hook");
        let slack = receiver.received("slack");
        if hook.len() == 20 && slack.len() == 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hook {} of 20, slack {} of 10\n{}",
            hook.len(),
            slack.len(),
            serve_log(&home)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let any straggling repeat arrive before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hook = receiver.received("hook");
    let slack = receiver.received("slack");
    let mut want_hook: Vec<String> = critical.iter().chain(&warning).cloned().collect();
    want_hook.sort();
    assert_eq!(hook.keys().cloned().collect::<Vec<_>>(), want_hook);
    assert!(
        hook.values().all(|n| *n == 1),
        "a repeat under one id: {hook:?}"
    );
    let mut want_slack = critical.clone();
    want_slack.sort();
    assert_eq!(slack.keys().cloned().collect::<Vec<_>>(), want_slack);
    assert!(slack.values().all(|n| *n == 1), "{slack:?}");
    assert!(!hook.contains_key(&info), "info goes to the inbox only");

    for r in receiver.log.lock().unwrap().iter() {
        let text = r.body["text"].as_str().unwrap_or_default();
        if r.path == "hook" {
            assert!(
                r.signed,
                "webhook bodies carry a valid Steward-Signature: {}",
                r.body
            );
            assert_eq!(r.body["id"], json!(r.id), "the id travels in the body too");
        } else {
            assert!(
                text.contains("CRITICAL") && text.contains(r.id.as_str()),
                "{text}"
            );
        }
    }
    let out = home.run(&["notifications", "--json"]);
    let shown: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    for n in &shown {
        for d in n["deliveries"].as_array().unwrap() {
            assert_eq!(d["state"], "delivered", "{n:#}");
            assert!(d["attempts"].as_i64().unwrap() >= 2, "failed first: {n:#}");
        }
    }
    let human = stdout(&home.run(&["notifications"]));
    assert!(
        human.contains("→ ops") && human.contains("delivered"),
        "{human}"
    );

    receiver.down();
    stop_serve(server, &home).await;
}

/// The outbox's throughput and latency to a local receiver: 1,000 notifications posted as
/// fast as the CLI's store takes them, each timed from its stored `at` to its arrival. Run
/// by hand (`--ignored --nocapture`); the figures are in the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run by hand"]
async fn bench_outbox_delivery() {
    let mut receiver = Receiver::new();
    receiver.up().await;
    let home = home_with_channels(receiver.port);
    let (mut server, base) = start_serve(&home);
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;
    let store = steward_audit::Store::open(
        home.config()
            .require(steward_cli::config::Key::StateUrl)
            .unwrap(),
    )
    .await
    .unwrap();
    let inbox = steward_agent::inbox::Inbox::with_routes(
        store,
        vec![steward_agent::inbox::Route {
            channel: "ops".into(),
            severities: vec![],
        }],
    );
    const N: usize = 1000;
    let first_post = std::time::SystemTime::now();
    let mut posted = BTreeMap::new();
    for i in 0..N {
        let n = steward_agent::inbox::NewNotification {
            severity: "warning".into(),
            message: format!("load {i}"),
            source: "bench".into(),
            incident: None,
        };
        let at = std::time::SystemTime::now();
        let id = inbox.post(&n).await.unwrap();
        posted.insert(id, at);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while receiver.received("hook").len() < N {
        assert!(Instant::now() < deadline, "{}", serve_log(&home));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (took, mut latencies) = {
        let log = receiver.log.lock().unwrap();
        let last = log.iter().map(|r| r.at).max().unwrap();
        let latencies: Vec<u128> = log
            .iter()
            .map(|r| {
                r.at.duration_since(posted[&r.id])
                    .unwrap_or_default()
                    .as_millis()
            })
            .collect();
        (last.duration_since(first_post).unwrap(), latencies)
    };
    latencies.sort();
    println!(
        "outbox: {N} delivered in {took:?} ({:.0}/s); enqueue -> delivery p50 {} ms, p99 {} ms",
        N as f64 / took.as_secs_f64(),
        latencies[N / 2],
        latencies[N * 99 / 100]
    );
    receiver.down();
    stop_serve(server, &home).await;
}
