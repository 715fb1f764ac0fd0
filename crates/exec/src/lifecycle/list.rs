//! `service_list`: every service steward owns, with its live release, state and route.
//!
//! Built for speed with many services (the goal is 200 ms with 50): one `list_containers`
//! call carries labels, state, health and addresses, so no container is inspected; the
//! Traefik API is asked once, concurrently, and route files are small local reads.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerSummary, ContainerSummaryHealthStatusEnum};
use bollard::query_parameters::ListContainersOptionsBuilder;
use serde_json::json;
use steward_tools::args::{ServiceKind, ServiceListArgs};
use steward_tools::{Done, Plan, Result};

use super::read_only;
use super::target::{is_up, points_at};
use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::inventory::{release_number, Service};
use crate::labels;

pub(super) fn kind_name(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Platform => "platform",
        ServiceKind::Tenant => "tenant",
    }
}

pub(super) fn plan(env: &Env, args: &ServiceListArgs) -> Plan {
    let which = args.kind.map(kind_name).unwrap_or("all");
    read_only(
        format!("list {which} services"),
        vec![
            format!(
                "list containers labelled {}{} (one Docker call, no inspect)",
                labels::SERVICE,
                args.kind
                    .map(|k| format!(" and {}={}", labels::KIND, kind_name(k)))
                    .unwrap_or_default()
            ),
            format!(
                "read route files in {}",
                env.platform.routes.path().display()
            ),
            "read router states from the Traefik API".into(),
        ],
    )
}

pub(super) async fn run(env: &Env, args: &ServiceListArgs) -> Result<Done> {
    let mut label_filters = vec![labels::SERVICE.to_string()];
    if let Some(k) = args.kind {
        label_filters.push(format!("{}={}", labels::KIND, kind_name(k)));
    }
    let filters = HashMap::from([("label".to_string(), label_filters)]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let (containers, routers) = tokio::join!(
        env.platform.docker.api().list_containers(Some(opts)),
        env.platform.traefik.http_routers()
    );
    let containers = containers.map_err(crate::Error::from)?;
    // Traefik being down must not hide what Docker knows; the entries say it is unknown.
    let (routers, traefik_error) = match routers {
        Ok(r) => (
            Some(
                r.into_iter()
                    .map(|r| (r.name, r.status))
                    .collect::<HashMap<_, _>>(),
            ),
            None,
        ),
        Err(e) => (None, Some(e.to_string())),
    };

    let services = group(containers.into_iter().filter_map(from_summary));
    let mut entries = Vec::with_capacity(services.len());
    let mut running = 0;
    for s in &services {
        let route = env.platform.routes.read(&s.name);
        let live = s.live(route.as_ref().map(|r| r.backend.as_str()));
        if live.is_some() {
            running += 1;
        }
        let route_enabled = routers.as_ref().map(|r| {
            r.get(&format!("{}@file", s.name))
                .is_some_and(|status| status == "enabled")
        });
        entries.push(json!({
            "name": s.name,
            "kind": s.kind,
            "live_release": live.map(|c| c.release.as_str()),
            "live_container": live.map(|c| c.name.as_str()),
            "image": live.or(s.containers.last()).map(|c| c.image.as_str()),
            "state": live.map(|c| c.state.as_str()).unwrap_or("stopped"),
            "health": live.map(|c| c.health.as_str()).unwrap_or("none"),
            "host": route.as_ref().map(|r| r.host.as_str()),
            "route_enabled": route_enabled,
            "route_points_at_live": match (&route, live.and_then(|c| c.ip.as_deref())) {
                (Some(r), Some(ip)) => points_at(r, ip),
                _ => false,
            },
            "containers": s.containers.len(),
        }));
    }
    let which = args
        .kind
        .map(kind_name)
        .map(|k| format!("{k} "))
        .unwrap_or_default();
    let mut summary = format!("{} {which}services, {running} running", services.len());
    if let Some(e) = &traefik_error {
        summary.push_str(&format!("; route states unknown ({e})"));
    }
    Ok(Done {
        summary,
        output: json!({
            "services": entries,
            "count": services.len(),
            "traefik_error": traefik_error,
        }),
        changed: false,
    })
}

/// Groups containers into services sorted by name, releases oldest first (as
/// [`crate::inventory::services`] does, without its per-container inspect).
fn group(containers: impl Iterator<Item = ManagedContainer>) -> Vec<Service> {
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
        s.containers.sort_by(|a, b| {
            (release_number(&a.release), &a.name).cmp(&(release_number(&b.release), &b.name))
        });
    }
    out
}

/// What inventory needs, read from a `list_containers` summary. None for a container whose
/// `steward.service` label is empty (the filter only asks that the key exists).
fn from_summary(c: ContainerSummary) -> Option<ManagedContainer> {
    let labels = c.labels.unwrap_or_default();
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let service = label(labels::SERVICE);
    if service.is_empty() {
        return None;
    }
    let state = c
        .state
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let health = match c.health.and_then(|h| h.status) {
        Some(ContainerSummaryHealthStatusEnum::HEALTHY) => "healthy",
        Some(ContainerSummaryHealthStatusEnum::UNHEALTHY) => "unhealthy",
        Some(ContainerSummaryHealthStatusEnum::STARTING) => "starting",
        // Engines before API 1.52 carry health only in the status text.
        _ => health_from_status(c.status.as_deref().unwrap_or_default()),
    };
    let ip = c
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|nets| {
            let mut nets: Vec<_> = nets.into_iter().collect();
            nets.sort_by(|a, b| a.0.cmp(&b.0));
            nets.into_iter()
                .find_map(|(_, ep)| ep.ip_address.filter(|ip| !ip.is_empty()))
        });
    let name = c
        .names
        .and_then(|n| n.into_iter().next())
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    Some(ManagedContainer {
        id: c.id.unwrap_or_default(),
        name,
        service,
        kind: label(labels::KIND),
        release: label(labels::RELEASE),
        image: c.image.unwrap_or_default(),
        health: if is_up(&state) { health } else { "none" }.to_string(),
        state,
        ip,
    })
}

/// Health from Docker's status text: `Up 3 minutes (healthy)`, `(health: starting)`.
fn health_from_status(status: &str) -> &'static str {
    if status.contains("(healthy)") {
        "healthy"
    } else if status.contains("(unhealthy)") {
        "unhealthy"
    } else if status.contains("(health: starting)") {
        "starting"
    } else {
        "none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_read_from_the_status_text() {
        assert_eq!(health_from_status("Up 14 seconds (healthy)"), "healthy");
        assert_eq!(health_from_status("Up 2 hours (unhealthy)"), "unhealthy");
        assert_eq!(
            health_from_status("Up Less than a second (health: starting)"),
            "starting"
        );
        assert_eq!(health_from_status("Exited (0) 3 minutes ago"), "none");
    }
}
