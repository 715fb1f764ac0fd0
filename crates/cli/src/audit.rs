//! `steward audit verify|search|reindex`.

use std::process::ExitCode;

use anyhow::Result;
use steward_tools::{when, Clock, SystemClock};

use crate::config::Config;
use crate::path;

pub async fn verify(cfg: &Config, as_json: bool) -> Result<ExitCode> {
    let log = path::audit_log(cfg).await?;
    let report = log.verify().await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if report.ok {
        println!(
            "audit: {} records, chain and checkpoint intact",
            report.records
        );
    } else {
        println!("audit: {} records, TAMPERING DETECTED", report.records);
        for p in &report.problems {
            println!("  record {}: {:?}: {}", p.seq, p.kind, p.detail);
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
    let cp = log.checkpoint().await?;
    println!("{}", serde_json::to_string(&cp)?);
    Ok(ExitCode::SUCCESS)
}
