//! `service_deploy`: the new image starts as the next release next to the live one, must turn
//! healthy, takes over the route, and only then is the old release stopped (kept for
//! rollback). Retired releases beyond the retention are pruned, oldest first.

use serde_json::json;
use steward_tools::args::ServiceDeployArgs;
use steward_tools::{Done, ErrorKind, Plan, Result, ToolError};

use super::container;
use super::cutover::{self, Failure, Source};
use super::state::{self, describe, Snapshot};
use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::inventory::{self, release_number};

/// Port apps listen on when the service has no route to learn it from (the demo's default).
const DEFAULT_PORT: u16 = 8080;

/// What a deploy would do, worked out without changing anything.
#[derive(Debug)]
struct Intent {
    snap: Snapshot,
    image: String,
    /// The container whose settings the new release copies: the live one, else the newest.
    template: ManagedContainer,
    /// The live container, when running.
    old: Option<ManagedContainer>,
    release: String,
    kind: Kind,
    /// Containers of interrupted earlier deploys: newer than the live release, never live.
    abandoned: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// The image already serves.
    Nothing,
    /// The image already runs in the live release but the route does not point at it.
    RepairRoute,
    Deploy,
}

async fn intent(env: &Env, args: &ServiceDeployArgs) -> Result<Intent> {
    let snap = Snapshot::read(env, args.service.as_str()).await?;
    let image = args.image.to_string();
    let wanted = container::image(env, &image).await?;
    let live_release = snap.live_release();
    let template = live_release
        .as_deref()
        .and_then(|r| snap.container(r))
        .or_else(|| snap.service.containers.last())
        .cloned()
        .ok_or_else(|| {
            ToolError::new(
                ErrorKind::NotFound,
                format!(
                    "service {} has no containers to deploy next to",
                    args.service
                ),
            )
        })?;
    let old = snap.live.clone().filter(|c| c.state == "running");
    let kind = match &old {
        Some(live) if container::image_id_of(env, &live.name).await? == wanted.id => {
            let routed = snap.route.as_ref().and_then(|r| r.ip()) == live.ip.as_deref();
            if routed {
                Kind::Nothing
            } else {
                Kind::RepairRoute
            }
        }
        _ => Kind::Deploy,
    };
    let live_number = release_number(&template.release);
    let abandoned = snap
        .service
        .containers
        .iter()
        .filter(|c| release_number(&c.release) > live_number)
        .filter(|c| {
            snap.history
                .record(&c.release)
                .is_none_or(|r| r.live.is_empty())
        })
        .map(|c| c.name.clone())
        .collect();
    let release = snap.next_release();
    Ok(Intent {
        snap,
        image,
        template,
        old,
        release,
        kind,
        abandoned,
    })
}

impl Intent {
    fn port(&self) -> u16 {
        self.snap
            .route
            .as_ref()
            .and_then(|r| r.port())
            .unwrap_or(DEFAULT_PORT)
    }

    fn container_name(&self) -> String {
        format!("{}-{}", self.snap.service.name, self.release)
    }

    /// Retired releases the deploy would remove: all stopped ones beyond the retention, after
    /// the live one retires.
    fn prune_preview(&self, env: &Env) -> Vec<String> {
        let mut retired: Vec<&ManagedContainer> = self
            .snap
            .service
            .containers
            .iter()
            .filter(|c| !self.abandoned.contains(&c.name))
            .filter(|c| c.state != "running" || self.old.as_ref().is_some_and(|o| o.name == c.name))
            .collect();
        retired.sort_by_key(|c| std::cmp::Reverse(release_number(&c.release)));
        retired
            .into_iter()
            .skip(env.config.release_retention)
            .map(|c| c.name.clone())
            .collect()
    }
}

