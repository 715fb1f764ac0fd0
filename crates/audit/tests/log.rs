//! Redaction, open begins and reconcile, search and the index, concurrent appends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[macro_use]
mod common;

use std::sync::Arc;

use common::{contains, dump, entry, fill, read_tree, scoped, Place};
use serde_json::json;
use steward_audit::{AuditLog, AuditOptions, Backend, Store, INTERRUPTED};
use steward_protocol::{Actor, AuditEntry, AuditKind, Decision, IntentId, Origin, Timestamp};

both!(
    secrets_never_reach_store_index_or_checkpoint,
    open_begins_and_reconcile,
    live_executions_are_never_reconciled,
    begins_since_counts_recent_executions,
    search_by_tool_service_text_and_since,
    concurrent_appends_keep_a_valid_chain,
    two_writers_on_one_store,
);

// Each secret is one alphanumeric word, so the tokenizer would index it whole if it got in.
const PASSWORD: &str = "hunter2xyzzyplugh";
const TOKEN: &str = "tok3nfrobozzgnusto";
const URL_PW: &str = "s3cr3tbozbarrelzork";
const TEXT_PW: &str = "pw9rezrovspellquux";
const ENV_PW: &str = "envpw4yoinkfooblitz";

async fn secrets_never_reach_store_index_or_checkpoint(p: &Place) {
    let log = p.open().await;
    let e = AuditEntry {
        at: Timestamp(1_700_000_000_000),
        kind: Some(AuditKind::ExecEnd),
        actor: Some(Actor::User {
            name: "alice".into(),
        }),
        origin: Some(Origin::Chat),
        intent_text: Some(format!(
            "provision tenant acme with DATABASE_URL=postgres://tenant_user_7:{TEXT_PW}@db:5432/app"
        )),
        tool: Some("tenant_provision".into()),
        args: Some(json!({
            "subdomain": "acme",
            "db_password": PASSWORD,
            "env": [format!("POSTGRES_PASSWORD={ENV_PW}"), "PLAN=small"],
            "headers": {"Authorization": format!("Bearer {TOKEN}")},
        })),
        plan: Some(
            json!({"steps": [format!("connect postgres://admin:{URL_PW}@127.0.0.1/steward")]}),
        ),
        outcome: Some(json!({
            "error": format!("login failed for postgresql://tenant_user_7:{URL_PW}@db/app"),
            "log": format!("api_token={TOKEN}; password: {PASSWORD}"),
        })),
        decision: Some(Decision::Deny {
            policies: vec!["p1".into()],
            reason: format!("token {TOKEN} rejected: token={TOKEN}"),
        }),
        ..Default::default()
    };
    let rec = log.append(e).await.unwrap();
    fill(&log, 5).await; // positive control rows mention rentguy
    log.close().await.unwrap();

    let secrets = [PASSWORD, TOKEN, URL_PW, TEXT_PW, ENV_PW];
    let returned = serde_json::to_string(&rec).unwrap();
    let rows = dump(log.store()).await;
    assert!(
        rows.contains("tenant_user_7") && rows.contains("rentguy"),
        "{rows}"
    );
    let mut files = read_tree(&p.dir);
    if p.backend == Backend::Sqlite {
        files.extend(read_tree(&p.tmp)); // the database file and its WAL
    }
    if p.backend == Backend::Sqlite {
        assert!(contains(&files, "rentguy"), "the grep itself works");
    }
    for s in secrets {
        assert!(
            !returned.contains(s),
            "{s} in the returned record: {returned}"
        );
        assert!(!rows.contains(s), "{s} in the stored rows");
        assert!(
            !contains(&files, s),
            "{s} in the audit files or database file"
        );
        assert!(
            log.search(s, None, 10).await.unwrap().is_empty(),
            "{s} is searchable"
        );
    }
    assert!(returned.contains("[REDACTED]"));
    assert!(returned.contains("postgres://tenant_user_7:[REDACTED]@db:5432/app"));
    // What is not secret stays searchable.
    assert_eq!(log.search("acme", None, 10).await.unwrap().len(), 1);
    assert!(log.verify().await.unwrap().ok);
}

