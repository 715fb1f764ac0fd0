//! Which container of a service a lifecycle tool acts on.
//!
//! The live container is the one the Traefik route points at, else the running one with the
//! newest release ([`Service::live`]). When nothing of the service runs (after
//! `service_stop`), the container that stopped last is the one that was serving, so that is
//! the one `service_start`, `service_logs` and `service_status` look at; a service whose
//! containers never ran falls back to its newest release.

use chrono::DateTime;

use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::inventory::{self, Service};
use crate::traefik::Route;
use crate::{Error, Result};

/// A resolved service and the container that serves it.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub service: Service,
    /// The route steward wrote for the service, read from its file.
    pub route: Option<Route>,
    /// The live container, or when nothing runs the one that ran last.
    pub primary: ManagedContainer,
}

impl Target {
    pub fn name(&self) -> &str {
        &self.service.name
    }

    /// Whether the primary container is up (running, or restarting under its policy).
    pub fn is_up(&self) -> bool {
        is_up(&self.primary.state)
    }

    /// Whether the route forwards to the primary container's current address.
    pub fn route_points_at_primary(&self) -> bool {
        match (&self.route, &self.primary.ip) {
            (Some(route), Some(ip)) => points_at(route, ip),
            _ => false,
        }
    }
}

/// Whether a Docker state means the container is up (or coming back under its policy).
pub(super) fn is_up(state: &str) -> bool {
    matches!(state, "running" | "restarting")
}

/// Whether `route` forwards to `ip` (the port follows, so `10.0.0.2` never matches `10.0.0.25`).
pub(super) fn points_at(route: &Route, ip: &str) -> bool {
    route.backend.contains(&format!("//{ip}:"))
}

/// Resolves `name` through the ownership labels: `NotFound` for an unknown name, `NotOwned`
/// for a container without steward's labels.
pub(super) async fn resolve(env: &Env, name: &str) -> Result<Target> {
    let service = inventory::service(env, name).await?;
    let route = env.platform.routes.read(name);
    let backend = route.as_ref().map(|r| r.backend.as_str());
    let primary = match service.live(backend) {
        Some(c) => c.clone(),
        None => last_stopped(env, &service).await?,
    };
    Ok(Target {
        service,
        route,
        primary,
    })
}

/// The container of a stopped service that finished last (Docker's `State.FinishedAt`).
async fn last_stopped(env: &Env, service: &Service) -> Result<ManagedContainer> {
    let mut best: Option<(i64, &ManagedContainer)> = None;
    for c in &service.containers {
        let finished = env
            .platform
            .docker
            .api()
            .inspect_container(&c.id, None)
            .await?
            .state
            .and_then(|s| s.finished_at)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MIN))
            .unwrap_or(i64::MIN);
        // Ties (e.g. never ran, FinishedAt 0001-01-01) go to the newer release: containers
        // are ordered oldest release first.
        if best.is_none_or(|(b, _)| finished >= b) {
            best = Some((finished, c));
        }
    }
    best.map(|(_, c)| c.clone()).ok_or_else(|| Error::NotFound {
        what: "service",
        name: service.name.clone(),
    })
}
