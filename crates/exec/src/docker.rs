//! Read and manage the containers Steward owns, through the Docker Engine API.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerInspectResponse, HealthStatusEnum, Ipam, IpamConfig, NetworkCreateRequest,
};
use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
use bollard::Docker;

use crate::{labels, Error, Result};

/// Docker's answer for a missing object.
pub fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

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
        let docker = Docker::connect_with_defaults()?.negotiate_version().await?;
        Ok(Self { docker })
    }

    /// Like [`connect`](Self::connect), but an engine that does not answer yet is not an
    /// error: the client is returned unnegotiated, and every call through it fails as
    /// `Unavailable` until the engine is back. Tools that never touch Docker (origin checks,
    /// audit search) keep working, and `steward serve` starts and reports the engine in
    /// `/readyz` instead of refusing to start.
    pub async fn connect_deferred() -> Result<Self> {
        let docker = Docker::connect_with_defaults()?;
        match docker.clone().negotiate_version().await {
            Ok(negotiated) => Ok(Self { docker: negotiated }),
            Err(e) => {
                tracing::warn!(error = %e, "the Docker Engine does not answer; platform tools will report it");
                Ok(Self { docker })
            }
        }
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
            match self.docker.inspect_container(&id, None).await {
                Ok(container) => out.push(from_inspect(container)),
                // Removed between the listing and the look at it (a release retired, a
                // tenant destroyed): it is gone, which fails no one's read of the rest.
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        out.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
        Ok(out)
    }

    /// Makes sure exactly one network called `name` exists and returns its id.
    ///
    /// Docker lets two concurrent creates make two networks of the same name, after which
    /// every use of the name fails as ambiguous. So after creating, all processes re-list and
    /// agree on the oldest one (ties broken by id), removing the extras they can.
    pub async fn ensure_network(&self, name: &str, labels: &[(&str, &str)]) -> Result<String> {
        self.ensure_network_in(name, labels, None).await
    }

    /// Like [`ensure_network`](Self::ensure_network), with the subnet taken from `pool` when
    /// the network has to be made. Docker's default address pools hold only about 30 bridge
    /// networks, too few for one network per tenant.
    pub async fn ensure_network_in(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        pool: Option<&SubnetPool>,
    ) -> Result<String> {
        if let Some(id) = self.dedupe_network(name).await? {
            return Ok(id);
        }
        let mut tried = Vec::new();
        loop {
            let subnet = match pool {
                Some(pool) => Some(self.free_subnet(pool, &tried).await?),
                None => None,
            };
            let req = NetworkCreateRequest {
                name: name.into(),
                driver: Some("bridge".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ipam: subnet.as_ref().map(|s| Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(s.clone()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match self.docker.create_network(req).await {
                Ok(_)
                | Err(BollardError::DockerResponseServerError {
                    status_code: 409, ..
                }) => break,
                // Another process took the same subnet between our listing and create.
                Err(BollardError::DockerResponseServerError { message, .. })
                    if subnet.is_some() && message.contains("overlap") && tried.len() < 8 =>
                {
                    tried.extend(subnet);
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.dedupe_network(name).await?.ok_or_else(|| {
            Error::Failed(format!(
                "docker network {name} vanished right after it was created"
            ))
        })
    }

    /// The first subnet of `pool` that no Docker network uses and that is not in `skip`.
    async fn free_subnet(&self, pool: &SubnetPool, skip: &[String]) -> Result<String> {
        let used: Vec<(u32, u32)> = self
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await?
            .into_iter()
            .flat_map(|n| n.ipam.and_then(|i| i.config).unwrap_or_default())
            .filter_map(|c| c.subnet.as_deref().and_then(parse_cidr))
            .collect();
        pool.candidates()
            .find(|(range, text)| {
                !skip.contains(text) && !used.iter().any(|u| u.0 <= range.1 && range.0 <= u.1)
            })
            .map(|(_, text)| text)
            .ok_or_else(|| {
                Error::Failed(format!(
                    "no free /{} subnet left in {}; raise tenant_subnet_pool",
                    pool.child_prefix, pool.cidr
                ))
            })
    }

    /// The id of the one network named exactly `name`, removing same-named duplicates.
    async fn dedupe_network(&self, name: &str) -> Result<Option<String>> {
        // The name filter matches substrings, so compare exactly.
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let opts = ListNetworksOptionsBuilder::new().filters(&filters).build();
        let mut found: Vec<(String, String)> = self
            .docker
            .list_networks(Some(opts))
            .await?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| Some((n.created.map(|c| c.to_string()).unwrap_or_default(), n.id?)))
            .collect();
        found.sort();
        let mut found = found.into_iter().map(|(_, id)| id);
        let keep = found.next();
        for extra in found {
            // In use by another process's container: it will be removed by a later call.
            let _ = self.docker.remove_network(&extra).await;
        }
        Ok(keep)
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

/// An IPv4 range carved into equal subnets for per-tenant networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetPool {
    cidr: String,
    range: (u32, u32),
    child_prefix: u8,
}

impl SubnetPool {
    /// `cidr` such as `10.213.0.0/16`, split into subnets of `/child_prefix`.
    pub fn new(cidr: &str, child_prefix: u8) -> Result<Self> {
        let invalid = |rule| Error::Invalid {
            what: "subnet pool",
            value: cidr.to_string(),
            rule,
        };
        let range =
            parse_cidr(cidr).ok_or_else(|| invalid("use an IPv4 CIDR such as 10.213.0.0/16"))?;
        let pool_prefix = 32 - (range.1 - range.0 + 1).trailing_zeros() as u8;
        if !(pool_prefix..=29).contains(&child_prefix) {
            return Err(invalid("the pool must be larger than one /29"));
        }
        Ok(Self {
            cidr: cidr.to_string(),
            range,
            child_prefix,
        })
    }

    /// Every child subnet in order, as (first, last) address and CIDR text.
    fn candidates(&self) -> impl Iterator<Item = ((u32, u32), String)> + '_ {
        let size = 1u64 << (32 - self.child_prefix);
        let count = (u64::from(self.range.1) - u64::from(self.range.0) + 1) / size;
        (0..count).map(move |i| {
            let first = u64::from(self.range.0) + i * size;
            let (first, last) = (first as u32, (first + size - 1) as u32);
            let text = format!("{}/{}", std::net::Ipv4Addr::from(first), self.child_prefix);
            ((first, last), text)
        })
    }
}

/// `a.b.c.d/n` as its first and last address; None for IPv6 or malformed text.
fn parse_cidr(text: &str) -> Option<(u32, u32)> {
    let (addr, prefix) = text.split_once('/')?;
    let addr: std::net::Ipv4Addr = addr.parse().ok()?;
    let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    let first = u32::from(addr) & mask;
    Some((first, first | !mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_pool_carves_in_order_and_refuses_nonsense() {
        let pool = SubnetPool::new("10.213.0.0/16", 28).unwrap();
        let first: Vec<String> = pool.candidates().take(2).map(|(_, t)| t).collect();
        assert_eq!(first, ["10.213.0.0/28", "10.213.0.16/28"]);
        assert_eq!(pool.candidates().count(), 4096);
        assert_eq!(
            parse_cidr("172.17.0.0/16"),
            Some((0xAC11_0000, 0xAC11_FFFF))
        );
        assert!(parse_cidr("fd00::/64").is_none());
        assert!(SubnetPool::new("10.0.0.0/30", 28).is_err());
        assert!(SubnetPool::new("banana", 28).is_err());
    }
}
