//! The `/v1` API through `app(state)` (no socket), over the repository's own Cedar
//! policies and a recording executor: tokens and principals, calls and their status codes,
//! approvals, bad bodies, CORS, rate limits, the metrics text and the OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[macro_use]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{post_json, World};
use serde_json::{json, Value};
use steward_protocol::AuditKind;

sqlite!(
    every_v1_endpoint_refuses_a_missing_or_unknown_token_in_one_error_shape,
    a_call_runs_as_the_tokens_principal_with_the_decision_and_its_policies,
    what_a_token_gets_is_what_policy_gives_its_principal,
    an_approval_runs_once_answered_by_another_operator,
    bad_bodies_are_refused_naming_what_is_wrong_and_nothing_runs,
    cors_is_off_and_unknown_routes_are_404_in_the_one_shape,
    a_token_over_its_rate_limit_gets_429_with_retry_after,
    tools_are_listed_with_their_schemas,
    metrics_count_calls_and_refusals_and_pass_promtool,
    the_served_openapi_document_is_the_committed_one_and_valid,
);

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

fn post_raw(path: &str, token: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

/// Every `/v1` route, with a body where it takes one.
fn endpoints() -> Vec<(&'static str, &'static str)> {
    vec![
        ("GET", "/v1/tools"),
        ("GET", "/v1/tools/service_restart"),
        ("POST", "/v1/calls"),
        ("GET", "/v1/approvals"),
        ("POST", "/v1/approvals/ap-000000000000/approve"),
        ("POST", "/v1/approvals/ap-000000000000/deny"),
        ("GET", "/v1/audit/search?q=restart"),
        ("GET", "/v1/audit/verify"),
        ("POST", "/v1/audit/checkpoint"),
        ("GET", "/v1/status"),
        ("GET", "/v1/incidents"),
        ("GET", "/v1/incidents/inc-1"),
        ("POST", "/v1/origin/check"),
        ("POST", "/v1/origin/compare"),
        ("POST", "/v1/plan"),
        ("POST", "/v1/chat/s-1/messages"),
        ("GET", "/v1/requests/r-1"),
        ("GET", "/metrics"),
    ]
}

fn request(method: &str, path: &str, token: Option<&str>) -> Request<Body> {
    if method == "GET" {
        get(path, token)
    } else {
        post_json(
            path,
            token,
            &json!({"tool": "service_status", "args": {"service": "rentguy"}}),
        )
    }
}

async fn every_v1_endpoint_refuses_a_missing_or_unknown_token_in_one_error_shape(w: &World) {
    let forged = format!("stw_{}", "ab".repeat(32));
    for (method, path) in endpoints() {
        for token in [None, Some(forged.as_str()), Some("not-a-token")] {
            let (s, _, body) = w.send(request(method, path, token)).await;
            assert_eq!(
                s,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}: {body}"
            );
            assert_eq!(
                body["error"]["kind"], "unauthorized",
                "{method} {path}: {body}"
            );
            assert!(body["error"]["message"].as_str().unwrap().len() > 5);
        }
    }
    assert!(w.probe.ran().is_empty(), "nothing runs without a token");
    let refused = w.refused().await;
    let api_refusals: u64 = refused
        .iter()
        .filter(|((source, _), _)| source == "api")
        .map(|(_, n)| n)
        .sum();
    // /v1/requests and /metrics count under their own sources.
    assert_eq!(
        api_refusals,
        3 * (endpoints().len() as u64 - 2),
        "{refused:?}"
    );
}

