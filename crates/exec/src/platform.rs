//! Bringing a labelled service up from an image: network, container, health, route.
//! The demo platform (`steward demo up`) and the tests use it; later the deploy executor
//! builds on the same steps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use tracing::info;

use crate::docker::{DockerClient, ManagedContainer};
use crate::traefik::{Route, RouteDir, TraefikApi};
use crate::{labels, Error, Result};

/// The Docker network all managed services join.
pub const NETWORK: &str = "steward";

/// What to run for one service.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub service: String,
    /// `platform` or `tenant`.
    pub kind: String,
    pub release: String,
    pub image: String,
    pub env: Vec<(String, String)>,
    /// Port the app listens on inside the container.
    pub port: u16,
    /// Host name Traefik routes to the service.
    pub host: String,
    /// Extra labels, e.g. a test run's id so it can clean up after itself.
    pub extra_labels: Vec<(String, String)>,
}

impl ServiceSpec {
    pub fn container_name(&self) -> String {
        format!("{}-{}", self.service, self.release)
    }
}

/// What `ensure_service` had to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    AlreadyRunning(ManagedContainer),
    Started(ManagedContainer),
}

impl Outcome {
    pub fn container(&self) -> &ManagedContainer {
        match self {
            Outcome::AlreadyRunning(c) | Outcome::Started(c) => c,
        }
    }
}

/// The platform pieces a service needs.
#[derive(Debug, Clone)]
pub struct Platform {
    pub docker: DockerClient,
    pub routes: RouteDir,
    pub traefik: TraefikApi,
}

impl Platform {
    /// Converges `spec`: an existing container of the release is reused (started if stopped),
    /// otherwise created; then it must turn healthy before its route is written. Re-running
    /// changes nothing.
    pub async fn ensure_service(
        &self,
        spec: &ServiceSpec,
        health_timeout: Duration,
    ) -> Result<Outcome> {
        let network = self
            .docker
            .ensure_network(NETWORK, &[(labels::OWNED, "true")])
            .await?;
        let name = spec.container_name();
        let api = self.docker.api();
        let existing = match self.docker.container(&name).await {
            Ok(c) => Some(c),
            Err(Error::Docker(BollardError::DockerResponseServerError {
                status_code: 404,
                ..
            })) => None,
            Err(e) => return Err(e),
        };
        let was_running = existing.as_ref().is_some_and(|c| c.state == "running");
        if existing.is_none() {
            info!(service = %spec.service, container = %name, image = %spec.image, "creating container");
            let opts = CreateContainerOptionsBuilder::new().name(&name).build();
            api.create_container(Some(opts), container_body(spec, &network))
                .await?;
        }
        if !was_running {
            api.start_container(&name, None).await?;
        }
        let container = self.wait_healthy(&name, health_timeout).await?;
        let ip = container.ip.clone().ok_or_else(|| {
            Error::Timeout(format!("container {name} has no IP on network {NETWORK}"))
        })?;
        let route = Route::new(
            &spec.service,
            &spec.host,
            &format!("http://{ip}:{}", spec.port),
        )?;
        self.routes.write(&route)?;
        self.traefik
            .wait_for_router(&route.name, &route.rule(), Duration::from_secs(10))
            .await?;
        Ok(if was_running {
            Outcome::AlreadyRunning(container)
        } else {
            Outcome::Started(container)
        })
    }

    /// Removes a service's containers and route. Missing pieces are fine (idempotent).
    pub async fn remove_service(&self, service: &str) -> Result<usize> {
        let filter = format!("{}={service}", labels::SERVICE);
        let containers = self.docker.managed_containers(&[filter]).await?;
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        for c in &containers {
            self.docker
                .api()
                .remove_container(&c.id, Some(opts.clone()))
                .await?;
        }
        self.routes.remove(service)?;
        Ok(containers.len())
    }

    async fn wait_healthy(&self, name: &str, timeout: Duration) -> Result<ManagedContainer> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.docker.container(name).await?;
            let ready = match c.health.as_str() {
                "healthy" => true,
                // No health check in the image: running is the best we know.
                "none" => c.state == "running",
                _ => false,
            };
            if ready {
                return Ok(c);
            }
            if c.state == "exited" || c.state == "dead" || Instant::now() >= deadline {
                return Err(Error::Timeout(format!(
                    "container {name} did not become healthy within {timeout:?} (state {}, health {})",
                    c.state, c.health
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn container_body(spec: &ServiceSpec, network_id: &str) -> ContainerCreateBody {
    let mut labels = HashMap::from([
        (labels::SERVICE.to_string(), spec.service.clone()),
        (labels::KIND.to_string(), spec.kind.clone()),
        (labels::RELEASE.to_string(), spec.release.clone()),
    ]);
    labels.extend(spec.extra_labels.iter().cloned());
    let mut env: Vec<String> = vec![
        format!("SERVICE_NAME={}", spec.service),
        format!("PORT={}", spec.port),
    ];
    env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(env),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(network_id.into()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
