//! `steward serve`: the long-running Steward. It assembles Steward once ([`Steward::open`]),
//! starts the trigger engine over the rulebooks, and serves the HTTP intake (Alertmanager,
//! signed webhooks, health) on `listen`. SIGTERM or SIGINT stops intake, lets requests in
//! flight finish, gives running ladder steps the drain deadline, and signs the audit head.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde_json::{json, Value};
use steward_agent::outbox::Outbox;
use steward_agent::triggers::schedule::Scheduler;
use steward_agent::triggers::{Accepted, Engine};
use steward_exec::backup::retention::Keep;
use steward_exec::env::Env;
use steward_exec::monitor::{Monitor, MonitorSettings, MonitorState};
use steward_policy::rules::Rulebook;
use steward_protocol::{Event, EventStatus};
use steward_server::metrics::Metrics;
use steward_server::{
    AppState, Check, Parts, PlatformView, RateLimit, Readiness, Submission, Triggers,
};
use tokio::net::TcpListener;

use crate::config::{Config, Key};
use crate::outbox::{self, DeliverySettings};
use crate::rules::RULES_DIR;
use crate::schedules::PlatformSchedules;
use crate::wiring::Steward;
use crate::{hooks, path};

/// How long requests in flight and running ladder steps get after a stop signal.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, clap::Args)]
pub struct ServeOpts {
    /// Address to listen on (default: the `listen` setting, 127.0.0.1:58100)
    #[arg(long)]
    pub listen: Option<String>,
}

pub async fn run(cfg: &Config, opts: ServeOpts) -> Result<ExitCode> {
    let listen = match opts.listen {
        Some(l) => l,
        None => cfg.require(Key::Listen)?.to_string(),
    };
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("listen {listen:?} is not an address such as 127.0.0.1:58100"))?;
    let _one_per_home = lock_home(cfg)?;
    let steward = Steward::open(cfg).await?;
    let rules_dir = path::policies_dir(cfg)?.join(RULES_DIR);
    let rulebook = Rulebook::load_dir(&rules_dir, &path::load_policies(cfg)?)
        .map_err(|e| anyhow::anyhow!("cannot load the rules in {}:\n{e}", rules_dir.display()))?;
    let rules = rulebook.rules.len();
    let engine = Engine::start(
        steward.orchestrator.clone(),
        rulebook,
        steward.store.clone(),
        steward.inbox.clone(),
        steward.clock.clone(),
    )
    .await
    .context("cannot start the trigger engine")?;
    let metrics = Arc::new(Metrics::new().context("cannot build the metrics registry")?);
    let monitor = start_monitor(cfg, &steward, &engine, metrics.clone())?;
    let scheduler = tokio::spawn(
        Scheduler::new(
            engine.clone(),
            steward.store.clone(),
            steward.clock.clone(),
            Arc::new(PlatformSchedules {
                env: steward.env.clone(),
                audit: steward.audit.clone(),
                clock: steward.clock.clone(),
                keep: retention_keep(cfg)?,
                only: list_setting(cfg, Key::BackupTargets),
            }),
        )
        .run(),
    );
    let delivery = tokio::spawn(outbox::deliver(
        Outbox::new(steward.store.clone()),
        steward.channels.clone(),
        steward.clock.clone(),
        DeliverySettings::default(),
    ));
    let hooks = hooks::book(cfg)?;
    let hook_count = hooks.names().count();
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let state = AppState::new(Parts {
        audit: (*steward.audit).clone(),
        triggers: Arc::new(EngineTriggers(engine.clone())),
        readiness: Arc::new(ServeReadiness {
            env: steward.env.clone(),
            engine: engine.clone(),
            monitor: monitor.as_ref().map(|m| m.state.clone()),
        }),
        hooks,
        secrets_dir: hooks::secrets_dir(cfg),
        orchestrator: steward.orchestrator.clone(),
        platform: Arc::new(PlatformStatus(cfg.clone())),
        rate_limit: RateLimit::parse(cfg.require(Key::ApiRateLimit)?)
            .map_err(|e| anyhow::anyhow!("api_rate_limit = {e}"))?,
        metrics,
        planner: Arc::new(ServePlanner {
            cfg: cfg.clone(),
            env: steward.env.clone(),
            loaded: tokio::sync::OnceCell::new(),
        }),
    });
    tracing::info!(
        %addr,
        rules,
        hooks = hook_count,
        home = %cfg.home.display(),
        "steward serve: listening on http://{addr}"
    );
    let served = steward_server::serve(listener, state, stop_signal(), DRAIN_DEADLINE).await;
    scheduler.abort();
    if let Some(m) = monitor {
        m.stop().await;
    }
    engine.shutdown(DRAIN_DEADLINE).await;
    // Undelivered notifications stay in the outbox for the next start.
    delivery.abort();
    steward.close().await?;
    served.context("the HTTP server failed")?;
    tracing::info!("steward serve: stopped");
    Ok(ExitCode::SUCCESS)
}

