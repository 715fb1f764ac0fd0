//! The one request path, end to end, with the shipped policies, a real state store (SQLite
//! in a temp dir) and the real audit log. The executor here is a recording stand-in: these
//! tests are about the path around executors (the executors themselves are tested against
//! real Docker, PostgreSQL and Traefik in steward-exec).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use steward_agent::approvals::{ApprovalState, ApprovalStore};
use steward_agent::{Orchestrator, Outcome, Request, Settings};
use steward_audit::{AuditLog, Store};
use steward_policy::{Guards, PolicySet, Principal};
use steward_protocol::{AuditEntry, AuditKind, Origin, Timestamp};
use steward_tools::{Call, Clock, Done, Executor, ManualClock, Plan, Registry};

/// Records how often each tool really ran.
#[derive(Debug, Default)]
struct Recorder {
    runs: AtomicUsize,
}

#[async_trait::async_trait]
impl Executor for Recorder {
    fn tools(&self) -> &'static [&'static str] {
        &[
            "service_status",
            "service_restart",
            "tenant_destroy",
            "tenant_provision",
            "service_rollback",
        ]
    }

    async fn dry_run(&self, call: &Call) -> steward_tools::Result<Plan> {
        Ok(Plan {
            summary: format!("{} {}", call.tool(), call.args_json()),
            steps: vec!["step".into()],
            changes: call.spec().effect != steward_tools::Effect::Read,
        })
    }

    async fn execute(&self, call: &Call) -> steward_tools::Result<Done> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(Done {
            summary: format!("ran {}", call.tool()),
            output: json!({"password": "hunter2-secret"}),
            changed: true,
        })
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct World {
    dir: PathBuf,
    recorder: Arc<Recorder>,
    clock: Arc<ManualClock>,
    url: String,
}

