//! The schedule source on a fake platform with the real engine, policies, state store and
//! audit log: a slot missed while Steward was down runs once per database at start, each
//! verification takes the backup id from the step before it, a failed one pages, and a run
//! recorded but never finished runs again as the next attempt.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod trigger_world;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use steward_agent::incidents::{Incident, IncidentStatus};
use steward_agent::triggers::schedule::{Run, ScheduleHost, Scheduler};
use steward_audit::{on_pool, sql_for};
use steward_policy::rules::Rulebook;
use steward_policy::PolicySet;
use steward_tools::{Clock, SystemClock};
use trigger_world::*;

/// Lists three databases and remembers how each run ended.
#[derive(Debug, Default)]
struct Host {
    finished: Mutex<Vec<(Run, IncidentStatus)>>,
}

#[async_trait]
impl ScheduleHost for Host {
    async fn expand(&self, for_each: &str) -> Result<Vec<String>, String> {
        assert_eq!(for_each, "database");
        Ok(vec!["acme".into(), "globex".into(), "corrupt".into()])
    }

    async fn finished(&self, run: &Run, incident: &Incident) {
        self.finished
            .lock()
            .unwrap()
            .push((run.clone(), incident.status));
    }
}

impl Host {
    async fn wait_for(&self, n: usize) -> Vec<(Run, IncidentStatus)> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let done = self.finished.lock().unwrap().clone();
            if done.len() >= n {
                let mut done = done;
                done.sort_by(|a, b| a.0.target.cmp(&b.0.target));
                return done;
            }
            assert!(Instant::now() < deadline, "{done:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const RULES: &str = r#"
[[rule]]
id = "nightly-backup"
on = "schedule:30 2 * * *"
timezone = "UTC"
for_each = "database"

[[rule.step]]
tool = "db_backup"
args = { target = "{target}" }

[[rule.step]]
tool = "db_verify_backup"
args = { backup = "{previous:/backup}" }

[[rule.example]]
event = { source = "schedule", name = "nightly-backup", labels = { target = "acme" } }
steps = ["db_backup", "db_verify_backup"]
decisions = ["allow"]
"#;

fn rulebook(w: &World) -> Rulebook {
    let dir = w.dir.join("rules");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("backups.toml"), RULES).unwrap();
    let policies = PolicySet::load_dir(&repo().join("policies")).unwrap();
    Rulebook::load_dir(&dir, &policies).unwrap()
}

/// Inserts a `schedule_runs` row as a previous process would have.
async fn recorded(w: &World, slot_ms: i64, target: &str, attempt: i64) {
    let store = w.store().await;
    let sql = sql_for(
        &store,
        "INSERT INTO schedule_runs (rule, slot_ms, target, attempt, started_ms) \
         VALUES ('nightly-backup', $1, $2, $3, $1)",
    );
    on_pool!(&store, pool => {
        sqlx::query(&sql)
            .bind(slot_ms)
            .bind(target)
            .bind(attempt)
            .execute(pool)
            .await
            .unwrap();
    });
}

const DAY_MS: i64 = 24 * 3600 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_night_runs_once_per_database_and_each_verify_takes_its_backup_id() {
    let w = World::new(&[]).await;
    let o = w.orchestrator().await;
    let engine = w.engine(&o, rulebook(&w)).await;
    let now = SystemClock.now().0;
    recorded(&w, now - 2 * DAY_MS, "", 0).await;
    let host = Arc::new(Host::default());
    let task = tokio::spawn(
        Scheduler::new(
            engine.clone(),
            w.store().await,
            Arc::new(SystemClock),
            host.clone(),
        )
        .run(),
    );
    let done = host.wait_for(3).await;
    let got: Vec<(Option<&str>, i64, IncidentStatus)> = done
        .iter()
        .map(|(r, s)| (r.target.as_deref(), r.attempt, *s))
        .collect();
    assert_eq!(
        got,
        [
            (Some("acme"), 1, IncidentStatus::Resolved),
            (Some("corrupt"), 1, IncidentStatus::Failed),
            (Some("globex"), 1, IncidentStatus::Resolved),
        ],
        "two nights missed, one run per database"
    );
    // One slot for all three: the latest missed 02:30 UTC.
    let slot = done[0].0.slot;
    assert!(done.iter().all(|(r, _)| r.slot == slot));
    assert!(slot.0 <= now && slot.0 > now - DAY_MS, "{slot:?}");
    // The verification got the id the backup step returned.
    for db in ["acme", "globex", "corrupt"] {
        assert_eq!(w.fake.runs("db_backup", db), 1, "{db}");
        let id = format!("{db}-20261201T023000000Z");
        assert_eq!(w.fake.runs("db_verify_backup", &id), 1, "{db}");
    }
    w.told(|n| n.starts_with("critical") && n.contains("db_verify_backup"))
        .await;
    task.abort();
    w.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_recorded_but_never_finished_runs_again_as_the_next_attempt() {
    let w = World::new(&[]).await;
    let o = w.orchestrator().await;
    let engine = w.engine(&o, rulebook(&w)).await;
    let now = SystemClock.now().0;
    // Last night's run of acme was recorded, then Steward died before submitting it; the
    // watch marker says nothing else was missed.
    recorded(&w, now - 3600 * 1000, "acme", 1).await;
    recorded(&w, now - 1000, "", 0).await;
    let host = Arc::new(Host::default());
    let task = tokio::spawn(
        Scheduler::new(engine, w.store().await, Arc::new(SystemClock), host.clone()).run(),
    );
    let done = host.wait_for(1).await;
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0].0.target.as_deref(), Some("acme"));
    assert_eq!(done[0].0.attempt, 2);
    assert_eq!(done[0].1, IncidentStatus::Resolved);
    assert_eq!(w.fake.runs("db_backup", "acme"), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(host.finished.lock().unwrap().len(), 1, "nothing else runs");
    task.abort();
    w.cleanup().await;
}