/// `steward mcp --as mcp:<client>`: the tools over MCP on stdio, on the one wiring.
pub async fn mcp_stdio(cfg: &Config, principal: &str) -> Result<ExitCode> {
    let principal = steward_policy::Principal::parse(principal)
        .with_context(|| format!("--as {principal:?}"))?;
    anyhow::ensure!(
        principal.kind == steward_policy::PrincipalKind::McpClient,
        "--as {}: MCP clients act as mcp:<client> principals",
        steward_agent::principal::label(&principal)
    );
    let steward = Steward::open(cfg).await?;
    let served = steward_server::mcp::serve_stdio(steward.orchestrator.clone(), principal).await;
    steward.close().await?;
    served.map_err(|e| anyhow::anyhow!(e))?;
    Ok(ExitCode::SUCCESS)
}

/// A comma-separated setting as its items; unset or empty: none.
fn list_setting(cfg: &Config, key: Key) -> Vec<String> {
    cfg.get(key)
        .map(|s| s.value.as_str())
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `backup_keep_daily` and `backup_keep_weekly`.
fn retention_keep(cfg: &Config) -> Result<Keep> {
    let count = |key: Key| -> Result<usize> {
        let v = cfg.require(key)?;
        v.parse()
            .with_context(|| format!("{} = {v:?}: expected a whole number", key.name()))
    };
    Ok(Keep {
        daily: count(Key::BackupKeepDaily)?,
        weekly: count(Key::BackupKeepWeekly)?,
    })
}

/// One `steward serve` per home: two would both run every ladder. The lock is the OS's on an
/// open file, so it goes with the process however it ends (`kill -9` included).
fn lock_home(cfg: &Config) -> Result<std::fs::File> {
    let dir = cfg.home.join("run");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("serve.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another steward serve runs on the home {} (it holds {}); stop it first",
            cfg.home.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Completes on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; stopping only on Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
    }
}

/// The running health monitor: its task, the task handing its events to the engine, and
/// its connection state for `/readyz`.
struct RunningMonitor {
    follow: tokio::task::JoinHandle<()>,
    forward: tokio::task::JoinHandle<()>,
    state: Arc<std::sync::Mutex<MonitorState>>,
}

impl RunningMonitor {
    /// Stops following Docker; events already handed over are submitted first.
    async fn stop(self) {
        self.follow.abort();
        let _ = self.follow.await;
        let _ = self.forward.await;
    }
}

/// Starts the Docker-events monitor unless `monitor = off`; its events go to the engine
/// as they come, several at a time when they come faster than the engine takes them.
fn start_monitor(
    cfg: &Config,
    steward: &Steward,
    engine: &Arc<Engine>,
    metrics: Arc<Metrics>,
) -> Result<Option<RunningMonitor>> {
    match cfg.require(Key::Monitor)? {
        "off" => return Ok(None),
        "on" => {}
        other => anyhow::bail!("monitor = {other:?}: expected on or off"),
    }
    let labels = list_setting(cfg, Key::MonitorLabels);
    if let Some(bad) = labels.iter().find(|l| !l.contains('=')) {
        anyhow::bail!("monitor_labels: {bad:?} is not a key=value label filter");
    }
    let monitor = Monitor::new(
        steward.env.platform.docker.clone(),
        steward.clock.clone(),
        MonitorSettings {
            labels,
            ..MonitorSettings::default()
        },
    );
    let state = monitor.state();
    let (sink, mut events) = tokio::sync::mpsc::channel::<Vec<Event>>(1024);
    let follow = tokio::spawn(monitor.run(sink));
    let engine = engine.clone();
    let clock = steward.clock.clone();
    let forward = tokio::spawn(async move {
        while let Some(first) = events.recv().await {
            let now = clock.now().0;
            let batch: Vec<_> = std::iter::once(first)
                .chain(std::iter::from_fn(|| events.try_recv().ok()))
                .inspect(|evs| {
                    for e in evs {
                        metrics.monitor_lag((now - e.at.0) as f64 / 1000.0);
                    }
                })
                .filter_map(|evs| monitor_submission(&engine, evs))
                .collect();
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = engine.submit(batch).await {
                tracing::error!(error = %e, "monitor events were not accepted");
            }
        }
    });
    Ok(Some(RunningMonitor {
        follow,
        forward,
        state,
    }))
}

/// The events of one Docker event or reconcile that matter: firing ones some rule answers
/// (a crash of a container no rule watches is not an incident), and every resolution.
fn monitor_submission(
    engine: &Engine,
    mut events: Vec<Event>,
) -> Option<steward_agent::triggers::Submission> {
    events.retain(|e| e.status == EventStatus::Resolved || engine.answers(e));
    (!events.is_empty()).then(|| steward_agent::triggers::Submission {
        request_id: format!("monitor-{}", uuid::Uuid::new_v4().simple()),
        events,
    })
}

/// The trigger engine behind the server's [`Triggers`] port.
#[derive(Debug)]
struct EngineTriggers(Arc<Engine>);

#[async_trait]
impl Triggers for EngineTriggers {
    async fn submit(&self, batch: Vec<Submission>) -> Result<Vec<Value>, String> {
        let batch = batch
            .into_iter()
            .map(|s| steward_agent::triggers::Submission {
                request_id: s.request_id,
                events: s.events,
            })
            .collect();
        let accepted = self.0.submit(batch).await.map_err(|e| e.to_string())?;
        Ok(accepted.iter().map(answer).collect())
    }

    async fn request(&self, id: &str) -> Result<Option<Value>, String> {
        self.0.request(id).await.map_err(|e| e.to_string())
    }
}

/// What the sender is told about one accepted request: `accepted` when it opened or joined
/// an incident, else `resolved`, `duplicate` (a repeat of a key already firing) or
/// `unmatched` (no rule answers it; recorded all the same).
fn answer(a: &Accepted) -> Value {
    let status = if !a.incidents.is_empty() {
        "accepted"
    } else if a.resolved > 0 {
        "resolved"
    } else if a.repeats > 0 {
        "duplicate"
    } else {
        "unmatched"
    };
    let mut v = serde_json::to_value(a).unwrap_or_else(|_| json!({}));
    v["status"] = status.into();
    v
}

/// The planner of `/v1/plan` and chat: the configured model, loaded on first use (serve
/// starts without it, and a host that only heals never loads it), and the live inventory.
#[derive(Debug)]
struct ServePlanner {
    cfg: Config,
    env: Arc<Env>,
    loaded: tokio::sync::OnceCell<Arc<dyn steward_llm::Backend>>,
}

#[async_trait]
impl steward_server::PlannerSource for ServePlanner {
    async fn planner(&self) -> Result<Arc<dyn steward_llm::Backend>, String> {
        self.loaded
            .get_or_try_init(|| async {
                let cfg = self.cfg.clone();
                tracing::info!("loading the planner model for the API's first plan or chat");
                tokio::task::spawn_blocking(move || crate::planner::backend(&cfg, None))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("{e:#}"))
            })
            .await
            .cloned()
    }

    async fn inventory(&self) -> Result<steward_llm::Inventory, String> {
        crate::chat::inventory(&self.env, None)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

/// `/v1/status`'s platform part: what `steward status` shows (Docker and Traefik).
#[derive(Debug)]
struct PlatformStatus(Config);

#[async_trait]
impl PlatformView for PlatformStatus {
    async fn status(&self) -> Result<Value, String> {
        let status = crate::status::collect(&self.0)
            .await
            .map_err(|e| format!("{e:#}"))?;
        serde_json::to_value(status).map_err(|e| e.to_string())
    }
}

/// `/readyz`: the state store answers, the trigger engine runs, and the Docker Engine
/// answers (the rules and hooks were checked at start: serve does not start without them).
#[derive(Debug)]
struct ServeReadiness {
    env: Arc<Env>,
    engine: Arc<Engine>,
    monitor: Option<Arc<std::sync::Mutex<MonitorState>>>,
}

#[async_trait]
impl Readiness for ServeReadiness {
    async fn check(&self) -> Vec<Check> {
        let state = match self.engine.ready().await {
            Ok(()) => Check::ok("state"),
            Err(e) => Check::failed("state", e.to_string()),
        };
        let docker = match self.env.platform.docker.version().await {
            Ok(_) => Check::ok("docker"),
            Err(e) => Check::failed("docker", e.to_string()),
        };
        let mut checks = vec![state, docker];
        if let Some(m) = &self.monitor {
            let m = m
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            checks.push(if m.connected {
                Check::ok("monitor")
            } else {
                Check::failed(
                    "monitor",
                    format!(
                        "not following Docker's events: {}",
                        m.last_error.as_deref().unwrap_or("connecting")
                    ),
                )
            });
        }
        checks
    }
}
