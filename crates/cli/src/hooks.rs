//! `steward hooks secret <name> [--rotate]`: a signed webhook's HMAC secret, kept under
//! `<home>/secrets/hooks/<name>` (mode 0600). Rotating keeps the previous secret valid
//! until the next rotation, so a sender can switch without dropping deliveries.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use steward_server::hooks::{ensure_secret, HookBook};

use crate::config::Config;
use crate::path;

/// Where `steward serve` reads hook secrets from.
pub fn secrets_dir(cfg: &Config) -> PathBuf {
    cfg.home.join("secrets").join("hooks")
}

/// The hook definitions: `<policies_dir>/hooks.toml`.
pub fn book(cfg: &Config) -> Result<HookBook> {
    Ok(HookBook::load(
        &path::policies_dir(cfg)?.join("hooks.toml"),
    )?)
}

pub fn secret(cfg: &Config, name: &str, rotate: bool) -> Result<ExitCode> {
    let book = book(cfg)?;
    if book.get(name).is_none() {
        let known: Vec<&str> = book.names().collect();
        eprintln!(
            "steward hooks secret: no hook {name:?} in hooks.toml (defined: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return Ok(ExitCode::from(2));
    }
    let change = ensure_secret(&secrets_dir(cfg), name, rotate)?;
    println!("{}", change.secret);
    let what = if change.created {
        "created"
    } else if change.rotated {
        "rotated (the previous secret stays valid until the next rotation)"
    } else {
        "unchanged (--rotate makes a new one)"
    };
    eprintln!("hook {name}: secret {what}; sign as t=<unix>,v1=<hex HMAC-SHA256(secret, \"<t>.\" + body)>");
    Ok(ExitCode::SUCCESS)
}

/// `steward hooks ...`
#[derive(Debug, clap::Subcommand)]
pub enum HooksAction {
    /// Print a hook's signing secret, creating it if needed; --rotate makes a new one and
    /// keeps the previous one valid until the next rotation
    Secret {
        name: String,
        #[arg(long)]
        rotate: bool,
    },
}

pub fn run(cfg: &Config, action: HooksAction) -> Result<ExitCode> {
    match action {
        HooksAction::Secret { name, rotate } => secret(cfg, &name, rotate),
    }
}
