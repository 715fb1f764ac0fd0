//! The `/v1` API of a real `steward serve`, on the real platform (Docker, Traefik,
//! PostgreSQL): a service with two releases is seen in `/v1/status`, rolled back through
//! `POST /v1/calls` (Docker agrees), found in the audit log through `/v1/audit/search`,
//! counted in `/metrics`, and the chain verifies through `/v1/audit/verify`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::serve::*;
use common::*;
use serde_json::{json, Value};
use steward_exec::platform::Platform;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_through_the_api_runs_on_the_platform_and_is_audited_and_counted() {
    on_heal_service("api", rollback_over_http).await;
}

async fn rollback_over_http(home: &TestHome, platform: &Platform, service: &str) {
    two_releases(home, platform, service).await;
    let alice = create_token(home, "operator:alice");
    let mallory = create_token(home, "operator:mallory");
    let (mut server, base) = start_serve(home);
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;

    // The platform as Docker and Traefik report it.
    let r = client
        .get(format!("{base}/v1/status"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let status: Value = r.json().await.unwrap();
    let rows = status["platform"]["rows"].as_array().unwrap();
    let live = rows
        .iter()
        .find(|row| row["service"] == service && row["state"] == "running")
        .unwrap_or_else(|| panic!("{service} not in {status:#}"));
    assert_eq!(live["release"], "r2", "{live}");

    // A person policy does not know is refused, and nothing changes.
    let call = json!({"tool": "service_rollback", "args": {"service": service, "to": "previous"}});
    let r = client
        .post(format!("{base}/v1/calls"))
        .bearer_auth(&mallory)
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["decision"]["decision"], "deny", "{body}");

    // The rollback as alice: done, and Docker agrees.
    let r = client
        .post(format!("{base}/v1/calls"))
        .bearer_auth(&alice)
        .json(&call)
        .send()
        .await
        .unwrap();
    let code = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["status"], "done", "{body:#}");
    assert!(!body["decision"]["policies"].as_array().unwrap().is_empty());
    let r1 = platform
        .docker
        .container(&format!("{service}-r1"))
        .await
        .unwrap();
    assert_eq!(
        (r1.state.as_str(), r1.health.as_str()),
        ("running", "healthy")
    );

    // The audit log has it as alice's api call; the chain verifies.
    let r = client
        .get(format!("{base}/v1/audit/search?q=service_rollback"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let found: Value = r.json().await.unwrap();
    assert_eq!(found["status"], "done", "{found:#}");
    let text = found["result"]["output"].to_string();
    assert!(
        text.contains("operator:alice") || text.contains("alice"),
        "{text}"
    );
    let r = client
        .get(format!("{base}/v1/audit/verify"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["ok"], true, "{report:#}");

    // The origin engine answers through the API as the origin tools; bad input names the field.
    let product = json!({
        "agreement": "uk-eu-tca", "shipment_date": "2026-06-01",
        "product": {"hs": "871200", "exw": 200},
        "materials": [{"hs": "871491", "value": 60, "origin": "non-originating"}]
    });
    let r = client
        .post(format!("{base}/v1/origin/check"))
        .bearer_auth(&alice)
        .json(&product)
        .send()
        .await
        .unwrap();
    let code = r.status();
    let verdict: Value = r.json().await.unwrap();
    assert_eq!(code, 200, "{verdict:#}");
    assert_eq!(verdict["status"], "done", "{verdict:#}");
    assert!(!verdict["result"]["summary"].as_str().unwrap().is_empty());
    let r = client
        .post(format!("{base}/v1/origin/check"))
        .bearer_auth(&alice)
        .json(&json!({"agreement": "uk-mars", "product": "bike-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let refused: Value = r.json().await.unwrap();
    assert_eq!(refused["error"]["field"], "args.agreement", "{refused:#}");
    // Incidents: none opened in this home, and the list says so.
    let r = client
        .get(format!("{base}/v1/incidents?all=true"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));

    // And /metrics counts both calls with their outcomes.
    let metrics = client
        .get(format!("{base}/metrics"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"steward_calls_total{origin="api",outcome="done",tool="service_rollback"} 1"#,
        r#"steward_calls_total{origin="api",outcome="refused",tool="service_rollback"} 1"#,
        "steward_audit_verify_ok 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?}:\n{metrics}");
    }
    stop_serve(server, home).await;
}
