//! `tenant_destroy`: final backup first, then route, container, network, sessions, schema,
//! role and the secret, each removed only if present, so a re-run after a crash finishes the
//! job and a re-run after success changes nothing.

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use serde_json::json;
use steward_tools::args::TenantDestroyArgs;
use steward_tools::{Done, Plan, Result, ToolError};

use super::container;
use super::final_backup::final_backup;
use super::names::TenantNames;
use super::provision::check_route_is_tenant;
use super::secret::write_private;
use super::sql::{self, TenantLock};
use super::steps::{self, Steps, LOCK_TIMEOUT};
use super::Shared;
use crate::env::Env;
use crate::{Error, Result as ExecResult};

/// Records the final backup's id, so a re-run after a crash does not take another one of a
/// tenant that may already be half removed.
const BACKUP_MARKER: &str = "final_backup";

fn marker_path(names: &TenantNames) -> std::path::PathBuf {
    names.state_dir.join(BACKUP_MARKER)
}

/// Forgets an interrupted destroy's backup (a new provision makes the tenant live again, so
/// a later destroy must take a fresh backup).
pub(super) fn clear_backup_marker(names: &TenantNames) -> ExecResult<()> {
    let path = marker_path(names);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&path)(e)),
    }
}

/// Validates the name and refuses to touch what is not this tenant's: a platform service of
/// the same name, a route file that is not a tenant route, an unlabelled container or network.
async fn preflight(env: &Env, args: &TenantDestroyArgs) -> ExecResult<(TenantNames, Vec<String>)> {
    let names = TenantNames::new(args.tenant.as_str(), &env.config, true)?;
    let docker = &env.platform.docker;
    let (tenant, platform) = container::service_containers(docker, &names.subdomain).await?;
    if let Some(c) = platform {
        return Err(Error::Conflict(format!(
            "{} is a platform service (container {c}), not a tenant; tenant_destroy removes \
             tenants only",
            names.subdomain
        )));
    }
    check_route_is_tenant(env, &names)?;
    container::container_exists(docker, &names).await?;
    if container::network_state(docker, &names.network).await? == Some(false) {
        return Err(container::not_owned_network(&names.network));
    }
    let ids = tenant.into_iter().map(|(id, _)| id).collect();
    Ok((names, ids))
}

/// Runs under the tenant's lock, so concurrent calls for one tenant take turns.
pub async fn run(shared: &Shared, args: &TenantDestroyArgs) -> Result<Done> {
    let sub = args.tenant.as_str();
    let admin = shared
        .env
        .admin_pool()
        .await
        .map_err(|e| steps::context("tenant_destroy", sub, e))?;
    let lock = TenantLock::acquire(admin, sub, LOCK_TIMEOUT)
        .await
        .map_err(|e| steps::context("tenant_destroy", sub, e))?;
    let result = run_locked(shared, args).await;
    lock.release().await;
    result
}

