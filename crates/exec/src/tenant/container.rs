//! The tenant's Docker side: its own network and its app container, hardened and limited by
//! plan. An existing container is compared field by field with what the plan asks for, so a
//! re-run repairs drift (limits are updated in place; anything else means a new container).

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerUpdateBody, HostConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use steward_tools::args::TenantPlan;

use super::names::{TenantNames, APP_PORT};
use crate::docker::{is_not_found, DockerClient, ManagedContainer, SubnetPool};
use crate::{labels, Error, Result};

/// Resources of one plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub memory_mb: i64,
    pub cpus: f64,
    pub pids: i64,
    /// PostgreSQL `CONNECTION LIMIT` of the tenant role.
    pub connection_limit: i32,
}

impl Limits {
    pub fn of(plan: TenantPlan) -> Self {
        match plan {
            TenantPlan::Small => Self {
                memory_mb: 512,
                cpus: 0.5,
                pids: 100,
                connection_limit: 10,
            },
            TenantPlan::Medium => Self {
                memory_mb: 1024,
                cpus: 1.0,
                pids: 200,
                connection_limit: 20,
            },
            TenantPlan::Large => Self {
                memory_mb: 2048,
                cpus: 2.0,
                pids: 400,
                connection_limit: 40,
            },
        }
    }

    fn memory_bytes(&self) -> i64 {
        self.memory_mb * 1024 * 1024
    }

    fn nano_cpus(&self) -> i64 {
        (self.cpus * 1e9).round() as i64
    }
}

pub const NO_NEW_PRIVILEGES: &str = "no-new-privileges:true";

/// What the tenant container must be.
#[derive(Debug, Clone)]
pub struct ContainerSpec<'a> {
    pub names: &'a TenantNames,
    pub image: String,
    pub database_url: String,
    pub limits: Limits,
    pub extra_labels: &'a [(String, String)],
}

/// The tenant container as Docker has it.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerState {
    Missing,
    /// Exists and is ours; `drift` lists fields that need a new container, `limits` fields
    /// that can be updated in place.
    Present {
        running: bool,
        drift: Vec<String>,
        limits: Vec<String>,
    },
}

