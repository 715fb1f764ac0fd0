//! Set-up of the trigger engine tests: the shipped policies, a real state store (SQLite in a
//! temp dir, or a scratch PostgreSQL database), the real audit log and inbox, and a fake
//! platform whose services heal (or not) after a restart.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_agent::approvals::ApprovalStore;
use steward_agent::inbox::{Inbox, NotifyExecutor};
use steward_agent::incidents::{Incident, IncidentStatus};
use steward_agent::triggers::{Engine, EngineSettings, Submission};
use steward_agent::{Orchestrator, Settings};
use steward_audit::{AuditLog, Store};
use steward_policy::rules::{Gate, Matcher, Rule, Rulebook, Step, Throttle, Until};
use steward_policy::{Guards, PolicySet};
use steward_protocol::{AuditKind, Event, EventSource, EventStatus, Timestamp};
use steward_tools::{
    Call, Clock, Done, ErrorKind, Executor, Plan, Registry, SystemClock, ToolError,
};

/// A platform stand-in. `heals`: services healthy once restarted. `wpcs` does not exist
/// (NotFound); `n8n` restarts slowly; `vps-manager`'s restart fails.
#[derive(Debug, Default)]
pub struct Fake {
    pub heals: HashSet<String>,
    pub restarted: Mutex<HashSet<String>>,
    /// Executions per `tool service`.
    pub runs: Mutex<HashMap<String, usize>>,
    /// When each execution began.
    pub began: Mutex<Vec<(String, Instant)>>,
    pub slow: Duration,
}

impl Fake {
    pub fn runs(&self, tool: &str, service: &str) -> usize {
        *self
            .runs
            .lock()
            .unwrap()
            .get(&format!("{tool} {service}"))
            .unwrap_or(&0)
    }

    pub fn total(&self) -> usize {
        self.runs.lock().unwrap().values().sum()
    }
}

