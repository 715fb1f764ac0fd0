//! The alert loop end to end, with nothing stubbed: the real Prometheus and Alertmanager
//! binaries (Debian's, installed by scripts/setup) run on free loopback ports with configs of
//! this test's own, Prometheus finds the test's service through Docker's labels and
//! evaluates the shipped alert rules (policies/prometheus/alerts.yml, with `for: 0s`), and
//! Alertmanager posts to this test's `steward serve`.
//!
//! `steward demo break` breaks the live release for good; Prometheus fires `ServiceDown`,
//! Alertmanager posts it, the `service-down` ladder restarts the service (still broken) and
//! rolls it back to the previous release (healthy); the incident closes resolved, and people
//! are told (an info notification for the incident in `steward notifications`).
//!
//! It prints how long each stage took (run with `--no-capture` to see it): the break to the
//! alert's `activeAt` in Prometheus, that to Alertmanager holding it, that to Steward opening
//! the incident, and that to the ladder's first step.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::serve::{create_token, finished_tools, two_releases};
use common::*;
use futures_util::FutureExt;
use serde_json::Value;

/// A child process killed (and waited for) when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary `name` from PATH; its absence fails the test, it never skips it.
fn installed(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run scripts/setup (it installs Debian's prometheus and prometheus-alertmanager)")
        })
}

