//! Crash safety of `tenant_provision` and `tenant_destroy`, with the real `steward` binary.
//!
//! `STEWARD_FAILPOINT=<tool>:<step>` makes the process abort right after that step, like a
//! `kill -9`. The test crashes provision after each step in turn (each run redoing what is
//! there and getting one step further), then runs it to completion and checks that exactly
//! one healthy tenant exists. Then the same for destroy, checking after every crash that no
//! route points at a container that is gone, and that nothing is left at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::str::FromStr;

use common::*;
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::ConnectOptions;
use steward_cli::config::{Config, Key};

const PROVISION_STEPS: [&str; 10] = [
    "database",
    "schema",
    "secret",
    "role",
    "grants",
    "network",
    "container",
    "route",
    "router",
    "ready",
];

const DESTROY_STEPS: [&str; 8] = [
    "backup",
    "route",
    "container",
    "network",
    "sessions",
    "schema",
    "role",
    "secret",
];

/// Runs `steward call <tool> <args> --json`, with a failpoint when given. A destructive
/// call waits for approval, so it is proposed first and then approved by a second operator,
/// the approving process carrying the failpoint.
fn call(h: &TestHome, tool: &str, args: &str, failpoint: Option<&str>) -> Output {
    let steward = |argv: &[&str], failpoint: Option<&str>| {
        let mut cmd = h.command();
        cmd.args(argv).env_remove("STEWARD_FAILPOINT");
        if let Some(step) = failpoint {
            cmd.env("STEWARD_FAILPOINT", format!("{tool}:{step}"));
        }
        cmd.output().unwrap()
    };
    if tool != "tenant_destroy" {
        return steward(&["call", tool, args, "--json"], failpoint);
    }
    let proposed = steward(&["call", tool, args, "--json"], None);
    let v: Value = serde_json::from_str(&stdout(&proposed)).unwrap();
    assert_eq!(v["status"], "pending_approval", "{v}");
    let id = v["approval"]["id"].as_str().unwrap().to_string();
    steward(
        &["approve", &id, "--as", "operator:alice", "--json"],
        failpoint,
    )
}

