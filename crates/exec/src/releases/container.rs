//! Container steps of a release switch: create the next release from the live one's
//! settings, wait for health (with Docker's own reason when it fails), stop, remove.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use tracing::info;

use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::{labels, Error, Result};

/// How long a retired release gets to finish in-flight requests before Docker kills it. The
/// route no longer sends it anything by then, so this only bounds the drain.
pub const STOP_GRACE_SECS: i32 = 5;

/// How often health is polled while waiting.
const POLL: Duration = Duration::from_millis(100);

/// The image a deploy asked for, as Docker knows it.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub id: String,
}

/// Looks the image up locally: deploys never pull, so a missing image is a clear error.
pub async fn image(env: &Env, image: &str) -> steward_tools::Result<ImageInfo> {
    match env.platform.docker.api().inspect_image(image).await {
        Ok(i) => Ok(ImageInfo {
            id: i.id.unwrap_or_default(),
        }),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(steward_tools::ToolError::new(
            steward_tools::ErrorKind::NotFound,
            format!(
                "image {image} is not present on this host; steward never pulls, so build or \
                 `docker pull {image}` first (`docker images` lists what is there)"
            ),
        )),
        Err(e) => Err(Error::from(e).into()),
    }
}

/// The image id a container runs (not its tag, which may have moved).
pub async fn image_id_of(env: &Env, container: &str) -> Result<String> {
    let c = env
        .platform
        .docker
        .api()
        .inspect_container(container, None)
        .await?;
    Ok(c.image.unwrap_or_default())
}

/// Creates `<service>-<release>` from `image` with the template container's settings: its own
/// environment and labels (not those its image baked in, which the new image brings itself),
/// its whole HostConfig (memory/CPU/PID limits, security options, restart policy, mounts,
/// network mode) and its networks. Host port bindings are dropped: the old release still holds
/// them, and services are reached through Traefik. Returns the new container's name.
pub async fn create_from(
    env: &Env,
    template: &str,
    service: &str,
    release: &str,
    image: &str,
) -> Result<String> {
    let api = env.platform.docker.api();
    let t = api.inspect_container(template, None).await?;
    let (image_env, image_labels) = image_defaults(env, &t).await?;
    let config = t.config.clone().unwrap_or_default();
    let env_vars: Vec<String> = config
        .env
        .unwrap_or_default()
        .into_iter()
        // PORT stays pinned: the route's port was derived from it.
        .filter(|e| !image_env.contains(e) || e.starts_with("PORT="))
        .collect();
    let mut labels: HashMap<String, String> = config
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| image_labels.get(k) != Some(v))
        .collect();
    labels.extend(env.config.extra_labels.iter().cloned());
    labels.insert(labels::SERVICE.into(), service.into());
    labels.insert(labels::RELEASE.into(), release.into());
    let mut host_config = t.host_config.clone().unwrap_or_default();
    host_config.port_bindings = None;
    host_config.publish_all_ports = None;
    let name = format!("{service}-{release}");
    info!(%service, container = %name, %image, template, "creating release container");
    let opts = CreateContainerOptionsBuilder::new().name(&name).build();
    api.create_container(
        Some(opts),
        ContainerCreateBody {
            image: Some(image.into()),
            env: Some(env_vars),
            labels: Some(labels),
            host_config: Some(host_config),
            ..Default::default()
        },
    )
    .await?;
    if let Err(e) = connect_networks(env, &t, &name).await {
        remove(env, &name).await?;
        return Err(e);
    }
    Ok(name)
}

/// The env entries and labels the template's image sets by itself.
async fn image_defaults(
    env: &Env,
    t: &ContainerInspectResponse,
) -> Result<(Vec<String>, HashMap<String, String>)> {
    let Some(id) = t.image.as_deref() else {
        return Ok(Default::default());
    };
    let img = env.platform.docker.api().inspect_image(id).await?;
    let cfg = img.config.unwrap_or_default();
    Ok((cfg.env.unwrap_or_default(), cfg.labels.unwrap_or_default()))
}

