//! `steward audit verify|search|reindex|checkpoint`.

use std::process::ExitCode;

use anyhow::Result;
use steward_audit::VerifyReport;
use steward_tools::{when, Clock, SystemClock};

use crate::config::Config;
use crate::path;

/// Exit 0 only when the chain is intact *and* anchored by a checkpoint of this store; a
/// store with records but no checkpoint fails too, since nothing then shows a cut-off tail.
/// `first_checkpoint` signs the head of such a store, only when its chain is otherwise
/// intact.
pub async fn verify(cfg: &Config, as_json: bool, first_checkpoint: bool) -> Result<ExitCode> {
    let log = path::audit_log(cfg).await?;
    let mut report = log.verify().await?;
    let mut signed = None;
    if first_checkpoint && report.only_missing_checkpoint() {
        let cp = log.checkpoint().await?;
        // Verified again so the report (and the exit code) cover the new checkpoint.
        report = log.verify().await?;
        signed = Some(cp);
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, first_checkpoint, signed.as_ref());
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(
    report: &VerifyReport,
    first_checkpoint: bool,
    signed: Option<&steward_audit::Checkpoint>,
) {
    let n = report.records;
    let store = &report.store_id;
    if let Some(cp) = signed {
        println!(
            "audit: store {store} had no checkpoint; signed its head (seq {}) as its first \
             checkpoint: from here on a cut-off tail is detected",
            cp.seq
        );
    }
    if report.ok {
        match &report.checkpoint {
            Some(cp) => println!(
                "audit: {n} records, chain and checkpoint intact (store {store}, checkpoint \
                 at seq {})",
                cp.seq
            ),
            None => println!("audit: {n} records, no checkpoint yet (store {store})"),
        }
        if first_checkpoint && signed.is_none() {
            println!("audit: the store has a checkpoint already; nothing signed");
        }
    } else if report.tampered() {
        println!("audit: {n} records, TAMPERING DETECTED (store {store})");
        if first_checkpoint {
            println!("audit: no checkpoint signed: the chain itself is not intact");
        }
    } else if report.only_missing_checkpoint() {
        println!(
            "audit: {n} records, chain intact, but NO CHECKPOINT for store {store}: a \
             truncated tail cannot be ruled out"
        );
    } else {
        println!("audit: {n} records, chain intact, but checkpoints need a look (store {store})");
    }
    for p in &report.problems {
        println!("  record {}: {:?}: {}", p.seq, p.kind, p.detail);
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
}

pub async fn search(
    cfg: &Config,
    query: &str,
    since: Option<&str>,
    limit: usize,
    as_json: bool,
) -> Result<ExitCode> {
    let since = match since {
        Some(s) => Some(when::resolve(s, SystemClock.now()).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let log = path::audit_log(cfg).await?;
    let records = log.search(query, since, limit).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() {
        println!("no audit records match {query:?}");
    }
    for r in &records {
        let e = &r.entry;
        println!(
            "#{} {} {} {} {} {}",
            r.seq,
            when::format(e.at),
            e.kind
                .and_then(|k| serde_json::to_value(k).ok())
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            e.tool.as_deref().unwrap_or("-"),
            e.args.as_ref().map(|a| a.to_string()).unwrap_or_default(),
            e.outcome
                .as_ref()
                .and_then(|o| o.get("summary").or_else(|| o.get("message")))
                .and_then(|v| v.as_str())
                .unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn reindex(cfg: &Config) -> Result<ExitCode> {
    let log = path::audit_log(cfg).await?;
    let n = log.rebuild_index().await?;
    println!("audit: index rebuilt from {n} records");
    Ok(ExitCode::SUCCESS)
}

pub async fn checkpoint(cfg: &Config) -> Result<ExitCode> {
    let log = path::audit_log(cfg).await?;
    if !log.has_checkpoint() {
        // stdout stays one JSON line for scripts; the warning goes to stderr.
        eprintln!(
            "audit: store {} had no checkpoint: this first one vouches for every record \
             it has now, so run `steward audit verify` first",
            log.store_id()
        );
    }
    let cp = log.checkpoint().await?;
    println!("{}", serde_json::to_string(&cp)?);
    Ok(ExitCode::SUCCESS)
}
