//! Running `steward serve` in a test: start it on a free port of a test home, wait until it
//! is ready, follow a request's incident, stop it with SIGTERM and verify the audit log; and
//! the platform fixtures the heal tests share (a service with a good and a bad release).

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::{json, Value};
use steward_exec::docker::ManagedContainer;
use steward_exec::platform::Platform;

use super::*;

/// The server process; killed if the test fails before it is stopped.
pub struct Server(pub Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A test home whose policies make `service` a platform service the heal rules may touch,
/// with the shipped ladder's health waits cut from 60 s to 15 s.
pub fn heal_home(service: &str) -> TestHome {
    let home = TestHome::new();
    let entities = home.policies.join("entities.toml");
    let text = std::fs::read_to_string(&entities).unwrap();
    let text = text.replace(
        "\"rentguy\", \"psra\"",
        &format!("\"{service}\", \"rentguy\", \"psra\""),
    );
    std::fs::write(&entities, text).unwrap();
    let heal = home.policies.join("rules/heal.toml");
    let text = std::fs::read_to_string(&heal).unwrap();
    assert!(
        text.contains("healthy within 60s"),
        "the shipped ladder changed"
    );
    std::fs::write(
        &heal,
        text.replace("healthy within 60s", "healthy within 15s"),
    )
    .unwrap();
    home
}

pub fn create_token(home: &TestHome, principal: &str) -> String {
    let out = home.run(&["token", "create", "--as", principal, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token: Value = serde_json::from_slice(&out.stdout).unwrap();
    token["token"].as_str().unwrap().to_string()
}

/// Starts `steward serve` on a free port of this home; its log is `<home>/serve.log`. The
/// Docker-events monitor is off: it would follow every Steward container on the engine,
/// the user's and other tests' included ([`start_serve_with`] scopes it).
pub fn start_serve(home: &TestHome) -> (Server, String) {
    start_serve_with(home, &[("STEWARD_MONITOR", "off")])
}

/// [`start_serve`] with more environment (settings such as `STEWARD_MONITOR_LABELS`).
pub fn start_serve_with(home: &TestHome, env: &[(&str, &str)]) -> (Server, String) {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.dir.join("serve.log"))
        .unwrap();
    let child = home
        .command()
        .envs(env.iter().copied())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    (Server(Some(child)), format!("http://127.0.0.1:{port}"))
}

pub fn serve_log(home: &TestHome) -> String {
    std::fs::read_to_string(home.dir.join("serve.log")).unwrap_or_default()
}

pub async fn wait_ready(client: &reqwest::Client, base: &str, server: &mut Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("steward serve exited early: {status}");
        }
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "steward serve never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `GET /v1/requests/<id>`: the request with its incidents.
pub async fn request_view(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    request: &str,
) -> Value {
    client
        .get(format!("{base}/v1/requests/{request}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls the request until its incident's status is one of `want`, or is final.
pub async fn until_status(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    request: &str,
    want: &[&str],
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        let view = request_view(client, base, token, request).await;
        let incident = &view["incidents"][0];
        let status = incident["status"].as_str().unwrap_or_default();
        let active = ["", "open", "waiting_approval"].contains(&status);
        if want.contains(&status) || !active {
            assert!(
                want.contains(&status),
                "incident {status}, not {want:?}: {view:#}"
            );
            return incident.clone();
        }
        assert!(
            Instant::now() < deadline,
            "incident still {status}: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// SIGTERM: the server drains and exits 0, and the audit chain and its signed head verify.
pub async fn stop_serve(mut server: Server, home: &TestHome) {
    let mut child = server.0.take().unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status.success(),
        "serve exited {status}: {}",
        serve_log(home)
    );
    assert!(serve_log(home).contains("stopped"), "{}", serve_log(home));
    let out = home.run(&["audit", "verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

/// Runs `body` with a home of [`heal_home`] for a new service, then removes the service's
/// containers and route whatever happened.
pub async fn on_heal_service(prefix: &str, body: impl AsyncFnOnce(&TestHome, &Platform, &str)) {
    let service = format!("{prefix}{}", unique());
    let home = heal_home(&service);
    let platform = steward_cli::demo::platform(&home.config()).await.unwrap();
    let result = std::panic::AssertUnwindSafe(body(&home, &platform, &service))
        .catch_unwind()
        .await;
    platform.remove_service(&service).await.unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `service` on r1 (v1), then deployed as r2 (v2) through `steward call`: a good release and
/// the one that will go bad. Returns r2's container.
pub async fn two_releases(home: &TestHome, platform: &Platform, service: &str) -> ManagedContainer {
    let spec = steward_cli::demo::spec(&home.config(), service, "v1").unwrap();
    platform
        .ensure_service(&spec, Duration::from_secs(30))
        .await
        .unwrap();
    let args = json!({"service": service, "image": "steward-demo:v2"}).to_string();
    let out = home.run(&["call", "service_deploy", &args]);
    assert!(out.status.success(), "deploy v2: {}", stderr(&out));
    platform
        .docker
        .container(&format!("{service}-r2"))
        .await
        .unwrap()
}

/// The release breaks for good: a restart brings it back broken.
pub async fn break_for_good(client: &reqwest::Client, release: &ManagedContainer) {
    let ip = release.ip.clone().unwrap();
    let r = client
        .post(format!("http://{ip}:8080/admin/health/break"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// The tools of the incident's finished steps, in order.
pub fn finished_tools(incident: &Value) -> Vec<String> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "step_finished")
        .map(|t| t["tool"].as_str().unwrap().to_string())
        .collect()
}
