//! `steward demo up|down`: the demo platform, a few services named like the real ones, each a
//! container of the demo image behind a Traefik host route.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use steward_exec::docker::DockerClient;
use steward_exec::platform::{Outcome, Platform, ServiceSpec};
use steward_exec::traefik::{RouteDir, TraefikApi};

use crate::config::{Config, Key};

/// The platform services the demo brings up.
pub const SERVICES: [&str; 3] = ["rentguy", "psra", "n8n"];

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
        port: 8080,
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
