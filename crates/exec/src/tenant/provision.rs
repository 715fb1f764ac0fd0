//! `tenant_provision`: database, schema, secret, role, grants, network, container, route,
//! then wait until the app answers through Traefik. Each step checks before it creates.

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use steward_tools::args::{TenantPlan, TenantProvisionArgs};
use steward_tools::ident::ImageRef;
use steward_tools::{Done, Plan, Result, ToolError};

use super::container::{self, ContainerSpec, ContainerState, Limits};
use super::names::{TenantNames, APP_PORT};
use super::secret;
use super::sql::{self, RoleSpec, TenantLock};
use super::steps::{self, Steps, LOCK_TIMEOUT};
use super::Shared;
use crate::env::Env;
use crate::traefik::Route;
use crate::{Error, Result as ExecResult};

/// How long Traefik may take to load a new router from its file.
const ROUTER_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything a provision run needs to know before it touches anything.
struct Target {
    names: TenantNames,
    plan: TenantPlan,
    limits: Limits,
    image: String,
}

fn plan_name(plan: TenantPlan) -> &'static str {
    match plan {
        TenantPlan::Small => "small",
        TenantPlan::Medium => "medium",
        TenantPlan::Large => "large",
    }
}

/// Validates names and refuses to take over anything that is not this tenant's: a platform
/// service of the same name, a route file written for something else, an unlabelled
/// container or network of the tenant's names. No side effect happens before this passes.
async fn preflight(env: &Env, args: &TenantProvisionArgs) -> ExecResult<Target> {
    let names = TenantNames::new(args.subdomain.as_str(), &env.config, false)?;
    let image = match &args.image {
        Some(i) => i.as_str().to_string(),
        None => ImageRef::parse(&env.config.tenant_image)
            .map_err(|rule| Error::Failed(format!("config tenant_image: {rule}")))?
            .as_str()
            .to_string(),
    };
    let host = &env.config.pg_container_host;
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "@/?#".contains(c)) {
        return Err(Error::Failed(format!(
            "config pg_container_host {host:?} is not a host name or address"
        )));
    }
    let docker = &env.platform.docker;
    let (_, platform) = container::service_containers(docker, &names.subdomain).await?;
    if let Some(c) = platform {
        return Err(Error::Conflict(format!(
            "{} is a platform service (container {c}), not a tenant; pick another subdomain \
             (tenant_check_subdomain suggests free ones)",
            names.subdomain
        )));
    }
    check_route_is_tenant(env, &names)?;
    container::container_exists(docker, &names).await?;
    if container::network_state(docker, &names.network).await? == Some(false) {
        return Err(container::not_owned_network(&names.network));
    }
    let plan = args.plan.unwrap_or_default();
    Ok(Target {
        limits: Limits::of(plan),
        names,
        plan,
        image,
    })
}

/// A route file of the tenant's name must be one steward wrote for a tenant (it carries the
/// security headers middleware); any other route belongs to something else.
pub(super) fn check_route_is_tenant(env: &Env, names: &TenantNames) -> ExecResult<bool> {
    match env.platform.routes.read_text(&names.route)? {
        None => Ok(false),
        Some(text) if text.contains(&format!("[{}-security-headers]", names.route)) => Ok(true),
        Some(_) => Err(Error::Conflict(format!(
            "route file {}.yml in {} routes something other than a tenant; steward will not \
             take it over. Pick another subdomain (tenant_check_subdomain suggests free ones)",
            names.route,
            env.platform.routes.path().display()
        ))),
    }
}

/// `postgres://tenant_user_<id>:<pw>@<pg_container_host>:<port>/<tenant db>`.
fn database_url(env: &Env, names: &TenantNames, password: &str) -> ExecResult<String> {
    let port = PgConnectOptions::from_str(&env.config.pg_url)?.get_port();
    Ok(format!(
        "postgres://{}:{password}@{}:{port}/{}",
        names.role, env.config.pg_container_host, names.database
    ))
}

/// Runs under the tenant's lock, so concurrent calls for one tenant take turns.
pub async fn run(shared: &Shared, args: &TenantProvisionArgs) -> Result<Done> {
    let sub = args.subdomain.as_str();
    let admin = shared
        .env
        .admin_pool()
        .await
        .map_err(|e| steps::context("tenant_provision", sub, e))?;
    let lock = TenantLock::acquire(admin, sub, LOCK_TIMEOUT)
        .await
        .map_err(|e| steps::context("tenant_provision", sub, e))?;
    let result = run_locked(shared, args).await;
    lock.release().await;
    result
}