async fn run_locked(shared: &Shared, args: &TenantDestroyArgs) -> Result<Done> {
    let env = &*shared.env;
    let mut steps = Steps::new("tenant_destroy");
    let sub = args.tenant.as_str().to_string();
    let (names, containers) = preflight(env, args)
        .await
        .map_err(|e| steps.failed("preflight", &sub, e))?;
    let names = &names;
    let admin = env
        .admin_pool()
        .await
        .map_err(|e| steps.failed("backup", &sub, e))?;
    let tenant = shared
        .tenant_pool_if_exists()
        .await
        .map_err(|e| steps.failed("backup", &sub, e))?;
    steps.begin();

    // backup
    let r: ExecResult<(Option<String>, bool)> = async {
        let marker = marker_path(names);
        if let Ok(id) = std::fs::read_to_string(&marker) {
            return Ok((Some(id.trim().to_string()), false));
        }
        let has_schema = match tenant {
            Some(p) => sql::schema_exists(p, &names.schema).await?,
            None => false,
        };
        if !has_schema {
            return Ok((None, false));
        }
        let id = final_backup(env, names).await?;
        std::fs::create_dir_all(&names.state_dir).map_err(Error::io(&names.state_dir))?;
        write_private(&marker, &id)?;
        Ok((Some(id), true))
    }
    .await;
    let (backup, changed) = r.map_err(|e| steps.failed("backup", &sub, e))?;
    steps.done(
        "backup",
        changed,
        match (&backup, changed) {
            (Some(id), true) => format!("took final backup {id}"),
            (Some(id), false) => format!("final backup {id} was taken by an earlier run"),
            (None, _) => format!("no schema {}: nothing to back up", names.schema),
        },
    );

    // route: first, so no route ever points at a container that is gone.
    let changed = env
        .platform
        .routes
        .remove(&names.route)
        .map_err(|e| steps.failed("route", &sub, e))?;
    steps.done("route", changed, removed_or(changed, "route", &names.host));

    // container(s): the named one and any other release labelled as this tenant.
    let r: ExecResult<usize> = async {
        let api = env.platform.docker.api();
        let opts = RemoveContainerOptionsBuilder::new().force(true).build();
        let mut removed = 0;
        let mut targets = containers.clone();
        if container::container_exists(&env.platform.docker, names).await? {
            targets.push(names.container.clone());
        }
        for id in targets {
            match api.remove_container(&id, Some(opts.clone())).await {
                Ok(()) => removed += 1,
                Err(e) if crate::docker::is_not_found(&e) => {}
                // Already being removed by the call for its other name.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(removed)
    }
    .await;
    let removed = r.map_err(|e| steps.failed("container", &sub, e))?;
    steps.done(
        "container",
        removed > 0,
        if removed > 0 {
            format!("removed {removed} container(s) of {}", names.subdomain)
        } else {
            format!("no container {}", names.container)
        },
    );

    // network
    let changed = container::remove_network(&env.platform.docker, &names.network)
        .await
        .map_err(|e| steps.failed("network", &sub, e))?;
    steps.done(
        "network",
        changed,
        removed_or(changed, "network", &names.network),
    );

    // sessions
    let ended = sql::end_sessions(admin, &names.role)
        .await
        .map_err(|e| steps.failed("sessions", &sub, e))?;
    steps.done(
        "sessions",
        ended.is_some_and(|n| n > 0),
        match ended {
            Some(n) => format!(
                "{} login disabled, sessions terminated ({n} change(s))",
                names.role
            ),
            None => format!("no role {}", names.role),
        },
    );

    // schema
    let changed = match tenant {
        Some(p) => sql::drop_schema(p, &names.schema).await,
        None => Ok(false),
    }
    .map_err(|e| steps.failed("schema", &sub, e))?;
    steps.done(
        "schema",
        changed,
        removed_or(changed, "schema", &names.schema),
    );

    // role
    let changed = sql::drop_role(admin, tenant, &names.role)
        .await
        .map_err(|e| steps.failed("role", &sub, e))?;
    steps.done("role", changed, removed_or(changed, "role", &names.role));

    // secret (and the backup marker with it): last, so a crash before leaves the password
    // for a re-provision of the same tenant to reuse.
    let existed = names.state_dir.exists();
    let r = if existed {
        std::fs::remove_dir_all(&names.state_dir).map_err(Error::io(&names.state_dir))
    } else {
        Ok(())
    };
    r.map_err(|e| steps.failed("secret", &sub, e))?;
    steps.done(
        "secret",
        existed,
        removed_or(existed, "state dir", &names.state_dir.display().to_string()),
    );

    let changed = steps.changed();
    let (step_list, timings) = steps.to_json();
    let total_s = steps.total_ms() / 1000.0;
    Ok(Done {
        summary: if changed {
            format!(
                "destroyed tenant {sub} in {total_s:.1}s{}",
                backup
                    .as_deref()
                    .map(|b| format!(" (final backup {b})"))
                    .unwrap_or_default()
            )
        } else {
            format!("tenant {sub} does not exist; nothing to destroy")
        },
        changed,
        output: json!({
            "tenant": names.id,
            "subdomain": names.subdomain,
            "backup": backup,
            "steps": step_list,
            "timings_ms": timings,
        }),
    })
}

fn removed_or(removed: bool, what: &str, name: &str) -> String {
    if removed {
        format!("removed {what} {name}")
    } else {
        format!("no {what} {name}")
    }
}

/// Dry run: what exists and would be removed, in order.
pub async fn plan(shared: &Shared, args: &TenantDestroyArgs) -> Result<Plan> {
    let env = &*shared.env;
    let r: ExecResult<Plan> = async {
        let (names, containers) = preflight(env, args).await?;
        let n = &names;
        let admin = env.admin_pool().await?;
        let tenant = shared.tenant_pool_if_exists().await?;
        let schema = match tenant {
            Some(p) => sql::schema_exists(p, &n.schema).await?,
            None => false,
        };
        let role = sql::role_state(admin, &n.role).await?.is_some();
        let route = env.platform.routes.read_text(&n.route)?.is_some();
        let container =
            !containers.is_empty() || container::container_exists(&env.platform.docker, n).await?;
        let network = container::network_state(&env.platform.docker, &n.network)
            .await?
            .is_some();
        let state = n.state_dir.exists();
        let marker = std::fs::read_to_string(marker_path(n)).ok();
        let mut steps = Vec::new();
        let mut push = |present: bool, todo: String, absent: String| {
            steps.push(if present {
                todo
            } else {
                format!("{absent} (nothing to do)")
            });
        };
        match marker {
            Some(id) => push(
                false,
                String::new(),
                format!("final backup {} already taken", id.trim()),
            ),
            None => push(
                schema,
                format!("take a final backup of schema {} (pg_dump -Fc)", n.schema),
                format!("no schema {} to back up", n.schema),
            ),
        }
        push(
            route,
            format!("remove route {}", n.host),
            format!("no route {}", n.host),
        );
        push(
            container,
            format!("remove container {}", n.container),
            format!("no container {}", n.container),
        );
        push(
            network,
            format!("remove network {}", n.network),
            format!("no network {}", n.network),
        );
        push(
            role,
            format!("disable login of {} and terminate its sessions", n.role),
            format!("no role {}", n.role),
        );
        push(
            schema,
            format!("drop schema {} CASCADE", n.schema),
            format!("no schema {}", n.schema),
        );
        push(
            role,
            format!("drop role {}", n.role),
            format!("no role {}", n.role),
        );
        push(
            state,
            format!("remove {}", n.state_dir.display()),
            format!("no {}", n.state_dir.display()),
        );
        let changes = schema || role || route || container || network || state;
        Ok(Plan {
            summary: if changes {
                format!("destroy tenant {} after a final backup", n.subdomain)
            } else {
                format!("change nothing: tenant {} does not exist", n.subdomain)
            },
            steps,
            changes,
        })
    }
    .await;
    r.map_err(ToolError::from)
}
