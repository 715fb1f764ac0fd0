//! `steward approvals`, `steward approve|deny <id>` and `steward policy check`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use steward_agent::approvals::{Approval, ApprovalState, ApprovalStore};
use steward_agent::orchestrator::expire_due;
use steward_policy::{Principal, VetRequest};
use steward_protocol::Decision;
use steward_tools::Call;

use crate::call::{self, Caller};
use crate::config::Config;
use crate::path;

/// The answering principal: `--as`, else the `principal` setting; an error names the layer
/// the bad value came from.
fn approver(cfg: &Config, principal: Option<String>) -> Result<Principal> {
    let (p, from) = crate::config::principal_arg(cfg, principal)?;
    Principal::parse(&p).with_context(|| format!("{from} {p:?}"))
}

/// Exit code of an answer that was refused (and audited): like a call policy refused.
const EXIT_REFUSED: u8 = steward_agent::status::EXIT_NOT_RUN;

pub async fn list(cfg: &Config, all: bool, as_json: bool) -> Result<ExitCode> {
    let audit = path::audit_log(cfg).await?;
    let approvals = ApprovalStore::new(audit.store().clone());
    // Expired on read, so nothing is listed as pending that can no longer be answered.
    expire_due(
        &approvals,
        &audit,
        steward_tools::Clock::now(&steward_tools::SystemClock),
    )
    .await?;
    audit.close().await?;
    let approvals = approvals.list(all).await?;
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
    let steward = match call::steward(cfg).await {
        Ok(s) => s,
        Err(e) => anyhow::bail!("{e}"),
    };
    let outcome = steward
        .orchestrator
        .approve(id, &who, reason.as_deref())
        .await;
    steward.close().await?;
    match outcome {
        Ok(outcome) => Ok(call::render("approve", false, as_json, &outcome)),
        Err(steward_agent::Error::Refused(message)) => Ok(refused("approve", &message, as_json)),
        Err(e) => Err(e.into()),
    }
}

pub async fn deny(
    cfg: &Config,
    id: &str,
    principal: Option<String>,
    reason: Option<String>,
) -> Result<ExitCode> {
    let who = approver(cfg, principal)?;
    let steward = match call::steward(cfg).await {
        Ok(s) => s,
        Err(e) => anyhow::bail!("{e}"),
    };
    let a = steward.orchestrator.deny(id, &who, reason.as_deref()).await;
    steward.close().await?;
    let a = match a {
        Ok(a) => a,
        Err(steward_agent::Error::Refused(message)) => return Ok(refused("deny", &message, false)),
        Err(e) => return Err(e.into()),
    };
    let verb = if a.state == ApprovalState::Withdrawn {
        "withdrew"
    } else {
        "denied"
    };
    println!("{verb} {}: {} {} will never run", a.id, a.tool, a.args);
    Ok(ExitCode::SUCCESS)
}

/// Reports a refused answer; it is already in the audit log.
fn refused(verb: &str, message: &str, as_json: bool) -> ExitCode {
    if as_json {
        let body = json!({"ok": false, "status": "refused",
                          "error": {"kind": "denied", "message": message}});
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        eprintln!("steward {verb}: {message}");
    }
    ExitCode::from(EXIT_REFUSED)
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
