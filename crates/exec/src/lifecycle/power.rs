//! `service_stop`, `service_start`, `service_restart`.
//!
//! - Stop brings down every running container of the service (normally just the live one)
//!   and keeps the route, so a later start serves on the same host. Stopping a stopped
//!   service changes nothing.
//! - Start brings back the container that served last and waits until it is healthy.
//!   Starting a running service changes nothing.
//! - Restart always restarts the live container and waits until it is healthy.
//!
//! Docker gives a container a fresh address when it starts, usually the old one. If the
//! address moved, the route is re-pointed (written atomically, confirmed in Traefik), so
//! "healthy" also means "reachable on its host".
//!
//! Stops use the container's own stop timeout (Docker's default is 10s): a graceful stop is
//! the app's business, and steward should not cut it short.

use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use serde_json::json;
use steward_tools::{Done, ErrorKind, Plan, Result, ToolError};
use tracing::info;

use super::target::{self, is_up, points_at, Target};
use super::{docker_refused, secs};
use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::traefik::Route;

/// How long Traefik may take to load a re-pointed route.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(10);

fn running(t: &Target) -> Vec<&ManagedContainer> {
    t.service
        .containers
        .iter()
        .filter(|c| is_up(&c.state) || c.state == "paused")
        .collect()
}

pub(super) async fn plan_stop(env: &Env, service: &str) -> Result<Plan> {
    let t = target::resolve(env, service).await?;
    let up = running(&t);
    if up.is_empty() {
        return Ok(Plan {
            summary: format!("{service} is already stopped; nothing to do"),
            steps: vec![format!(
                "container {} (release {}) is {}",
                t.primary.name, t.primary.release, t.primary.state
            )],
            changes: false,
        });
    }
    let mut steps: Vec<String> = up
        .iter()
        .map(|c| {
            format!(
                "stop container {} (release {}): {} -> exited, within its stop timeout",
                c.name, c.release, c.state
            )
        })
        .collect();
    if let Some(r) = &t.route {
        steps.push(format!(
            "keep route {} ({}) so service_start serves it again",
            r.name, r.host
        ));
    }
    Ok(Plan {
        summary: format!("stop {service} ({})", names(&up)),
        steps,
        changes: true,
    })
}

pub(super) async fn stop(env: &Env, service: &str) -> Result<Done> {
    let t = target::resolve(env, service).await?;
    let up = running(&t);
    if up.is_empty() {
        return Ok(Done {
            summary: format!(
                "{service} is already stopped (container {} is {})",
                t.primary.name, t.primary.state
            ),
            output: json!({
                "service": service,
                "stopped": Vec::<String>::new(),
                "state": t.primary.state,
            }),
            changed: false,
        });
    }
    let started = Instant::now();
    let api = env.platform.docker.api();
    let mut stopped = Vec::new();
    for c in &up {
        info!(service, container = %c.name, "stopping container");
        match api.stop_container(&c.id, None).await {
            // 304: it stopped on its own in the meantime; the goal is reached.
            Ok(())
            | Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => stopped.push(c.name.clone()),
            Err(e) => {
                return Err(docker_refused(
                    e,
                    format!(
                        "stopping container {} of {service} (stopped so far: [{}])",
                        c.name,
                        stopped.join(", ")
                    ),
                ))
            }
        }
    }
    let ms = started.elapsed().as_millis();
    Ok(Done {
        summary: format!("stopped {service} ({}) in {}", stopped.join(", "), secs(ms)),
        output: json!({
            "service": service,
            "stopped": stopped,
            "elapsed_ms": ms,
        }),
        changed: true,
    })
}

pub(super) async fn plan_start(env: &Env, service: &str) -> Result<Plan> {
    let t = target::resolve(env, service).await?;
    let c = &t.primary;
    if t.is_up() {
        return Ok(Plan {
            summary: format!("{service} is already running; nothing to do"),
            steps: vec![format!(
                "container {} (release {}) is {} ({})",
                c.name, c.release, c.state, c.health
            )],
            changes: false,
        });
    }
    Ok(Plan {
        summary: format!("start {service} (container {})", c.name),
        steps: start_steps(env, &t, "start"),
        changes: true,
    })
}

fn start_steps(env: &Env, t: &Target, verb: &str) -> Vec<String> {
    let c = &t.primary;
    let action = if verb == "restart" && is_up(&c.state) {
        "stop within its stop timeout, then start".to_string()
    } else {
        format!("{} -> running", c.state)
    };
    let mut steps = vec![
        format!(
            "{verb} container {} (release {}, {}): {action}",
            c.name, c.release, c.image
        ),
        format!(
            "wait until it is healthy (at most {}s)",
            env.config.health_timeout.as_secs()
        ),
    ];
    if let Some(r) = &t.route {
        steps.push(format!(
            "re-point route {} ({}) from {} to the container's new address if it moved",
            r.name, r.host, r.backend
        ));
    }
    steps
}

