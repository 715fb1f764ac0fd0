//! `steward token create|list|revoke`: bearer tokens for `steward serve`. A token is shown
//! once, at creation; the store keeps only its SHA-256.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use steward_protocol::Timestamp;
use steward_server::tokens::{TokenInfo, Tokens};
use steward_tools::when;

use crate::config::Config;
use crate::wiring::open_store;

async fn tokens(cfg: &Config) -> Result<Tokens> {
    Ok(Tokens::new(open_store(cfg).await?))
}

fn now() -> Timestamp {
    steward_tools::Clock::now(&steward_tools::SystemClock)
}

/// `steward token create --as <principal> [--ttl 90d]`.
pub async fn create(
    cfg: &Config,
    principal: &str,
    ttl: Option<&str>,
    as_json: bool,
) -> Result<ExitCode> {
    let expires_at = match ttl {
        None => None,
        Some(t) => {
            let ms = when::duration_ms(t).filter(|ms| *ms > 0).with_context(|| {
                format!("--ttl {t:?} is not a duration such as 90d, 12h or 30m")
            })?;
            Some(Timestamp(now().0 + ms))
        }
    };
    let new = tokens(cfg).await?.create(principal, expires_at).await?;
    if as_json {
        let mut v = serde_json::to_value(&new.info)?;
        v["token"] = json!(new.token);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", new.token);
        eprintln!(
            "token {} for {}, {}; shown only now: store it in the sender's configuration",
            new.info.id,
            new.info.principal,
            expiry(&new.info)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn expiry(t: &TokenInfo) -> String {
    match t.expires_at {
        Some(at) => format!("expires {}", when::format(at)),
        None => "never expires".into(),
    }
}

fn state(t: &TokenInfo, now: Timestamp) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

/// `steward token list [--json]`: every token, newest first; never the secret.
pub async fn list(cfg: &Config, as_json: bool) -> Result<ExitCode> {
    let all = tokens(cfg).await?.list().await?;
    let now = now();
    if as_json {
        let rows: Vec<_> = all
            .iter()
            .map(|t| {
                let mut v = serde_json::to_value(t).unwrap_or_default();
                v["state"] = json!(state(t, now));
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if all.is_empty() {
        println!("no tokens (`steward token create --as <principal>`)");
    } else {
        for t in &all {
            println!(
                "{}  {:<8} {}  created {}, {}",
                t.id,
                state(t, now),
                t.principal,
                when::format(t.created_at),
                expiry(t)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `steward token revoke <id>`: a running server stops accepting it within seconds.
pub async fn revoke(cfg: &Config, id: &str) -> Result<ExitCode> {
    match tokens(cfg).await?.revoke(id).await {
        Ok(t) => {
            println!("revoked {} ({})", t.id, t.principal);
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ steward_server::Error::NoSuchToken(_)) => {
            eprintln!("steward token revoke: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

/// `steward token ...`
#[derive(Debug, clap::Subcommand)]
pub enum TokenAction {
    /// Issue a token bound to one principal; it is printed once, only its hash is stored
    Create {
        /// The principal requests with this token run as (webhook:alertmanager,
        /// webhook:<hook>, operator:<name>)
        #[arg(long = "as")]
        principal: String,
        /// Lifetime (90d, 12h, 30m); no expiry when absent
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Every token with its principal and state (never the secret)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; a running server refuses it within seconds
    Revoke { id: String },
}

pub async fn run(cfg: &Config, action: TokenAction) -> Result<ExitCode> {
    match action {
        TokenAction::Create {
            principal,
            ttl,
            json,
        } => create(cfg, &principal, ttl.as_deref(), json).await,
        TokenAction::List { json } => list(cfg, json).await,
        TokenAction::Revoke { id } => revoke(cfg, &id).await,
    }
}
