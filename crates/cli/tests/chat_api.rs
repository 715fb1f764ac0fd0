//! Natural language over a real `steward serve`: `POST /v1/plan` proposes and dry-runs and
//! runs nothing; `POST /v1/chat/{session}/messages` streams a turn as Server-Sent Events and
//! keeps the session's history in the state store, for its own principal only. On the real
//! small model (SmolLM2-135M, loaded by serve on first use); accuracy is `steward eval`'s job.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::serve::*;
use common::*;
use serde_json::{json, Value};

/// The events of an SSE body, as (event, data).
fn events(body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut kind = String::new();
    for line in body.lines() {
        if let Some(k) = line.strip_prefix("event: ") {
            kind = k.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((kind.clone(), serde_json::from_str(d).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_runs_nothing_and_a_chat_turn_streams_and_is_kept_for_its_principal() {
    let home = TestHome::new();
    let local = create_token(&home, "operator:local");
    let alice = create_token(&home, "operator:alice");
    let (mut server, base) = start_serve_with(
        &home,
        &[
            ("STEWARD_MONITOR", "off"),
            ("STEWARD_PLANNER_MODEL", "smollm2-135m-instruct-q4_1"),
        ],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &base, &mut server).await;

    // /v1/plan: events, never an executed call.
    let r = client
        .post(format!("{base}/v1/plan"))
        .bearer_auth(&local)
        .json(&json!({"text": "restart rentguy please"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", serve_log(&home));
    let plan: Value = r.json().await.unwrap();
    let shown = plan["events"].as_array().unwrap();
    assert_eq!(shown[0]["event"], "proposed", "{plan:#}");
    for e in shown {
        assert_ne!(e["status"], "done", "plan executed something: {plan:#}");
    }
    let r = client
        .post(format!("{base}/v1/plan"))
        .bearer_auth(&local)
        .json(&json!({"text": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "text", "{body}");

    // A chat turn, streamed.
    let session = format!("s-{}", unique());
    let url = format!("{base}/v1/chat/{session}/messages");
    let r = client
        .post(&url)
        .bearer_auth(&local)
        .json(&json!({"text": "which services are running?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let first = events(&r.text().await.unwrap());
    let kinds: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    // An answer's tokens stream while the model writes them, before its step is complete.
    let steps: Vec<&str> = kinds.iter().copied().filter(|k| *k != "token").collect();
    assert_eq!(steps.first(), Some(&"proposed"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"done"), "{kinds:?}");
    for (kind, data) in &first {
        match kind.as_str() {
            "result" | "approval" => assert!(data["status"].is_string(), "{data}"),
            "answer" => assert!(!data["text"].as_str().unwrap().trim().is_empty()),
            "token" => assert!(data["text"].is_string()),
            "proposed" => assert!(data["tool"].is_string()),
            "invalid" | "done" | "budget_spent" => {}
            other => panic!("unexpected event {other}: {data}"),
        }
    }

    // The session is kept: its history is in the state store, and it is local's alone.
    let r = client
        .post(&url)
        .bearer_auth(&alice)
        .json(&json!({"text": "and now?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(format!("{base}/v1/chat/bad%20id/messages"))
        .bearer_auth(&local)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let db = home.state_db();
    let turns: String = {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let row: (String,) = sqlx::query_as("SELECT turns FROM chat_sessions WHERE id = ?")
            .bind(&session)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        row.0
    };
    let turns: Vec<Value> = serde_json::from_str(&turns).unwrap();
    assert_eq!(turns[0]["role"], "user", "{turns:?}");
    assert_eq!(turns[0]["text"], "which services are running?");
    assert!(turns.len() >= 2, "{turns:?}");
    stop_serve(server, &home).await;
}