fn exec_entry(kind: AuditKind, n: i64, tool: &str, refers_to: Option<u64>) -> AuditEntry {
    AuditEntry {
        at: Timestamp(1_700_000_000_000 + n),
        kind: Some(kind),
        intent_id: Some(IntentId(format!("intent-{n}"))),
        actor: Some(Actor::Service {
            name: "alert:unhealthy".into(),
        }),
        origin: Some(Origin::Alert),
        tool: Some(tool.into()),
        args: Some(json!({"service": "rentguy"})),
        refers_to,
        ..Default::default()
    }
}

async fn open_begins_and_reconcile(p: &Place) {
    let log = p.open().await;
    let a = log
        .append(exec_entry(AuditKind::ExecBegin, 1, "service_restart", None))
        .await
        .unwrap();
    log.append(exec_entry(
        AuditKind::ExecEnd,
        2,
        "service_restart",
        Some(a.seq),
    ))
    .await
    .unwrap();
    let b = log
        .append(exec_entry(AuditKind::ExecBegin, 3, "service_deploy", None))
        .await
        .unwrap();
    log.append(exec_entry(AuditKind::Refused, 4, "db_restore", None))
        .await
        .unwrap();
    let c = log
        .append(exec_entry(AuditKind::ExecBegin, 5, "service_stop", None))
        .await
        .unwrap();

    let open: Vec<u64> = log
        .open_begins()
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(open, vec![b.seq, c.seq]);

    // A new process (after the crash) reconciles at start-up.
    drop(log);
    let log = p.open().await;
    common::wait_writable(&log).await;
    let now = Timestamp(1_800_000_000_000);
    let closed = log.reconcile(now).await.unwrap();
    assert_eq!(closed.len(), 2);
    for (r, begin) in closed.iter().zip([&b, &c]) {
        assert_eq!(r.entry.kind, Some(AuditKind::Reconciled));
        assert_eq!(r.entry.refers_to, Some(begin.seq));
        assert_eq!(r.entry.at, now);
        assert_eq!(r.entry.tool, begin.entry.tool);
        assert_eq!(r.entry.intent_id, begin.entry.intent_id);
        assert_eq!(r.entry.outcome, Some(json!(INTERRUPTED)));
    }
    assert!(log.open_begins().await.unwrap().is_empty());
    assert!(log.reconcile(now).await.unwrap().is_empty());
    assert!(log.verify().await.unwrap().ok);
    let found = log.search("kind:reconciled", None, 10).await.unwrap();
    assert_eq!(found.len(), 2);
}

/// Another process starting while this one executes must leave the open begin alone.
async fn live_executions_are_never_reconciled(p: &Place) {
    let log = p.open().await;
    let running = log.executing().await.unwrap();
    let begin = log
        .append(exec_entry(AuditKind::ExecBegin, 1, "service_deploy", None))
        .await
        .unwrap();
    let other = p.open().await; // a second process on the same store and audit dir
    let now = Timestamp(1_800_000_000_000);
    assert!(other.reconcile(now).await.unwrap().is_empty());
    assert_eq!(other.open_begins().await.unwrap().len(), 1);
    // Two executions may run at once: the lock is shared.
    let second = other.executing().await.unwrap();
    drop(second);
    assert!(other.reconcile(now).await.unwrap().is_empty());
    // Once it is over (here: the process died without writing exec_end), it is closed.
    drop(running);
    let closed = other.reconcile(now).await.unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].entry.refers_to, Some(begin.seq));
}

