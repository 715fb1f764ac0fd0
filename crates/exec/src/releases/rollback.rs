//! `service_rollback`: back to the release live before the current one, to a release id, or to
//! the release that was live at a time (resolved against the injected clock and the history).
//! A time before the service's first release was created is refused as invalid input.
//! The target is a kept container, started again; no registry is needed.

use serde_json::json;
use steward_tools::args::ServiceRollbackArgs;
use steward_tools::when::RollbackTarget;
use steward_tools::{Done, ErrorKind, Plan, Result, ToolError};

use super::container;
use super::cutover::{self, Failure, Source};
use super::state::{self, describe, Snapshot};
use super::time;
use crate::docker::ManagedContainer;
use crate::env::Env;
use crate::inventory::release_number;

/// The resolved rollback.
#[derive(Debug)]
struct Intent {
    snap: Snapshot,
    /// How `to` was understood, for messages: "previous release r2", "r2 (live at ...)".
    reading: String,
    target: ManagedContainer,
    /// The live container, when running.
    old: Option<ManagedContainer>,
    nothing_to_do: bool,
}

async fn intent(env: &Env, args: &ServiceRollbackArgs) -> Result<Intent> {
    // An unreadable `to` is refused before anything is looked at.
    let to = RollbackTarget::parse(&args.to, env.clock.now())
        .map_err(|e| ToolError::new(ErrorKind::InvalidArgs, e))?;
    let snap = Snapshot::read(env, args.service.as_str()).await?;
    let service = snap.service.name.clone();
    let live = snap.live_release();
    let (release, reading) = match &to {
        RollbackTarget::Previous => {
            let r = previous(&snap, live.as_deref()).ok_or_else(|| {
                ToolError::new(
                    ErrorKind::NotFound,
                    format!(
                        "{service} has no release before {} to roll back to \
                         (service_releases shows the history)",
                        live.as_deref().unwrap_or("the current one")
                    ),
                )
            })?;
            (r.clone(), format!("previous release {r}"))
        }
        RollbackTarget::Release(r) => (r.clone(), format!("release {r}")),
        RollbackTarget::At(t) => {
            // Before the first release was created the service did not exist: a mistake in
            // the time (a wrong year), not a gap in the history.
            if let Some(first) = snap.history.releases.iter().min_by_key(|r| r.created_at) {
                if *t < first.created_at {
                    return Err(ToolError::new(
                        ErrorKind::InvalidArgs,
                        format!(
                            "{service} did not exist at {} ({:?}): its first release {} was \
                             created at {}; give a later time, `previous` or a release id \
                             (service_releases lists them)",
                            time::format(*t),
                            args.to,
                            first.release,
                            time::format(first.created_at)
                        ),
                    ));
                }
            }
            let r = snap.history.live_at(*t).ok_or_else(|| {
                let start = snap
                    .history
                    .first_live()
                    .map(|(at, r)| {
                        format!("its history starts at {} ({r} went live)", time::format(at))
                    })
                    .unwrap_or_else(|| "it has no recorded history".into());
                ToolError::new(
                    ErrorKind::NotFound,
                    format!(
                        "no release of {service} was live at {} ({:?}): {start}",
                        time::format(*t),
                        args.to
                    ),
                )
            })?;
            (
                r.release.clone(),
                format!("{} (live at {})", r.release, time::format(*t)),
            )
        }
    };
    let target = snap
        .container(&release)
        .cloned()
        .ok_or_else(|| not_kept(env, &snap, &release))?;
    let old = snap.live.clone().filter(|c| c.state == "running");
    let routed = snap.route.as_ref().and_then(|r| r.ip()).is_some()
        && snap.route.as_ref().and_then(|r| r.ip()) == target.ip.as_deref();
    let nothing_to_do =
        live.as_deref() == Some(release.as_str()) && target.state == "running" && routed;
    Ok(Intent {
        snap,
        reading,
        target,
        old,
        nothing_to_do,
    })
}

/// The release that served before `live`: from the history, else (history bootstrapped from
/// containers, past unknown) the newest kept release older than the live one.
fn previous(snap: &Snapshot, live: Option<&str>) -> Option<String> {
    if let Some(r) = snap.history.previous() {
        return Some(r.release.clone());
    }
    let live_n = live.map(release_number).unwrap_or(u64::MAX);
    snap.service
        .containers
        .iter()
        .rev()
        .find(|c| release_number(&c.release) < live_n)
        .map(|c| c.release.clone())
}

/// The target's container is gone: either pruned by retention or never existed.
fn not_kept(env: &Env, snap: &Snapshot, release: &str) -> ToolError {
    let service = &snap.service.name;
    let kept = snap.kept();
    match snap.history.record(release) {
        Some(r) => ToolError::new(
            ErrorKind::NotFound,
            format!(
                "release {release} of {service} ({}) is no longer kept: steward keeps the live \
                 release plus the {} newest retired ones (release_retention), and {release} was \
                 pruned; kept now: {}. Deploy {} again with service_deploy instead",
                r.image,
                env.config.release_retention,
                kept.join(", "),
                r.image
            ),
        ),
        None => ToolError::new(
            ErrorKind::NotFound,
            format!(
                "{service} has no release {release}; its releases are {} \
                 (service_releases lists them)",
                kept.join(", ")
            ),
        ),
    }
}

