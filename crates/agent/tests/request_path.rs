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
        let store = Store::open(&self.url).await.unwrap();
        Orchestrator::start(
            Registry::new([self.recorder.clone() as Arc<dyn Executor>]),
            PolicySet::load_dir(&repo().join("policies")).unwrap(),
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
    assert!(o.approve(&approval.id, &admin, None).await.is_err());

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
