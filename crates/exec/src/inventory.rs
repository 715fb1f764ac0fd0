//! What Steward owns, read from the labels on Docker objects. A service is the set of
//! containers labelled `steward.service=<name>`; a container without the label does not
//! exist for Steward, and a call naming one is refused.

use std::collections::BTreeMap;

use bollard::errors::Error as BollardError;

use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::{labels, Error, Result};

/// One service with all its containers (the live release and the retained ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// `platform` or `tenant`.
    pub kind: String,
    /// Oldest release first (`r1`, `r2`, ... ordered by number).
    pub containers: Vec<ManagedContainer>,
}

impl Service {
    /// The container serving traffic: the one the Traefik route points at, else the running
    /// one with the newest release.
    pub fn live<'a>(&'a self, route_backend: Option<&str>) -> Option<&'a ManagedContainer> {
        let by_route = route_backend.and_then(|url| {
            self.containers.iter().find(|c| {
                c.ip.as_deref()
                    .is_some_and(|ip| url.contains(&format!("//{ip}:")))
            })
        });
        by_route.or_else(|| self.containers.iter().rev().find(|c| c.state == "running"))
    }

    pub fn release(&self, id: &str) -> Option<&ManagedContainer> {
        self.containers.iter().find(|c| c.release == id)
    }
}

/// Release number of `r<N>`, for ordering; unknown forms sort first.
pub fn release_number(release: &str) -> u64 {
    release
        .strip_prefix('r')
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Every managed service, optionally of one kind, sorted by name.
pub async fn services(env: &Env, kind: Option<&str>) -> Result<Vec<Service>> {
    let filters: Vec<String> = kind
        .map(|k| vec![format!("{}={k}", labels::KIND)])
        .unwrap_or_default();
    let containers = env.platform.docker.managed_containers(&filters).await?;
    let mut by_name: BTreeMap<String, Service> = BTreeMap::new();
    for c in containers {
        by_name
            .entry(c.service.clone())
            .or_insert_with(|| Service {
                name: c.service.clone(),
                kind: c.kind.clone(),
                containers: Vec::new(),
            })
            .containers
            .push(c);
    }
    let mut out: Vec<Service> = by_name.into_values().collect();
    for s in &mut out {
        s.containers.sort_by_key(|c| release_number(&c.release));
    }
    Ok(out)
}

/// One managed service. A name Steward does not manage is `NotFound`, or `NotOwned` when a
/// container of that name exists without Steward's labels.
pub async fn service(env: &Env, name: &str) -> Result<Service> {
    let filter = format!("{}={name}", labels::SERVICE);
    let mut containers = env.platform.docker.managed_containers(&[filter]).await?;
    if containers.is_empty() {
        return match env
            .platform
            .docker
            .api()
            .inspect_container(name, None)
            .await
        {
            Ok(_) => Err(Error::NotOwned(name.to_string())),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Err(Error::NotFound {
                what: "service",
                name: name.to_string(),
            }),
            Err(e) => Err(e.into()),
        };
    }
    containers.sort_by_key(|c| release_number(&c.release));
    Ok(Service {
        name: name.to_string(),
        kind: containers[0].kind.clone(),
        containers,
    })
}
