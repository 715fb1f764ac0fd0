//! `steward demo up|down|break`: the demo platform, a few services named like the real ones,
//! each a container of the demo image behind a Traefik host route, and the faults that set
//! the alert loop going.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use steward_exec::docker::DockerClient;
use steward_exec::labels;
use steward_exec::platform::{Outcome, Platform, ServiceSpec};
use steward_exec::traefik::{RouteDir, TraefikApi};

use crate::config::{Config, Key};

/// The platform services the demo brings up.
pub const SERVICES: [&str; 3] = ["rentguy", "psra", "n8n"];

/// The port the demo image listens on (its Dockerfile's `PORT`).
const DEMO_PORT: u16 = 8080;

/// How long a fresh container may take to pass its health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn platform(cfg: &Config) -> Result<Platform> {
    Ok(Platform {
        docker: DockerClient::connect()
            .await
            .with_context(|| {
                let host = std::env::var("DOCKER_HOST")
                    .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
                format!("cannot reach the Docker Engine at {host} (is dockerd running? is DOCKER_HOST right?)")
            })?,
        routes: RouteDir::new(cfg.require(Key::TraefikDynamicDir)?),
        traefik: TraefikApi::new(cfg.require(Key::TraefikApi)?)?,
    })
}

pub fn spec(cfg: &Config, service: &str, tag: &str) -> Result<ServiceSpec> {
    Ok(ServiceSpec {
        service: service.into(),
        kind: "platform".into(),
        release: "r1".into(),
        image: format!("steward-demo:{tag}"),
        env: vec![],
        port: DEMO_PORT,
        host: format!("{service}.{}", cfg.require(Key::Domain)?),
        extra_labels: vec![],
    })
}

pub async fn up(cfg: &Config, tag: &str) -> Result<()> {
    let platform = platform(cfg).await?;
    let web = cfg.require(Key::TraefikWeb)?;
    for service in SERVICES {
        let spec = spec(cfg, service, tag)?;
        let started = Instant::now();
        let outcome = platform
            .ensure_service(&spec, HEALTH_TIMEOUT)
            .await
            .with_context(|| format!("demo: {service} did not come up"))?;
        let verb = match outcome {
            Outcome::AlreadyRunning(_) => "already running",
            Outcome::Started(_) => "started",
        };
        println!(
            "demo: {service:<8} {verb} ({} in {:.1}s), route http://{} via {web}",
            spec.image,
            started.elapsed().as_secs_f64(),
            spec.host
        );
    }
    Ok(())
}

pub async fn down(cfg: &Config) -> Result<()> {
    let platform = platform(cfg).await?;
    for service in SERVICES {
        let removed = platform.remove_service(service).await?;
        println!("demo: {service:<8} removed {removed} container(s) and its route");
    }
    Ok(())
}

/// A fault `steward demo break` injects through the demo app's admin endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `/health` fails, across restarts too (`POST /admin/health/break`): Prometheus'
    /// `ServiceDown` fires, and only a rollback to another release heals it.
    Health,
    /// Every request answers 500 (`POST /admin/errors/on`) until the app restarts:
    /// `HighErrorRate` fires once there is traffic.
    Errors,
}

impl Fault {
    fn path(self) -> &'static str {
        match self {
            Fault::Health => "/admin/health/break",
            Fault::Errors => "/admin/errors/on",
        }
    }

    fn effect(self) -> &'static str {
        match self {
            Fault::Health => {
                "/health now fails for good (a restart keeps it broken; a rollback heals it)"
            }
            Fault::Errors => {
                "every request now answers 500 until the app restarts (POST /admin/errors/off clears it)"
            }
        }
    }
}

/// Breaks every running container of the platform service `service`, talking to the app
/// directly on its container IP (the host reaches Docker's bridge networks), so the fault
/// does not depend on Traefik. Exit 2 when no such service runs.
pub async fn break_service(cfg: &Config, service: &str, fault: Fault) -> Result<ExitCode> {
    let platform = platform(cfg).await?;
    let containers = platform
        .docker
        .managed_containers(&[format!("{}=platform", labels::KIND)])
        .await
        .context("demo break: cannot list the platform's containers")?;
    let running: Vec<_> = containers.iter().filter(|c| c.state == "running").collect();
    let targets: Vec<_> = running.iter().filter(|c| c.service == service).collect();
    if targets.is_empty() {
        let mut known: Vec<&str> = running.iter().map(|c| c.service.as_str()).collect();
        known.dedup();
        let known = if known.is_empty() {
            "none runs; start them with `steward demo up`".to_string()
        } else {
            format!("running: {}", known.join(", "))
        };
        eprintln!("steward demo break: no running platform service {service:?} ({known})");
        return Ok(ExitCode::from(2));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    for c in targets {
        let ip =
            c.ip.as_deref()
                .with_context(|| format!("demo break: {} has no IP on a Docker network", c.name))?;
        let url = format!("http://{ip}:{DEMO_PORT}{}", fault.path());
        let resp = client
            .post(&url)
            .send()
            .await
            .with_context(|| format!("demo break: POST {url} ({})", c.name))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            anyhow::bail!(
                "demo break: POST {url} ({}) answered {status}: {}",
                c.name,
                body.trim()
            );
        }
        println!(
            "demo: {service} {} ({}, {}): {}",
            c.release,
            c.name,
            c.image,
            fault.effect()
        );
    }
    Ok(ExitCode::SUCCESS)
}
