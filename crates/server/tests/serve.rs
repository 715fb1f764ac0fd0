//! `serve` on a real socket (graceful shutdown, the drain, the final refusal flush), and the
//! store-backed parts (tokens, deliveries, request makers) on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[macro_use]
mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{chrono_now, World};
use steward_protocol::AuditKind;

both!(tokens_deliveries_and_makers_work_on_the_backend);
sqlite!(serve_answers_on_a_socket_then_drains_and_flushes);

async fn tokens_deliveries_and_makers_work_on_the_backend(w: &World) {
    let tokens = w.state.tokens();
    let a = tokens.create("webhook:signup", None).await.unwrap();
    let b = tokens.create("operator:alice", None).await.unwrap();
    assert!(a.token.starts_with("stw_") && a.token.len() == 68);
    assert!(
        tokens.create("nobody", None).await.is_err(),
        "a principal must be kind:id"
    );
    let body = r#"{"subdomain":"acme","plan":"small"}"#;
    let (s, _, first) = w.send(w.signed("signup", &a.token, "pg-1", body)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{first}");
    let (s, h, again) = w.send(w.signed("signup", &a.token, "pg-1", body)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(again, first);
    assert_eq!(h.get("steward-replayed").unwrap(), "true");
    assert_eq!(w.triggers.count(), 1);
    let id = first["request_id"].as_str().unwrap();
    let get = |token: &str| {
        axum::http::Request::get(format!("/v1/requests/{id}"))
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert_eq!(w.send(get(&a.token)).await.0, StatusCode::OK);
    assert_eq!(w.send(get(&b.token)).await.0, StatusCode::OK);
    let listed = tokens.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    tokens.revoke(&a.info.id).await.unwrap();
    assert!(matches!(
        tokens.revoke("tok_missing").await,
        Err(steward_server::Error::NoSuchToken(_))
    ));
    let (s, _, body) = w.send(get(&a.token)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let refused = w.refused().await;
    assert_eq!(refused[&("requests".into(), "revoked_token".into())], 1);
    assert_eq!(
        refused[&("hook:signup".into(), "replayed_delivery".into())],
        1
    );
}

async fn serve_answers_on_a_socket_then_drains_and_flushes(w: &World) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(steward_server::serve(
        listener,
        w.state.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let token = w.token("webhook:signup").await;
    let secret = w.secret("signup");
    let body = r#"{"subdomain":"acme","plan":"small"}"#;
    let sig = steward_server::hooks::sign(secret.as_bytes(), chrono_now(), body.as_bytes());
    let client = reqwest::Client::new();
    let res = client
        .post(format!("http://{addr}/hooks/signup"))
        .bearer_auth(&token)
        .header("steward-signature", &sig)
        .header("steward-delivery", "socket-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let answer: serde_json::Value = res.json().await.unwrap();
    assert!(answer["request_id"].is_string());
    let res = client
        .post(format!("http://{addr}/hooks/alertmanager"))
        .bearer_auth("stw_wrong")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns within the drain deadline")
        .unwrap()
        .unwrap();
    // The refusal was flushed at shutdown, without waiting for the minute to end.
    let records = w.audit.records(1, 1000).await.unwrap();
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.entry.kind == Some(AuditKind::Refused))
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0].entry.outcome.as_ref().unwrap()["refused"],
        "unknown_token"
    );
    // Nothing listens any more, and the intake refuses work after close.
    assert!(client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .is_err());
    let (s, _, body) = w.send(w.signed("signup", &token, "after", body)).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(w.triggers.count(), 1);
}
