//! `service_status`: health, image, release, route and the limits the container really has.
//!
//! Limits are read back from the container's `HostConfig`, never from what steward asked
//! for, so a limit that did not take shows up here as missing.

use serde_json::{json, Value};
use steward_tools::{Done, Plan, Result};

use super::limits::{self, Limits};
use super::read_only;
use super::target::{self, Target};
use crate::env::Env;
use crate::traefik::Router;

pub(super) async fn plan(env: &Env, service: &str) -> Result<Plan> {
    let t = target::resolve(env, service).await?;
    Ok(read_only(
        format!("status of {service}"),
        vec![
            format!(
                "inspect container {} (release {})",
                t.primary.name, t.primary.release
            ),
            format!("read route file {service}.yml and router {service}@file from the Traefik API"),
            format!(
                "list the {} retained release(s) by label",
                t.service.containers.len()
            ),
        ],
    ))
}

pub(super) async fn run(env: &Env, service: &str) -> Result<Done> {
    let t = target::resolve(env, service).await?;
    let (inspect, routers) = tokio::join!(
        env.platform
            .docker
            .api()
            .inspect_container(&t.primary.id, None),
        env.platform.traefik.http_routers()
    );
    let inspect = inspect.map_err(crate::Error::from)?;
    let host_config = inspect.host_config.unwrap_or_default();
    let state = inspect.state.unwrap_or_default();
    let limits = Limits::from_host_config(&host_config);

    let route = route_json(&t, routers);
    let live = t.is_up();
    let releases: Vec<Value> = t
        .service
        .containers
        .iter()
        .map(|c| {
            json!({
                "release": c.release,
                "container": c.name,
                "image": c.image,
                "state": c.state,
                "health": c.health,
                "live": live && c.id == t.primary.id,
            })
        })
        .collect();

    let mut summary = format!(
        "{service}: {} ({}), release {} {}",
        t.primary.state, t.primary.health, t.primary.release, t.primary.image
    );
    match &t.route {
        Some(r) => summary.push_str(&format!(
            ", route {} {}",
            r.host,
            route["traefik"].as_str().unwrap_or("unknown")
        )),
        None => summary.push_str(", no route"),
    }
    summary.push_str(&format!("; limits {}", limits.describe()));

    Ok(Done {
        summary,
        output: json!({
            "service": t.name(),
            "kind": t.service.kind,
            "live": {
                "container": t.primary.name,
                "id": t.primary.id,
                "release": t.primary.release,
                "image": t.primary.image,
                "state": t.primary.state,
                "health": t.primary.health,
                "serving": live,
                "ip": t.primary.ip,
                "started_at": state.started_at,
                "finished_at": state.finished_at.filter(|_| !live),
                "restart_count": inspect.restart_count.unwrap_or(0),
                "oom_killed": state.oom_killed.unwrap_or(false),
            },
            "route": route,
            "limits": limits::host_config_json(&host_config),
            "releases": releases,
        }),
        changed: false,
    })
}

/// The route as steward wrote it and as Traefik loaded it. Traefik being down leaves the
/// rest of the status intact and says so.
fn route_json(t: &Target, routers: crate::Result<Vec<Router>>) -> Value {
    let Some(route) = &t.route else {
        return Value::Null;
    };
    let router = format!("{}@file", route.name);
    let traefik = match routers {
        Ok(rs) => rs
            .into_iter()
            .find(|r| r.name == router)
            .map(|r| r.status)
            .unwrap_or_else(|| "not loaded".into()),
        Err(e) => format!("unknown ({e})"),
    };
    json!({
        "host": route.host,
        "backend": route.backend,
        "router": router,
        "traefik": traefik,
        "enabled": traefik == "enabled",
        "points_at_live": t.route_points_at_primary(),
    })
}