/// Joins `name` to every network the template is on that creation did not already attach.
async fn connect_networks(env: &Env, t: &ContainerInspectResponse, name: &str) -> Result<()> {
    let api = env.platform.docker.api();
    let networks = |c: &ContainerInspectResponse| -> Vec<(String, Option<String>)> {
        c.network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|m| {
                m.iter()
                    .map(|(k, ep)| (k.clone(), ep.network_id.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let have = networks(&api.inspect_container(name, None).await?);
    for (net, id) in networks(t) {
        let attached = have
            .iter()
            .any(|(n, i)| *n == net || (i.is_some() && *i == id));
        if !attached {
            api.connect_network(
                &net,
                NetworkConnectRequest {
                    container: name.into(),
                    endpoint_config: None,
                },
            )
            .await?;
        }
    }
    Ok(())
}

pub async fn start(env: &Env, name: &str) -> Result<()> {
    match env.platform.docker.api().start_container(name, None).await {
        // 304: already running.
        Ok(())
        | Err(BollardError::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Stops a retired release, giving it [`STOP_GRACE_SECS`] to drain.
pub async fn stop(env: &Env, name: &str) -> Result<()> {
    let opts = StopContainerOptionsBuilder::new()
        .t(STOP_GRACE_SECS)
        .build();
    match env
        .platform
        .docker
        .api()
        .stop_container(name, Some(opts))
        .await
    {
        // 304: already stopped.
        Ok(())
        | Err(BollardError::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes a container (killing it if running); a missing one is fine.
pub async fn remove(env: &Env, name: &str) -> Result<()> {
    let opts = RemoveContainerOptionsBuilder::new().force(true).build();
    match env
        .platform
        .docker
        .api()
        .remove_container(name, Some(opts))
        .await
    {
        Ok(())
        | Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes a retired, stopped release. Refuses (409) if it runs again meanwhile.
pub async fn remove_stopped(env: &Env, name: &str) -> Result<()> {
    let opts = RemoveContainerOptionsBuilder::new().force(false).build();
    Ok(env
        .platform
        .docker
        .api()
        .remove_container(name, Some(opts))
        .await?)
}

/// Why a container did not turn healthy, in Docker's words.
#[derive(Debug, Clone)]
pub struct Unhealthy {
    pub message: String,
    /// Still starting when time ran out (rather than failing its check or exiting).
    pub timed_out: bool,
}

/// Waits until `name` is healthy (or running, for images without a health check). Fails
/// as soon as Docker declares it unhealthy or it exits, since its own check has then spoken;
/// otherwise after `timeout`.
pub async fn wait_healthy(
    env: &Env,
    name: &str,
    timeout: Duration,
) -> Result<std::result::Result<ManagedContainer, Unhealthy>> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = env.platform.docker.container(name).await?;
        let ready = match c.health.as_str() {
            "healthy" => true,
            "none" => c.state == "running",
            _ => false,
        };
        if ready {
            return Ok(Ok(c));
        }
        let gone = matches!(c.state.as_str(), "exited" | "dead");
        let timed_out = Instant::now() >= deadline;
        if gone || c.health == "unhealthy" || timed_out {
            let why = if gone {
                format!("it {} ", c.state)
            } else if timed_out {
                format!("it stayed {} for {timeout:?} ", c.health)
            } else {
                "Docker's health check declared it unhealthy ".to_string()
            };
            let detail = failure_detail(env, name).await?;
            return Ok(Err(Unhealthy {
                message: format!("container {name} did not become healthy: {why}({detail})"),
                timed_out: timed_out && !gone,
            }));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// State, exit code and the last health-check output, from `docker inspect`.
async fn failure_detail(env: &Env, name: &str) -> Result<String> {
    let inspect = env
        .platform
        .docker
        .api()
        .inspect_container(name, None)
        .await?;
    let state = inspect.state.unwrap_or_default();
    let mut parts = vec![format!(
        "state {}",
        state.status.map(|s| s.to_string()).unwrap_or_default()
    )];
    if !state.running.unwrap_or(false) {
        parts.push(format!("exit code {}", state.exit_code.unwrap_or_default()));
        if let Some(err) = state.error.filter(|e| !e.is_empty()) {
            parts.push(format!("error {err:?}"));
        }
    }
    let health = state.health.unwrap_or_default();
    if let Some(streak) = health.failing_streak.filter(|s| *s > 0) {
        parts.push(format!("{streak} failed checks in a row"));
    }
    match health.log.unwrap_or_default().last() {
        Some(last) => parts.push(format!(
            "last health check exit {}: {:?}",
            last.exit_code.unwrap_or_default(),
            truncate(last.output.as_deref().unwrap_or("").trim(), 300)
        )),
        None => parts.push("no health check has run yet".into()),
    }
    Ok(parts.join(", "))
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The IP of `container` on the network where `old_ip` lives in `old`, so the new route uses
/// the same network Traefik already reaches; else the container's first IP.
pub async fn ip_on_same_network(
    env: &Env,
    container: &ManagedContainer,
    old: Option<(&str, &str)>,
) -> Result<Option<String>> {
    let Some((old_name, old_ip)) = old else {
        return Ok(container.ip.clone());
    };
    let api = env.platform.docker.api();
    let nets = |c: ContainerInspectResponse| {
        c.network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
    };
    let old_nets = match api.inspect_container(old_name, None).await {
        Ok(c) => nets(c),
        Err(_) => return Ok(container.ip.clone()),
    };
    let Some(net) = old_nets
        .iter()
        .find(|(_, ep)| ep.ip_address.as_deref() == Some(old_ip))
        .map(|(n, _)| n.clone())
    else {
        return Ok(container.ip.clone());
    };
    let new_nets = nets(api.inspect_container(&container.name, None).await?);
    Ok(new_nets
        .get(&net)
        .and_then(|ep| ep.ip_address.clone())
        .filter(|ip| !ip.is_empty())
        .or_else(|| container.ip.clone()))
}
