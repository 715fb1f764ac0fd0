//! Where the request path's settings come from: the policies folder, guards, the approval
//! lifetime and the audit log, read from the config. [`crate::wiring`] assembles them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use steward_audit::AuditLog;
use steward_policy::{Guards, PolicySet};
use steward_tools::when;

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