async fn begins_since_counts_recent_executions(p: &Place) {
    let log = p.open().await;
    for n in 0..5 {
        log.append(exec_entry(
            AuditKind::ExecBegin,
            n * 10,
            "service_restart",
            None,
        ))
        .await
        .unwrap();
        log.append(exec_entry(
            AuditKind::Refused,
            n * 10 + 1,
            "db_restore",
            None,
        ))
        .await
        .unwrap();
    }
    let since = |n: i64| Timestamp(1_700_000_000_000 + n);
    let at = |rs: Vec<steward_protocol::AuditRecord>| {
        rs.iter()
            .map(|r| r.entry.at.0 - 1_700_000_000_000)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        at(log.begins_since(since(-1)).await.unwrap()),
        vec![0, 10, 20, 30, 40]
    );
    assert_eq!(at(log.begins_since(since(20)).await.unwrap()), vec![30, 40]);
    assert!(log.begins_since(since(40)).await.unwrap().is_empty());
}

async fn search_by_tool_service_text_and_since(p: &Place) {
    let log = p.open().await;
    let base = 1_700_000_000_000;
    let mk = |n: i64, tool: &str, service: &str, text: Option<&str>| AuditEntry {
        at: Timestamp(base + n * 60_000),
        kind: Some(AuditKind::ExecEnd),
        actor: Some(Actor::User { name: "bob".into() }),
        origin: Some(Origin::Chat),
        intent_text: text.map(str::to_string),
        tool: Some(tool.into()),
        args: Some(json!({"service": service})),
        decision: Some(Decision::Allow {
            policies: vec!["operators-write".into()],
        }),
        outcome: Some(json!({"status": "healthy"})),
        ..Default::default()
    };
    log.append(mk(0, "service_restart", "rentguy", None))
        .await
        .unwrap();
    log.append(mk(1, "service_logs", "psra", Some("why is psra slow")))
        .await
        .unwrap();
    log.append(mk(
        2,
        "service_rollback",
        "rentguy",
        Some("rollback RentGuy to yesterday's state"),
    ))
    .await
    .unwrap();
    log.append(mk(3, "service_restart", "vps-manager", None))
        .await
        .unwrap();
    log.append(mk(4, "db_backup", "wpcs", None)).await.unwrap();

    let seqs =
        |rs: Vec<steward_protocol::AuditRecord>| rs.iter().map(|r| r.seq).collect::<Vec<_>>();
    // By exact tool name, and by a word of it; newest first.
    assert_eq!(
        seqs(log.search("tool:service_restart", None, 10).await.unwrap()),
        vec![4, 1]
    );
    assert_eq!(
        seqs(log.search("service_restart", None, 10).await.unwrap()),
        vec![4, 1]
    );
    assert_eq!(
        seqs(log.search("restart", None, 10).await.unwrap()),
        vec![4, 1]
    );
    // By service (args) and intent text, case-insensitively.
    assert_eq!(
        seqs(log.search("rentguy", None, 10).await.unwrap()),
        vec![3, 1]
    );
    assert_eq!(
        seqs(log.search("vps-manager", None, 10).await.unwrap()),
        vec![4]
    );
    assert_eq!(
        seqs(log.search("yesterday", None, 10).await.unwrap()),
        vec![3]
    );
    assert_eq!(
        seqs(log.search("restart rentguy", None, 10).await.unwrap()),
        vec![1]
    );
    // Decision policies, actor, origin, outcome.
    assert_eq!(
        log.search("operators-write", None, 10).await.unwrap().len(),
        5
    );
    assert_eq!(log.search("bob", None, 10).await.unwrap().len(), 5);
    assert_eq!(
        log.search("origin:chat healthy", None, 10)
            .await
            .unwrap()
            .len(),
        5
    );
    // since, limit, everything.
    let since = Some(Timestamp(base + 2 * 60_000));
    assert_eq!(
        seqs(log.search("rentguy", since, 10).await.unwrap()),
        vec![3]
    );
    assert_eq!(
        seqs(log.search("", since, 10).await.unwrap()),
        vec![5, 4, 3]
    );
    assert_eq!(seqs(log.search("*", None, 2).await.unwrap()), vec![5, 4]);
    // A malformed query still searches instead of failing.
    log.search("tool:(restart \"unclosed", None, 10)
        .await
        .unwrap();
    assert!(log
        .search("nothing-like-this", None, 10)
        .await
        .unwrap()
        .is_empty());

    // Rebuilding from the store gives the same answers.
    let before = seqs(log.search("rentguy OR psra", None, 10).await.unwrap());
    assert_eq!(log.rebuild_index().await.unwrap(), 5);
    assert_eq!(
        seqs(log.search("rentguy OR psra", None, 10).await.unwrap()),
        before
    );

    // A deleted index is rebuilt at open; a lagging one catches up.
    log.close().await.unwrap();
    drop(log);
    std::fs::remove_dir_all(p.dir.join("index")).unwrap();
    let log = p.open().await;
    common::wait_writable(&log).await;
    assert_eq!(
        seqs(log.search("rentguy OR psra", None, 10).await.unwrap()),
        before
    );
    assert_eq!(log.index_status(), (5, true));
}