impl World {
    fn new() -> World {
        let dir =
            std::env::temp_dir().join(format!("steward-path-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        World {
            url: format!("sqlite://{}", dir.join("state.db").display()),
            dir,
            recorder: Arc::new(Recorder::default()),
            // 2026-11-23T12:00:00Z
            clock: Arc::new(ManualClock::new(Timestamp(1_795_435_200_000))),
        }
    }

    async fn audit(&self) -> Arc<AuditLog> {
        Arc::new(
            AuditLog::open(&self.url, &self.dir.join("audit"))
                .await
                .unwrap(),
        )
    }

    async fn orchestrator_with(&self, guards: Guards) -> Orchestrator {
        self.orchestrator_on(guards, &repo().join("policies")).await
    }

    async fn orchestrator_on(&self, guards: Guards, policies: &Path) -> Orchestrator {
        let store = Store::open(&self.url).await.unwrap();
        Orchestrator::start(
            Registry::new([self.recorder.clone() as Arc<dyn Executor>]),
            PolicySet::load_dir(policies).unwrap(),
            guards,
            self.audit().await,
            ApprovalStore::new(store),
            self.clock.clone() as Arc<dyn Clock>,
            Settings {
                approval_ttl_ms: 60_000,
            },
        )
        .await
        .unwrap()
    }

    async fn orchestrator(&self) -> Orchestrator {
        self.orchestrator_with(Guards::defaults()).await
    }

    fn runs(&self) -> usize {
        self.recorder.runs.load(Ordering::SeqCst)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn req(principal: &str, origin: Origin, tool: &str, args: serde_json::Value) -> Request {
    Request {
        principal: Principal::parse(principal).unwrap(),
        origin,
        intent_text: None,
        untrusted_text: false,
        tool: tool.into(),
        args,
        dry_run_only: false,
    }
}

async fn kinds(audit: &AuditLog) -> Vec<AuditKind> {
    audit
        .records(1, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.entry.kind)
        .collect()
}

#[tokio::test]
async fn an_allowed_read_runs_and_is_bracketed_in_the_audit_log() {
    let w = World::new();
    let o = w.orchestrator().await;
    let out = o
        .handle(req(
            "operator:local",
            Origin::Api,
            "service_status",
            json!({"service": "rentguy"}),
        ))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(w.runs(), 1);
    assert_eq!(
        kinds(o.audit()).await,
        [AuditKind::ExecBegin, AuditKind::ExecEnd]
    );
    let end = o.audit().records(2, 1).await.unwrap().remove(0);
    assert_eq!(end.entry.refers_to, Some(1));
    // The executor's output held a password: it never reaches the record.
    let raw = serde_json::to_string(&end).unwrap();
    assert!(!raw.contains("hunter2-secret"), "{raw}");
    assert!(o.audit().verify().await.unwrap().ok);
}

#[tokio::test]
async fn refusals_are_audited_and_nothing_runs() {
    let w = World::new();
    let o = w.orchestrator().await;
    let cases = [
        // unknown principal: default deny
        req(
            "operator:mallory",
            Origin::Api,
            "service_restart",
            json!({"service": "rentguy"}),
        ),
        // invalid arguments
        req(
            "operator:local",
            Origin::Api,
            "service_restart",
            json!({"service": "x; DROP"}),
        ),
        // unknown tool
        req("operator:local", Origin::Api, "rm_rf", json!({})),
    ];
    for r in cases {
        let out = o.handle(r).await.unwrap();
        assert!(matches!(out, Outcome::Refused { .. }), "{out:?}");
    }
    assert_eq!(w.runs(), 0);
    assert_eq!(kinds(o.audit()).await, [AuditKind::Refused; 3]);
}

#[tokio::test]
async fn destructive_calls_wait_for_another_operator_and_are_bound_to_their_args() {
    let w = World::new();
    let o = w.orchestrator().await;
    let out = o
        .handle(req(
            "operator:local",
            Origin::Chat,
            "tenant_destroy",
            json!({"tenant": "acme"}),
        ))
        .await
        .unwrap();
    let Outcome::PendingApproval { approval, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(w.runs(), 0);
    assert_eq!(
        approval.plan["summary"],
        "tenant_destroy {\"tenant\":\"acme\"}"
    );

    // The proposer cannot approve their own call.
    let admin = Principal::parse("operator:local").unwrap();
    let err = o.approve(&approval.id, &admin, None).await.unwrap_err();
    assert!(err.to_string().contains("cannot approve it"), "{err}");

    // Approvals survive a restart; tampering with the stored arguments breaks the binding.
    drop(o);
    let store = Store::open(&w.url).await.unwrap();
    if let Store::Sqlite(pool) = &store {
        sqlx::query("UPDATE approvals SET args = '{\"tenant\":\"other\"}' WHERE id = ?1")
            .bind(&approval.id)
            .execute(pool)
            .await
            .unwrap();
    }
    let o = w.orchestrator().await;
    let second = Principal::parse("operator:alice").unwrap();
    let err = o.approve(&approval.id, &second, None).await.unwrap_err();
    assert!(
        err.to_string().contains("bound to other arguments"),
        "{err}"
    );
    assert_eq!(w.runs(), 0);

    // A fresh proposal, approved by a second operator, runs once.
    let out = o
        .handle(req(
            "operator:local",
            Origin::Chat,
            "tenant_destroy",
            json!({"tenant": "acme"}),
        ))
        .await
        .unwrap();
    let Outcome::PendingApproval { approval, .. } = out else {
        panic!("{out:?}")
    };
    let out = o
        .approve(&approval.id, &second, Some("planned"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(w.runs(), 1);
    assert_eq!(
        o.approvals().get(&approval.id).await.unwrap().state,
        ApprovalState::Executed
    );
    // Answered once only.
    assert!(o.approve(&approval.id, &second, None).await.is_err());
    assert_eq!(w.runs(), 1);
}

#[tokio::test]
async fn expired_approvals_never_run() {
    let w = World::new();
    let o = w.orchestrator().await;
    let out = o
        .handle(req(
            "operator:local",
            Origin::Chat,
            "tenant_destroy",
            json!({"tenant": "acme"}),
        ))
        .await
        .unwrap();
    let Outcome::PendingApproval { approval, .. } = out else {
        panic!("{out:?}")
    };
    w.clock.advance_ms(60_001);
    let second = Principal::parse("operator:alice").unwrap();
    let err = o.approve(&approval.id, &second, None).await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    assert_eq!(
        o.approvals().get(&approval.id).await.unwrap().state,
        ApprovalState::Expired
    );
    assert_eq!(w.runs(), 0);
}

#[tokio::test]
async fn writes_from_untrusted_origins_need_a_human() {
    let w = World::new();
    let o = w.orchestrator().await;
    let mut r = req(
        "operator:local",
        Origin::Chat,
        "service_restart",
        json!({"service": "rentguy"}),
    );
    r.untrusted_text = true;
    let out = o.handle(r).await.unwrap();
    assert!(matches!(out, Outcome::PendingApproval { .. }), "{out:?}");
    assert_eq!(w.runs(), 0);
}

#[tokio::test]
async fn a_crash_between_execute_and_audit_end_is_reconciled_at_start_up() {
    let w = World::new();
    let audit = w.audit().await;
    let begin = audit
        .append(AuditEntry {
            at: w.clock.now(),
            kind: Some(AuditKind::ExecBegin),
            tool: Some("service_restart".into()),
            args: Some(json!({"service": "rentguy"})),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.open_begins().await.unwrap().len(), 1);
    drop(audit);
    let o = w.orchestrator().await;
    assert!(o.audit().open_begins().await.unwrap().is_empty());
    let last = o.audit().records(begin.seq + 1, 1).await.unwrap().remove(0);
    assert_eq!(last.entry.kind, Some(AuditKind::Reconciled));
    assert_eq!(last.entry.refers_to, Some(begin.seq));
}

#[tokio::test]
async fn a_guard_trips_under_a_burst() {
    let w = World::new();
    let path = w.dir.join("guards.toml");
    std::fs::write(&path, "[rate_limit]\nwindow_secs = 60\nper_principal = 5\n").unwrap();
    let o = w.orchestrator_with(Guards::load(&path).unwrap()).await;
    let mut refused = 0;
    for _ in 0..8 {
        let out = o
            .handle(req(
                "operator:local",
                Origin::Api,
                "service_restart",
                json!({"service": "rentguy"}),
            ))
            .await
            .unwrap();
        if let Outcome::Refused { stage, .. } = &out {
            assert_eq!(*stage, "guard");
            refused += 1;
        }
    }
    assert_eq!(refused, 3);
    assert_eq!(w.runs(), 5);
}

/// Proposes `tool args` as `principal` and returns the pending approval's id.
async fn propose(
    o: &Orchestrator,
    principal: &str,
    origin: Origin,
    tool: &str,
    args: serde_json::Value,
) -> String {
    match o.handle(req(principal, origin, tool, args)).await.unwrap() {
        Outcome::PendingApproval { approval, .. } => approval.id,
        other => panic!("expected a pending approval, got {other:?}"),
    }
}

/// Proposes destroying `tenant` as `principal` from chat; returns the pending approval's id.
async fn destroy(o: &Orchestrator, principal: &str, tenant: &str) -> String {
    propose(
        o,
        principal,
        Origin::Chat,
        "tenant_destroy",
        json!({"tenant": tenant}),
    )
    .await
}

fn who(p: &str) -> Principal {
    Principal::parse(p).unwrap()
}

/// The refused-answer records in the log: (attempt, by, message).
async fn refused_answers(audit: &AuditLog) -> Vec<(String, String, String)> {
    audit
        .records(1, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.entry.kind == Some(AuditKind::Refused))
        .filter_map(|r| {
            let a = r.entry.approval?;
            Some((
                a["attempt"].as_str()?.to_string(),
                a["by"].as_str()?.to_string(),
                r.entry.outcome?["message"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[tokio::test]
async fn an_unknown_or_non_operator_principal_cannot_approve_and_each_attempt_is_audited() {
    let w = World::new();
    let o = w.orchestrator().await;
    let id = destroy(&o, "operator:local", "acme").await;
    for p in [
        "operator:mallory",
        "webhook:n8n",
        "mcp:claude-desktop",
        "role:oncall",
        "alert_rule:container-unhealthy",
    ] {
        let err = o.approve(&id, &who(p), None).await.unwrap_err();
        assert!(
            matches!(err, steward_agent::Error::Refused(_)),
            "{p}: {err:?}"
        );
        assert!(err.to_string().contains("may not approve"), "{p}: {err}");
    }
    // mallory may not deny someone else's request either.
    assert!(o.deny(&id, &who("operator:mallory"), None).await.is_err());
    assert_eq!(w.runs(), 0);
    let a = o.approvals().get(&id).await.unwrap();
    assert_eq!(a.state, ApprovalState::Pending);
    assert_eq!(a.answered_by, None);
    let refused = refused_answers(o.audit()).await;
    assert_eq!(refused.len(), 6, "{refused:?}");
    assert_eq!(refused[0].0, "approve");
    assert_eq!(refused[0].1, "operator:mallory");
    assert!(refused[0].2.contains("unknown principal"), "{refused:?}");
    assert_eq!(refused[5].0, "deny");
    // A real operator still can.
    let out = o.approve(&id, &who("operator:alice"), None).await.unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(w.runs(), 1);
}

#[tokio::test]
async fn every_refused_answer_is_audited_unknown_ids_double_answers_and_self_approval() {
    let w = World::new();
    let o = w.orchestrator().await;
    let err = o
        .approve("ap-doesnotexist", &who("operator:alice"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no approval with id"), "{err}");
    let id = destroy(&o, "operator:local", "acme").await;
    let err = o
        .approve(&id, &who("operator:local"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot approve it"), "{err}");
    o.approve(&id, &who("operator:alice"), None).await.unwrap();
    let err = o
        .approve(&id, &who("operator:alice"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already executed"), "{err}");
    let err = o.deny(&id, &who("operator:alice"), None).await.unwrap_err();
    assert!(err.to_string().contains("already executed"), "{err}");
    let attempts: Vec<(String, String)> = refused_answers(o.audit())
        .await
        .into_iter()
        .map(|(attempt, by, _)| (attempt, by))
        .collect();
    let expect = [
        ("approve", "operator:alice"),
        ("approve", "operator:local"),
        ("approve", "operator:alice"),
        ("deny", "operator:alice"),
    ];
    assert_eq!(
        attempts,
        expect.map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(w.runs(), 1);
    assert!(o.audit().verify().await.unwrap().ok);
}

#[tokio::test]
async fn self_approval_runs_only_where_a_policy_permits_it() {
    let w = World::new();
    let dir = w.dir.join("policies");
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(repo().join("policies")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(
        dir.join("solo.cedar"),
        "// @example allow by solo-self-approval {\"principal\":\"operator:alice\",\"requester\":\"operator:alice\",\"tool\":\"tenant_destroy\",\"args\":{\"tenant\":\"acme\"}}\n\
         @id(\"solo-self-approval\")\n\
         permit (principal == Operator::\"alice\", action == Action::\"approve\", resource)\n\
         when { context.self_approval };\n",
    )
    .unwrap();
    let o = w.orchestrator_on(Guards::defaults(), &dir).await;
    let id = destroy(&o, "operator:alice", "acme").await;
    let out = o.approve(&id, &who("operator:alice"), None).await.unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    // Only that operator: local still cannot approve their own.
    let id = destroy(&o, "operator:local", "acme").await;
    assert!(o.approve(&id, &who("operator:local"), None).await.is_err());
    assert_eq!(w.runs(), 1);
}

#[tokio::test]
async fn trust_follows_the_principal_and_its_origin_must_fit() {
    let w = World::new();
    let o = w.orchestrator().await;
    // A webhook source or MCP client claiming another origin is refused outright.
    for (p, tool, args) in [
        (
            "webhook:n8n",
            "tenant_provision",
            json!({"subdomain": "shop"}),
        ),
        (
            "mcp:claude-desktop",
            "service_restart",
            json!({"service": "psra"}),
        ),
        (
            "alert_rule:rentguy-unhealthy",
            "service_restart",
            json!({"service": "rentguy"}),
        ),
    ] {
        for origin in [Origin::Api, Origin::Chat] {
            let out = o.handle(req(p, origin, tool, args.clone())).await.unwrap();
            let Outcome::Refused { stage, message, .. } = &out else {
                panic!("{p} via {origin:?}: {out:?}")
            };
            assert_eq!(*stage, "policy");
            assert!(message.contains("arrives only with origin"), "{message}");
        }
    }
    // With their own origin, their writes wait for a human.
    for (p, origin, tool, args) in [
        (
            "webhook:n8n",
            Origin::Webhook,
            "tenant_provision",
            json!({"subdomain": "shop"}),
        ),
        (
            "mcp:claude-desktop",
            Origin::Mcp,
            "service_restart",
            json!({"service": "psra"}),
        ),
    ] {
        let out = o.handle(req(p, origin, tool, args)).await.unwrap();
        assert!(
            matches!(out, Outcome::PendingApproval { .. }),
            "{p}: {out:?}"
        );
    }
    // An operator cannot pose as an untrusted channel either.
    let out = o
        .handle(req(
            "operator:local",
            Origin::Webhook,
            "service_restart",
            json!({"service": "psra"}),
        ))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Refused { .. }), "{out:?}");
    assert_eq!(w.runs(), 0);
}

#[tokio::test]
async fn a_rewritten_row_cannot_run_another_call_nor_can_a_copied_store() {
    let w = World::new();
    let o = w.orchestrator().await;
    let id = propose(
        &o,
        "webhook:n8n",
        Origin::Webhook,
        "tenant_provision",
        json!({"subdomain": "shop"}),
    )
    .await;
    drop(o);
    // Whoever can write the row swaps tool, arguments and the old-style hash together.
    let store = Store::open(&w.url).await.unwrap();
    let Store::Sqlite(pool) = &store else {
        panic!()
    };
    let forged_hash = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"service_start\0{\"service\":\"rentguy\"}");
        hex::encode(h.finalize())
    };
    sqlx::query("UPDATE approvals SET tool = 'service_restart', args = '{\"service\":\"rentguy\"}', args_hash = ?1 WHERE id = ?2")
        .bind(&forged_hash)
        .bind(&id)
        .execute(pool)
        .await
        .unwrap();
    let o = w.orchestrator().await;
    let err = o
        .approve(&id, &who("operator:alice"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("seal does not match"), "{err}");
    assert_eq!(w.runs(), 0);
    drop(o);

    // An untouched request in a copy of the store, under another home's key, does not run.
    let o = w.orchestrator().await;
    let id = destroy(&o, "operator:local", "acme").await;
    drop(o);
    let copy = World::new();
    // WAL mode: the newest rows may still be in the -wal file.
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        if w.dir.join(file).exists() {
            std::fs::copy(w.dir.join(file), copy.dir.join(file)).unwrap();
        }
    }
    let o = copy.orchestrator().await;
    let err = o
        .approve(&id, &who("operator:alice"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("seal does not match"), "{err}");
    assert_eq!(copy.runs(), 0);
    // In its own home it runs.
    let o = w.orchestrator().await;
    let out = o.approve(&id, &who("operator:alice"), None).await.unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
}

#[tokio::test]
async fn a_guard_refusal_leaves_the_approval_pending_and_answerable() {
    let w = World::new();
    let path = w.dir.join("guards.toml");
    std::fs::write(
        &path,
        "[rate_limit]\nwindow_secs = 10\n[rate_limit.tools]\ntenant_destroy = 1\n",
    )
    .unwrap();
    let o = w.orchestrator_with(Guards::load(&path).unwrap()).await;
    let first = destroy(&o, "operator:local", "acme").await;
    let second = destroy(&o, "operator:local", "globex").await;
    assert!(matches!(
        o.approve(&first, &who("operator:alice"), None)
            .await
            .unwrap(),
        Outcome::Done { .. }
    ));
    let out = o
        .approve(&second, &who("operator:alice"), None)
        .await
        .unwrap();
    let Outcome::Refused { stage, message, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(*stage, "guard");
    assert!(message.contains("stays pending"), "{message}");
    let a = o.approvals().get(&second).await.unwrap();
    assert_eq!(a.state, ApprovalState::Pending);
    assert_eq!(w.runs(), 1);
    // Once the window has passed, the same approval can be approved again and runs.
    w.clock.advance_ms(11_000);
    let out = o
        .approve(&second, &who("operator:alice"), None)
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
    assert_eq!(
        o.approvals().get(&second).await.unwrap().state,
        ApprovalState::Executed
    );
    assert_eq!(w.runs(), 2);
}

#[tokio::test]
async fn a_proposer_may_withdraw_their_own_request() {
    let w = World::new();
    let o = w.orchestrator().await;
    let id = destroy(&o, "operator:local", "acme").await;
    let a = o
        .deny(&id, &who("operator:local"), Some("wrong tenant"))
        .await
        .unwrap();
    assert_eq!(a.state, ApprovalState::Withdrawn);
    assert_eq!(a.answered_by.as_deref(), Some("operator:local"));
    let err = o
        .approve(&id, &who("operator:alice"), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already withdrawn"), "{err}");
    assert_eq!(w.runs(), 0);
}

#[tokio::test]
async fn expired_requests_are_expired_on_read() {
    let w = World::new();
    let o = w.orchestrator().await;
    let id = destroy(&o, "operator:local", "acme").await;
    assert_eq!(o.list_approvals(false).await.unwrap().len(), 1);
    w.clock.advance_ms(60_001);
    assert!(o.list_approvals(false).await.unwrap().is_empty());
    let all = o.list_approvals(true).await.unwrap();
    assert_eq!(all[0].id, id);
    assert_eq!(all[0].state, ApprovalState::Expired);
    let expiries = o
        .audit()
        .records(1, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.entry
                .approval
                .as_ref()
                .is_some_and(|a| a["state"] == "expired")
        })
        .count();
    assert_eq!(expiries, 1);
}

#[tokio::test]
async fn oversized_input_is_refused_at_the_door_and_the_record_keeps_a_digest() {
    let w = World::new();
    let o = w.orchestrator().await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let out = o
        .handle(req(
            "operator:local",
            Origin::Api,
            "notify",
            json!({"message": huge}),
        ))
        .await
        .unwrap();
    let Outcome::Refused { kind, message, .. } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(*kind, steward_tools::ErrorKind::InvalidArgs);
    assert!(message.contains("at most 1048576"), "{message}");
    // Under the door but invalid: the validation error may quote the input; it is clipped.
    let big = "y".repeat(300_000);
    let out = o
        .handle(req(
            "operator:local",
            Origin::Api,
            "service_restart",
            json!({"service": big}),
        ))
        .await
        .unwrap();
    let Outcome::Refused { message, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(message.len() <= 2100, "{}", message.len());
    for r in o.audit().records(1, 10).await.unwrap() {
        let raw = serde_json::to_string(&r).unwrap();
        assert!(
            raw.len() < 8 * 1024,
            "record {} is {} bytes",
            r.seq,
            raw.len()
        );
        let args = r.entry.args.unwrap();
        assert_eq!(args["clipped"], true, "{args}");
        assert_eq!(args["sha256"].as_str().unwrap().len(), 64);
    }
    assert_eq!(w.runs(), 0);
}
