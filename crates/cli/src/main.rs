//! `steward`: the AI ops steward's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use steward_cli::config::{Config, Key};
use steward_cli::{
    approvals, audit, call, chat, demo, doctor, incidents, origin, planner, resolve_home, status,
};

#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version,
    about = "AI ops steward for a single-host Docker + Traefik + PostgreSQL platform"
)]
struct Cli {
    /// Steward's home (state, config.toml, routes). Default: $STEWARD_HOME or ./.steward
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// State store URL: sqlite://<path> (default <home>/state.db) or postgres://...
    #[arg(long, global = true)]
    state_url: Option<String>,
    /// PostgreSQL admin URL for the platform database
    #[arg(long, global = true)]
    pg_url: Option<String>,
    /// Traefik API base URL
    #[arg(long, global = true)]
    traefik_api: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check Docker, PostgreSQL, Traefik, the model files and the state store; exit 1 if any fails
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// List managed containers with health, image, release and live route
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Show every configuration value and the layer it came from (secrets masked)
    Config,
    /// Propose one catalogue tool call with JSON arguments, e.g.
    /// `steward call service_status '{"service":"rentguy"}'`.
    ///
    /// The call goes down the one request path: validate, vet (policy and guards), dry-run,
    /// approval where policy asks for it, execute, audit. Exit code 0 done, 1 failed,
    /// 2 input to fix, 3 refused by policy or a guard, or waiting for approval.
    Call {
        /// Tool name from the catalogue (`steward tools list`)
        tool: String,
        /// Arguments as a JSON object; `{}` when omitted
        #[arg(default_value = "{}")]
        args: String,
        /// Describe the change and the policy decision without making it
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        caller: CallerArgs,
    },
    /// Pending approvals (with --all, answered ones too)
    Approvals {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending call and run it
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// The approving operator (default: the `principal` setting)
        #[arg(long = "as")]
        principal: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deny a pending call; it can never run
    Deny {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long = "as")]
        principal: Option<String>,
    },
    /// Policy tools
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Run Steward as a service: the HTTP intake for Alertmanager and signed webhooks on
    /// `listen` (default 127.0.0.1:58100), and the trigger engine that runs the rulebooks'
    /// ladders through the request path. SIGTERM/SIGINT drain and stop it. Logs go to
    /// stderr (STEWARD_LOG, default info)
    Serve(steward_cli::serve::ServeOpts),
    /// Serve Steward's tools over MCP on stdin/stdout, for a desktop agent: every call runs
    /// down the request path as the client's principal (origin mcp), so policy decides and
    /// the audit log records it; calls that need a person come back naming the approval.
    /// Streamable HTTP is at `steward serve`'s /mcp (a token of an mcp:<client> principal)
    Mcp {
        /// The client's principal, mcp:<client> (e.g. mcp:claude-desktop; policies/entities.toml
        /// lists which tools each client may use)
        #[arg(long = "as")]
        principal: String,
    },
    /// Incidents the trigger engine opened, newest first
    Incidents {
        /// Only those still open or waiting for approval
        #[arg(long)]
        open: bool,
        #[arg(long)]
        json: bool,
    },
    /// One incident: the event, the rule, and each step with its decision and outcome
    Incident {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// The inbox: what Steward told people (ladder notify steps), newest first
    Notifications {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Trigger rulebooks (policies/rules/*.toml): check them, show what an event would do,
    /// or draft a rule from plain words
    Rules {
        #[command(subcommand)]
        action: steward_cli::rules::RulesAction,
    },
    /// Bearer tokens for `steward serve`: create (shown once), list, revoke
    Token {
        #[command(subcommand)]
        action: steward_cli::token::TokenAction,
    },
    /// Signed webhooks (policies/hooks.toml): manage a hook's signing secret
    Hooks {
        #[command(subcommand)]
        action: steward_cli::hooks::HooksAction,
    },
    /// The tamper-evident audit log
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// The tool catalogue: list it, show a schema, or regenerate tools/*.json
    Tools {
        #[command(subcommand)]
        action: ToolsAction,
    },
    /// Rules of origin: check a bill of materials, compare agreements, import products and
    /// supplier declarations, report the rule compiler's coverage
    Origin {
        #[command(subcommand)]
        action: OriginAction,
    },
    /// Turn a request in plain words into a proposed tool call: prints the call, the policy
    /// decision and the dry-run; executes nothing
    Plan {
        text: String,
        /// Services and tenants from this JSON file instead of Docker:
        /// {"services": [{"name": "rentguy", "kind": "platform", "description": "..."}]}
        #[arg(long)]
        inventory: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Talk to Steward: it investigates with read tools, shows each step, asks for approval
    /// inline when policy requires it, and runs what you allow
    Chat {
        /// Services and tenants from this JSON file instead of Docker
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// Show each tool's raw JSON output after its one-line-per-fact summary (`/json`
        /// shows the last one)
        #[arg(long)]
        verbose: bool,
    },
    /// Load the planner and save its prompt state for the live inventory, so the first
    /// answer of the next `steward chat` or `steward plan` comes in seconds (scripts/setup
    /// runs it)
    Warm {
        /// Services and tenants from this JSON file instead of Docker
        #[arg(long)]
        inventory: Option<PathBuf>,
    },
    /// Run the planner evals (evals/cases) through the real model and report accuracy per
    /// category, exact-match rate, latency p50/p95 and injection escapes
    Eval(steward_cli::eval::EvalOpts),
    /// Make a home for an installed steward: write <home>/config.toml if there is none and
    /// copy the shipped policies/ and models/*.toml into <home>/share/, so steward works from
    /// any directory. Idempotent; never overwrites a file you edited (it says which it kept)
    Init,
    /// Bring the demo platform (rentguy, psra, n8n) up or down, or break one of its services
    Demo {
        #[command(subcommand)]
        action: DemoAction,
    },
}

/// Who proposes a call and where it came from.
#[derive(Debug, clap::Args)]
struct CallerArgs {
    /// Principal as kind:id (operator:alice, alert_rule:rentguy-down, webhook:n8n,
    /// service_account:tenant-acme, mcp:client, role:viewer); default: the `principal` setting
    #[arg(long = "as")]
    principal: Option<String>,
    /// Origin: chat, webhook, alert, monitor, mcp, api or schedule
    #[arg(long, default_value = "api")]
    origin: String,
    /// The call was derived from untrusted text (a log line, an alert annotation, a webhook body)
    #[arg(long)]
    untrusted: bool,
}

#[derive(Debug, Subcommand)]
enum PolicyAction {
    /// Print the decision for a call and the policies behind it; runs nothing
    Check {
        tool: String,
        #[arg(default_value = "{}")]
        args: String,
        #[command(flatten)]
        caller: CallerArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AuditAction {
    /// Check the hash chain and the signed head checkpoint; exit 1 and name the record on
    /// tampering, and exit 1 too when a store with records has no checkpoint
    Verify {
        #[arg(long)]
        json: bool,
        /// If the store has records but no checkpoint and its chain is intact, sign its head
        /// as the first checkpoint (only when the log is known to be good)
        #[arg(long)]
        first_checkpoint: bool,
    },
    /// Full-text search over the records, newest first
    Search {
        query: String,
        /// Only records newer than this (10m, 2h ago, yesterday, RFC3339)
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the search index from the store
    Reindex,
    /// Sign the current head now and print it as one JSON line: append that line to a file
    /// kept off this host (e.g. from cron) so even someone who controls the data dir cannot
    /// cut the tail unnoticed
    Checkpoint,
}

#[derive(Debug, Subcommand)]
enum ToolsAction {
    /// One line per tool: name, effect, summary
    List,
    /// Print one tool's definition (summary, effect, JSON Schema of its arguments)
    Show { tool: String },
    /// Regenerate the committed definitions under tools/ from the typed argument structs
    Export {
        #[arg(long, default_value = "tools")]
        dir: PathBuf,
    },
    /// Print the HTTP API's OpenAPI 3.1 document (served at /openapi.json; committed as
    /// docs/openapi.json: `steward tools openapi > docs/openapi.json`)
    Openapi,
}

#[derive(Debug, Subcommand)]
enum OriginAction {
    /// Check FILE.json (origin_check arguments: an inline bill of materials as in ORIGIN.md,
    /// or {"product": "<stored id>", "agreement": ...}) through validate, vet and audit.
    /// Exit code 0 evaluated (whatever the verdict), 2 input to fix, 3 refused by policy.
    Check {
        file: PathBuf,
        /// Agreement id (uk-eu-tca, uk-japan-cepa, uk-canada); overrides the file's
        #[arg(long)]
        agreement: Option<String>,
        /// Shipment date YYYY-MM-DD; overrides the file's
        #[arg(long)]
        date: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        caller: CallerArgs,
    },
    /// Which agreements does a product qualify under? PRODUCT is a stored product id or a
    /// JSON file with an inline bill of materials.
    Compare {
        product: String,
        /// Comma-separated agreement ids; all when absent
        #[arg(long, value_delimiter = ',')]
        agreements: Vec<String>,
        #[arg(long)]
        date: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        caller: CallerArgs,
    },
    /// Store supplier declarations from a CSV with the header
    /// supplier,part,hs,origin,kind,valid_from,valid_to[,issued_on]:
    /// origin is originating|non-originating; kind is ltsd (at most 24 months, starting 12
    /// months before to 6 months after issued_on), sd or other; dates are YYYY-MM-DD.
    /// Stored products' materials name a `part` (and optionally a `supplier`); the
    /// declaration valid on the shipment date gives their origin.
    ImportDeclarations { file: PathBuf },
    /// Store products from FILE.json: one {"id", "product", "materials"} document or a list
    /// of them (materials as in ORIGIN.md; `part` links a material to its declarations)
    ImportProducts { file: PathBuf },
    /// Per agreement: rule sets compiled, overridden and unsupported, and the unsupported list
    Coverage {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DemoAction {
    /// Start the demo services from steward-demo:<tag> and route them through Traefik
    Up {
        #[arg(long, default_value = "v1")]
        tag: String,
    },
    /// Remove the demo services' containers and routes
    Down,
    /// Break a running platform service to set the alert loop going.
    ///
    /// By default its health check fails for good (the demo app's POST
    /// /admin/health/break): a restart keeps it broken, so Prometheus' ServiceDown fires,
    /// Alertmanager posts it to `steward serve`, and the service-down rule restarts the
    /// service, then rolls it back to the previous release. With --errors it answers 500 to
    /// every request instead (POST /admin/errors/on) until it restarts, which fires
    /// HighErrorRate once there is traffic. Exit 2 when no such service runs.
    Break {
        /// The service, e.g. rentguy (`steward status` lists them)
        service: String,
        /// Make it answer 500s instead of failing its health check
        #[arg(long)]
        errors: bool,
    },
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    // A service logs what it does; a command says only what went wrong.
    let default_log = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("steward: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // The reader went away (`steward status | head -1`): nothing left to say to anyone.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `println!` panics when stdout is a pipe whose reader has gone (`steward status | true`):
/// the Rust runtime ignores SIGPIPE, so the write fails with EPIPE instead of ending the
/// process. Restoring SIGPIPE would also kill steward on a socket a peer closed, so instead
/// a failed print to a closed pipe ends the process quietly, like `head` expects, and every
/// other panic is reported as before.
fn quiet_on_broken_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let broken = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        if message.starts_with("failed printing to std")
            && (message.contains("os error 32") || message.contains(&broken.to_string()))
        {
            std::process::exit(0);
        }
        report(info);
    }));
}

/// An error that is, at its root, a write to a closed pipe (e.g. a `flush()?` of stdout).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let home = resolve_home(cli.home.as_deref(), std::env::var("STEWARD_HOME").ok())?;
    let flags: Vec<(Key, String)> = [
        (Key::StateUrl, cli.state_url),
        (Key::PgUrl, cli.pg_url),
        (Key::TraefikApi, cli.traefik_api),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let cfg = Config::load(&home, &|k| std::env::var(k).ok(), &flags)?;
    // A store in a directory that does not exist is a typo, not a new store (doctor reports
    // it as its state check; the others do not open the store).
    if !matches!(
        cli.command,
        Command::Doctor { .. } | Command::Config | Command::Tools { .. } | Command::Init
    ) {
        steward_cli::config::check_state_dir(&cfg)?;
    }
    match cli.command {
        Command::Doctor { json } => {
            let checks = doctor::run(&cfg).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                checks.iter().for_each(|c| println!("{}", c.line()));
            }
            let failed = checks.iter().filter(|c| !c.ok).count();
            if failed > 0 {
                eprintln!("steward doctor: {failed} of {} checks failed", checks.len());
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Status { json } => {
            let status = status::collect(&cfg).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("{}", status::render(&status));
            }
        }
        Command::Call {
            tool,
            args,
            dry_run,
            json,
            caller,
        } => {
            let caller = caller.resolve(&cfg)?;
            return call::run(&cfg, &caller, &tool, &args, dry_run, json).await;
        }
        Command::Approvals { all, json } => return approvals::list(&cfg, all, json).await,
        Command::Serve(opts) => return steward_cli::serve::run(&cfg, opts).await,
        Command::Mcp { principal } => return steward_cli::serve::mcp_stdio(&cfg, &principal).await,
        Command::Incidents { open, json } => return incidents::list(&cfg, open, json).await,
        Command::Incident { id, json } => return incidents::show(&cfg, &id, json).await,
        Command::Notifications { limit, json } => {
            return incidents::notifications(&cfg, limit, json).await
        }
        Command::Approve {
            id,
            reason,
            principal,
            json,
        } => return approvals::approve(&cfg, &id, principal, reason, json).await,
        Command::Deny {
            id,
            reason,
            principal,
        } => return approvals::deny(&cfg, &id, principal, reason).await,
        Command::Policy {
            action: PolicyAction::Check { tool, args, caller },
        } => {
            let caller = caller.resolve(&cfg)?;
            return approvals::policy_check(&cfg, &caller, &tool, &args).await;
        }
        Command::Rules { action } => return steward_cli::rules::run(&cfg, action).await,
        Command::Token { action } => return steward_cli::token::run(&cfg, action).await,
        Command::Hooks { action } => return steward_cli::hooks::run(&cfg, action),
        Command::Audit { action } => {
            return match action {
                AuditAction::Verify {
                    json,
                    first_checkpoint,
                } => audit::verify(&cfg, json, first_checkpoint).await,
                AuditAction::Search {
                    query,
                    since,
                    limit,
                    json,
                } => audit::search(&cfg, &query, since.as_deref(), limit, json).await,
                AuditAction::Reindex => audit::reindex(&cfg).await,
                AuditAction::Checkpoint => audit::checkpoint(&cfg).await,
            }
        }
        Command::Tools { action } => return tools_command(action),
        Command::Origin { action } => {
            return match action {
                OriginAction::Check {
                    file,
                    agreement,
                    date,
                    json,
                    caller,
                } => {
                    let caller = caller.resolve(&cfg)?;
                    origin::check(&cfg, &caller, &file, agreement, date, json).await
                }
                OriginAction::Compare {
                    product,
                    agreements,
                    date,
                    json,
                    caller,
                } => {
                    let caller = caller.resolve(&cfg)?;
                    origin::compare(&cfg, &caller, &product, agreements, date, json).await
                }
                OriginAction::ImportDeclarations { file } => {
                    origin::import_declarations(&cfg, &file).await
                }
                OriginAction::ImportProducts { file } => origin::import_products(&cfg, &file).await,
                OriginAction::Coverage { json } => origin::coverage(json),
            }
        }
        Command::Plan {
            text,
            inventory,
            json,
        } => return chat::plan(&cfg, &text, inventory.as_deref(), json).await,
        Command::Chat { inventory, verbose } => {
            return chat::chat(&cfg, inventory.as_deref(), verbose).await
        }
        Command::Warm { inventory } => return chat::warm(&cfg, inventory.as_deref()).await,
        Command::Eval(opts) => {
            // One model serves both: the planner's cases and the rule drafts.
            let router = planner::router(&cfg, opts.model.as_deref())?;
            let backend = planner::planner_over(&cfg, router.clone())?;
            return steward_cli::eval::run(&cfg, opts, backend, router).await;
        }
        Command::Config => cfg.describe().iter().for_each(|l| println!("{l}")),
        Command::Init => {
            let source = steward_cli::init::source(&|k| std::env::var(k).ok());
            let report = steward_cli::init::run(&home, &source)?;
            report.lines(&home).iter().for_each(|l| println!("{l}"));
        }
        Command::Demo {
            action: DemoAction::Up { tag },
        } => demo::up(&cfg, &tag).await?,
        Command::Demo {
            action: DemoAction::Down,
        } => demo::down(&cfg).await?,
        Command::Demo {
            action: DemoAction::Break { service, errors },
        } => {
            let fault = if errors {
                demo::Fault::Errors
            } else {
                demo::Fault::Health
            };
            return demo::break_service(&cfg, &service, fault).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn tools_command(action: ToolsAction) -> Result<ExitCode> {
    match action {
        ToolsAction::List => {
            for t in steward_tools::CATALOGUE {
                let effect = serde_json::to_value(t.effect)?;
                println!(
                    "{:<24} {:<12} {}",
                    t.name,
                    effect.as_str().unwrap_or("?"),
                    t.summary
                );
            }
        }
        ToolsAction::Show { tool } => {
            match steward_tools::schemas::definition_text(&tool) {
                Some(text) => print!("{text}"),
                None => {
                    eprintln!("steward tools show: unknown tool {tool:?}; `steward tools list` lists them");
                    return Ok(ExitCode::from(2));
                }
            }
        }
        ToolsAction::Openapi => print!("{}", steward_server::openapi::document()),
        ToolsAction::Export { dir } => {
            let changed = steward_tools::schemas::export(&dir)?;
            println!(
                "tools: {} definitions in {}, {} changed",
                steward_tools::CATALOGUE.len(),
                dir.display(),
                changed.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl CallerArgs {
    /// The caller. An invalid `principal` setting is refused here, naming the config file
    /// or `STEWARD_PRINCIPAL` it came from; an invalid `--as` goes on to the call path,
    /// which refuses it as input to fix (exit 2, `invalid_args` in JSON) naming `--as`.
    fn resolve(self, cfg: &Config) -> Result<call::Caller> {
        let principal = match self.principal {
            Some(p) => p,
            None => steward_cli::config::principal_arg(cfg, None)?.0,
        };
        Ok(call::Caller {
            principal,
            origin: self.origin,
            untrusted_text: self.untrusted,
        })
    }
}
