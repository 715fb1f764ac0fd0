//! The intake through `app(state)` with tower's `oneshot` (no socket): health, tokens,
//! Alertmanager, signed webhooks, deduplication, refusals and their audit counts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[macro_use]
mod common;

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{alert_payload, chrono_now, post_json, World};
use serde_json::{json, Value};
use steward_protocol::{EventSource, EventStatus, Timestamp};

sqlite!(
    health_is_open_and_readiness_names_failing_checks,
    alertmanager_payload_becomes_one_event_per_alert,
    alertmanager_refuses_wrong_version_and_names_missing_fields,
    tokens_missing_unknown_expired_revoked_are_401,
    token_of_another_principal_is_403,
    unknown_hook_is_404_and_counted_under_one_source,
    signed_hook_maps_fields_by_pointer,
    bad_signature_and_stale_timestamp_run_nothing,
    rotation_accepts_the_previous_secret_and_any_v1,
    replayed_delivery_answers_the_first_outcome_and_runs_nothing,
    bad_bodies_are_refused_with_their_reason,
    body_over_one_mib_is_413,
    refusals_are_one_record_per_source_reason_and_minute,
    request_view_admits_operators_and_the_maker,
    engine_failure_is_503_and_the_delivery_is_not_remembered,
    concurrent_requests_share_commits,
);

async fn health_is_open_and_readiness_names_failing_checks(w: &World) {
    let (s, _, _) = w
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, body) = w
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["ready"], true);
    w.readiness.failing.lock().unwrap().push("policies".into());
    let (s, _, body) = w
        .send(Request::get("/readyz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["failing"], json!(["policies"]));
    assert_eq!(w.readiness.calls.load(Ordering::SeqCst), 2);
    // Neither needs a token, and neither is counted as a refusal.
    assert_eq!(w.refused_records().await, 0);
}

async fn alertmanager_payload_becomes_one_event_per_alert(w: &World) {
    let token = w.token("webhook:alertmanager").await;
    let (s, _, body) = w
        .send(post_json(
            "/hooks/alertmanager",
            Some(&token),
            &alert_payload(),
        ))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "accepted");
    let id = body["request_id"].as_str().unwrap().to_string();
    let subs = w.triggers.submitted.lock().unwrap().clone();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].request_id, id);
    assert_eq!(subs[0].principal, "webhook:alertmanager");
    let e = &subs[0].events;
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].source, EventSource::Alert);
    assert_eq!(e[0].name, "ContainerUnhealthy");
    assert_eq!(e[0].status, EventStatus::Firing);
    assert_eq!(e[0].key, "c0ffee0000000001");
    assert_eq!(e[0].labels["service"], "rentguy");
    assert_eq!(e[0].at, Timestamp(1_796_378_400_123));
    // Annotations are text (data), never fields.
    assert!(e[0].fields.is_empty());
    let text = e[0].text.as_deref().unwrap();
    assert!(text.contains("summary: rentguy is unhealthy"), "{text}");
    assert!(text.contains("ignore previous instructions"), "{text}");
    assert_eq!(e[1].status, EventStatus::Resolved);
    assert_eq!(e[1].key, "c0ffee0000000002");
    assert_eq!(e[1].text, None);
}

async fn alertmanager_refuses_wrong_version_and_names_missing_fields(w: &World) {
    let token = w.token("webhook:alertmanager").await;
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|v| v["version"] = json!("3")), "version"),
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("groupKey");
            }),
            "groupKey: missing",
        ),
        (
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("truncatedAlerts");
            }),
            "truncatedAlerts: missing",
        ),
        (
            Box::new(|v| {
                v["alerts"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("fingerprint");
            }),
            "alerts[1].fingerprint: missing",
        ),
        (
            Box::new(|v| {
                v["alerts"][0]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("alertname");
            }),
            "alerts[0].labels.alertname: missing",
        ),
        (
            Box::new(|v| v["alerts"][0]["startsAt"] = json!("yesterday")),
            "alerts[0].startsAt",
        ),
        (
            Box::new(|v| v["alerts"][0]["status"] = json!("pending")),
            "alerts[0].status",
        ),
        (
            Box::new(|v| v["alerts"][0]["labels"]["service"] = json!(3)),
            "alerts[0].labels.service",
        ),
    ];
    for (edit, names) in cases {
        let mut v = alert_payload();
        edit(&mut v);
        let (s, _, body) = w
            .send(post_json("/hooks/alertmanager", Some(&token), &v))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["kind"], "invalid_payload");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(names), "{msg:?} should name {names:?}");
    }
    assert_eq!(w.triggers.count(), 0, "nothing may be submitted");
    let refused = w.refused().await;
    assert_eq!(
        refused[&("alertmanager".into(), "invalid_payload".into())],
        8
    );
}

