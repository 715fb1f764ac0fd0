//! Every protocol type survives a JSON round trip unchanged, and its wire shape is the one
//! documented (tags and snake_case names are part of the contract with outside clients).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use serde::{de::DeserializeOwned, Serialize};
use serde_json::json;
use steward_protocol::*;

fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: &T,
) -> serde_json::Value {
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, value);
    serde_json::from_str(&text).unwrap()
}

fn call() -> ToolCall {
    ToolCall {
        id: CallId("c1".into()),
        tool: "service_restart".into(),
        args: json!({"service": "rentguy"}),
    }
}

#[test]
fn intent_text_and_call_roundtrip() {
    let text = Intent {
        id: IntentId("i1".into()),
        origin: Origin::Chat,
        actor: Actor::User { name: "ops".into() },
        body: IntentBody::Text {
            text: "rollback RentGuy to yesterday's state".into(),
        },
        received_at: Timestamp(1_700_000_000_000),
    };
    let wire = roundtrip(&text);
    assert_eq!(wire["origin"], "chat");
    assert_eq!(wire["actor"], json!({"kind": "user", "name": "ops"}));
    assert_eq!(wire["body"]["type"], "text");
    assert_eq!(wire["received_at"], 1_700_000_000_000i64);

    let typed = Intent {
        origin: Origin::Alert,
        actor: Actor::Service {
            name: "alertmanager".into(),
        },
        body: IntentBody::Call { call: call() },
        ..text
    };
    let wire = roundtrip(&typed);
    assert_eq!(wire["body"]["call"]["tool"], "service_restart");
}

#[test]
fn untrusted_origins_are_exactly_the_outside_ones() {
    let untrusted: Vec<Origin> = [
        Origin::Chat,
        Origin::Webhook,
        Origin::Alert,
        Origin::Monitor,
        Origin::Mcp,
        Origin::Api,
        Origin::Schedule,
    ]
    .into_iter()
    .filter(|o| o.is_untrusted())
    .collect();
    assert_eq!(
        untrusted,
        vec![Origin::Webhook, Origin::Alert, Origin::Monitor, Origin::Mcp]
    );
}

#[test]
fn tool_result_roundtrip() {
    let ok = ToolResult {
        call_id: CallId("c1".into()),
        tool: "service_status".into(),
        dry_run: false,
        summary: "rentguy is healthy".into(),
        outcome: ToolOutcome::Ok {
            output: json!({"health": "healthy"}),
        },
        started_at: Timestamp(1),
        finished_at: Timestamp(2),
    };
    assert_eq!(roundtrip(&ok)["outcome"]["status"], "ok");
    let err = ToolResult {
        outcome: ToolOutcome::Error {
            message: "no such service".into(),
        },
        ..ok
    };
    assert_eq!(roundtrip(&err)["outcome"]["message"], "no such service");
}

#[test]
fn decisions_roundtrip() {
    let ids = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    for d in [
        Decision::Allow {
            policies: ids(&["operators-read"]),
        },
        Decision::NeedsApproval {
            policies: ids(&["operators-write", "destructive-needs-approval"]),
            reason: "restart".into(),
        },
        Decision::Deny {
            policies: vec![],
            reason: "no policy permits it".into(),
        },
    ] {
        roundtrip(&d);
    }
    let d = Decision::NeedsApproval {
        policies: ids(&["p"]),
        reason: "r".into(),
    };
    let wire = roundtrip(&d);
    assert_eq!(wire["decision"], "needs_approval");
    assert_eq!(wire["policies"], json!(["p"]));
    assert_eq!(d.policies(), ["p"]);
    assert!(Decision::Allow { policies: vec![] }.is_allow());
    assert!(!d.is_allow());
}

#[test]
fn approval_request_roundtrip() {
    let mut req = ApprovalRequest {
        id: "a1".into(),
        intent_id: IntentId("i1".into()),
        call: call(),
        reason: "writes need a human".into(),
        dry_run: Some("restart container rentguy-r3".into()),
        requested_by: Actor::User { name: "ops".into() },
        requested_at: Timestamp(10),
        expires_at: Timestamp(20),
        status: ApprovalStatus::Pending,
    };
    roundtrip(&req);
    req.status = ApprovalStatus::Rejected {
        by: Actor::User {
            name: "lead".into(),
        },
        at: Timestamp(15),
        reason: Some("not now".into()),
    };
    assert_eq!(roundtrip(&req)["status"]["state"], "rejected");
    req.status = ApprovalStatus::Expired;
    roundtrip(&req);
}

#[test]
fn audit_record_roundtrip() {
    let rec = AuditRecord {
        seq: 7,
        prev_hash: "00".repeat(32),
        hash: "ab".repeat(32),
        entry: AuditEntry {
            at: Timestamp(5),
            kind: Some(AuditKind::ExecBegin),
            intent_id: Some(IntentId("i1".into())),
            actor: Some(Actor::User { name: "ops".into() }),
            origin: Some(Origin::Chat),
            tool: Some("service_restart".into()),
            args: Some(json!({"service": "rentguy"})),
            decision: Some(Decision::Allow {
                policies: vec!["operators-write".into()],
            }),
            ..Default::default()
        },
    };
    let wire = roundtrip(&rec);
    assert_eq!(wire["kind"], "exec_begin");
    assert_eq!(wire["seq"], 7);
    assert!(wire.get("outcome").is_none());
}

#[test]
fn unknown_origin_is_rejected() {
    let err = serde_json::from_value::<Origin>(json!("email")).unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
}
