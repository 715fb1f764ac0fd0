//! Switching a service's Traefik route to another container, confirmed three ways: the file
//! provider loaded the router, the loaded service's backend is the new container, and a real
//! request through the web entry point answers 200.

use std::time::{Duration, Instant};

use crate::env::Env;
use crate::traefik::Route;
use crate::{Error, Result};

/// How long Traefik may take to pick up a route change and answer through it.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

const POLL: Duration = Duration::from_millis(50);

/// The route of `service` on `host` to `backend`, with the security headers middleware when
/// the route it replaces had it.
pub fn build(service: &str, host: &str, backend: &str, security_headers: bool) -> Result<Route> {
    let route = Route::new(service, host, backend)?;
    Ok(if security_headers {
        route.with_security_headers()
    } else {
        route
    })
}

/// Writes `route` (atomically, by rename) and waits until Traefik serves it.
pub async fn switch(env: &Env, http: &reqwest::Client, route: &Route) -> Result<()> {
    env.platform.routes.write(route)?;
    confirm(env, http, route).await
}

/// Waits until Traefik has loaded `route` and answers 200 through it.
pub async fn confirm(env: &Env, http: &reqwest::Client, route: &Route) -> Result<()> {
    let deadline = Instant::now() + CONFIRM_TIMEOUT;
    env.platform
        .traefik
        .wait_for_router(&route.name, &route.rule(), CONFIRM_TIMEOUT)
        .await?;
    wait_backend(env, route, deadline).await?;
    wait_answer(env, http, route, deadline).await
}

/// The router's rule does not change on a switch, so the backend URL of the loaded service
/// is what proves Traefik took the new file.
async fn wait_backend(env: &Env, route: &Route, deadline: Instant) -> Result<()> {
    let want = format!("{}@file", route.name);
    loop {
        let services = env.platform.traefik.http_services().await?;
        let loaded: Vec<&str> = services
            .iter()
            .filter(|s| s.name == want)
            .flat_map(|s| s.server_urls())
            .collect();
        if loaded == [route.backend.as_str()] {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout(format!(
                "traefik did not load backend {} for service {want} within {CONFIRM_TIMEOUT:?} \
                 (it serves {loaded:?}); check its logs for file provider errors",
                route.backend
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn wait_answer(
    env: &Env,
    http: &reqwest::Client,
    route: &Route,
    deadline: Instant,
) -> Result<()> {
    let url = format!("{}/", env.config.traefik_web.trim_end_matches('/'));
    loop {
        let answer = http
            .get(&url)
            .header("Host", &route.host)
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        let last = match answer {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => format!("answered {}", resp.status()),
            Err(e) => format!("failed: {e}"),
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout(format!(
                "GET {url} with Host {} through traefik {last} (wanted 200 within \
                 {CONFIRM_TIMEOUT:?})",
                route.host
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}