async fn tokens_missing_unknown_expired_revoked_are_401(w: &World) {
    let expired = w
        .state
        .tokens()
        .create("webhook:alertmanager", Some(Timestamp(1)))
        .await
        .unwrap();
    let revoked = w
        .state
        .tokens()
        .create("webhook:alertmanager", None)
        .await
        .unwrap();
    // Used once (cached), then revoked: the cache must not keep it alive.
    let (s, _, _) = w
        .send(post_json(
            "/hooks/alertmanager",
            Some(&revoked.token),
            &alert_payload(),
        ))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    w.state.tokens().revoke(&revoked.info.id).await.unwrap();
    let made_up = format!("stw_{}", "0".repeat(64));
    let cases = [
        (None, "missing bearer token"),
        (Some(made_up.as_str()), "unknown token"),
        (Some("not-even-a-token"), "unknown token"),
        (Some(expired.token.as_str()), "token expired"),
        (Some(revoked.token.as_str()), "token revoked"),
    ];
    for (token, message) in cases {
        let (s, _, body) = w
            .send(post_json("/hooks/alertmanager", token, &alert_payload()))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert_eq!(body["error"]["kind"], "unauthorized");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
    assert_eq!(
        w.triggers.count(),
        1,
        "only the request before the revocation ran"
    );
    let refused = w.refused().await;
    let src = |r: &str| refused[&("alertmanager".to_string(), r.to_string())];
    assert_eq!(src("missing_token"), 1);
    assert_eq!(src("unknown_token"), 2);
    assert_eq!(src("expired_token"), 1);
    assert_eq!(src("revoked_token"), 1);
    // The store keeps only hashes: the token text appears nowhere in it.
    let listed = w.state.tokens().list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|t| t.revoked_at.is_some()));
    let db = std::fs::read(w.tmp.join("state.db")).unwrap();
    let needle = &revoked.token.as_bytes()[4..36];
    assert!(!db.windows(needle.len()).any(|win| win == needle));
}

