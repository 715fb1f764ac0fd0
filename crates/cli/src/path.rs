//! Wires the request path for the binary: the concrete executors from `steward-exec` behind
//! the orchestrator, with policies, guards, approvals and the audit log from the config.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use steward_agent::approvals::ApprovalStore;
use steward_agent::audit_tool::AuditSearchExecutor;
use steward_agent::{Orchestrator, Settings};
use steward_audit::{AuditLog, Store};
use steward_policy::{Guards, PolicySet};
use steward_tools::{when, Clock, Executor, Registry, SystemClock};

use crate::config::{Config, Key};

/// Where the policies live: `policies_dir`, a relative one resolved against the data root
/// (the installed `<home>/share` or the checkout), so steward works from any directory.
pub fn policies_dir(cfg: &Config) -> Result<PathBuf> {
    cfg.data_path(Key::PoliciesDir)
}

/// The shortest `approval_ttl` accepted: an approval that expires before a person can read
/// the plan is an approval nobody can give.
pub const MIN_APPROVAL_TTL_MS: i64 = 60_000;

/// `approval_ttl` in milliseconds; refused, naming the layer it came from, when it is not
/// a duration or is under a minute.
pub fn approval_ttl_ms(cfg: &Config) -> Result<i64> {
    let ttl = cfg.require(Key::ApprovalTtl)?;
    let from = cfg.source_label(Key::ApprovalTtl, "--approval-ttl");
    let ms = when::duration_ms(ttl)
        .with_context(|| format!("{from} {ttl:?} is not a duration such as 15m"))?;
    if ms < MIN_APPROVAL_TTL_MS {
        anyhow::bail!(
            "{from} {ttl:?} is under a minute: an approval must stay open long enough for a \
             person to answer it (at least 1m; the default is 15m)"
        );
    }
    Ok(ms)
}

pub fn load_policies(cfg: &Config) -> Result<PolicySet> {
    let dir = policies_dir(cfg)?;
    PolicySet::load_dir(&dir)
        .with_context(|| format!("cannot load policies from {}", dir.display()))
}

/// The guards file next to the policies; defaults when it is absent.
pub fn load_guards(cfg: &Config) -> Result<Guards> {
    let path = policies_dir(cfg)?.join("guards.toml");
    if path.exists() {
        Guards::load(&path).with_context(|| format!("cannot load guards from {}", path.display()))
    } else {
        Ok(Guards::defaults())
    }
}

pub async fn audit_log(cfg: &Config) -> Result<Arc<AuditLog>> {
    let url = cfg.require(Key::StateUrl)?;
    let log = AuditLog::open(url, &cfg.home.join("audit"))
        .await
        .context("cannot open the audit log")?;
    Ok(Arc::new(log))
}

/// The full path, ready to handle requests.
pub async fn orchestrator(cfg: &Config, executors: Vec<Arc<dyn Executor>>) -> Result<Orchestrator> {
    let approval_ttl_ms = approval_ttl_ms(cfg)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = audit_log(cfg).await?;
    let store = Store::open(cfg.require(Key::StateUrl)?)
        .await
        .context("cannot open the state store")?;
    let mut all = executors;
    all.push(Arc::new(AuditSearchExecutor::new(
        audit.clone(),
        clock.clone(),
    )));
    Ok(Orchestrator::start(
        Registry::new(all),
        load_policies(cfg)?,
        load_guards(cfg)?
            .with_lock_dir(&cfg.home.join("run"))
            .context("cannot create the lock folder for the guards")?,
        audit,
        ApprovalStore::new(store),
        clock,
        Settings { approval_ttl_ms },
    )
    .await?)
}
