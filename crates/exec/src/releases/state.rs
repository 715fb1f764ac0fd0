//! What a release tool sees before acting: the service's containers, its route, the live
//! release and the history, reconciled with each other.

use steward_protocol::Timestamp;
use steward_tools::{ErrorKind, Result, ToolError};

use super::history::History;
use super::time;
use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::inventory::{self, release_number, Service};

/// The route of a service as steward last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub host: String,
    /// `http://<ip>:<port>`.
    pub backend: String,
    /// The route carries the security headers middleware (tenant routes); a switch keeps it.
    pub security_headers: bool,
}

impl RouteInfo {
    /// The port of the backend URL.
    pub fn port(&self) -> Option<u16> {
        self.backend.rsplit_once(':')?.1.parse().ok()
    }

    /// The IP of the backend URL.
    pub fn ip(&self) -> Option<&str> {
        let rest = self.backend.strip_prefix("http://")?;
        Some(rest.rsplit_once(':')?.0)
    }
}

/// One service as the release tools see it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub service: Service,
    pub route: Option<RouteInfo>,
    /// The container serving traffic: the one the route points at, else the newest running.
    pub live: Option<ManagedContainer>,
    pub history: History,
    /// The history had to be built or corrected from the containers; saved on the next write.
    pub history_changed: bool,
}

impl Snapshot {
    /// Reads the service (`NotFound` / `NotOwned` through inventory), its route and history.
    pub async fn read(env: &Env, service: &str) -> Result<Self> {
        let svc = inventory::service(env, service).await?;
        let route = read_route(env, service)?;
        let live = svc
            .live(route.as_ref().map(|r| r.backend.as_str()))
            .cloned();
        let path = History::path(&env.config.state_dir, service);
        let stored = History::load(&path)?;
        let mut history = stored.clone().unwrap_or_else(|| History::new(service));
        reconcile(env, &svc, live.as_ref(), &mut history).await?;
        let history_changed = stored.as_ref() != Some(&history);
        Ok(Self {
            service: svc,
            route,
            live,
            history,
            history_changed,
        })
    }

    pub fn container(&self, release: &str) -> Option<&ManagedContainer> {
        self.service.release(release)
    }

    /// The release the route serves (or, with no route, the history's current one).
    pub fn live_release(&self) -> Option<String> {
        self.live
            .as_ref()
            .map(|c| c.release.clone())
            .or_else(|| self.history.current().map(|r| r.release.clone()))
    }

    /// The id the next deploy gets: one past every release ever recorded or present.
    pub fn next_release(&self) -> String {
        let in_docker = self
            .service
            .containers
            .iter()
            .map(|c| release_number(&c.release))
            .max()
            .unwrap_or(0);
        format!("r{}", in_docker.max(self.history.max_number()) + 1)
    }

    /// The host the service answers on: the route's, else `<service>.<domain>`.
    pub fn host(&self, env: &Env) -> String {
        self.route
            .as_ref()
            .map(|r| r.host.clone())
            .unwrap_or_else(|| format!("{}.{}", self.service.name, env.config.domain))
    }

    /// Saves the history.
    pub fn save(&self, env: &Env) -> Result<()> {
        let path = History::path(&env.config.state_dir, &self.service.name);
        Ok(self.history.save(&path)?)
    }

    /// Containers that are kept for rollback, as release ids.
    pub fn kept(&self) -> Vec<String> {
        self.service
            .containers
            .iter()
            .map(|c| c.release.clone())
            .collect()
    }
}

/// Brings the history in line with Docker: releases steward has not recorded (the demo
/// platform's r1, or everything when no history exists yet) are added with Docker's creation
/// time, and if the route serves another release than the history says, that switch is
/// recorded now (e.g. after a crash between the route switch and the history write).
async fn reconcile(
    env: &Env,
    svc: &Service,
    live: Option<&ManagedContainer>,
    history: &mut History,
) -> Result<()> {
    let now = env.clock.now();
    let bootstrap = history.current().is_none();
    for c in &svc.containers {
        if history.record(&c.release).is_none() {
            let created = created_at(env, &c.name).await?.min(now);
            history.ensure(&c.release, &c.image, created);
        }
    }
    if let Some(live) = live {
        if history.current().map(|r| r.release.as_str()) != Some(live.release.as_str()) {
            // With no history, the live release has served since it was created as far as
            // anyone can tell; otherwise the switch happened behind steward's back, just now.
            let from = if bootstrap {
                history
                    .record(&live.release)
                    .map(|r| r.created_at)
                    .unwrap_or(now)
            } else {
                now
            };
            history.went_live(&live.release, from);
        }
    }
    Ok(())
}

/// Docker's creation time of a container.
async fn created_at(env: &Env, name: &str) -> Result<Timestamp> {
    let inspect = env
        .platform
        .docker
        .api()
        .inspect_container(name, None)
        .await
        .map_err(crate::Error::from)?;
    inspect
        .created
        .as_deref()
        .and_then(time::parse)
        .ok_or_else(|| {
            ToolError::new(
                ErrorKind::Failed,
                format!(
                    "docker reported no readable creation time for container {name} ({:?})",
                    inspect.created
                ),
            )
        })
}

/// Reads the route file steward wrote for `service` (`<dir>/<service>.yml`, the layout of
/// [`crate::traefik::RouteDir`]). No file: no route.
pub fn read_route(env: &Env, service: &str) -> Result<Option<RouteInfo>> {
    let path = env.platform.routes.path().join(format!("{service}.yml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::Error::io(&path)(e).into()),
    };
    let host = text.lines().find_map(|l| {
        let rule = l.trim().strip_prefix("rule:")?;
        let start = rule.find("Host(`")? + "Host(`".len();
        let len = rule[start..].find('`')?;
        Some(rule[start..start + len].to_string())
    });
    let backend = text.lines().find_map(|l| {
        let url = l.trim().strip_prefix("- url:")?.trim().trim_matches('"');
        Some(url.to_string())
    });
    let security_headers = text
        .lines()
        .any(|l| l.trim().starts_with("middlewares: [") && l.contains("-security-headers"));
    match (host, backend) {
        (Some(host), Some(backend)) => Ok(Some(RouteInfo {
            host,
            backend,
            security_headers,
        })),
        _ => Err(ToolError::new(
            ErrorKind::Failed,
            format!(
                "route file {} has no Host rule or backend url; it is steward's own file, so \
                 remove it and re-run the deploy to rewrite it",
                path.display()
            ),
        )),
    }
}

/// `{release, container, image}` of a container, for tool output.
pub fn summary(c: &ManagedContainer) -> serde_json::Value {
    serde_json::json!({"release": c.release, "container": c.name, "image": c.image})
}

/// `r3 (steward-demo:v2)`.
pub fn describe(c: &ManagedContainer) -> String {
    format!("{} ({})", c.release, c.image)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn route_backend_parts() {
        let r = RouteInfo {
            host: "web.localhost".into(),
            backend: "http://172.18.0.5:8080".into(),
            security_headers: false,
        };
        assert_eq!(r.port(), Some(8080));
        assert_eq!(r.ip(), Some("172.18.0.5"));
    }
}