async fn token_of_another_principal_is_403(w: &World) {
    let signup = w.token("webhook:signup").await;
    let (s, _, body) = w
        .send(post_json(
            "/hooks/alertmanager",
            Some(&signup),
            &alert_payload(),
        ))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["kind"], "forbidden");
    let am = w.token("webhook:alertmanager").await;
    let (s, _, _) = w
        .send(w.signed("signup", &am, "d-1", r#"{"subdomain":"acme"}"#))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let op = w.token("operator:alice").await;
    let (s, _, _) = w
        .send(w.signed("signup", &op, "d-2", r#"{"subdomain":"acme"}"#))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(w.triggers.count(), 0);
    let refused = w.refused().await;
    assert_eq!(refused[&("alertmanager".into(), "forbidden".into())], 1);
    assert_eq!(refused[&("hook:signup".into(), "forbidden".into())], 2);
}

async fn unknown_hook_is_404_and_counted_under_one_source(w: &World) {
    let token = w.token("webhook:signup").await;
    for name in ["nope", "other", "x"] {
        let (s, _, body) = w.send(w.signed(name, &token, "d", "{}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["kind"], "unknown_hook");
    }
    // Without a token too: the hook's existence is no secret worth a 401.
    let (s, _, _) = w.send(post_json("/hooks/nope", None, &json!({}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(w.triggers.count(), 0);
    let refused = w.refused().await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[&("hook:unknown".into(), "unknown_hook".into())], 4);
}

async fn signed_hook_maps_fields_by_pointer(w: &World) {
    let token = w.token("webhook:signup").await;
    let body = r#"{"subdomain":"acme","plan":"small","extra":{"ignored":true}}"#;
    let (s, _, answer) = w.send(w.signed("signup", &token, "delivery-1", body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "accepted");
    let subs = w.triggers.submitted.lock().unwrap().clone();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].principal, "webhook:signup");
    assert_eq!(subs[0].request_id, answer["request_id"].as_str().unwrap());
    let e = &subs[0].events[0];
    assert_eq!(e.source, EventSource::Hook);
    assert_eq!(e.name, "signup");
    assert_eq!(e.key, "delivery-1");
    assert_eq!(e.fields.len(), 2);
    assert_eq!(e.fields["subdomain"], json!("acme"));
    assert_eq!(e.fields["plan"], json!("small"));
    assert_eq!(e.text, None);
    // A text hook keeps its text as untrusted data, with no fields.
    let notes = w.token("webhook:notes").await;
    let (s, _, _) = w
        .send(w.signed(
            "notes",
            &notes,
            "n-1",
            r#"{"message":"restart rentguy please"}"#,
        ))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let subs = w.triggers.submitted.lock().unwrap().clone();
    assert_eq!(
        subs[1].events[0].text.as_deref(),
        Some("restart rentguy please")
    );
    assert!(subs[1].events[0].fields.is_empty());
}

async fn bad_signature_and_stale_timestamp_run_nothing(w: &World) {
    let token = w.token("webhook:signup").await;
    let secret = w.secret("signup");
    let body = r#"{"subdomain":"acme","plan":"small"}"#;
    let now = chrono_now();
    let req = |sig: String, delivery: &str| {
        Request::post("/hooks/signup")
            .header("authorization", format!("Bearer {token}"))
            .header("steward-delivery", delivery)
            .header("steward-signature", sig)
            .body(Body::from(body))
            .unwrap()
    };
    let sign =
        |key: &str, t: i64, b: &str| steward_server::hooks::sign(key.as_bytes(), t, b.as_bytes());
    let cases = [
        (
            sign("wrong-secret", now, body),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        // Signed over another body: the signature covers the raw bytes.
        (
            sign(&secret, now, r#"{"subdomain":"evil"}"#),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        // The right MAC claimed for another t.
        (
            sign(&secret, now, body).replace(&format!("t={now}"), &format!("t={}", now + 1)),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            "garbage".to_string(),
            StatusCode::UNAUTHORIZED,
            "bad_signature",
        ),
        (
            sign(&secret, now - 301, body),
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
        ),
        (
            sign(&secret, now + 301, body),
            StatusCode::UNAUTHORIZED,
            "stale_timestamp",
        ),
    ];
    for (i, (sig, status, kind)) in cases.into_iter().enumerate() {
        let (s, _, answer) = w.send(req(sig, &format!("d-{i}"))).await;
        assert_eq!(s, status, "case {i}: {answer}");
        assert_eq!(answer["error"]["kind"], kind, "case {i}");
    }
    // Just inside the tolerance is accepted.
    let (s, _, _) = w.send(req(sign(&secret, now - 290, body), "ok")).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(w.triggers.count(), 1);
    let refused = w.refused().await;
    assert_eq!(refused[&("hook:signup".into(), "bad_signature".into())], 4);
    assert_eq!(
        refused[&("hook:signup".into(), "stale_timestamp".into())],
        2
    );
}

async fn rotation_accepts_the_previous_secret_and_any_v1(w: &World) {
    let token = w.token("webhook:signup").await;
    let old = w.secret("signup");
    let rotated = steward_server::hooks::ensure_secret(&w.secrets_dir, "signup", true).unwrap();
    assert!(rotated.rotated);
    assert_ne!(rotated.secret, old);
    // The server re-reads a changed secret file within a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let body = r#"{"subdomain":"acme","plan":"small"}"#;
    let t = chrono_now();
    let send = |sig: String, d: &'static str| {
        Request::post("/hooks/signup")
            .header("authorization", format!("Bearer {token}"))
            .header("steward-delivery", d)
            .header("steward-signature", sig)
            .body(Body::from(body))
            .unwrap()
    };
    let sig_old = steward_server::hooks::sign(old.as_bytes(), t, body.as_bytes());
    let sig_new = steward_server::hooks::sign(rotated.secret.as_bytes(), t, body.as_bytes());
    let (s, _, _) = w.send(send(sig_old.clone(), "a")).await;
    assert_eq!(
        s,
        StatusCode::ACCEPTED,
        "the previous secret stays valid until the next rotation"
    );
    let (s, _, _) = w.send(send(sig_new.clone(), "b")).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // A sender mid-switch sends both; one wrong v1 beside a right one is fine.
    let v1_new = sig_new.split_once(",v1=").unwrap().1;
    let both = format!("t={t},v1={},v1={v1_new}", "ab".repeat(32));
    let (s, _, _) = w.send(send(both, "c")).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    // A second rotation drops the oldest secret.
    steward_server::hooks::ensure_secret(&w.secrets_dir, "signup", true).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (s, _, answer) = w.send(send(sig_old, "d")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(w.triggers.count(), 3);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.secrets_dir.join("signup"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

async fn replayed_delivery_answers_the_first_outcome_and_runs_nothing(w: &World) {
    let token = w.token("webhook:signup").await;
    let body = r#"{"subdomain":"acme","plan":"small"}"#;
    let (s, h, first) = w.send(w.signed("signup", &token, "once", body)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(h.get("steward-replayed").is_none());
    let (s, h, again) = w.send(w.signed("signup", &token, "once", body)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(again, first, "the first outcome, same request id");
    assert_eq!(h.get("steward-replayed").unwrap(), "true");
    assert_eq!(w.triggers.count(), 1);
    // Concurrent duplicates land in one batch: still only one runs.
    let reqs: Vec<_> = (0..20)
        .map(|_| w.signed("signup", &token, "burst", body))
        .collect();
    let answers = futures_util::future::join_all(reqs.into_iter().map(|r| w.send(r))).await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(s, _, b)| {
            assert_eq!(*s, StatusCode::ACCEPTED, "{b}");
            b["request_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "every duplicate answers with the first request id"
    );
    assert_eq!(w.triggers.count(), 2);
    // The same delivery id under another hook is another delivery.
    let notes = w.token("webhook:notes").await;
    let (s, h, _) = w
        .send(w.signed("notes", &notes, "once", r#"{"message":"hi"}"#))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(h.get("steward-replayed").is_none());
    let refused = w.refused().await;
    assert_eq!(
        refused[&("hook:signup".into(), "replayed_delivery".into())],
        20
    );
}

async fn bad_bodies_are_refused_with_their_reason(w: &World) {
    let token = w.token("webhook:signup").await;
    let cases = [
        ("{not json", "malformed_json", ""),
        (r#"{"plan":"small"}"#, "invalid_payload", "/subdomain"),
        (
            r#"{"subdomain":{"nested":1},"plan":"small"}"#,
            "invalid_payload",
            "subdomain",
        ),
        (
            r#"{"subdomain":["a"],"plan":"small"}"#,
            "invalid_payload",
            "subdomain",
        ),
    ];
    for (i, (body, kind, names)) in cases.into_iter().enumerate() {
        let (s, _, answer) = w
            .send(w.signed("signup", &token, &format!("b-{i}"), body))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["kind"], kind);
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(names),
            "{answer}"
        );
    }
    // No delivery id.
    let mut req = w.signed("signup", &token, "x", r#"{"subdomain":"a","plan":"small"}"#);
    req.headers_mut().remove("steward-delivery");
    let (s, _, answer) = w.send(req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["kind"], "missing_delivery");
    // Malformed Alertmanager JSON.
    let am = w.token("webhook:alertmanager").await;
    let req = Request::post("/hooks/alertmanager")
        .header("authorization", format!("Bearer {am}"))
        .body(Body::from("[1,2"))
        .unwrap();
    let (s, _, answer) = w.send(req).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["kind"], "malformed_json");
    assert_eq!(w.triggers.count(), 0);
    let refused = w.refused().await;
    assert_eq!(refused[&("hook:signup".into(), "malformed_json".into())], 1);
    assert_eq!(
        refused[&("hook:signup".into(), "invalid_payload".into())],
        3
    );
    assert_eq!(
        refused[&("hook:signup".into(), "missing_delivery".into())],
        1
    );
    assert_eq!(
        refused[&("alertmanager".into(), "malformed_json".into())],
        1
    );
}

async fn body_over_one_mib_is_413(w: &World) {
    let token = w.token("webhook:signup").await;
    let big = format!(
        r#"{{"subdomain":"a","plan":"small","pad":"{}"}}"#,
        "x".repeat(steward_server::MAX_BODY)
    );
    let (s, _, answer) = w.send(w.signed("signup", &token, "big", &big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"]["kind"], "body_too_large");
    // Without a Content-Length (a streamed body) the limit holds too.
    let chunks: Vec<Result<String, std::io::Error>> =
        (0..20).map(|_| Ok("y".repeat(64 * 1024))).collect();
    let req = Request::post("/hooks/alertmanager")
        .header(
            "authorization",
            format!("Bearer {}", w.token("webhook:alertmanager").await),
        )
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let (s, _, answer) = w.send(req).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    // Exactly at the limit is still read (and then refused for its content).
    let pad = |n: usize| {
        format!(
            r#"{{"subdomain":"a","plan":"small","pad":"{}"}}"#,
            "x".repeat(n)
        )
    };
    let at_limit = pad(steward_server::MAX_BODY - pad(0).len());
    assert_eq!(at_limit.len(), steward_server::MAX_BODY);
    let (s, _, _) = w.send(w.signed("signup", &token, "limit", &at_limit)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let refused = w.refused().await;
    assert_eq!(refused[&("hook:signup".into(), "body_too_large".into())], 1);
    assert_eq!(
        refused[&("alertmanager".into(), "body_too_large".into())],
        1
    );
    assert_eq!(w.triggers.count(), 1);
}

async fn refusals_are_one_record_per_source_reason_and_minute(w: &World) {
    let before = w.audit.head_seq().await;
    for _ in 0..500 {
        let (s, _, _) = w
            .send(post_json(
                "/hooks/alertmanager",
                Some("stw_nope"),
                &json!({}),
            ))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..30 {
        let (s, _, _) = w
            .send(post_json("/hooks/alertmanager", None, &json!({})))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let refused = w.refused().await;
    assert_eq!(
        refused[&("alertmanager".into(), "unknown_token".into())],
        500
    );
    assert_eq!(
        refused[&("alertmanager".into(), "missing_token".into())],
        30
    );
    let written = w.audit.head_seq().await - before;
    // One record per (source, reason, minute): 2, or 4 if the minute turned meanwhile.
    assert!(
        (2..=4).contains(&written),
        "{written} records for 530 refusals"
    );
    // The records chain like any other.
    assert!(w.audit.verify().await.unwrap().problems.is_empty());
}

async fn request_view_admits_operators_and_the_maker(w: &World) {
    let signup = w.token("webhook:signup").await;
    let (_, _, answer) = w
        .send(w.signed(
            "signup",
            &signup,
            "v-1",
            r#"{"subdomain":"a","plan":"small"}"#,
        ))
        .await;
    let id = answer["request_id"].as_str().unwrap();
    let get = |token: &str, id: &str| {
        Request::get(format!("/v1/requests/{id}"))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let (s, _, view) = w.send(get(&signup, id)).await;
    assert_eq!(s, StatusCode::OK, "the maker sees its request: {view}");
    assert_eq!(view["request_id"], id);
    let op = w.token("operator:alice").await;
    let (s, _, view) = w.send(get(&op, id)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(view["events"], 1);
    let other = w.token("webhook:notes").await;
    let (s, _, body) = w.send(get(&other, id)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, _, body) = w.send(get(&op, "no-such-request")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["kind"], "not_found");
    let (s, _, _) = w.send(get(&signup, "no-such-request")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = w
        .send(
            Request::get(format!("/v1/requests/{id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn engine_failure_is_503_and_the_delivery_is_not_remembered(w: &World) {
    let token = w.token("webhook:signup").await;
    w.triggers.fail.store(true, Ordering::SeqCst);
    let (s, _, body) = w
        .send(w.signed(
            "signup",
            &token,
            "retry-me",
            r#"{"subdomain":"a","plan":"small"}"#,
        ))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["kind"], "unavailable");
    // No internals leak: the engine's own message is not shown.
    assert!(!body.to_string().contains("test"), "{body}");
    w.triggers.fail.store(false, Ordering::SeqCst);
    let (s, h, _) = w
        .send(w.signed(
            "signup",
            &token,
            "retry-me",
            r#"{"subdomain":"a","plan":"small"}"#,
        ))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert!(
        h.get("steward-replayed").is_none(),
        "the sender's retry runs"
    );
    assert_eq!(w.triggers.count(), 1);
}

async fn concurrent_requests_share_commits(w: &World) {
    let token = w.token("webhook:signup").await;
    let reqs: Vec<_> = (0..300)
        .map(|i| {
            w.signed(
                "signup",
                &token,
                &format!("c-{i}"),
                r#"{"subdomain":"a","plan":"small"}"#,
            )
        })
        .collect();
    let answers = futures_util::future::join_all(reqs.into_iter().map(|r| w.send(r))).await;
    assert!(answers.iter().all(|(s, _, _)| *s == StatusCode::ACCEPTED));
    assert_eq!(w.triggers.count(), 300);
    let batches = w.triggers.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), 300);
    assert!(
        batches.len() < 300,
        "requests were committed one by one: {batches:?}"
    );
}
