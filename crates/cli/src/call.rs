//! `steward call <tool> '<json args>' [--dry-run] [--json] [--as P] [--origin O]`: one typed
//! tool call down the single request path (validate, vet, dry-run, approve, execute, audit),
//! with the deterministic executors wired in here and nowhere else.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steward_agent::{Orchestrator, Outcome, Request};
use steward_exec::env::{Env, ExecConfig};
use steward_policy::Principal;
use steward_protocol::Origin;
use steward_tools::{ErrorKind, Executor, SystemClock, ToolError};

use crate::config::{Config, Key};
use crate::{demo, path};

/// Exit code for input the caller must fix (unknown tool, bad JSON, invalid arguments).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a call that policy or a guard refused, or that waits for approval.
const EXIT_NOT_RUN: u8 = 3;

/// The executors on the real services named by `cfg`.
async fn executors(cfg: &Config, env: Arc<Env>) -> Result<Vec<Arc<dyn Executor>>> {
    let mut all = steward_exec::executors(env);
    all.push(crate::origin::executor(cfg).await?);
    Ok(all)
}

/// The executors' view of the platform: Docker, PostgreSQL, Traefik and their settings.
pub async fn env(cfg: &Config) -> Result<Arc<Env>> {
    let platform = demo::platform(cfg).await?;
    let mut exec = ExecConfig::new(cfg.home.join("exec"), cfg.require(Key::PgUrl)?.to_string());
    exec.pg_container_host = cfg.require(Key::PgContainerHost)?.to_string();
    exec.traefik_web = cfg.require(Key::TraefikWeb)?.to_string();
    exec.domain = cfg.require(Key::Domain)?.to_string();
    exec.tenant_image = cfg.require(Key::TenantImage)?.to_string();
    exec.tenant_app = cfg.require(Key::TenantApp)?.to_string();
    exec.tenant_database = cfg.require(Key::TenantDatabase)?.to_string();
    exec.tenant_subnet_pool = cfg.require(Key::TenantSubnetPool)?.to_string();
    // The platform's services, from the same file policy reads: no tenant may take a name
    // policy would treat as a platform service.
    let policies = path::policies_dir(cfg)?;
    exec.reserved_services = steward_policy::platform_services(&policies).with_context(|| {
        format!(
            "cannot read the platform services in {}",
            policies.display()
        )
    })?;
    exec.release_retention = cfg
        .require(Key::ReleaseRetention)?
        .parse()
        .map_err(|e| anyhow::anyhow!("release_retention must be a whole number: {e}"))?;
    Ok(Arc::new(Env::new(platform, Arc::new(SystemClock), exec)))
}

/// The orchestrator with the real executors; a dead Docker Engine is reported as the call's
/// `unavailable` error rather than a crash.
pub async fn orchestrator(cfg: &Config) -> Result<Orchestrator, ToolError> {
    let env = env(cfg).await.map_err(unavailable)?;
    orchestrator_on(cfg, env).await
}

/// [`orchestrator`] on an `env` the caller also uses (the planner reads its inventory).
pub async fn orchestrator_on(cfg: &Config, env: Arc<Env>) -> Result<Orchestrator, ToolError> {
    let executors = executors(cfg, env).await.map_err(unavailable)?;
    path::orchestrator(cfg, executors)
        .await
        .map_err(unavailable)
}

fn unavailable(e: anyhow::Error) -> ToolError {
    ToolError::new(ErrorKind::Unavailable, format!("{e:#}"))
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
    let orchestrator = match orchestrator(cfg).await {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let outcome = orchestrator
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
    // Signs a checkpoint over the new head, so a truncated tail is caught from here on.
    orchestrator.audit().close().await?;
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
    let (ok, code, text) = match outcome {
        Outcome::Refused { kind, message, .. } => {
            let code = match kind {
                ErrorKind::UnknownTool | ErrorKind::InvalidArgs => EXIT_BAD_INPUT,
                ErrorKind::Denied => EXIT_NOT_RUN,
                _ => 1,
            };
            (false, code, format!("steward call {tool}: {message}"))
        }
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
            (true, 0, text)
        }
        Outcome::PendingApproval { approval, decision } => (
            false,
            EXIT_NOT_RUN,
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
            (true, 0, text)
        }
        Outcome::Failed { message, .. } => (false, 1, format!("steward call {tool}: {message}")),
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
    match e.kind {
        ErrorKind::UnknownTool | ErrorKind::InvalidArgs => ExitCode::from(EXIT_BAD_INPUT),
        _ => ExitCode::FAILURE,
    }
}
