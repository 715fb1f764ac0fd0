//! `steward`: the AI ops steward's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use steward_cli::config::{Config, Key};
use steward_cli::{demo, doctor, resolve_home, status};

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
    /// Bring the demo platform (rentguy, psra, n8n) up or down
    Demo {
        #[command(subcommand)]
        action: DemoAction,
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("steward: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("steward: {e:#}");
            ExitCode::FAILURE
        }
    }
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
        Command::Config => cfg.describe().iter().for_each(|l| println!("{l}")),
        Command::Demo {
            action: DemoAction::Up { tag },
        } => demo::up(&cfg, &tag).await?,
        Command::Demo {
            action: DemoAction::Down,
        } => demo::down(&cfg).await?,
    }
    Ok(ExitCode::SUCCESS)
}
