//! `scripts/setup` is idempotent: run again with everything up, it restarts nothing, writes
//! nothing and reports `changes=0`. (The suite's runner has already run it once.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::process::Command;
use std::time::Instant;

use common::*;

fn first_line(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn second_run_changes_nothing() {
    let home = home();
    let watched = [
        home.join("config.toml"),
        home.join("traefik/traefik.yml"),
        home.join("pg/data/steward.conf"),
        home.join("pg/data/pg_hba.conf"),
    ];
    let mtimes = |files: &[std::path::PathBuf]| -> Vec<std::time::SystemTime> {
        files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
            .collect()
    };
    let postmaster = first_line(&home.join("pg/data/postmaster.pid"));
    let traefik = first_line(&home.join("traefik/traefik.pid"));
    let before = mtimes(&watched);

    let started = Instant::now();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/setup"))
        .env("STEWARD_HOME", &home)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("warm setup re-run took {elapsed:?}");

    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("setup: done in ") && last.ends_with(", changes=0"),
        "{text}"
    );
    for verb in [
        "started",
        "restarted",
        "installed",
        "built",
        "wrote",
        "initialized",
        "fetched",
    ] {
        assert!(
            !text.contains(verb),
            "a warm re-run must not have {verb} anything:\n{text}"
        );
    }
    assert_eq!(
        first_line(&home.join("pg/data/postmaster.pid")),
        postmaster,
        "postgres was restarted"
    );
    assert_eq!(
        first_line(&home.join("traefik/traefik.pid")),
        traefik,
        "traefik was restarted"
    );
    assert_eq!(mtimes(&watched), before, "config files were rewritten");
}
