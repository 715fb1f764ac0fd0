//! `service_releases`: the history of a service with what is live and what is still kept.

use serde_json::{json, Value};
use steward_tools::args::ServiceArgs;
use steward_tools::{Done, Plan, Result};

use super::state::Snapshot;
use super::time;
use crate::env::Env;

pub async fn dry_run(env: &Env, args: &ServiceArgs) -> Result<Plan> {
    let snap = Snapshot::read(env, args.service.as_str()).await?;
    Ok(Plan {
        summary: format!(
            "list the {} releases of {}",
            snap.history.releases.len(),
            snap.service.name
        ),
        steps: vec![format!(
            "read the containers of {} and its release history",
            snap.service.name
        )],
        changes: false,
    })
}

/// Lists every release, oldest first. Writes nothing: a history built from the containers is
/// saved by the next deploy or rollback.
pub async fn execute(env: &Env, args: &ServiceArgs) -> Result<Done> {
    let snap = Snapshot::read(env, args.service.as_str()).await?;
    let live = snap.live_release();
    let releases: Vec<Value> = snap
        .history
        .releases
        .iter()
        .map(|r| {
            let c = snap.container(&r.release);
            json!({
                "release": r.release,
                "image": r.image,
                "created_at": time::format(r.created_at),
                "live_intervals": r.live.iter().map(|i| json!({
                    "from": time::format(i.from),
                    "until": i.until.map(time::format),
                })).collect::<Vec<_>>(),
                "live": live.as_deref() == Some(r.release.as_str()),
                "kept": c.is_some(),
                "container": c.map(|c| c.name.clone()),
                "state": c.map(|c| c.state.clone()),
            })
        })
        .collect();
    let kept = snap.kept();
    let live_desc = live
        .as_deref()
        .and_then(|l| snap.history.record(l))
        .map(|r| format!("{} ({}) is live", r.release, r.image))
        .unwrap_or_else(|| "nothing is live".into());
    Ok(Done {
        summary: format!(
            "{}: {} releases, {live_desc}; kept for rollback: {}",
            snap.service.name,
            releases.len(),
            kept.join(", ")
        ),
        output: json!({
            "service": snap.service.name,
            "live": live,
            "retention": env.config.release_retention,
            "releases": releases,
        }),
        changed: false,
    })
}