async fn run_locked(shared: &Shared, args: &TenantProvisionArgs) -> Result<Done> {
    let env = &*shared.env;
    let mut steps = Steps::new("tenant_provision");
    let sub = args.subdomain.as_str().to_string();
    let t = preflight(env, args)
        .await
        .map_err(|e| steps.failed("preflight", &sub, e))?;
    let names = &t.names;
    steps.begin();

    // database
    let admin = env
        .admin_pool()
        .await
        .map_err(|e| steps.failed("database", &sub, e))?;
    let r = step_database(shared, admin, names).await;
    let (created, opened) = r.map_err(|e| steps.failed("database", &sub, e))?;
    steps.done(
        "database",
        created || opened,
        match (created, opened) {
            (true, _) => format!("created database {}, PUBLIC revoked", names.database),
            (false, true) => format!("revoked PUBLIC on database {}", names.database),
            _ => format!("database {} exists, PUBLIC has no access", names.database),
        },
    );
    let tenant = shared
        .tenant_pool()
        .await
        .map_err(|e| steps.failed("schema", &sub, e))?;

    // schema
    let created = sql::create_schema(tenant, &names.schema)
        .await
        .map_err(|e| steps.failed("schema", &sub, e))?;
    steps.done(
        "schema",
        created,
        exists_or(created, "schema", &names.schema),
    );

    // secret
    let (mut secret, new) = secret::load_or_create(&names.state_dir)
        .and_then(|s| {
            // A provision supersedes an interrupted destroy: its backup marker is stale.
            super::destroy::clear_backup_marker(names)?;
            Ok(s)
        })
        .map_err(|e| steps.failed("secret", &sub, e))?;
    steps.done(
        "secret",
        new,
        if new {
            "generated a new password (pending until the role has it)"
        } else {
            "password file exists"
        },
    );

    // role
    let spec = RoleSpec {
        names,
        connection_limit: t.limits.connection_limit,
    };
    let r = step_role(env, admin, &spec, &mut secret).await;
    let changed = r.map_err(|e| steps.failed("role", &sub, e))?;
    steps.done(
        "role",
        changed,
        format!(
            "{} {} (connection limit {}, search_path {}, statement_timeout {})",
            if changed { "converged" } else { "unchanged" },
            names.role,
            t.limits.connection_limit,
            names.schema,
            sql::STATEMENT_TIMEOUT
        ),
    );

    // grants
    let changed = sql::ensure_grants(tenant, names)
        .await
        .map_err(|e| steps.failed("grants", &sub, e))?;
    steps.done(
        "grants",
        changed,
        format!(
            "{}: CONNECT on {}, USAGE+CREATE on {}, nothing on public",
            if changed {
                "revoked then granted"
            } else {
                "exact"
            },
            names.database,
            names.schema
        ),
    );

    // network
    let docker = &env.platform.docker;
    let changed = container::ensure_network(
        docker,
        names,
        &env.config.extra_labels,
        &env.config.tenant_subnet_pool,
    )
    .await
    .map_err(|e| steps.failed("network", &sub, e))?;
    steps.done(
        "network",
        changed,
        exists_or(changed, "network", &names.network),
    );

    // container
    let url = database_url(env, names, &secret.password)
        .map_err(|e| steps.failed("container", &sub, e))?;
    let cspec = ContainerSpec {
        names,
        image: t.image.clone(),
        database_url: url,
        limits: t.limits,
        extra_labels: &env.config.extra_labels,
    };
    let (running, did) = cspec
        .ensure(docker)
        .await
        .map_err(|e| steps.failed("container", &sub, e))?;
    steps.done(
        "container",
        did.is_some(),
        format!(
            "{} {} ({})",
            names.container,
            did.as_deref().unwrap_or("running as specified"),
            t.image
        ),
    );

    // route
    let r = step_route(env, names, &running);
    let (route, changed) = r.map_err(|e| steps.failed("route", &sub, e))?;
    steps.done(
        "route",
        changed,
        format!(
            "{} {} -> {}",
            if changed { "wrote" } else { "unchanged" },
            names.host,
            route.backend
        ),
    );

    // ready
    // router: Traefik has loaded the route (its API shows the router enabled).
    env.platform
        .traefik
        .wait_for_router(&route.name, &route.rule(), ROUTER_TIMEOUT)
        .await
        .map_err(|e| steps.failed("router", &sub, e))?;
    steps.done(
        "router",
        false,
        format!(
            "router {}@file is enabled with {}",
            route.name,
            route.rule()
        ),
    );

    // ready
    let answered = wait_ready(env, names)
        .await
        .map_err(|e| steps.failed("ready", &sub, e))?;
    steps.done("ready", false, answered);

    let changed = steps.changed();
    let (step_list, timings) = steps.to_json();
    let total_s = steps.total_ms() / 1000.0;
    let summary = if changed {
        format!(
            "provisioned tenant {sub} at http://{} in {total_s:.1}s",
            names.host
        )
    } else {
        format!("tenant {sub} is already provisioned; nothing changed")
    };
    Ok(Done {
        summary,
        changed,
        output: json!({
            "tenant": names.id,
            "subdomain": names.subdomain,
            "host": names.host,
            "url": format!("http://{}/", names.host),
            "plan": plan_name(t.plan),
            "image": t.image,
            "database": names.database,
            "schema": names.schema,
            "role": names.role,
            "container": names.container,
            "network": names.network,
            "route": names.route,
            "limits": {
                "memory_mb": t.limits.memory_mb,
                "cpus": t.limits.cpus,
                "pids": t.limits.pids,
                "connection_limit": t.limits.connection_limit,
                "statement_timeout": sql::STATEMENT_TIMEOUT,
            },
            "password_file": names.state_dir.join("password").display().to_string(),
            "steps": step_list,
            "timings_ms": timings,
        }),
    })
}