async fn a_call_runs_as_the_tokens_principal_with_the_decision_and_its_policies(w: &World) {
    let alice = w.token("operator:alice").await;
    let (s, _, body) = w
        .send(post_json(
            "/v1/calls",
            Some(&alice),
            &json!({"tool": "service_restart", "args": {"service": "rentguy"}}),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "done");
    assert_eq!(body["decision"]["decision"], "allow");
    assert!(
        body["decision"]["policies"]
            .as_array()
            .unwrap()
            .contains(&json!("operator-write")),
        "{body}"
    );
    assert_eq!(body["result"]["summary"], "ran service_restart");
    assert_eq!(w.probe.ran(), ["service_restart"]);

    // A dry run plans and changes nothing.
    let (s, _, body) = w
        .send(post_json(
            "/v1/calls",
            Some(&alice),
            &json!({"tool": "service_restart", "args": {"service": "psra"}, "dry_run": true}),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "planned");
    assert_eq!(body["plan"]["steps"], json!(["would run service_restart"]));
    assert_eq!(w.probe.ran().len(), 1);

    // The audit log names alice and the api origin.
    let records = w.audit.records(1, 1000).await.unwrap();
    let end = records
        .iter()
        .find(|r| r.entry.kind == Some(AuditKind::ExecEnd))
        .expect("an exec_end record");
    let entry = serde_json::to_value(&end.entry).unwrap();
    assert_eq!(entry["origin"], "api", "{entry}");
    assert!(entry["actor"].to_string().contains("alice"), "{entry}");
}

async fn what_a_token_gets_is_what_policy_gives_its_principal(w: &World) {
    // An operator policy does not know: denied, 403, with the decision.
    let mallory = w.token("operator:mallory").await;
    let (s, _, body) = w
        .send(post_json(
            "/v1/calls",
            Some(&mallory),
            &json!({"tool": "service_status", "args": {"service": "rentguy"}}),
        ))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["status"], "refused");
    assert_eq!(body["error"]["kind"], "denied");
    assert_eq!(body["decision"]["decision"], "deny");
    // Views follow the same decision.
    for path in ["/v1/status", "/v1/incidents", "/v1/audit/verify"] {
        let (s, _, body) = w.send(get(path, Some(&mallory))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"]["kind"], "forbidden");
    }
    // A tenant's service account may not touch a platform service.
    let acme = w.token("service_account:tenant-acme").await;
    let (s, _, body) = w
        .send(post_json(
            "/v1/calls",
            Some(&acme),
            &json!({"tool": "service_restart", "args": {"service": "rentguy"}}),
        ))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    // A webhook principal may not call through the API at all.
    let n8n = w.token("webhook:n8n").await;
    let (s, _, body) = w
        .send(post_json(
            "/v1/calls",
            Some(&n8n),
            &json!({"tool": "tenant_provision", "args": {"subdomain": "shop"}}),
        ))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    // Only operators sign checkpoints.
    let (s, _, _) = w
        .send(post_json("/v1/audit/checkpoint", Some(&acme), &json!({})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let local = w.token("operator:local").await;
    let (s, _, body) = w
        .send(post_json("/v1/audit/checkpoint", Some(&local), &json!({})))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, _, body) = w.send(get("/v1/audit/verify", Some(&local))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    let (s, _, body) = w.send(get("/v1/status", Some(&local))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["platform"]["rows"][0]["service"], "rentguy");
    assert_eq!(body["pending_approvals"], 0);
    assert!(w.probe.ran().is_empty(), "{:?}", w.probe.ran());
}

async fn an_approval_runs_once_answered_by_another_operator(w: &World) {
    let alice = w.token("operator:alice").await;
    let local = w.token("operator:local").await;
    let acme = w.token("service_account:tenant-acme").await;
    let (s, _, body) = w
        .send(post_json(
            "/v1/calls",
            Some(&alice),
            &json!({"tool": "tenant_destroy", "args": {"tenant": "acme"}}),
        ))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending_approval");
    let id = body["approval"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        body["approval"]["approve"],
        format!("POST /v1/approvals/{id}/approve")
    );
    assert!(w.probe.ran().is_empty());

    // Operators see it with its dry-run; others do not see other principals' requests.
    let (_, _, list) = w.send(get("/v1/approvals", Some(&local))).await;
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert_eq!(
        list[0]["plan"]["summary"],
        "tenant_destroy {\"tenant\":\"acme\"}"
    );
    let (_, _, list) = w.send(get("/v1/approvals", Some(&acme))).await;
    assert_eq!(list, json!([]));

    // Not by the one who asked, not by a non-person; a denial needs a reason.
    let approve = format!("/v1/approvals/{id}/approve");
    let (s, _, body) = w.send(post_json(&approve, Some(&alice), &json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, _, body) = w.send(post_json(&approve, Some(&acme), &json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, _, body) = w
        .send(post_json(
            &format!("/v1/approvals/{id}/deny"),
            Some(&local),
            &json!({}),
        ))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "reason", "{body}");
    assert!(w.probe.ran().is_empty());

    // Another operator approves (no body at all is fine): it runs, once.
    let (s, _, body) = w
        .send(
            Request::post(&approve)
                .header("authorization", format!("Bearer {local}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "done");
    assert_eq!(body["tool"], "tenant_destroy");
    assert_eq!(w.probe.ran(), ["tenant_destroy"]);
    let (s, _, body) = w.send(post_json(&approve, Some(&local), &json!({}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, _, body) = w
        .send(post_json(
            "/v1/approvals/ap-ffffffffffff/approve",
            Some(&local),
            &json!({}),
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(w.probe.ran().len(), 1);

    // A second request, denied with a reason, never runs.
    let (_, _, body) = w
        .send(post_json(
            "/v1/calls",
            Some(&alice),
            &json!({"tool": "tenant_destroy", "args": {"tenant": "globex"}}),
        ))
        .await;
    let id = body["approval"]["id"].as_str().unwrap().to_string();
    let (s, _, body) = w
        .send(post_json(
            &format!("/v1/approvals/{id}/deny"),
            Some(&local),
            &json!({"reason": "globex still pays"}),
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "denied");
    assert_eq!(body["answer_reason"], "globex still pays");
    assert_eq!(w.probe.ran().len(), 1);
}

async fn bad_bodies_are_refused_naming_what_is_wrong_and_nothing_runs(w: &World) {
    let alice = w.token("operator:alice").await;
    let cases: Vec<(Request<Body>, StatusCode, &str, Option<&str>)> = vec![
        (
            post_raw("/v1/calls", &alice, "application/json", "{\"tool\": "),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            post_raw("/v1/calls", &alice, "application/json", ""),
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            post_raw(
                "/v1/calls",
                &alice,
                "text/plain",
                r#"{"tool":"service_status"}"#,
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
        (
            post_raw(
                "/v1/calls",
                &alice,
                "application/json",
                vec![b' '; 1024 * 1024 + 1],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            None,
        ),
        (
            post_json("/v1/calls", Some(&alice), &json!({"tol": "service_status"})),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
            Some("tol"),
        ),
        (
            post_json("/v1/calls", Some(&alice), &json!({"args": {}})),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
            Some("tool"),
        ),
        (
            post_json(
                "/v1/calls",
                Some(&alice),
                &json!({"tool": "service_status", "dry_run": "yes"}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_payload",
            Some("dry_run"),
        ),
        (
            post_json(
                "/v1/calls",
                Some(&alice),
                &json!({"tool": "service_restart", "args": {"service": "rentguy; rm -rf /"}}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_args",
            Some("args.service"),
        ),
        (
            post_json(
                "/v1/calls",
                Some(&alice),
                &json!({"tool": "service_restart", "args": {}}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_args",
            Some("args.service"),
        ),
        (
            post_json(
                "/v1/calls",
                Some(&alice),
                &json!({"tool": "rm_rf", "args": {}}),
            ),
            StatusCode::BAD_REQUEST,
            "unknown_tool",
            None,
        ),
    ];
    for (req, status, kind, field) in cases {
        let what = format!("{} {:?}", req.uri(), req.headers().get("content-type"));
        let (s, _, body) = w.send(req).await;
        assert_eq!(s, status, "{what}: {body}");
        assert_eq!(body["error"]["kind"], kind, "{what}: {body}");
        if let Some(f) = field {
            assert_eq!(body["error"]["field"], f, "{what}: {body}");
        }
    }
    assert!(w.probe.ran().is_empty());
    let refused = w.refused().await;
    for reason in [
        "malformed_json",
        "unsupported_media_type",
        "body_too_large",
        "invalid_payload",
    ] {
        assert!(
            refused.contains_key(&("api".to_string(), reason.to_string())),
            "{reason} not audited: {refused:?}"
        );
    }
}

async fn cors_is_off_and_unknown_routes_are_404_in_the_one_shape(w: &World) {
    let alice = w.token("operator:alice").await;
    let preflight = Request::options("/v1/calls")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let (s, headers, _) = w.send(preflight).await;
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{s} {headers:?}"
    );
    let cross = Request::get("/v1/tools")
        .header("origin", "https://evil.example")
        .header("authorization", format!("Bearer {alice}"))
        .body(Body::empty())
        .unwrap();
    let (s, headers, _) = w.send(cross).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        headers.get("access-control-allow-origin").is_none(),
        "{headers:?}"
    );
    let (s, _, body) = w.send(get("/v1/nothing-here", Some(&alice))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["kind"], "not_found", "{body}");
    let (s, _, body) = w.send(get("/v1/tools/rm_rf", Some(&alice))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["kind"], "unknown_tool", "{body}");
}

async fn a_token_over_its_rate_limit_gets_429_with_retry_after(w: &World) {
    let busy = w.token("operator:alice").await;
    let calm = w.token("operator:local").await;
    let mut limited = None;
    // The default allows a burst of 100, refilled at 50/s.
    for _ in 0..400 {
        let (s, headers, body) = w.send(get("/v1/tools/service_status", Some(&busy))).await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((headers, body));
            break;
        }
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (headers, body) = limited.expect("a 429 within 400 quick requests");
    assert_eq!(body["error"]["kind"], "rate_limited", "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    // Another token is not affected.
    let (s, _, _) = w.send(get("/v1/tools/service_status", Some(&calm))).await;
    assert_eq!(s, StatusCode::OK);
    let refused = w.refused().await;
    assert!(
        refused.contains_key(&("api".into(), "rate_limited".into())),
        "{refused:?}"
    );
}

async fn tools_are_listed_with_their_schemas(w: &World) {
    let bob = w.token("operator:bob").await;
    let (s, _, body) = w.send(get("/v1/tools", Some(&bob))).await;
    assert_eq!(s, StatusCode::OK);
    let tools = body.as_array().unwrap();
    assert_eq!(tools.len(), steward_tools::CATALOGUE.len());
    let (_, _, one) = w.send(get("/v1/tools/service_logs", Some(&bob))).await;
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/service_logs.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(one, committed, "the API serves the committed definition");
    assert_eq!(one["input_schema"]["required"], json!(["service"]));
}

async fn metrics_count_calls_and_refusals_and_pass_promtool(w: &World) {
    let alice = w.token("operator:alice").await;
    let mallory = w.token("operator:mallory").await;
    for (token, tool) in [
        (&alice, "service_restart"),
        (&alice, "service_restart"),
        (&mallory, "service_restart"),
    ] {
        w.send(post_json(
            "/v1/calls",
            Some(token),
            &json!({"tool": tool, "args": {"service": "rentguy"}}),
        ))
        .await;
    }
    w.send(get("/v1/tools", None)).await;
    let (s, headers, _) = w.send(get("/metrics", None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, headers2, body) = w.send(get("/metrics", Some(&alice))).await;
    assert_eq!(s, StatusCode::OK, "{headers:?}");
    assert!(headers2["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = body.as_str().unwrap();
    for line in [
        r#"steward_calls_total{origin="api",outcome="done",tool="service_restart"} 2"#,
        r#"steward_calls_total{origin="api",outcome="refused",tool="service_restart"} 1"#,
        r#"steward_http_refusals_total{reason="missing_token",source="api"} 1"#,
        "steward_pending_approvals 0",
        "steward_audit_verify_ok -1",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert!(
        text.contains(r#"steward_stage_duration_seconds_count{stage="vet"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"steward_stage_duration_seconds_count{stage="execute"} 2"#),
        "{text}"
    );
    let appended: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("steward_audit_records_appended_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(appended >= 5.0, "{appended}");

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package, installed by scripts/setup)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn the_served_openapi_document_is_the_committed_one_and_valid(w: &World) {
    let (s, _, served) = w.send(get("/openapi.json", None)).await;
    assert_eq!(s, StatusCode::OK);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        steward_server::openapi::document(),
        committed,
        "docs/openapi.json is stale: regenerate it with `steward tools openapi > docs/openapi.json`"
    );
    assert_eq!(served, serde_json::from_str::<Value>(&committed).unwrap());
    assert_eq!(served["openapi"].as_str().unwrap().get(..3), Some("3.1"));
    for p in [
        "/v1/calls",
        "/v1/approvals/{id}/approve",
        "/v1/audit/verify",
        "/v1/status",
    ] {
        assert!(served["paths"].get(p).is_some(), "{p} missing");
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; from openapi_spec_validator import validate; \
             from openapi_spec_validator.readers import read_from_filename; \
             spec, _ = read_from_filename(sys.argv[1]); validate(spec); print('valid')",
        ])
        .arg(&path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "openapi-spec-validator (PyPI, installed by scripts/setup) rejects docs/openapi.json:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
