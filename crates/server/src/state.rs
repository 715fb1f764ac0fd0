//! [`AppState`]: everything the handlers share, passed in explicitly (no globals).

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use steward_agent::Orchestrator;
use steward_audit::{AuditLog, Store};

use crate::chat::PlannerSource;
use crate::commit::Committer;
use crate::hooks::{HookBook, HookSecrets};
use crate::limits::{Limiter, RateLimit};
use crate::metrics::Metrics;
use crate::refusals::Refusals;
use crate::tokens::Tokens;
use crate::triggers::{Readiness, Triggers};
use crate::v1::PlatformView;
use crate::Result;

/// How often counted refusals are written to the audit log.
const REFUSAL_FLUSH: Duration = Duration::from_secs(60);

/// What the caller (`steward serve`, a test, the bench) provides.
#[derive(Debug)]
pub struct Parts {
    /// The audit log; its store also holds tokens, deliveries and request makers.
    pub audit: AuditLog,
    pub triggers: Arc<dyn Triggers>,
    pub readiness: Arc<dyn Readiness>,
    /// The hook definitions (`policies/hooks.toml`).
    pub hooks: HookBook,
    /// Where hook secrets live (`<home>/secrets/hooks`).
    pub secrets_dir: PathBuf,
    /// The request path `/v1` hands calls and approvals to.
    pub orchestrator: Arc<Orchestrator>,
    /// What `/v1/status` shows of the platform.
    pub platform: Arc<dyn PlatformView>,
    /// Each token's rate limit on `/v1`.
    pub rate_limit: RateLimit,
    /// The metrics registry; the orchestrator reports into it from here on.
    pub metrics: Arc<Metrics>,
    /// The planner and inventory of `/v1/plan` and chat.
    pub planner: Arc<dyn PlannerSource>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) tokens: Tokens,
    pub(crate) hooks: HookBook,
    pub(crate) secrets: HookSecrets,
    pub(crate) refusals: Refusals,
    pub(crate) commit: Committer,
    pub(crate) triggers: Arc<dyn Triggers>,
    pub(crate) readiness: Arc<dyn Readiness>,
    pub(crate) orchestrator: Arc<Orchestrator>,
    pub(crate) platform: Arc<dyn PlatformView>,
    pub(crate) limiter: Limiter,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) audit: AuditLog,
    pub(crate) sessions: crate::console::session::Sessions,
    pub(crate) planner: Arc<dyn PlannerSource>,
    pub(crate) chat_busy: crate::chat::Busy,
}

/// The handlers' shared state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) shared: Arc<Shared>,
}

impl AppState {
    /// Builds the state and starts its background tasks (the group-commit writer and the
    /// per-minute refusal flush) on the current Tokio runtime.
    pub fn new(parts: Parts) -> AppState {
        let store = parts.audit.store().clone();
        let metrics = parts.metrics;
        parts.orchestrator.set_meter(metrics.clone());
        let shared = Arc::new(Shared {
            tokens: Tokens::new(store.clone()),
            commit: Committer::start(store.clone(), parts.triggers.clone()),
            store,
            hooks: parts.hooks,
            secrets: HookSecrets::new(parts.secrets_dir),
            refusals: Refusals::new(parts.audit.clone()),
            triggers: parts.triggers,
            readiness: parts.readiness,
            orchestrator: parts.orchestrator,
            platform: parts.platform,
            limiter: Limiter::new(parts.rate_limit),
            metrics,
            audit: parts.audit,
            sessions: Default::default(),
            planner: parts.planner,
            chat_busy: Default::default(),
        });
        tokio::spawn(flush_refusals(Arc::downgrade(&shared)));
        AppState { shared }
    }

    /// The token table (the CLI and tests create tokens through it).
    pub fn tokens(&self) -> &Tokens {
        &self.shared.tokens
    }

    /// Writes every counted refusal to the audit log now; returns the records written.
    pub async fn flush_refusals(&self) -> Result<usize> {
        self.shared.refusals.flush(true).await
    }

    /// Commits every queued request, stops the writer and flushes the refusal counters.
    /// Requests arriving afterwards are answered 503.
    pub async fn close(&self) -> Result<()> {
        self.shared.commit.close().await;
        self.flush_refusals().await.map(|_| ())
    }
}

async fn flush_refusals(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(REFUSAL_FLUSH);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(e) = shared.refusals.flush(false).await {
            tracing::warn!(error = %e, "writing refusal counts to the audit log failed; kept for the next try");
        }
    }
}
