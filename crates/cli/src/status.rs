//! `steward status`: the managed containers with health, image and the route that Traefik
//! actually serves (read from its API, not from our own files).

use serde::Serialize;
use steward_exec::docker::{DockerClient, ManagedContainer};
use steward_exec::traefik::{Router, Service, TraefikApi};

use crate::config::{Config, Key};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub service: String,
    pub kind: String,
    pub release: String,
    pub container: String,
    pub state: String,
    pub health: String,
    pub image: String,
    /// The Host rule Traefik routes to this very container, if any.
    pub route: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub rows: Vec<Row>,
    /// Set when Traefik could not be asked; routes are then unknown, not absent.
    pub traefik_error: Option<String>,
}

pub async fn collect(cfg: &Config) -> anyhow::Result<Status> {
    let docker = DockerClient::connect().await?;
    let containers = docker.managed_containers(&[]).await?;
    let api = TraefikApi::new(cfg.require(Key::TraefikApi)?)?;
    let (routers, services, traefik_error) =
        match tokio::try_join!(api.http_routers(), api.http_services()) {
            Ok((r, s)) => (r, s, None),
            Err(e) => (vec![], vec![], Some(e.to_string())),
        };
    let rows = containers
        .into_iter()
        .map(|c| row(c, &routers, &services))
        .collect();
    Ok(Status {
        rows,
        traefik_error,
    })
}

fn row(c: ManagedContainer, routers: &[Router], services: &[Service]) -> Row {
    let route = c.ip.as_deref().and_then(|ip| {
        let backend = format!("http://{ip}:");
        routers
            .iter()
            .filter(|r| r.name == format!("{}@file", c.service))
            .find(|r| {
                services.iter().any(|s| {
                    s.name == qualified(&r.service, &r.provider)
                        && s.server_urls().any(|u| u.starts_with(&backend))
                })
            })
            .map(|r| r.rule.clone())
    });
    Row {
        service: c.service,
        kind: c.kind,
        release: c.release,
        container: c.name,
        state: c.state,
        health: c.health,
        image: c.image,
        route,
    }
}

/// Routers name their service without the provider suffix when it is the same provider.
fn qualified(service: &str, provider: &str) -> String {
    if service.contains('@') {
        service.to_string()
    } else {
        format!("{service}@{provider}")
    }
}

pub fn render(status: &Status) -> String {
    let mut out = Vec::new();
    let header = [
        "SERVICE", "KIND", "RELEASE", "STATE", "HEALTH", "IMAGE", "ROUTE",
    ];
    let mut table: Vec<[String; 7]> = vec![header.map(String::from)];
    for r in &status.rows {
        let route = match (&r.route, &status.traefik_error) {
            (Some(rule), _) => rule.clone(),
            (None, Some(_)) => "?".into(),
            (None, None) => "-".into(),
        };
        table.push([
            r.service.clone(),
            r.kind.clone(),
            r.release.clone(),
            r.state.clone(),
            r.health.clone(),
            r.image.clone(),
            route,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| table.iter().map(|row| row[i].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push(cells.join("  ").trim_end().to_string());
    }
    if status.rows.is_empty() {
        out.push("(no managed containers: run `steward demo up` or deploy a service)".into());
    }
    if let Some(e) = &status.traefik_error {
        out.push(format!("warning: routes unknown, {e}"));
    }
    out.join("\n")
}