pub async fn dry_run(env: &Env, args: &ServiceRollbackArgs) -> Result<Plan> {
    let i = intent(env, args).await?;
    let service = &i.snap.service.name;
    if i.nothing_to_do {
        return Ok(Plan {
            summary: format!(
                "{service} already serves {}; nothing to do",
                describe(&i.target)
            ),
            steps: vec![],
            changes: false,
        });
    }
    let host = i.snap.host(env);
    let t = &i.target;
    let mut steps = Vec::new();
    if t.state != "running" {
        steps.push(format!("start kept container {} ({})", t.name, t.image));
    }
    steps.push(format!(
        "wait up to {:?} for {} to turn healthy; if it does not, stop it again and leave {} \
         serving",
        env.config.health_timeout,
        t.name,
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
        "switch route {host}{from} to {}; confirm the router and backend in traefik's API and a \
         200 through {}",
        t.name, env.config.traefik_web
    ));
    if let Some(old) = i.old.as_ref().filter(|o| o.name != t.name) {
        steps.push(format!(
            "stop {} ({}) and keep it for rollback",
            old.name, old.image
        ));
    }
    steps.push(format!(
        "record {} as live in the release history",
        t.release
    ));
    Ok(Plan {
        summary: format!(
            "roll {service} back to {}: {}, replacing {}",
            i.reading,
            describe(t),
            i.old
                .as_ref()
                .map(describe)
                .unwrap_or_else(|| "nothing running".into())
        ),
        steps,
        changes: true,
    })
}

pub async fn execute(
    env: &Env,
    http: &reqwest::Client,
    args: &ServiceRollbackArgs,
) -> Result<Done> {
    let mut i = intent(env, args).await?;
    let service = i.snap.service.name.clone();
    let host = i.snap.host(env);
    let t = i.target.clone();
    if i.nothing_to_do {
        if i.snap.history_changed {
            i.snap.save(env)?;
        }
        return Ok(Done {
            summary: format!("{service} already serves {}; nothing changed", describe(&t)),
            output: json!({"service": service, "release": t.release, "image": t.image,
                           "container": t.name, "host": host}),
            changed: false,
        });
    }
    let was_running = t.state == "running";
    container::start(env, &t.name).await?;
    let source = Source {
        service: service.clone(),
        host: host.clone(),
        port: i.snap.route.as_ref().and_then(|r| r.port()).unwrap_or(8080),
        old: i.old.clone(),
        old_route: i.snap.route.clone(),
    };
    let switched = match cutover::run(env, http, &source, &t.name).await {
        Ok(ok) => ok,
        Err(failure) => return Err(failed(env, &i, was_running, failure).await),
    };
    let ready = &switched.ready;
    i.snap.history.went_live(&ready.release, env.clock.now());
    i.snap
        .save(env)
        .map_err(|e| cutover::unrecorded(&service, &ready.release, e))?;
    let retired = i.old.as_ref().filter(|o| o.name != ready.name);
    let mut summary = format!(
        "rolled {service} back to {}: {} ({}) serves on {host}",
        i.reading, ready.release, ready.image
    );
    match switched.retire_note(retired) {
        Some(note) => summary.push_str(&format!("; {note}")),
        None => {
            if let Some(o) = retired {
                summary.push_str(&format!("; {} stopped and kept", describe(o)));
            }
        }
    }
    Ok(Done {
        summary,
        output: json!({
            "service": service,
            "release": ready.release,
            "image": ready.image,
            "container": ready.name,
            "host": host,
            "previous": retired.map(state::summary),
            "retire_error": switched.retire_error,
            "timings_ms": switched.timings.json(),
        }),
        changed: true,
    })
}

/// Puts the target back as it was (stopped) and says what still serves.
async fn failed(env: &Env, i: &Intent, was_running: bool, failure: Failure) -> ToolError {
    let t = &i.target;
    let cleanup = if was_running {
        String::new()
    } else {
        match container::stop(env, &t.name).await {
            Ok(()) => format!("stopped {} again", t.name),
            Err(e) => format!("stopping {} failed too ({e})", t.name),
        }
    };
    let serving = i
        .old
        .as_ref()
        .map(|o| format!("{} keeps serving", describe(o)))
        .unwrap_or_else(|| "nothing was serving before".into());
    let what = format!(
        "rollback of {} to {} failed",
        i.snap.service.name, i.reading
    );
    let parts = |extra: &str| cutover::clauses(&[extra, &cleanup, &serving]);
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
                parts("the route was not touched")
            ),
        ),
        Failure::Route { error, restored } => {
            let e = ToolError::from(error);
            ToolError::new(
                e.kind,
                format!(
                    "{what}: traefik did not confirm the switch: {}; {}",
                    e.message,
                    parts(&restored)
                ),
            )
        }
        Failure::Other(e) => {
            let e = ToolError::from(e);
            ToolError::new(e.kind, format!("{what}: {}; {}", e.message, parts("")))
        }
    }
}