fn ok_json(out: &Output, what: &str) -> Value {
    let text = stdout(out);
    assert!(
        out.status.success(),
        "{what} failed ({}): {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["ok"], true, "{what}: {v}");
    v
}

fn assert_aborted(out: &Output, tool: &str, step: &str) {
    assert_eq!(
        out.status.signal(),
        Some(6),
        "{tool} with failpoint {step} did not abort ({}): {}\n{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("{tool}:{step}")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the world holds of one tenant.
struct World {
    cfg: Config,
    sub: String,
    id: String,
}

impl World {
    fn schema(&self) -> String {
        format!("tenant_{}", self.id)
    }
    fn role(&self) -> String {
        format!("tenant_user_{}", self.id)
    }
    fn container(&self) -> String {
        format!("{}_tenant_{}", get(&self.cfg, Key::TenantApp), self.id)
    }
    fn network(&self) -> String {
        format!("{}_net", self.container())
    }
    fn route_file(&self) -> PathBuf {
        PathBuf::from(get(&self.cfg, Key::TraefikDynamicDir)).join(format!("{}.yml", self.sub))
    }
    fn state_dir(&self) -> PathBuf {
        self.cfg.home.join("exec").join("tenants").join(&self.id)
    }
    fn host(&self) -> String {
        format!("{}.{}", self.sub, get(&self.cfg, Key::Domain))
    }

    fn docker_lines(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new("docker").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Containers labelled as this tenant, with their state.
    fn containers(&self) -> Vec<String> {
        self.docker_lines(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=steward.service={}", self.sub),
            "--format",
            "{{.Names}} {{.State}}",
        ])
    }

    fn networks(&self) -> Vec<String> {
        self.docker_lines(&[
            "network",
            "ls",
            "--filter",
            &format!("name=^{}$", self.network()),
            "--format",
            "{{.Name}}",
        ])
    }

    async fn admin(&self, db: Option<&str>) -> PgConnection {
        let mut opts = PgConnectOptions::from_str(&get(&self.cfg, Key::PgUrl)).unwrap();
        if let Some(db) = db {
            opts = opts.database(db);
        }
        opts.connect().await.unwrap()
    }

    async fn role_count(&self) -> i64 {
        let mut c = self.admin(None).await;
        sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1")
            .bind(self.role())
            .fetch_one(&mut c)
            .await
            .unwrap()
    }

    async fn tenant_db_exists(&self) -> bool {
        let mut c = self.admin(None).await;
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(get(&self.cfg, Key::TenantDatabase))
            .fetch_one(&mut c)
            .await
            .unwrap()
    }

    async fn schema_count(&self) -> i64 {
        if !self.tenant_db_exists().await {
            return 0;
        }
        let mut c = self.admin(Some(&get(&self.cfg, Key::TenantDatabase))).await;
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
            .bind(self.schema())
            .fetch_one(&mut c)
            .await
            .unwrap()
    }

    async fn status_through_traefik(&self) -> u16 {
        reqwest::Client::new()
            .get(format!("{}/", get(&self.cfg, Key::TraefikWeb)))
            .header("Host", self.host())
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// A route must never point at a container that does not exist.
    fn assert_no_dangling_route(&self, after: &str) {
        if self.route_file().exists() {
            let running: Vec<String> = self
                .containers()
                .into_iter()
                .filter(|c| c.starts_with(&format!("{} ", self.container())))
                .collect();
            assert_eq!(
                running.len(),
                1,
                "after {after}: route {} exists without its container",
                self.route_file().display()
            );
        }
    }

    /// Removes whatever is left, by hand, without steward.
    async fn scrub(&self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.container()])
            .output();
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network()])
            .output();
        let _ = std::fs::remove_file(self.route_file());
        if self.tenant_db_exists().await {
            let mut t = self.admin(Some(&get(&self.cfg, Key::TenantDatabase))).await;
            let _ = sqlx::raw_sql(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema()
            ))
            .execute(&mut t)
            .await;
            if self.role_count().await > 0 {
                let _ = sqlx::raw_sql(&format!(
                    "GRANT \"{r}\" TO CURRENT_USER; DROP OWNED BY \"{r}\"",
                    r = self.role()
                ))
                .execute(&mut t)
                .await;
            }
        }
        let mut c = self.admin(None).await;
        let _ = sqlx::raw_sql(&format!("DROP ROLE IF EXISTS \"{}\"", self.role()))
            .execute(&mut c)
            .await;
        let _ = std::fs::remove_dir_all(self.state_dir());
        let _ = std::fs::remove_dir_all(self.cfg.home.join("exec").join("backups").join(&self.sub));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn provision_and_destroy_converge_after_a_crash_at_every_step() {
    // Its own home: the crashes and the eight destroys go to its state store and audit log,
    // its backups and tenant secrets to its `exec`, never the user's.
    let h = TestHome::new();
    let cfg = h.config();
    let sub = format!("t{}", &unique()[..8]);
    let w = World {
        id: sub.replace('-', "_"),
        sub: sub.clone(),
        cfg,
    };
    let args = format!("{{\"subdomain\": \"{sub}\"}}");
    let destroy_args = format!("{{\"tenant\": \"{sub}\"}}");
    let body = async {
        // Provision: crash after each step in turn.
        for step in PROVISION_STEPS {
            let out = call(&h, "tenant_provision", &args, Some(step));
            assert_aborted(&out, "tenant_provision", step);
            w.assert_no_dangling_route(&format!("tenant_provision:{step}"));
            assert!(
                w.containers().len() <= 1,
                "after {step}: {:?}",
                w.containers()
            );
            assert!(w.networks().len() <= 1, "after {step}: {:?}", w.networks());
        }
        // Then a clean run finishes the job: one healthy tenant, nothing duplicated.
        let done = ok_json(&call(&h, "tenant_provision", &args, None), "provision");
        assert_eq!(done["output"]["subdomain"], sub.as_str());
        let containers = w.containers();
        assert_eq!(containers, [format!("{} running", w.container())]);
        assert_eq!(w.networks(), [w.network()]);
        assert_eq!(w.role_count().await, 1);
        assert_eq!(w.schema_count().await, 1);
        assert!(w.route_file().exists());
        assert!(w.state_dir().join("password").exists());
        assert!(!w.state_dir().join("password.pending").exists());
        assert_eq!(w.status_through_traefik().await, 200);
        let again = ok_json(&call(&h, "tenant_provision", &args, None), "re-provision");
        assert_eq!(again["changed"], false, "{again}");

        // Destroy: crash after each step in turn; never a route to a missing container.
        for step in DESTROY_STEPS {
            let out = call(&h, "tenant_destroy", &destroy_args, Some(step));
            assert_aborted(&out, "tenant_destroy", step);
            w.assert_no_dangling_route(&format!("tenant_destroy:{step}"));
        }
        let done = ok_json(&call(&h, "tenant_destroy", &destroy_args, None), "destroy");
        let backup = done["output"]["backup"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            backup.is_empty() || backup.starts_with(&format!("{sub}-")),
            "{done}"
        );
        assert!(w.containers().is_empty(), "{:?}", w.containers());
        assert!(w.networks().is_empty(), "{:?}", w.networks());
        assert_eq!(w.role_count().await, 0);
        assert_eq!(w.schema_count().await, 0);
        assert!(!w.route_file().exists());
        assert!(!w.state_dir().exists());
        assert_eq!(w.status_through_traefik().await, 404);
        let again = ok_json(
            &call(&h, "tenant_destroy", &destroy_args, None),
            "re-destroy",
        );
        assert_eq!(again["changed"], false, "{again}");
        // The crash right after the backup step kept its backup: exactly one was taken.
        let backups = std::fs::read_dir(w.cfg.home.join("exec").join("backups").join(&sub))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".dump"))
                    .count()
            })
            .unwrap_or(0);
        assert_eq!(backups, 1, "final backups taken");
    };
    let result = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    let _ = call(&h, "tenant_destroy", &destroy_args, None);
    w.scrub().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