pub(super) async fn start(env: &Env, service: &str) -> Result<Done> {
    let t = target::resolve(env, service).await?;
    if t.is_up() {
        let c = &t.primary;
        return Ok(Done {
            summary: format!(
                "{service} is already running (container {}, {})",
                c.name, c.health
            ),
            output: json!({
                "service": service,
                "container": c.name,
                "release": c.release,
                "health": c.health,
            }),
            changed: false,
        });
    }
    let started = Instant::now();
    info!(service, container = %t.primary.name, "starting container");
    match env
        .platform
        .docker
        .api()
        .start_container(&t.primary.id, None)
        .await
    {
        // 304: already started by someone else; still wait for health below.
        Ok(())
        | Err(BollardError::DockerResponseServerError {
            status_code: 304, ..
        }) => {}
        Err(e) => {
            return Err(docker_refused(
                e,
                format!("starting container {}", t.primary.name),
            ))
        }
    }
    come_up(env, &t, started, "started").await
}

pub(super) async fn plan_restart(env: &Env, service: &str) -> Result<Plan> {
    let t = target::resolve(env, service).await?;
    Ok(Plan {
        summary: format!("restart {service} (container {})", t.primary.name),
        steps: start_steps(env, &t, "restart"),
        changes: true,
    })
}

pub(super) async fn restart(env: &Env, service: &str) -> Result<Done> {
    let t = target::resolve(env, service).await?;
    let started = Instant::now();
    info!(service, container = %t.primary.name, "restarting container");
    env.platform
        .docker
        .api()
        .restart_container(&t.primary.id, None)
        .await
        .map_err(|e| docker_refused(e, format!("restarting container {}", t.primary.name)))?;
    come_up(env, &t, started, "restarted").await
}

/// Waits for health after a start or restart and keeps the route on the container.
async fn come_up(env: &Env, t: &Target, started: Instant, verb: &str) -> Result<Done> {
    let service = t.name();
    let c = wait_healthy(env, &t.primary, env.config.health_timeout).await?;
    let healthy_ms = started.elapsed().as_millis();
    let repointed = keep_route(env, t, &c).await?;
    let ms = started.elapsed().as_millis();
    let mut summary = format!(
        "{verb} {service} (container {}, release {}); {} after {}",
        c.name,
        c.release,
        if c.health == "none" {
            "running"
        } else {
            "healthy"
        },
        secs(healthy_ms)
    );
    if let Some(r) = &repointed {
        summary.push_str(&format!("; route re-pointed to {}", r.backend));
    }
    Ok(Done {
        summary,
        output: json!({
            "service": service,
            "container": c.name,
            "release": c.release,
            "health": c.health,
            "healthy_after_ms": healthy_ms,
            "elapsed_ms": ms,
            "route_repointed_to": repointed.map(|r| r.backend),
        }),
        changed: true,
    })
}

/// Polls the container until Docker reports it healthy (or running, without a health
/// check). Gives up early when it exits, since it will not recover by itself.
async fn wait_healthy(
    env: &Env,
    c: &ManagedContainer,
    timeout: Duration,
) -> Result<ManagedContainer> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = env.platform.docker.container(&c.id).await?;
        let ready = match now.health.as_str() {
            "healthy" => now.state == "running",
            "none" => now.state == "running",
            _ => false,
        };
        if ready {
            return Ok(now);
        }
        let gone = matches!(now.state.as_str(), "exited" | "dead");
        if gone || Instant::now() >= deadline {
            return Err(ToolError::new(
                ErrorKind::Timeout,
                format!(
                    "container {} of {} did not become healthy within {}s (state {}, health {}); \
                     service_logs shows why",
                    c.name,
                    c.service,
                    timeout.as_secs(),
                    now.state,
                    now.health
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Re-points the service's route when the container came back on another address.
/// Returns the new route when it had to.
async fn keep_route(env: &Env, t: &Target, c: &ManagedContainer) -> Result<Option<Route>> {
    let Some(route) = &t.route else {
        return Ok(None);
    };
    let Some(ip) = &c.ip else {
        return Err(ToolError::new(
            ErrorKind::Failed,
            format!(
                "container {} is healthy but has no address on a Docker network, so route {} cannot reach it",
                c.name, route.name
            ),
        ));
    };
    if points_at(route, ip) {
        return Ok(None);
    }
    let port = route
        .backend
        .rsplit_once(':')
        .map(|(_, p)| p.trim_end_matches('/'))
        .unwrap_or("80");
    // Keep everything else of the route (middlewares) and validate only the new backend.
    let mut new = route.clone();
    new.backend = Route::new(&route.name, &route.host, &format!("http://{ip}:{port}"))?.backend;
    info!(service = %t.name(), from = %route.backend, to = %new.backend, "re-pointing route");
    env.platform.routes.write(&new)?;
    wait_for_backend(env, &new).await?;
    Ok(Some(new))
}

/// Waits until Traefik has loaded the route with its new backend. The rule is unchanged by
/// a re-point, so waiting for the router alone would pass before the reload.
async fn wait_for_backend(env: &Env, route: &Route) -> Result<()> {
    let traefik = &env.platform.traefik;
    traefik
        .wait_for_router(&route.name, &route.rule(), ROUTE_TIMEOUT)
        .await?;
    let service = format!("{}@file", route.name);
    let deadline = Instant::now() + ROUTE_TIMEOUT;
    loop {
        let loaded = traefik
            .http_services()
            .await?
            .into_iter()
            .any(|s| s.name == service && s.server_urls().any(|u| u == route.backend));
        if loaded {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ToolError::new(
                ErrorKind::Timeout,
                format!(
                    "traefik did not load {service} with backend {} within {}s; the route file is written, \
                     so the next reload will pick it up",
                    route.backend,
                    ROUTE_TIMEOUT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn names(cs: &[&ManagedContainer]) -> String {
    cs.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