async fn concurrent_appends_keep_a_valid_chain(p: &Place) {
    let log = p.open().await;
    let tasks: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    log.append(entry(t * 1000 + i)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.records, 400);
    assert_eq!(log.search("*", None, 1000).await.unwrap().len(), 400);
}

async fn two_writers_on_one_store(p: &Place) {
    // Two logs with their own head caches (as two processes would have) race for seqs:
    // the primary key turns the loser into a retry, never a fork.
    let a = p.open().await;
    let other_dir = p.tmp.join("audit-b");
    let b = AuditLog::with_store(
        steward_audit::Store::open(&p.url).await.unwrap(),
        &other_dir,
        AuditOptions::default(),
    )
    .await
    .unwrap();
    let (a2, b2) = (Arc::new(a.clone()), Arc::new(b.clone()));
    let ta = tokio::spawn(async move {
        for i in 0..100 {
            a2.append(entry(i)).await.unwrap();
        }
    });
    let tb = tokio::spawn(async move {
        for i in 0..100 {
            b2.append(entry(500 + i)).await.unwrap();
        }
    });
    ta.await.unwrap();
    tb.await.unwrap();
    let report = a.verify().await.unwrap();
    assert!(report.ok, "{report:#?}");
    assert_eq!(report.records, 200);
    // Each index also picks up the other's records from the store.
    assert_eq!(a.search("*", None, 1000).await.unwrap().len(), 200);
    assert_eq!(b.search("*", None, 1000).await.unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_process_on_the_same_dir_searches_read_only() {
    scoped(Backend::Sqlite, async |p| {
        let a = p.open().await;
        fill(&a, 20).await;
        a.search("*", None, 1).await.unwrap(); // commits
        let b = p.open().await;
        assert_eq!(b.index_status(), (20, false));
        assert_eq!(b.search("rentguy", None, 100).await.unwrap().len(), 5);
        assert!(b.rebuild_index().await.is_err());
        // b appends; a's index picks the records up from the store.
        fill(&b, 4).await;
        assert_eq!(a.search("*", None, 100).await.unwrap().len(), 24);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_key_is_private() {
    scoped(Backend::Sqlite, async |p| {
        let log = p.open().await;
        log.checkpoint().await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(p.dir.join("checkpoint.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    })
    .await;
}

/// Several processes opening one fresh SQLite store at once (parallel CLI calls on a new
/// machine) must each see it migrated, never fail on a half-shared migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_a_fresh_sqlite_store_all_migrate() {
    scoped(Backend::Sqlite, async |p| {
        let opens = (0..8).map(|_| {
            let url = p.url.clone();
            tokio::spawn(async move { Store::open(&url).await })
        });
        // The newest migration shipped: every open must have seen all of them applied.
        let latest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.split('_').next()?.parse::<i64>().ok()
            })
            .max()
            .unwrap();
        for open in opens.collect::<Vec<_>>() {
            let store = open.await.unwrap().unwrap();
            assert_eq!(store.schema_version().await.unwrap(), latest);
        }
    })
    .await;
}
