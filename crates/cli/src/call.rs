//! `steward call <tool> '<json args>' [--dry-run] [--json] [--as P] [--origin O]`: one typed
//! tool call down the single request path (validate, vet, dry-run, approve, execute, audit),
//! on the one wiring ([`Steward`]).

use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value};
use steward_agent::status;
use steward_agent::{Outcome, Request};
use steward_policy::Principal;
use steward_protocol::Origin;
use steward_tools::{ErrorKind, ToolError};

use crate::config::Config;
use crate::wiring::Steward;

/// Steward assembled for one command; a state store or configuration that cannot be opened
/// is reported as the call's `unavailable` error rather than a crash.
pub async fn steward(cfg: &Config) -> Result<Steward, ToolError> {
    Steward::open(cfg)
        .await
        .map_err(|e| ToolError::new(ErrorKind::Unavailable, format!("{e:#}")))
}

/// Who is asking and from where.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: String,
    pub origin: String,
    pub untrusted_text: bool,
}

/// Parses, validates and runs (or dry-runs) one call, printing the outcome.
pub async fn run(
    cfg: &Config,
    caller: &Caller,
    tool: &str,
    args: &str,
    dry_run: bool,
    as_json: bool,
) -> Result<ExitCode> {
    let fail = |e: ToolError| Ok(report_error(tool, dry_run, as_json, &e));
    let args = match parse_args(args) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let (principal, origin) = match parse_caller(caller) {
        Ok(pc) => pc,
        Err(e) => return fail(e),
    };
    let steward = match steward(cfg).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let outcome = steward
        .orchestrator
        .handle(Request {
            principal,
            origin,
            intent_text: None,
            untrusted_text: caller.untrusted_text,
            tool: tool.to_string(),
            args,
            dry_run_only: dry_run,
        })
        .await?;
    steward.close().await?;
    Ok(render(tool, dry_run, as_json, &outcome))
}

pub fn parse_caller(caller: &Caller) -> Result<(Principal, Origin), ToolError> {
    let principal = Principal::parse(&caller.principal).map_err(|e| {
        ToolError::new(
            ErrorKind::InvalidArgs,
            format!("--as {:?}: {e}", caller.principal),
        )
    })?;
    let origin: Origin = serde_json::from_value(json!(caller.origin)).map_err(|_| {
        ToolError::new(
            ErrorKind::InvalidArgs,
            format!(
                "--origin {:?}: use chat, webhook, alert, monitor, mcp, api or schedule",
                caller.origin
            ),
        )
    })?;
    Ok((principal, origin))
}

pub fn parse_args(args: &str) -> Result<Value, ToolError> {
    serde_json::from_str(if args.trim().is_empty() { "{}" } else { args }).map_err(|e| {
        ToolError::new(
            ErrorKind::InvalidArgs,
            format!(
                "arguments are not valid JSON ({e}); pass an object such as '{{\"service\": \"rentguy\"}}'"
            ),
        )
    })
}

/// Prints an outcome for a person or as JSON and picks the exit code.
pub fn render(tool: &str, dry_run: bool, as_json: bool, outcome: &Outcome) -> ExitCode {
    let policies = |d: &steward_protocol::Decision| d.policies().join(", ");
    let code = outcome.exit_code();
    let (ok, text) = match outcome {
        Outcome::Refused { message, .. } => (false, format!("steward call {tool}: {message}")),
        Outcome::Planned { plan, decision } => {
            let mut text = format!("would {}", plan.summary);
            for (i, s) in plan.steps.iter().enumerate() {
                text.push_str(&format!("\n  {}. {s}", i + 1));
            }
            text.push_str(&format!(
                "\npolicy: {} ({})",
                verdict(decision),
                policies(decision)
            ));
            (true, text)
        }
        Outcome::PendingApproval { approval, decision } => (
            false,
            format!(
                "needs approval: {} ({})\nplan: {}\napproval {} waits until {}; answer with \
                 `steward approve {}` or `steward deny {}`",
                approval.reason,
                policies(decision),
                approval.plan["summary"].as_str().unwrap_or(""),
                approval.id,
                steward_tools::when::format(approval.expires_at),
                approval.id,
                approval.id
            ),
        ),
        Outcome::Done { done, .. } => {
            let mut text = done.summary.clone();
            if !done.output.is_null() {
                text.push('\n');
                text.push_str(&serde_json::to_string_pretty(&done.output).unwrap_or_default());
            }
            (true, text)
        }
        Outcome::Failed { message, .. } => (false, format!("steward call {tool}: {message}")),
    };
    if as_json {
        let mut body = json!({"ok": ok, "tool": tool, "dry_run": dry_run});
        if let (Value::Object(m), Ok(Value::Object(o))) = (&mut body, serde_json::to_value(outcome))
        {
            m.extend(o);
        }
        // A finished call's summary, changed flag and output sit at the top level.
        if let Outcome::Done { done, .. } = outcome {
            body["summary"] = json!(done.summary);
            body["changed"] = json!(done.changed);
            body["output"] = done.output.clone();
        }
        if let Outcome::Refused { kind, message, .. } | Outcome::Failed { kind, message, .. } =
            outcome
        {
            body["error"] = json!({"kind": kind, "message": message});
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else if ok {
        println!("{text}");
    } else {
        eprintln!("{text}");
    }
    ExitCode::from(code)
}

fn verdict(d: &steward_protocol::Decision) -> &'static str {
    match d {
        steward_protocol::Decision::Allow { .. } => "allow",
        steward_protocol::Decision::NeedsApproval { .. } => "needs approval",
        steward_protocol::Decision::Deny { .. } => "deny",
    }
}

fn report_error(tool: &str, dry_run: bool, as_json: bool, e: &ToolError) -> ExitCode {
    if as_json {
        let out = json!({"ok": false, "tool": tool, "dry_run": dry_run,
                         "error": {"kind": e.kind, "message": e.message}});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        eprintln!("steward call {tool}: {e}");
    }
    ExitCode::from(status::for_error("input", e.kind).0)
}
