//! The probe of issue 15, repeated through the real `steward` binary: approvals by unknown
//! principals, untrusted principals posing as the API, oversized input and withdrawals.
//! Each runs in a home of its own, and no call here gets past policy or approval, so nothing
//! on the platform changes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::*;
use serde_json::Value;

/// The audit records whose text contains `needle`, newest first.
fn audited(h: &TestHome, needle: &str) -> Vec<Value> {
    let out = h.run(&["audit", "search", needle, "--json", "--limit", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Value>(&stdout(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn an_unknown_operator_cannot_approve_and_the_attempt_is_audited() {
    let h = TestHome::new();
    let id = h.pending_destroy();
    let out = h.run(&["approve", &id, "--as", "operator:mallory"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown principal operator:mallory"),
        "{}",
        stderr(&out)
    );
    let listed = stdout(&h.run(&["approvals", "--all", "--json"]));
    let approvals: Value = serde_json::from_str(&listed).unwrap();
    let a = approvals
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id.as_str())
        .unwrap();
    assert_eq!(a["state"], "pending", "{a}");
    assert!(a["answered_by"].is_null(), "{a}");
    let refused: Vec<Value> = audited(&h, "mallory")
        .into_iter()
        .filter(|r| r["kind"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["approval"]["attempt"], "approve");
}

#[test]
fn webhook_and_mcp_principals_cannot_pose_as_the_api() {
    let h = TestHome::new();
    for (who, tool, args) in [
        ("webhook:n8n", "tenant_provision", "{\"subdomain\": \"x\"}"),
        (
            "mcp:claude-desktop",
            "service_restart",
            "{\"service\": \"psra\"}",
        ),
    ] {
        let out = h.run(&["call", tool, args, "--as", who, "--json"]);
        assert_eq!(out.status.code(), Some(3), "{who}: {}", stdout(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["status"], "refused", "{v}");
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("arrives only with origin"), "{message}");
    }
    // With its own origin, the webhook's write waits for a human instead of running.
    let out = h.run(&[
        "call",
        "tenant_provision",
        "{\"subdomain\": \"x\"}",
        "--as",
        "webhook:n8n",
        "--origin",
        "webhook",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["status"], "pending_approval", "{v}");
}

#[test]
fn a_proposer_withdraws_their_own_request() {
    let h = TestHome::new();
    let id = h.pending_destroy();
    let out = h.run(&["deny", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("withdrew {id}")),
        "{}",
        stdout(&out)
    );
    let again = h.run(&["approve", &id, "--as", "operator:alice"]);
    assert_eq!(again.status.code(), Some(3));
    assert!(
        stderr(&again).contains("already withdrawn"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_ten_megabyte_bill_of_materials_is_refused_small() {
    let h = TestHome::new();
    let file = h.dir.join("huge.json");
    let materials: Vec<String> = (0..120_000)
        .map(|i| format!("{{\"hs\":\"871491\",\"value\":{i},\"origin\":\"non-originating\",\"description\":\"part number {i:08}\"}}"))
        .collect();
    let body = format!(
        "{{\"agreement\":\"uk-eu-tca\",\"product\":{{\"hs\":\"871200\",\"exw\":200}},\"materials\":[{}]}}",
        materials.join(",")
    );
    assert!(body.len() > 10_000_000, "{}", body.len());
    std::fs::write(&file, &body).unwrap();
    let out = h.run(&["origin", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        out.stderr.len() < 4096,
        "stderr is {} bytes",
        out.stderr.len()
    );
    assert!(stderr(&out).contains("at most 1048576"), "{}", stderr(&out));
    // The store holds a digest of the input, not the input.
    let db = std::fs::metadata(h.state_db()).unwrap().len()
        + std::fs::metadata(h.dir.join("state.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    assert!(db < 2_000_000, "state store grew to {db} bytes");
    let refused: Vec<Value> = audited(&h, "origin_check")
        .into_iter()
        .filter(|r| r["kind"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["args"]["clipped"], true, "{}", refused[0]);
    assert!(
        refused[0]["args"]["bytes"].as_u64().unwrap() > 10_000_000,
        "{}",
        refused[0]
    );
    assert_eq!(refused[0]["args"]["sha256"].as_str().unwrap().len(), 64);
}
