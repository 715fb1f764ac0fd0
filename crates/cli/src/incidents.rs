//! `steward incidents`, `steward incident ID` and `steward notifications`: what the trigger
//! engine of `steward serve` did, read from the state store (serve need not be running).

use std::process::ExitCode;

use anyhow::Result;
use serde_json::Value;
use steward_agent::inbox::Inbox;
use steward_agent::incidents::{Incident, IncidentStore, TimelineEntry};
use steward_agent::outbox::{Delivery, Outbox};
use steward_protocol::Timestamp;

use crate::config::Config;
use crate::wiring::open_store;

/// Newest first; with `open_only`, only incidents still open or waiting for approval.
pub async fn list(cfg: &Config, open_only: bool, json: bool) -> Result<ExitCode> {
    let store = open_store(cfg).await?;
    let mut incidents = IncidentStore::new(store.clone()).list(open_only).await?;
    store.close().await;
    incidents.sort_by_key(|i| std::cmp::Reverse(i.opened_at));
    if json {
        println!("{}", serde_json::to_string_pretty(&incidents)?);
        return Ok(ExitCode::SUCCESS);
    }
    if incidents.is_empty() {
        println!("no {}incidents", if open_only { "open " } else { "" });
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:<17} {:<20} {:<18} {:<20} EVENT",
        "ID", "STATUS", "OPENED", "RULE", "KEY"
    );
    for i in &incidents {
        println!(
            "{:<20} {:<17} {:<20} {:<18} {:<20} {}",
            i.id,
            i.status.as_str(),
            when(i.opened_at),
            i.rule.as_deref().unwrap_or("-"),
            clip(&i.event_key, 20),
            event_line(i)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One incident with its timeline; exit 1 when there is no such incident.
pub async fn show(cfg: &Config, id: &str, json: bool) -> Result<ExitCode> {
    let store = open_store(cfg).await?;
    let incident = IncidentStore::new(store.clone()).get(id).await?;
    store.close().await;
    let Some(i) = incident else {
        eprintln!("steward incident: no incident {id:?}; `steward incidents` lists them");
        return Ok(ExitCode::FAILURE);
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&i)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("incident {}  {}", i.id, i.status.as_str());
    println!("  event     {}", event_line(&i));
    println!("  key       {}", i.event_key);
    println!(
        "  rule      {}",
        i.rule.as_deref().unwrap_or("(none matched)")
    );
    if let Some(p) = &i.principal {
        println!("  acting as {p}");
    }
    println!("  opened    {}", when(i.opened_at));
    if let Some(closed) = i.closed_at {
        let reason = i.close_reason.as_deref().unwrap_or("");
        println!("  closed    {}  {reason}", when(closed));
    }
    if i.repeats > 0 || i.throttled > 0 {
        println!("  repeats {}, throttled {}", i.repeats, i.throttled);
    }
    if let Some(text) = &i.event.text {
        // Untrusted text from the source: shown as data, clipped.
        println!("  text      {:?}", clip(text, 200));
    }
    println!("  timeline");
    for e in &i.timeline {
        println!("    {}", timeline_line(e));
    }
    Ok(ExitCode::SUCCESS)
}

/// The inbox, newest first, with where each notification was pushed and how that went.
pub async fn notifications(cfg: &Config, limit: i64, json: bool) -> Result<ExitCode> {
    let store = open_store(cfg).await?;
    let recent = Inbox::new(store.clone()).recent(limit).await?;
    let ids: Vec<String> = recent.iter().map(|n| n.id.clone()).collect();
    let deliveries = Outbox::new(store.clone()).of(&ids).await?;
    store.close().await;
    let of = |id: &str| -> Vec<&Delivery> {
        deliveries.iter().filter(|d| d.notification == id).collect()
    };
    if json {
        let rows: Vec<Value> = recent
            .iter()
            .map(|n| {
                let mut v = serde_json::to_value(n).unwrap_or_default();
                v["deliveries"] = serde_json::to_value(of(&n.id)).unwrap_or_default();
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if recent.is_empty() {
        println!("no notifications");
    }
    for n in &recent {
        let incident = n
            .incident
            .as_deref()
            .map(|i| format!(" [{i}]"))
            .unwrap_or_default();
        println!(
            "{}  {:<8} {}{}  {}",
            when(Timestamp(n.at_ms)),
            n.severity,
            n.source,
            incident,
            n.message
        );
        for d in of(&n.id) {
            let detail = match (d.state.as_str(), &d.last_error) {
                ("delivered", _) => format!("after {} attempt(s)", d.attempts),
                (_, Some(e)) => format!("{} attempt(s), last: {}", d.attempts, clip(e, 120)),
                _ => "queued".to_string(),
            };
            println!("    → {:<12} {:<9} {detail}", d.channel, d.state);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn event_line(i: &Incident) -> String {
    format!("{}:{}", i.event.source.as_str(), i.event.name)
}

fn timeline_line(e: &TimelineEntry) -> String {
    let mut line = format!("{}  {:<14}", when(e.at), e.kind.as_str());
    if let (Some(step), Some(tool)) = (e.step, &e.tool) {
        line.push_str(&format!(" step {} {tool}", step + 1));
    }
    if let Some(args) = &e.args {
        line.push_str(&format!(" {args}"));
    }
    if let Some(d) = &e.decision {
        line.push_str(&format!(" decision={}", short(d, "decision")));
    }
    if let Some(o) = &e.outcome {
        line.push_str(&format!(" → {}", short(o, "status")));
        if let Some(s) = o.get("summary").and_then(Value::as_str) {
            line.push_str(&format!(": {}", clip(s, 120)));
        }
        if let Some(err) = o.get("error").and_then(Value::as_str) {
            line.push_str(&format!(": {}", clip(err, 160)));
        }
    }
    if let Some(m) = &e.message {
        line.push_str(&format!("  {}", clip(m, 160)));
    }
    line
}

/// `v[field]` as text, or the whole value.
fn short(v: &Value, field: &str) -> String {
    match v.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => v.to_string(),
    }
}

fn when(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at.0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| at.0.to_string())
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