impl ContainerSpec<'_> {
    fn labels(&self) -> HashMap<String, String> {
        let mut l = HashMap::from([
            (labels::SERVICE.to_string(), self.names.subdomain.clone()),
            (labels::KIND.to_string(), "tenant".to_string()),
            (labels::RELEASE.to_string(), "r1".to_string()),
        ]);
        l.extend(self.extra_labels.iter().cloned());
        l
    }

    fn env(&self) -> Vec<String> {
        vec![
            format!("SERVICE_NAME={}", self.names.subdomain),
            format!("PORT={APP_PORT}"),
            format!("DATABASE_URL={}", self.database_url),
        ]
    }

    fn body(&self) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some(self.image.clone()),
            env: Some(self.env()),
            labels: Some(self.labels()),
            host_config: Some(HostConfig {
                network_mode: Some(self.names.network.clone()),
                memory: Some(self.limits.memory_bytes()),
                // Swap limited to the same figure: no swap on top of the memory limit.
                memory_swap: Some(self.limits.memory_bytes()),
                nano_cpus: Some(self.limits.nano_cpus()),
                pids_limit: Some(self.limits.pids),
                security_opt: Some(vec![NO_NEW_PRIVILEGES.into()]),
                cap_drop: Some(vec!["ALL".into()]),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Compares an inspected container with the spec. Values are named, never shown, since
    /// the environment holds the database password.
    fn compare(&self, c: &ContainerInspectResponse) -> (Vec<String>, Vec<String>) {
        let mut drift = Vec::new();
        let mut limits = Vec::new();
        let config = c.config.clone().unwrap_or_default();
        let host = c.host_config.clone().unwrap_or_default();
        if config.image.as_deref() != Some(self.image.as_str()) {
            drift.push(format!(
                "image is {} (want {})",
                config.image.unwrap_or_default(),
                self.image
            ));
        }
        let env = config.env.unwrap_or_default();
        for want in self.env() {
            if !env.contains(&want) {
                let key = want.split('=').next().unwrap_or_default();
                drift.push(format!("environment {key} differs"));
            }
        }
        if host.network_mode.as_deref() != Some(self.names.network.as_str()) {
            drift.push(format!("network is not {}", self.names.network));
        }
        if !host
            .security_opt
            .unwrap_or_default()
            .iter()
            .any(|o| o == NO_NEW_PRIVILEGES || o == "no-new-privileges")
        {
            drift.push("no-new-privileges is not set".into());
        }
        if host.cap_drop.unwrap_or_default() != ["ALL"] {
            drift.push("capabilities are not all dropped".into());
        }
        if host.restart_policy.and_then(|r| r.name) != Some(RestartPolicyNameEnum::UNLESS_STOPPED) {
            drift.push("restart policy is not unless-stopped".into());
        }
        if host.memory != Some(self.limits.memory_bytes())
            || host.memory_swap != Some(self.limits.memory_bytes())
        {
            limits.push(format!(
                "memory {:?} (want {} MiB)",
                host.memory, self.limits.memory_mb
            ));
        }
        if host.nano_cpus != Some(self.limits.nano_cpus()) {
            limits.push(format!(
                "cpus {:?} (want {})",
                host.nano_cpus, self.limits.cpus
            ));
        }
        if host.pids_limit != Some(self.limits.pids) {
            limits.push(format!(
                "pids {:?} (want {})",
                host.pids_limit, self.limits.pids
            ));
        }
        (drift, limits)
    }

    /// Inspects the container; one that exists without this tenant's labels is refused.
    pub async fn state(&self, docker: &DockerClient) -> Result<ContainerState> {
        let c = match docker
            .api()
            .inspect_container(&self.names.container, None)
            .await
        {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok(ContainerState::Missing),
            Err(e) => return Err(e.into()),
        };
        check_owned(&self.names.container, &self.names.subdomain, &c)?;
        let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let (drift, limits) = self.compare(&c);
        Ok(ContainerState::Present {
            running,
            drift,
            limits,
        })
    }

    /// Converges the container: created and started when missing, replaced when it drifted,
    /// limits updated in place, started when stopped. Returns it (with its IP) and what was
    /// done, or `None` when nothing was.
    pub async fn ensure(
        &self,
        docker: &DockerClient,
    ) -> Result<(ManagedContainer, Option<String>)> {
        let api = docker.api();
        let name = &self.names.container;
        let mut did: Option<String> = None;
        let mut start = true;
        match self.state(docker).await? {
            ContainerState::Missing => {
                self.create(docker).await?;
                did = Some("created and started".into());
            }
            ContainerState::Present { drift, .. } if !drift.is_empty() => {
                let opts = RemoveContainerOptionsBuilder::new().force(true).build();
                api.remove_container(name, Some(opts)).await?;
                self.create(docker).await?;
                did = Some(format!("replaced ({})", drift.join("; ")));
            }
            ContainerState::Present {
                running, limits, ..
            } => {
                if !limits.is_empty() {
                    let update = ContainerUpdateBody {
                        memory: Some(self.limits.memory_bytes()),
                        memory_swap: Some(self.limits.memory_bytes()),
                        nano_cpus: Some(self.limits.nano_cpus()),
                        pids_limit: Some(self.limits.pids),
                        ..Default::default()
                    };
                    api.update_container(name, update).await?;
                    did = Some(format!("limits updated ({})", limits.join("; ")));
                }
                if running {
                    start = false;
                } else {
                    did = Some(match did {
                        Some(d) => format!("{d}; started"),
                        None => "started".into(),
                    });
                }
            }
        }
        if start {
            match api.start_container(name, None).await {
                Ok(())
                | Err(BollardError::DockerResponseServerError {
                    status_code: 304, ..
                }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((docker.container(name).await?, did))
    }

    async fn create(&self, docker: &DockerClient) -> Result<()> {
        let opts = CreateContainerOptionsBuilder::new()
            .name(&self.names.container)
            .build();
        match docker.api().create_container(Some(opts), self.body()).await {
            Ok(_) => Ok(()),
            // A concurrent run created it first; the next comparison sees it.
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404,
                message,
            }) => Err(Error::Failed(format!(
                "docker: cannot create {}: {message} (is image {} present? images are never \
                 pulled; build or load it on this host)",
                self.names.container, self.image
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether the tenant container exists; one that is not this tenant's is refused.
pub async fn container_exists(docker: &DockerClient, names: &TenantNames) -> Result<bool> {
    match docker.api().inspect_container(&names.container, None).await {
        Ok(c) => check_owned(&names.container, &names.subdomain, &c).map(|()| true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Refuses a container that does not carry this tenant's labels.
fn check_owned(name: &str, subdomain: &str, c: &ContainerInspectResponse) -> Result<()> {
    let l = c
        .config
        .as_ref()
        .and_then(|cfg| cfg.labels.clone())
        .unwrap_or_default();
    let owned = l.get(labels::SERVICE).map(String::as_str) == Some(subdomain)
        && l.get(labels::KIND).map(String::as_str) == Some("tenant");
    if owned {
        Ok(())
    } else {
        Err(Error::NotOwned(name.to_string()))
    }
}

/// Ids and names of every tenant container of `subdomain` (any release), and whether a
/// container labelled with the service exists that is not a tenant (a platform service).
pub async fn service_containers(
    docker: &DockerClient,
    subdomain: &str,
) -> Result<(Vec<(String, String)>, Option<String>)> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{}={subdomain}", labels::SERVICE)],
    )]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let mut tenant = Vec::new();
    let mut other = None;
    for c in docker.api().list_containers(Some(opts)).await? {
        let l = c.labels.unwrap_or_default();
        let name = c
            .names
            .unwrap_or_default()
            .first()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        if l.get(labels::KIND).map(String::as_str) == Some("tenant") {
            tenant.push((c.id.unwrap_or_default(), name));
        } else {
            other = Some(name);
        }
    }
    Ok((tenant, other))
}

/// Whether the network exists: `Some(true)` when it carries steward's ownership label.
pub async fn network_state(docker: &DockerClient, name: &str) -> Result<Option<bool>> {
    match docker.api().inspect_network(name, None).await {
        Ok(n) => Ok(Some(
            n.labels
                .unwrap_or_default()
                .get(labels::OWNED)
                .is_some_and(|v| v == "true"),
        )),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Creates the tenant network when missing. True when created.
/// Each tenant network is a /28 (13 usable addresses) cut from the configured pool.
const TENANT_SUBNET_PREFIX: u8 = 28;

pub async fn ensure_network(
    docker: &DockerClient,
    names: &TenantNames,
    extra_labels: &[(String, String)],
    subnet_pool: &str,
) -> Result<bool> {
    match network_state(docker, &names.network).await? {
        Some(true) => return Ok(false),
        Some(false) => return Err(not_owned_network(&names.network)),
        None => {}
    }
    let mut l: Vec<(&str, &str)> = vec![
        (labels::OWNED, "true"),
        (labels::SERVICE, names.subdomain.as_str()),
        (labels::KIND, "tenant"),
    ];
    l.extend(extra_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let pool = SubnetPool::new(subnet_pool, TENANT_SUBNET_PREFIX)?;
    docker
        .ensure_network_in(&names.network, &l, Some(&pool))
        .await
        .map_err(|e| match e {
            Error::Docker(BollardError::DockerResponseServerError { message, .. })
                if message.contains("address pool") || message.contains("non-overlapping") =>
            {
                Error::Failed(format!(
                    "docker: no address space left for network {}: {message}. Every tenant \
                     has its own bridge network and Docker's default pools hold about 30; add \
                     \"default-address-pools\": [{{\"base\": \"172.20.0.0/14\", \"size\": 24}}] \
                     to /etc/docker/daemon.json and restart Docker",
                    names.network
                ))
            }
            other => other,
        })?;
    Ok(true)
}

pub fn not_owned_network(name: &str) -> Error {
    Error::Conflict(format!(
        "docker network {name} exists but is not labelled steward.owned=true; steward never \
         touches it. Remove or rename it, or pick another subdomain"
    ))
}

/// Removes the tenant network. True when it existed.
pub async fn remove_network(docker: &DockerClient, name: &str) -> Result<bool> {
    match network_state(docker, name).await? {
        None => Ok(false),
        Some(false) => Err(not_owned_network(name)),
        Some(true) => match docker.api().remove_network(name).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_set_the_documented_limits() {
        let s = Limits::of(TenantPlan::Small);
        assert_eq!((s.memory_mb, s.cpus, s.pids), (512, 0.5, 100));
        assert_eq!(s.nano_cpus(), 500_000_000);
        let m = Limits::of(TenantPlan::Medium);
        assert_eq!((m.memory_mb, m.cpus, m.pids), (1024, 1.0, 200));
        let l = Limits::of(TenantPlan::Large);
        assert_eq!((l.memory_mb, l.cpus, l.pids), (2048, 2.0, 400));
    }
}