pub async fn dry_run(env: &Env, args: &ServiceDeployArgs) -> Result<Plan> {
    let i = intent(env, args).await?;
    let service = &i.snap.service.name;
    let host = i.snap.host(env);
    match i.kind {
        Kind::Nothing => {
            let live = i.old.as_ref().map(describe).unwrap_or_default();
            return Ok(Plan {
                summary: format!(
                    "{service} already serves {} as {live}; nothing to do",
                    i.image
                ),
                steps: vec![],
                changes: false,
            });
        }
        Kind::RepairRoute => {
            let live = i.old.as_ref().map(describe).unwrap_or_default();
            return Ok(Plan {
                summary: format!(
                    "{service} already runs {} as {live}, but its route points elsewhere; \
                     point {host} back at it",
                    i.image
                ),
                steps: vec![format!(
                    "switch route {host} to {} and confirm it through traefik",
                    i.template.name
                )],
                changes: true,
            });
        }
        Kind::Deploy => {}
    }
    let new = i.container_name();
    let mut steps = Vec::new();
    for a in &i.abandoned {
        steps.push(format!(
            "remove {a}, left by an interrupted deploy (never live)"
        ));
    }
    steps.push(format!(
        "create {new} (release {}) from {} with the env, labels, limits and networks of {}",
        i.release, i.image, i.template.name
    ));
    steps.push(format!(
        "start {new} and wait up to {:?} for it to turn healthy; if it does not, remove it and \
         leave {} serving",
        env.config.health_timeout,
        i.old
            .as_ref()
            .map(|o| o.name.as_str())
            .unwrap_or("the service as it is")
    ));
    let from = i
        .snap
        .route
        .as_ref()
        .map(|r| format!(" from {}", r.backend))
        .unwrap_or_default();
    steps.push(format!(
        "switch route {host}{from} to {new} port {}; confirm the router and backend in traefik's \
         API and a 200 through {}",
        i.port(),
        env.config.traefik_web
    ));
    if let Some(old) = &i.old {
        steps.push(format!(
            "stop {} ({}) and keep it for rollback",
            old.name, old.image
        ));
    }
    for p in i.prune_preview(env) {
        steps.push(format!(
            "remove retired {p} (beyond release_retention {})",
            env.config.release_retention
        ));
    }
    steps.push(format!(
        "record {} as live in the release history",
        i.release
    ));
    Ok(Plan {
        summary: format!(
            "deploy {} to {service} as {} ({new}), replacing {}",
            i.image,
            i.release,
            i.old
                .as_ref()
                .map(describe)
                .unwrap_or_else(|| "nothing running".into())
        ),
        steps,
        changes: true,
    })
}

pub async fn execute(env: &Env, http: &reqwest::Client, args: &ServiceDeployArgs) -> Result<Done> {
    let mut i = intent(env, args).await?;
    let service = i.snap.service.name.clone();
    let host = i.snap.host(env);
    if i.kind == Kind::Nothing {
        if i.snap.history_changed {
            i.snap.save(env)?;
        }
        let live = i
            .old
            .as_ref()
            .map(|o| o.release.clone())
            .unwrap_or_default();
        return Ok(Done {
            summary: format!(
                "{service} already serves {} as {live}; nothing changed",
                i.image
            ),
            output: json!({
                "service": service, "release": live, "image": i.image,
                "container": i.old.as_ref().map(|o| o.name.clone()), "host": host,
            }),
            changed: false,
        });
    }
    for a in &i.abandoned {
        container::remove(env, a).await?;
    }
    let source = Source {
        service: service.clone(),
        host: host.clone(),
        port: i.port(),
        old: i.old.clone(),
        old_route: i.snap.route.clone(),
    };
    let new = if i.kind == Kind::RepairRoute {
        i.template.name.clone()
    } else {
        let name =
            container::create_from(env, &i.template.name, &service, &i.release, &i.image).await?;
        if let Err(e) = container::start(env, &name).await {
            return Err(failed(env, &i, &name, Failure::Other(e)).await);
        }
        name
    };
    let created_at = env.clock.now();
    let switched = match cutover::run(env, http, &source, &new).await {
        Ok(ok) => ok,
        Err(failure) => return Err(failed(env, &i, &new, failure).await),
    };
    let ready = &switched.ready;
    let release = ready.release.clone();
    i.snap.history.ensure(&release, &i.image, created_at);
    i.snap.history.went_live(&release, env.clock.now());
    i.snap
        .save(env)
        .map_err(|e| cutover::unrecorded(&service, &release, e))?;
    let (pruned, prune_errors) = prune(env, &service, &release).await;
    let retired = i.old.as_ref().filter(|o| o.name != ready.name);
    let mut summary = format!(
        "deployed {} to {service} as {release} ({}), serving on {host}",
        i.image, ready.name
    );
    match switched.retire_note(retired) {
        Some(note) => summary.push_str(&format!("; {note}")),
        None => {
            if let Some(o) = retired {
                summary.push_str(&format!("; {} stopped and kept for rollback", describe(o)));
            }
        }
    }
    if !pruned.is_empty() {
        summary.push_str(&format!("; pruned {}", pruned.join(", ")));
    }
    if !prune_errors.is_empty() {
        summary.push_str(&format!("; pruning failed: {}", prune_errors.join("; ")));
    }
    Ok(Done {
        summary,
        output: json!({
            "service": service,
            "release": release,
            "image": i.image,
            "container": ready.name,
            "host": host,
            "previous": retired.map(state::summary),
            "pruned": pruned,
            "prune_errors": prune_errors,
            "retire_error": switched.retire_error,
            "timings_ms": switched.timings.json(),
        }),
        changed: true,
    })
}