async fn step_database(
    shared: &Shared,
    admin: &sqlx::PgPool,
    names: &TenantNames,
) -> ExecResult<(bool, bool)> {
    let created = sql::create_database(admin, &names.database).await?;
    let tenant = shared.tenant_pool().await?;
    let open = sql::public_has_access(tenant, &names.database).await?;
    if open {
        sql::lock_down_public(tenant, &names.database).await?;
    }
    Ok((created, open))
}

async fn step_role(
    env: &Env,
    admin: &sqlx::PgPool,
    spec: &RoleSpec<'_>,
    secret: &mut secret::Secret,
) -> ExecResult<bool> {
    let names = spec.names;
    let state = sql::role_state(admin, &names.role).await?;
    let mut set_password = secret.pending;
    if let Some(state) = &state {
        if !set_password
            && spec.matches(state)
            && !sql::can_login(&env.config.pg_url, names, &secret.password).await?
        {
            // The role's password is not the stored one (changed by hand): make a new one,
            // recorded as pending first, then give it to the role.
            *secret = secret::replace(&names.state_dir)?;
            set_password = true;
        }
    }
    let changed = sql::ensure_role(admin, spec, &secret.password, set_password).await?;
    secret::commit(&names.state_dir)?;
    secret.pending = false;
    Ok(changed)
}

fn step_route(
    env: &Env,
    names: &TenantNames,
    running: &crate::docker::ManagedContainer,
) -> ExecResult<(Route, bool)> {
    let ip = running.ip.clone().ok_or_else(|| {
        Error::Failed(format!(
            "container {} has no IP on network {} (state {}); see `docker logs {}`",
            names.container, names.network, running.state, names.container
        ))
    })?;
    let route = Route::new(
        &names.route,
        &names.host,
        &format!("http://{ip}:{APP_PORT}"),
    )?
    .with_security_headers();
    let changed = env.platform.routes.write(&route)?;
    Ok((route, changed))
}

fn exists_or(created: bool, what: &str, name: &str) -> String {
    if created {
        format!("created {what} {name}")
    } else {
        format!("{what} {name} exists")
    }
}

