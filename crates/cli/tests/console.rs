//! The web console in a real headless Chromium (Debian's `chromium` and `chromium-driver`
//! through Selenium), against a real `steward serve` on the real platform: a release goes
//! bad for good, Alertmanager reports it, the `service-down` ladder restarts the service
//! (no help) and proposes a rollback that this home's policy gives to a person. The browser
//! signs in on a phone-width screen, sees the service, approves the rollback, and follows
//! the incident until it closes resolved; Docker agrees. The alert's annotation holds a
//! `<script>`: the incident page shows it as text and it never runs. Then the chat page asks
//! a question and shows the streamed answer (on the small model). Screenshots are saved
//! under `target/screenshots/console/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::process::Command;

use common::serve::*;
use common::*;
use serde_json::{json, Value};
use steward_exec::platform::Platform;

/// This home's extra policy: a rollback an alert rule proposes waits for a person.
const ROLLBACK_NEEDS_A_PERSON: &str = r#"
// @example needs_approval {"principal":"alert_rule:service-down","tool":"service_rollback","args":{"service":"rentguy","to":"previous"},"origin":"alert"}
// @example allow {"principal":"alert_rule:service-down","tool":"service_restart","args":{"service":"rentguy"},"origin":"alert"}
@id("rollback-needs-a-person")
@approval("required")
@reason("in this home a rollback a rule proposes waits for a person")
permit (principal is AlertRule, action == Action::"service_rollback", resource);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_approves_a_rollback_in_chromium_and_sees_the_incident_close() {
    on_heal_service("web", approve_in_browser).await;
}

async fn approve_in_browser(home: &TestHome, platform: &Platform, service: &str) {
    std::fs::write(
        home.policies.join("rollback-needs-a-person.cedar"),
        ROLLBACK_NEEDS_A_PERSON,
    )
    .unwrap();
    // The ladders' own examples say what their steps decide: the rollback now waits.
    let heal = home.policies.join("rules/heal.toml");
    let rules = std::fs::read_to_string(&heal).unwrap();
    let before = r#"steps = ["service_restart", "service_rollback", "notify"]
decisions = ["allow", "allow", "allow"]"#;
    assert!(
        rules.contains(before),
        "the shipped service-down example changed"
    );
    let after = before.replace(
        r#"["allow", "allow", "allow"]"#,
        r#"["allow", "needs_approval", "allow"]"#,
    );
    std::fs::write(&heal, rules.replace(before, &after)).unwrap();
    let r2 = two_releases(home, platform, service).await;
    let alertmanager = create_token(home, "webhook:alertmanager");
    let operator = create_token(home, "operator:local");
    let (mut server, base) = start_serve_with(
        home,
        &[
            ("STEWARD_MONITOR", "off"),
            ("STEWARD_PLANNER_MODEL", "smollm2-135m-instruct-q4_1"),
        ],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;
    break_for_good(&client, &r2).await;

    let now = chrono::Utc::now().to_rfc3339();
    let alert = json!({
        "version": "4", "groupKey": "{}:{alertname=\"ServiceDown\"}", "status": "firing",
        "receiver": "steward", "groupLabels": {"alertname": "ServiceDown"},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am", "truncatedAlerts": 0,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "ServiceDown", "service": service, "severity": "critical"},
            "annotations": {"summary": "down <script>window.__pwned=1;document.title='pwned'</script>"},
            "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus", "fingerprint": format!("fp-{}", unique()),
        }]
    });
    let r = client
        .post(format!("{base}/hooks/alertmanager"))
        .bearer_auth(&alertmanager)
        .json(&alert)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let request: Value = r.json().await.unwrap();
    let request = request["request_id"].as_str().unwrap().to_string();
    // The restart does not help; the rollback waits for a person.
    until_status(
        &client,
        &base,
        &alertmanager,
        &request,
        &["waiting_approval"],
    )
    .await;

    let shots = repo_root().join("target/screenshots/console");
    let out = Command::new("python3")
        .arg(repo_root().join("crates/cli/tests/console/browser.py"))
        .args([&base, &operator, service])
        .arg(&shots)
        .output()
        .expect("python3 with selenium (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "the browser run failed:\n{}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        serve_log(home)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("console in Chromium: {got:#}");
    assert_eq!(got["redirected_to_login"], true);
    assert_eq!(got["overview_has_service"], true, "{got:#}");
    assert!(
        got["scroll_width"].as_i64().unwrap() <= 390,
        "the overview fits a phone's width: {got:#}"
    );
    assert!(got["approval_id"].as_str().unwrap().starts_with("ap-"));
    assert!(got["flash"].as_str().unwrap().contains("done"), "{got:#}");
    assert_eq!(got["incident_status"], "resolved", "{got:#}");
    let page = got["incident_page"].as_str().unwrap();
    assert!(page.contains("service_rollback"), "{page}");
    assert_eq!(got["pwned"], false, "the annotation's script ran");
    assert_eq!(got["script_shown_as_text"], true, "{page}");
    // The chat page showed the question and what came back, as text.
    let chat: Vec<&str> = got["chat"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        chat.first(),
        Some(&"which services are running?"),
        "{chat:?}"
    );
    assert!(chat.len() >= 2, "no answer or step shown: {chat:?}");
    for shot in got["screenshots"].as_array().unwrap() {
        assert!(std::path::Path::new(shot.as_str().unwrap()).exists());
    }

    // Docker agrees: r1 is live and healthy, r2 is not running.
    let r1 = platform
        .docker
        .container(&format!("{service}-r1"))
        .await
        .unwrap();
    assert_eq!(
        (r1.state.as_str(), r1.health.as_str()),
        ("running", "healthy")
    );
    let out = home.run(&["audit", "search", "approval_answered", "--json"]);
    assert!(stdout(&out).contains("operator:local"), "{}", stdout(&out));
    stop_serve(server, home).await;
}
