//! Read and manage the containers Steward owns, through the Docker Engine API.

use std::collections::HashMap;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;

use crate::{labels, Result};

/// A connected Docker Engine client, API version negotiated with the engine (the engine here
/// may be older than bollard's default API version).
#[derive(Debug, Clone)]
pub struct DockerClient {
    docker: Docker,
}

/// One container Steward manages, as inventory sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub kind: String,
    pub release: String,
    pub image: String,
    /// Docker state: running, exited, created, ...
    pub state: String,
    /// Health check status (`healthy`, `unhealthy`, `starting`) or `none` without a check.
    pub health: String,
    /// First IP on a Docker network, where Traefik reaches the app.
    pub ip: Option<String>,
}

impl DockerClient {
    /// Connects through `DOCKER_HOST` or the local socket.
    pub async fn connect() -> Result<Self> {
        let docker = Docker::connect_with_local_defaults()?
            .negotiate_version()
            .await?;
        Ok(Self { docker })
    }

    pub fn api(&self) -> &Docker {
        &self.docker
    }

    /// Engine version and API version, e.g. `20.10.24 (API 1.41)`.
    pub async fn version(&self) -> Result<String> {
        let v = self.docker.version().await?;
        Ok(format!(
            "{} (API {})",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default()
        ))
    }

    /// Every container (running or not) that carries a `steward.service` label, optionally
    /// narrowed by more label filters (`key=value`), sorted by service then name.
    pub async fn managed_containers(
        &self,
        extra_labels: &[String],
    ) -> Result<Vec<ManagedContainer>> {
        let mut label_filters = vec![labels::SERVICE.to_string()];
        label_filters.extend(extra_labels.iter().cloned());
        let filters = HashMap::from([("label".to_string(), label_filters)]);
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let mut out = Vec::new();
        for summary in self.docker.list_containers(Some(opts)).await? {
            let Some(id) = summary.id else { continue };
            out.push(from_inspect(
                self.docker.inspect_container(&id, None).await?,
            ));
        }
        out.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
        Ok(out)
    }

    /// Inspects one container by name or id.
    pub async fn container(&self, name: &str) -> Result<ManagedContainer> {
        Ok(from_inspect(
            self.docker.inspect_container(name, None).await?,
        ))
    }
}

fn from_inspect(c: ContainerInspectResponse) -> ManagedContainer {
    let labels = c
        .config
        .as_ref()
        .and_then(|cfg| cfg.labels.clone())
        .unwrap_or_default();
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let state = c.state.as_ref();
    let health = state
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.status)
        .map(health_name)
        .unwrap_or("none");
    let ip = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|nets| {
            let mut nets: Vec<_> = nets.iter().collect();
            nets.sort_by_key(|(name, _)| name.as_str());
            nets.into_iter()
                .find_map(|(_, ep)| ep.ip_address.clone().filter(|ip| !ip.is_empty()))
        });
    ManagedContainer {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        service: label(labels::SERVICE),
        kind: label(labels::KIND),
        release: label(labels::RELEASE),
        image: c.config.and_then(|cfg| cfg.image).unwrap_or_default(),
        state: state
            .and_then(|s| s.status)
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into()),
        health: health.to_string(),
        ip,
    }
}

fn health_name(h: HealthStatusEnum) -> &'static str {
    match h {
        HealthStatusEnum::HEALTHY => "healthy",
        HealthStatusEnum::UNHEALTHY => "unhealthy",
        HealthStatusEnum::STARTING => "starting",
        HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => "none",
    }
}