/// Waits until a real request through Traefik's web entry point with the tenant's Host
/// header answers 200. `/` is asked, not `/health`: the app's index reads its database, so a
/// 200 proves the role, grants and DATABASE_URL too.
async fn wait_ready(env: &Env, names: &TenantNames) -> ExecResult<String> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| Error::Failed(format!("http client: {e}")))?;
    let url = format!("{}/", env.config.traefik_web.trim_end_matches('/'));
    let timeout = env.config.health_timeout;
    let deadline = Instant::now() + timeout;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match http.get(&url).header("Host", &names.host).send().await {
            Ok(resp) if resp.status().as_u16() == 200 => {
                return Ok(format!(
                    "GET http://{}/ through {} answered 200 after {attempts} attempt(s), {:.0} ms",
                    names.host,
                    env.config.traefik_web,
                    started.elapsed().as_secs_f64() * 1000.0
                ));
            }
            Ok(resp) => {
                let status = resp.status();
                let body: String = resp
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                format!("last answer {status}: {body}")
            }
            Err(e) => format!("last error: {e}"),
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout(format!(
                "GET http://{}/ through Traefik at {} did not answer 200 within {timeout:?} \
                 ({attempts} attempts; {last}); see `docker logs {}`",
                names.host, env.config.traefik_web, names.container
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Dry run: which steps would change something. Nothing is created, not even the pool on a
/// tenant database that does not exist yet.
pub async fn plan(shared: &Shared, args: &TenantProvisionArgs) -> Result<Plan> {
    let env = &*shared.env;
    let sub = args.subdomain.as_str();
    let t = preflight(env, args).await.map_err(ToolError::from)?;
    let n = &t.names;
    let admin = env.admin_pool().await.map_err(ToolError::from)?;
    let mut steps: Vec<String> = Vec::new();
    let mut changes = false;
    let mut line = |ok: bool, done: String, todo: String| {
        changes |= !ok;
        steps.push(if ok {
            format!("{done} (in place)")
        } else {
            todo
        });
    };
    let r: ExecResult<()> = async {
        let tenant = shared.tenant_pool_if_exists().await?;
        let db_ok = match tenant {
            Some(p) => !sql::public_has_access(p, &n.database).await?,
            None => false,
        };
        line(
            db_ok,
            format!("database {}, PUBLIC revoked", n.database),
            format!(
                "create database {} and revoke PUBLIC on it and its public schema",
                n.database
            ),
        );
        let schema_ok = match tenant {
            Some(p) => sql::schema_exists(p, &n.schema).await?,
            None => false,
        };
        line(
            schema_ok,
            format!("schema {}", n.schema),
            format!("create schema {}", n.schema),
        );
        let secret = secret::load(&n.state_dir)?;
        line(
            secret.as_ref().is_some_and(|s| !s.pending),
            "password file".into(),
            format!(
                "generate a password into {}/password (0600)",
                n.state_dir.display()
            ),
        );
        let spec = RoleSpec {
            names: n,
            connection_limit: t.limits.connection_limit,
        };
        let role = sql::role_state(admin, &n.role).await?;
        line(
            role.as_ref().is_some_and(|r| spec.matches(r)),
            format!("role {}", n.role),
            format!(
                "create role {} LOGIN, connection limit {}, search_path {}, statement_timeout {}",
                n.role,
                t.limits.connection_limit,
                n.schema,
                sql::STATEMENT_TIMEOUT
            ),
        );
        let grants_ok = match tenant {
            Some(p) if schema_ok && role.is_some() => sql::grants(p, n).await?.is_exact(),
            _ => false,
        };
        line(
            grants_ok,
            "grants".into(),
            format!(
                "revoke all, then grant CONNECT on {} and USAGE, CREATE on {} to {}",
                n.database, n.schema, n.role
            ),
        );
        let docker = &env.platform.docker;
        line(
            container::network_state(docker, &n.network).await? == Some(true),
            format!("network {}", n.network),
            format!("create network {}", n.network),
        );
        let url = database_url(
            env,
            n,
            secret.as_ref().map(|s| s.password.as_str()).unwrap_or(""),
        )?;
        let cspec = ContainerSpec {
            names: n,
            image: t.image.clone(),
            database_url: url,
            limits: t.limits,
            extra_labels: &env.config.extra_labels,
        };
        let state = cspec.state(docker).await?;
        let (container_ok, todo) = match &state {
            ContainerState::Missing => (
                false,
                format!(
                    "create and start container {} from {} ({} MiB, {} CPU, {} PIDs, \
                     no-new-privileges, cap_drop ALL, restart unless-stopped)",
                    n.container, t.image, t.limits.memory_mb, t.limits.cpus, t.limits.pids
                ),
            ),
            ContainerState::Present {
                running,
                drift,
                limits,
            } => (
                *running && drift.is_empty() && limits.is_empty(),
                format!(
                    "converge container {}: {}",
                    n.container,
                    drift
                        .iter()
                        .chain(limits.iter())
                        .cloned()
                        .chain((!running).then(|| "start it".to_string()))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
        };
        line(container_ok, format!("container {}", n.container), todo);
        let route_ok = if container_ok {
            let c = docker.container(&n.container).await?;
            match c.ip {
                Some(ip) => {
                    let want = Route::new(&n.route, &n.host, &format!("http://{ip}:{APP_PORT}"))?
                        .with_security_headers();
                    env.platform.routes.read_text(&n.route)?.as_deref() == Some(&want.to_yaml())
                }
                None => false,
            }
        } else {
            false
        };
        line(
            route_ok,
            format!("route {}", n.host),
            format!("write route {} with security headers", n.host),
        );
        Ok(())
    }
    .await;
    r.map_err(ToolError::from)?;
    steps.push(format!(
        "wait until Traefik's router is enabled and GET http://{}/ through it answers 200",
        n.host
    ));
    Ok(Plan {
        summary: if changes {
            format!(
                "provision tenant {sub} ({} plan) at {}",
                plan_name(t.plan),
                n.host
            )
        } else {
            format!("change nothing: tenant {sub} is already provisioned")
        },
        steps,
        changes,
    })
}