fn target(call: &Call) -> String {
    let a = call.args_json();
    a["service"]
        .as_str()
        .or(a["subdomain"].as_str())
        .or(a["target"].as_str())
        .or(a["backup"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[async_trait::async_trait]
impl Executor for Fake {
    fn tools(&self) -> &'static [&'static str] {
        &[
            "service_status",
            "service_restart",
            "tenant_check_subdomain",
            "tenant_provision",
            "db_backup",
            "db_verify_backup",
        ]
    }

    async fn dry_run(&self, call: &Call) -> steward_tools::Result<Plan> {
        if target(call) == "wpcs" {
            return Err(ToolError::new(ErrorKind::NotFound, "no service named wpcs"));
        }
        Ok(Plan {
            summary: format!("{} {}", call.tool(), call.args_json()),
            steps: vec!["step".into()],
            changes: call.spec().effect != steward_tools::Effect::Read,
        })
    }

    async fn execute(&self, call: &Call) -> steward_tools::Result<Done> {
        let service = target(call);
        if service == "wpcs" {
            return Err(ToolError::new(ErrorKind::NotFound, "no service named wpcs"));
        }
        *self
            .runs
            .lock()
            .unwrap()
            .entry(format!("{} {service}", call.tool()))
            .or_default() += 1;
        self.began
            .lock()
            .unwrap()
            .push((call.tool().to_string(), Instant::now()));
        match call.tool() {
            "service_restart" => {
                if service == "n8n" {
                    tokio::time::sleep(self.slow).await;
                }
                if service == "vps-manager" {
                    return Err(ToolError::new(
                        ErrorKind::Failed,
                        "the container would not start",
                    ));
                }
                self.restarted.lock().unwrap().insert(service.clone());
                Ok(done("restarted", json!({"service": service})))
            }
            "service_status" => {
                let healthy = self.heals.contains(&service)
                    && self.restarted.lock().unwrap().contains(&service);
                let health = if healthy { "healthy" } else { "unhealthy" };
                Ok(done(
                    health,
                    json!({"service": service, "live": {"state": "running", "health": health}}),
                ))
            }
            // A backup of `corrupt` never verifies.
            "db_backup" => Ok(done(
                "backed up",
                json!({"backup": format!("{service}-20261201T023000000Z")}),
            )),
            "db_verify_backup" if service.starts_with("corrupt") => Err(ToolError::new(
                ErrorKind::Failed,
                "sha256 of the dump does not match its manifest",
            )),
            "db_verify_backup" => Ok(done("verified", json!({"backup": service, "ok": true}))),
            "tenant_check_subdomain" => Ok(done(
                "checked",
                json!({"subdomain": service, "available": service != "taken"}),
            )),
            _ => Ok(done("provisioned", json!({"tenant": service}))),
        }
    }
}

fn done(summary: &str, output: Value) -> Done {
    Done {
        summary: summary.into(),
        output,
        changed: true,
    }
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The admin URL `scripts/setup` wrote to `.steward/config.toml`.
pub fn pg_url() -> String {
    let home = match std::env::var("STEWARD_HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h),
        _ => repo().join(".steward"),
    };
    let text = std::fs::read_to_string(home.join("config.toml")).unwrap();
    let table: HashMap<String, toml::Value> = toml::from_str(&text).unwrap();
    table["pg_url"].as_str().unwrap().to_string()
}

pub struct World {
    pub dir: PathBuf,
    pub url: String,
    pub fake: Arc<Fake>,
    pg_db: Option<String>,
}

pub fn settings() -> EngineSettings {
    EngineSettings {
        health_poll_initial: Duration::from_millis(50),
        health_poll_cap: Duration::from_millis(100),
        approval_poll: Duration::from_millis(50),
        approved_outcome_wait: Duration::from_secs(5),
    }
}

impl World {
    pub async fn new(heals: &[&str]) -> World {
        Self::on(false, heals).await
    }

    pub async fn on(postgres: bool, heals: &[&str]) -> World {
        let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let dir = std::env::temp_dir().join(format!("steward-triggers-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = Arc::new(Fake {
            heals: heals.iter().map(|s| s.to_string()).collect(),
            slow: Duration::from_secs(3),
            ..Default::default()
        });
        if !postgres {
            return World {
                url: format!("sqlite://{}", dir.join("state.db").display()),
                dir,
                fake,
                pg_db: None,
            };
        }
        let base = pg_url();
        let db = format!("steward_triggers_test_{id}");
        let admin = sqlx::PgPool::connect(&base).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let cut = base.rfind('/').unwrap();
        World {
            url: format!("{}/{db}", &base[..cut]),
            dir,
            fake,
            pg_db: Some(db),
        }
    }

    pub async fn cleanup(&self) {
        if let Some(db) = &self.pg_db {
            let admin = sqlx::PgPool::connect(&pg_url()).await.unwrap();
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
        for _ in 0..50 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    /// An orchestrator on this world's store, audit dir and fake platform.
    pub async fn orchestrator(&self) -> Arc<Orchestrator> {
        let store = self.store().await;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let mut audit = None;
        for _ in 0..50 {
            match AuditLog::open(&self.url, &self.dir.join("audit")).await {
                Ok(a) => {
                    audit = Some(a);
                    break;
                }
                Err(steward_audit::Error::Index(_)) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
        let notify = Arc::new(NotifyExecutor::new(
            Inbox::new(store.clone()),
            clock.clone(),
        ));
        Arc::new(
            Orchestrator::start(
                Registry::new([self.fake.clone() as Arc<dyn Executor>, notify]),
                PolicySet::load_dir(&repo().join("policies")).unwrap(),
                Guards::defaults(),
                Arc::new(audit.unwrap()),
                ApprovalStore::new(store),
                clock,
                Settings {
                    approval_ttl_ms: 60_000,
                },
            )
            .await
            .unwrap(),
        )
    }

    pub async fn engine(&self, o: &Arc<Orchestrator>, rules: Rulebook) -> Arc<Engine> {
        let store = self.store().await;
        Engine::start_with(
            o.clone(),
            rules,
            store.clone(),
            Inbox::new(store),
            Arc::new(SystemClock),
            settings(),
        )
        .await
        .unwrap()
    }

    /// Waits (up to 5 s) for a notification that satisfies `what`: the engine tells people
    /// just after it closes an incident, so a test that has seen the close may be early.
    pub async fn told(&self, what: impl Fn(&str) -> bool) {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let inbox = self.inbox().await;
            if inbox.iter().any(|n| what(n)) {
                return;
            }
            assert!(
                std::time::Instant::now() < until,
                "nobody was told: {inbox:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn inbox(&self) -> Vec<String> {
        Inbox::new(self.store().await)
            .recent(100)
            .await
            .unwrap()
            .into_iter()
            .map(|n| format!("{} {} {}", n.severity, n.source, n.message))
            .collect()
    }
}

/// Audit records of executions (`ExecBegin`) of `tool`.
pub async fn exec_begins(o: &Orchestrator, tool: &str) -> usize {
    o.audit()
        .records(1, 100_000)
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.entry.kind == Some(AuditKind::ExecBegin) && r.entry.tool.as_deref() == Some(tool)
        })
        .count()
}

pub fn step(tool: &str, args: Value, until: Option<Until>) -> Step {
    Step {
        tool: tool.into(),
        args: args.as_object().unwrap().clone(),
        when: None,
        until,
    }
}

pub fn healthy(within_ms: i64) -> Option<Until> {
    Some(Until::Healthy { within_ms })
}

pub fn gate(pointer: &str, equals: Value) -> Option<Gate> {
    Some(Gate {
        pointer: pointer.into(),
        equals,
    })
}

pub fn alert_rule(
    id: &str,
    alert: &str,
    for_ms: i64,
    throttle_ms: Option<i64>,
    steps: Vec<Step>,
) -> Rule {
    Rule {
        id: id.into(),
        description: format!("test rule {id}"),
        file: "test.toml".into(),
        on: Matcher::Alert {
            name: alert.into(),
            labels: BTreeMap::new(),
        },
        for_ms,
        throttle: throttle_ms.map(|ms| Throttle {
            once_within_ms: ms,
            key: id.into(),
            group_by: vec!["service".into()],
        }),
        steps,
    }
}

/// `container-unhealthy`: restart until healthy, then tell a human.
pub fn restart_then_notify(within_ms: i64) -> Rule {
    alert_rule(
        "container-unhealthy",
        "ContainerUnhealthy",
        0,
        Some(60_000),
        vec![
            step(
                "service_restart",
                json!({"service": "{service}"}),
                healthy(within_ms),
            ),
            step(
                "notify",
                json!({"message": "{service} is still unhealthy", "severity": "critical"}),
                Some(Until::Done),
            ),
        ],
    )
}

pub fn alert(name: &str, key: &str, service: &str, status: EventStatus) -> Event {
    Event {
        source: EventSource::Alert,
        name: name.into(),
        status,
        key: key.into(),
        labels: BTreeMap::from([("service".to_string(), service.to_string())]),
        fields: BTreeMap::new(),
        text: None,
        at: SystemClock.now(),
    }
}

pub fn sub(id: &str, events: Vec<Event>) -> Submission {
    Submission {
        request_id: id.into(),
        events,
    }
}

/// Waits until the incident is in `status` (or panics after 10 s with what it is).
pub async fn settle(engine: &Engine, id: &str, status: IncidentStatus) -> Incident {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let i = engine.incident(id).await.unwrap().unwrap();
        if i.status == status {
            return i;
        }
        if Instant::now() > until {
            panic!("incident {id} stayed {:?}: {:#?}", i.status, i.timeline);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The timeline kinds of an incident, as strings.
pub fn kinds(i: &Incident) -> Vec<String> {
    i.timeline
        .iter()
        .map(|e| {
            serde_json::to_value(e.kind)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

pub fn ts(ms: i64) -> Timestamp {
    Timestamp(ms)
}
