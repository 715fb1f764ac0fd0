//! `steward approvals`, `steward approve|deny <id>` and `steward policy check`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use steward_agent::approvals::{Approval, ApprovalStore};
use steward_audit::Store;
use steward_policy::{Principal, VetRequest};
use steward_protocol::Decision;
use steward_tools::Call;

use crate::call::{self, Caller};
use crate::config::{Config, Key};
use crate::path;

fn approver(cfg: &Config, principal: Option<String>) -> Result<Principal> {
    let p = match principal {
        Some(p) => p,
        None => cfg.require(Key::Principal)?.to_string(),
    };
    Principal::parse(&p).with_context(|| format!("--as {p:?}"))
}

pub async fn list(cfg: &Config, all: bool, as_json: bool) -> Result<ExitCode> {
    let store = Store::open(cfg.require(Key::StateUrl)?).await?;
    let approvals = ApprovalStore::new(store).list(all).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&approvals)?);
    } else if approvals.is_empty() {
        println!("no {}approvals", if all { "" } else { "pending " });
    } else {
        for a in &approvals {
            println!("{}", line(a));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn line(a: &Approval) -> String {
    format!(
        "{id}  {state:<8} {tool} {args}  by {who} via {origin}; {reason}; plan: {plan}; expires {exp}",
        id = a.id,
        state = format!("{:?}", a.state).to_lowercase(),
        tool = a.tool,
        args = a.args,
        who = a.principal,
        origin = a.origin,
        reason = a.reason,
        plan = a.plan["summary"].as_str().unwrap_or(""),
        exp = steward_tools::when::format(a.expires_at),
    )
}

pub async fn approve(
    cfg: &Config,
    id: &str,
    principal: Option<String>,
    reason: Option<String>,
    as_json: bool,
) -> Result<ExitCode> {
    let who = approver(cfg, principal)?;
    let orchestrator = match call::orchestrator(cfg).await {
        Ok(o) => o,
        Err(e) => anyhow::bail!("{e}"),
    };
    let outcome = orchestrator.approve(id, &who, reason.as_deref()).await;
    orchestrator.audit().close().await?;
    let outcome = outcome?;
    Ok(call::render("approve", false, as_json, &outcome))
}

pub async fn deny(
    cfg: &Config,
    id: &str,
    principal: Option<String>,
    reason: Option<String>,
) -> Result<ExitCode> {
    let who = approver(cfg, principal)?;
    let orchestrator = match call::orchestrator(cfg).await {
        Ok(o) => o,
        Err(e) => anyhow::bail!("{e}"),
    };
    let a = orchestrator.deny(id, &who, reason.as_deref()).await;
    orchestrator.audit().close().await?;
    let a = a?;
    println!("denied {}: {} {} will never run", a.id, a.tool, a.args);
    Ok(ExitCode::SUCCESS)
}

/// Prints the decision and the policies behind it; validates the call, runs nothing.
pub async fn policy_check(
    cfg: &Config,
    caller: &Caller,
    tool: &str,
    args: &str,
) -> Result<ExitCode> {
    let bad = |msg: String| {
        eprintln!("steward policy check: {msg}");
        Ok(ExitCode::from(2))
    };
    let args = match call::parse_args(args) {
        Ok(a) => a,
        Err(e) => return bad(e.message),
    };
    let (principal, origin) = match call::parse_caller(caller) {
        Ok(pc) => pc,
        Err(e) => return bad(e.message),
    };
    let call = match Call::parse(tool, args) {
        Ok(c) => c,
        Err(e) => return bad(e.message),
    };
    let policies = path::load_policies(cfg)?;
    let hour_utc = steward_agent::orchestrator::hour_utc(steward_tools::Clock::now(
        &steward_tools::SystemClock,
    ));
    let decision = policies.vet(&VetRequest {
        principal: &principal,
        call: &call,
        origin,
        untrusted_text: caller.untrusted_text,
        hour_utc,
    });
    let (verdict, reason) = match &decision {
        Decision::Allow { .. } => ("allow", String::new()),
        Decision::NeedsApproval { reason, .. } => ("needs approval", reason.clone()),
        Decision::Deny { reason, .. } => ("deny", reason.clone()),
    };
    println!(
        "{verdict}: {tool} {} as {} from {}{}",
        call.args_json(),
        caller.principal,
        caller.origin,
        if caller.untrusted_text {
            " (untrusted text)"
        } else {
            ""
        }
    );
    println!("policies: {}", json!(decision.policies()));
    if !reason.is_empty() {
        println!("why: {reason}");
    }
    Ok(ExitCode::SUCCESS)
}
