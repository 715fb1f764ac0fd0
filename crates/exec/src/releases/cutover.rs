//! The switch shared by deploy and rollback: a started container turns healthy, the route
//! moves to it and is confirmed, and only then is the old release stopped. Until the route is
//! confirmed the old release keeps serving, so every failure before that point leaves the
//! service as it was once the caller has cleaned up the new container.

use std::time::Instant;

use serde_json::{json, Value};

use super::container::{self, Unhealthy};
use super::route;
use super::state::RouteInfo;
use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::Error;

/// Where the service is switched from.
#[derive(Debug, Clone)]
pub struct Source {
    pub service: String,
    pub host: String,
    pub port: u16,
    /// The live container, still serving.
    pub old: Option<ManagedContainer>,
    /// The route before the switch, restored when the new one cannot be confirmed.
    pub old_route: Option<RouteInfo>,
}

/// How a cutover failed; the old release is still serving in every case.
#[derive(Debug)]
pub enum Failure {
    /// The new container never turned healthy; the route was not touched.
    Unhealthy(Unhealthy),
    /// Traefik did not confirm the new route; the old route was written back.
    Route { error: Error, restored: String },
    /// Docker or the file system failed before the route was switched.
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

/// Milliseconds per step, reported in the tool output (and used by the benchmark).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub healthy_ms: u128,
    pub route_ms: u128,
    pub retire_ms: u128,
}

impl Timings {
    pub fn json(&self) -> Value {
        json!({"healthy": self.healthy_ms, "route": self.route_ms, "retire": self.retire_ms})
    }
}

/// A finished switch: `ready` serves.
#[derive(Debug)]
pub struct Switched {
    pub ready: ManagedContainer,
    pub timings: Timings,
    /// Stopping the old release failed. The switch stands (the old one gets no traffic), so
    /// this is reported, not undone.
    pub retire_error: Option<String>,
}

impl Switched {
    /// The sentence for the summary when the old release could not be stopped.
    pub fn retire_note(&self, old: Option<&ManagedContainer>) -> Option<String> {
        let (e, old) = (self.retire_error.as_ref()?, old?);
        Some(format!(
            "stopping {n} failed ({e}); it no longer receives traffic, stop it with \
             `docker stop {n}`",
            n = old.name
        ))
    }
}

/// The switch happened but its history entry could not be written.
/// Joins the non-empty clauses of a failure message with `; `.
pub fn clauses(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn unrecorded(
    service: &str,
    release: &str,
    e: steward_tools::ToolError,
) -> steward_tools::ToolError {
    steward_tools::ToolError::new(
        e.kind,
        format!(
            "{service} now serves {release} (route switched and confirmed), but recording that in \
             the release history failed: {}; the next release tool call records the switch \
             from the route",
            e.message
        ),
    )
}

/// Moves `from.service` onto the started container `new`.
pub async fn run(
    env: &Env,
    http: &reqwest::Client,
    from: &Source,
    new: &str,
) -> std::result::Result<Switched, Failure> {
    let mut timings = Timings::default();
    let t = Instant::now();
    let ready = container::wait_healthy(env, new, env.config.health_timeout)
        .await?
        .map_err(Failure::Unhealthy)?;
    timings.healthy_ms = t.elapsed().as_millis();

    let t = Instant::now();
    let old_ip = from.old_route.as_ref().and_then(|r| r.ip());
    let old = from
        .old
        .as_ref()
        .zip(old_ip)
        .map(|(c, ip)| (c.name.as_str(), ip));
    let ip = container::ip_on_same_network(env, &ready, old)
        .await?
        .ok_or_else(|| Error::Failed(format!("container {new} has no IP on any network")))?;
    let backend = format!("http://{ip}:{}", from.port);
    let headers = from.old_route.as_ref().is_some_and(|r| r.security_headers);
    let new_route = route::build(&from.service, &from.host, &backend, headers)?;
    if let Err(error) = route::switch(env, http, &new_route).await {
        let restored = restore(env, http, from).await;
        return Err(Failure::Route { error, restored });
    }
    timings.route_ms = t.elapsed().as_millis();

    let t = Instant::now();
    let mut retire_error = None;
    if let Some(old) = from.old.as_ref().filter(|o| o.name != ready.name) {
        retire_error = container::stop(env, &old.name)
            .await
            .err()
            .map(|e| e.to_string());
    }
    timings.retire_ms = t.elapsed().as_millis();
    Ok(Switched {
        ready,
        timings,
        retire_error,
    })
}

/// Writes the previous route back, saying what came of it.
async fn restore(env: &Env, http: &reqwest::Client, from: &Source) -> String {
    let Some(old) = &from.old_route else {
        return match env.platform.routes.remove(&from.service) {
            Ok(_) => "there was no route before, so the new one was removed".into(),
            Err(e) => format!("removing the new route failed too: {e}"),
        };
    };
    let result = async {
        let route = route::build(&from.service, &old.host, &old.backend, old.security_headers)?;
        env.platform.routes.write(&route)?;
        route::confirm(env, http, &route).await
    }
    .await;
    match result {
        Ok(()) => format!("the route was restored to {}", old.backend),
        Err(e) => format!(
            "the route file was written back to {} but traefik did not confirm it: {e}",
            old.backend
        ),
    }
}