fn spawn(cmd: &mut Command, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc(
        cmd.stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
    )
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A test home whose policies make `service` a platform service the heal rules may touch,
/// with the ladder's health waits cut from 60 s to 15 s.
fn heal_home(service: &str) -> TestHome {
    let home = TestHome::new();
    let entities = home.policies.join("entities.toml");
    let text = std::fs::read_to_string(&entities).unwrap();
    assert!(text.contains("\"rentguy\", \"psra\""), "entities changed");
    let text = text.replace(
        "\"rentguy\", \"psra\"",
        &format!("\"{service}\", \"rentguy\", \"psra\""),
    );
    std::fs::write(&entities, text).unwrap();
    let heal = home.policies.join("rules/heal.toml");
    let text = std::fs::read_to_string(&heal).unwrap();
    assert!(text.contains("healthy within 60s"), "the ladder changed");
    std::fs::write(
        &heal,
        text.replace("healthy within 60s", "healthy within 15s"),
    )
    .unwrap();
    home
}

/// The shipped alert rules with every `for:` cut to 0s, so the test waits on nothing but
/// one scrape and one evaluation.
fn rules_for_test() -> String {
    let shipped =
        std::fs::read_to_string(repo_root().join("policies/prometheus/alerts.yml")).unwrap();
    assert!(shipped.contains("alert: ServiceDown") && shipped.contains("alert: HighErrorRate"));
    shipped
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 0s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let r = client.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Waits until `url` answers 2xx, or fails with `what`'s log.
async fn wait_ready(client: &reqwest::Client, url: &str, proc: &mut Proc, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = proc.0.try_wait().unwrap() {
            panic!("{url}: exited early ({status}): {}", log_of(log));
        }
        if let Ok(r) = client.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} never became ready: {}",
            log_of(log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Milliseconds since the epoch of an RFC 3339 time (Prometheus and Alertmanager write them).
fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
        .timestamp_millis()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// When each stage of the loop was first seen, in ms since the epoch.
#[derive(Debug, Default)]
struct Marks {
    broken: i64,
    /// The alert's `activeAt` in Prometheus (the evaluation that found it).
    active: Option<i64>,
    /// Alertmanager's `updatedAt` the first time it holds the alert (when it received it).
    alertmanager: Option<i64>,
    /// The incident's `opened_at` (Steward accepted Alertmanager's post).
    opened: Option<i64>,
    /// The ladder's first `step_started`.
    first_step: Option<i64>,
}

impl Marks {
    fn report(&self) -> String {
        let (a, m, o, s) = (
            self.active.unwrap(),
            self.alertmanager.unwrap(),
            self.opened.unwrap(),
            self.first_step.unwrap(),
        );
        format!(
            "alert loop figures (ms): break→prometheus_active={} prometheus_active→alertmanager={} alertmanager→steward_incident={} steward_incident→first_step={} prometheus_active→first_step={}",
            a - self.broken,
            m - a,
            o - m,
            s - o,
            s - a
        )
    }
}

/// The test's incident for `service`'s `ServiceDown`, with its timeline, once one exists.
fn incident(home: &TestHome, service: &str) -> Option<Value> {
    let out = home.run(&["incidents", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = list.as_array().unwrap().iter().find(|i| {
        i["event"]["name"] == "ServiceDown" && i["event"]["labels"]["service"] == service
    })?["id"]
        .as_str()?
        .to_string();
    let out = home.run(&["incident", &id, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_alertmanager_bring_a_broken_release_to_the_rulebook_which_heals_it() {
    let prometheus = installed("prometheus");
    let alertmanager = installed("prometheus-alertmanager");
    let service = format!("a{}", unique());
    let home = heal_home(&service);
    let platform = steward_cli::demo::platform(&home.config()).await.unwrap();
    let result =
        std::panic::AssertUnwindSafe(alert_loop(&home, &service, &prometheus, &alertmanager))
            .catch_unwind()
            .await;
    platform.remove_service(&service).await.unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn alert_loop(home: &TestHome, service: &str, prometheus: &Path, alertmanager: &Path) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let dir = home.dir.clone();

    // Two releases: r1 (v1) good, r2 (v2) live and about to go bad.
    let platform = steward_cli::demo::platform(&home.config()).await.unwrap();
    two_releases(home, &platform, service).await;

    // Steward: serve, and the token Alertmanager presents.
    let token_file = dir.join("alertmanager.token");
    std::fs::write(&token_file, create_token(home, "webhook:alertmanager")).unwrap();
    let serve_port = free_port();
    let serve_log = dir.join("serve.log");
    let mut serve = spawn(
        home.command()
            // The Docker monitor would follow every Steward container on the engine; this
            // test is about the alert path.
            .env("STEWARD_MONITOR", "off")
            .args(["serve", "--listen", &format!("127.0.0.1:{serve_port}")]),
        &serve_log,
    );
    let serve_base = format!("http://127.0.0.1:{serve_port}");
    wait_ready(
        &client,
        &format!("{serve_base}/readyz"),
        &mut serve,
        &serve_log,
    )
    .await;

    // Alertmanager, posting every alert at once to this serve.
    let am_port = free_port();
    let am_dir = dir.join("alertmanager");
    std::fs::create_dir_all(am_dir.join("data")).unwrap();
    std::fs::write(
        am_dir.join("alertmanager.yml"),
        format!(
            "route:\n  receiver: steward\n  group_by: [alertname, service]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: steward\n    webhook_configs:\n      - url: {serve_base}/hooks/alertmanager\n        send_resolved: true\n\
             \x20       http_config:\n          authorization:\n            credentials_file: {}\n",
            token_file.display()
        ),
    )
    .unwrap();
    let am_log = dir.join("alertmanager.log");
    let mut am = spawn(
        Command::new(alertmanager)
            .arg(format!(
                "--config.file={}",
                am_dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", am_dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address="),
        &am_log,
    );
    let am_base = format!("http://127.0.0.1:{am_port}");
    wait_ready(&client, &format!("{am_base}/-/ready"), &mut am, &am_log).await;

    // Prometheus, scraping only this test's service (the platform's own are not its to watch).
    let prom_port = free_port();
    let prom_dir = dir.join("prometheus");
    std::fs::create_dir_all(prom_dir.join("data")).unwrap();
    std::fs::write(prom_dir.join("rules.yml"), rules_for_test()).unwrap();
    let docker_host = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{am_port}\"]\n\
             scrape_configs:\n  - job_name: platform\n    docker_sd_configs:\n      - host: {docker_host}\n        refresh_interval: 1s\n\
             \x20       filters:\n          - name: label\n            values: [\"steward.service={service}\"]\n\
             \x20   relabel_configs:\n      - source_labels: [__meta_docker_container_label_steward_kind]\n        regex: platform\n        action: keep\n\
             \x20     - source_labels: [__meta_docker_container_label_steward_metrics]\n        regex: /.+\n        action: keep\n\
             \x20     - source_labels: [__meta_docker_container_label_steward_metrics]\n        target_label: __metrics_path__\n\
             \x20     - source_labels: [__meta_docker_container_label_steward_service]\n        target_label: service\n\
             \x20     - source_labels: [__meta_docker_container_label_steward_release]\n        target_label: release\n",
            rules = prom_dir.join("rules.yml").display()
        ),
    )
    .unwrap();
    let prom_log = dir.join("prometheus.log");
    let mut prom = spawn(
        Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        &prom_log,
    );
    let prom_base = format!("http://127.0.0.1:{prom_port}");
    wait_ready(
        &client,
        &format!("{prom_base}/-/ready"),
        &mut prom,
        &prom_log,
    )
    .await;

    // Before the break: the rules are loaded, and r2 is scraped and reports healthy.
    let rules = get_json(&client, &format!("{prom_base}/api/v1/rules?type=alert"))
        .await
        .unwrap();
    let names: Vec<&str> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["ServiceDown", "HighErrorRate"], "{rules:#}");
    let query = format!(
        "{prom_base}/api/v1/query?query=demo_healthy%7Bservice%3D%22{service}%22%2Crelease%3D%22r2%22%7D"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = get_json(&client, &query).await;
        let healthy = v
            .as_ref()
            .and_then(|v| v["data"]["result"][0]["value"][1].as_str());
        if healthy == Some("1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped r2 healthy: {v:?}\n{}",
            log_of(&prom_log)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The break, through the CLI an operator would use.
    let mut marks = Marks {
        broken: now_ms(),
        ..Marks::default()
    };
    let out = home.run(&["demo", "break", service]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("fails for good"), "{}", stdout(&out));

    // Watch every stage until the ladder closes the incident.
    let am_alerts = format!("{am_base}/api/v2/alerts?filter=service%3D%22{service}%22");
    let deadline = Instant::now() + Duration::from_secs(150);
    let closed = loop {
        if marks.active.is_none() {
            let alerts = get_json(&client, &format!("{prom_base}/api/v1/alerts")).await;
            marks.active = alerts
                .iter()
                .flat_map(|a| a["data"]["alerts"].as_array().cloned().unwrap_or_default())
                .find(|a| {
                    a["labels"]["alertname"] == "ServiceDown"
                        && a["labels"]["service"] == service
                        && a["state"] == "firing"
                })
                .map(|a| {
                    assert_eq!(a["labels"]["severity"], "critical", "{a}");
                    ms(a["activeAt"].as_str().unwrap())
                });
        }
        if marks.alertmanager.is_none() {
            let held = get_json(&client, &am_alerts).await;
            marks.alertmanager = held
                .as_ref()
                .and_then(|h| h.as_array())
                .and_then(|h| h.iter().find(|a| a["labels"]["alertname"] == "ServiceDown"))
                .map(|a| ms(a["updatedAt"].as_str().unwrap()));
        }
        if let Some(i) = incident(home, service) {
            marks.opened.get_or_insert(i["opened_at"].as_i64().unwrap());
            if marks.first_step.is_none() {
                marks.first_step = i["timeline"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|t| t["kind"] == "step_started")
                    .map(|t| t["at"].as_i64().unwrap());
            }
            let status = i["status"].as_str().unwrap().to_string();
            if !["open", "waiting_approval"].contains(&status.as_str()) {
                break i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the loop did not close in time: {marks:?}\nserve: {}\nalertmanager: {}",
            log_of(&serve_log),
            log_of(&am_log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(closed["status"], "resolved", "{closed:#}");
    assert_eq!(closed["principal"], "alert_rule:service-down", "{closed:#}");
    assert_eq!(closed["event"]["source"], "alert", "{closed:#}");
    assert_eq!(
        finished_tools(&closed),
        ["service_restart", "service_rollback"],
        "restart (still broken), then rollback (healthy): {closed:#}"
    );
    let r1 = platform
        .docker
        .container(&format!("{service}-r1"))
        .await
        .unwrap();
    assert_eq!(
        (r1.state.as_str(), r1.health.as_str()),
        ("running", "healthy")
    );

    // People are told what was healed: an info notification for the incident.
    let id = closed["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = home.run(&["notifications", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let inbox: Value = serde_json::from_slice(&out.stdout).unwrap();
        let told = inbox.as_array().unwrap().iter().any(|n| {
            n["incident"] == id
                && n["severity"] == "info"
                && n["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("resolved")
        });
        if told {
            break;
        }
        assert!(Instant::now() < deadline, "nobody was told: {inbox:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    println!("{}", marks.report());
    drop(prom);
    drop(am);
    drop(serve);
}

/// A service that does not run is input to fix: exit 2, the name, and what does run.
#[test]
fn demo_break_of_a_service_that_does_not_run_says_so_and_breaks_nothing() {
    let home = TestHome::new();
    let missing = format!("nosuch{}", unique());
    for extra in [None, Some("--errors")] {
        let mut args = vec!["demo", "break", missing.as_str()];
        args.extend(extra);
        let out = home.run(&args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("no running platform service \"{missing}\"")),
            "{err}"
        );
        assert!(
            err.contains("running: ") || err.contains("steward demo up"),
            "{err}"
        );
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    }
}