/// Cleans up after a failed cutover and says what happened and what still serves.
async fn failed(env: &Env, i: &Intent, new: &str, failure: Failure) -> ToolError {
    let created = i.kind == Kind::Deploy;
    let cleanup = if created {
        match container::remove(env, new).await {
            Ok(()) => format!("removed {new}"),
            Err(e) => format!("removing {new} failed too ({e}); remove it by hand"),
        }
    } else {
        String::new()
    };
    let serving = i
        .old
        .as_ref()
        .map(|o| format!("{} keeps serving", describe(o)))
        .unwrap_or_else(|| "nothing was serving before".into());
    let what = format!("deploy of {} to {} failed", i.image, i.snap.service.name);
    let join = cutover::clauses;
    match failure {
        Failure::Unhealthy(u) => ToolError::new(
            if u.timed_out {
                ErrorKind::Timeout
            } else {
                ErrorKind::Failed
            },
            format!(
                "{what}: {}; {}",
                u.message,
                join(&[&cleanup, &serving, "the route was not touched"])
            ),
        ),
        Failure::Route { error, restored } => {
            let kind = steward_tools::ToolError::from(error);
            ToolError::new(
                kind.kind,
                format!(
                    "{what}: traefik did not confirm the switch: {}; {}",
                    kind.message,
                    join(&[&restored, &cleanup, &serving])
                ),
            )
        }
        Failure::Other(e) => {
            let e = ToolError::from(e);
            ToolError::new(
                e.kind,
                format!("{what}: {}; {}", e.message, join(&[&cleanup, &serving])),
            )
        }
    }
}

/// Removes stopped releases beyond the retention, oldest first; never the live one. Returns
/// what was removed and what could not be (the deploy itself has succeeded by then).
async fn prune(env: &Env, service: &str, live: &str) -> (Vec<String>, Vec<String>) {
    let svc = match inventory::service(env, service).await {
        Ok(s) => s,
        Err(e) => return (vec![], vec![format!("listing {service}: {e}")]),
    };
    let mut retired: Vec<&ManagedContainer> = svc
        .containers
        .iter()
        .filter(|c| c.release != live && matches!(c.state.as_str(), "exited" | "created" | "dead"))
        .collect();
    retired.sort_by_key(|c| std::cmp::Reverse(release_number(&c.release)));
    let (mut pruned, mut errors) = (vec![], vec![]);
    for c in retired.into_iter().skip(env.config.release_retention) {
        match container::remove_stopped(env, &c.name).await {
            Ok(()) => pruned.push(c.name.clone()),
            Err(e) => errors.push(format!("{}: {e}", c.name)),
        }
    }
    (pruned, errors)
}
