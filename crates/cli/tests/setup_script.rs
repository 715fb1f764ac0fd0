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
    // The one test on the user's home: setup is what made it, and a warm re-run must leave
    // it unchanged (which is what this test checks).
    let home = real_home();
    let watched = [
        home.join("config.toml"),
        home.join("traefik/traefik.yml"),
        home.join("pg/data/steward.conf"),
        home.join("pg/data/pg_hba.conf"),
        home.join("prometheus/prometheus.yml"),
        home.join("prometheus/rules.yml"),
        home.join("alertmanager/alertmanager.yml"),
        // Rewriting it would also drop the llama.cpp build.
        repo_root().join(".cargo/config.toml"),
    ];
    let mtimes = |files: &[std::path::PathBuf]| -> Vec<std::time::SystemTime> {
        files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
            .collect()
    };
    let postmaster = first_line(&home.join("pg/data/postmaster.pid"));
    let traefik = first_line(&home.join("traefik/traefik.pid"));
    let prometheus = first_line(&home.join("logs/prometheus.pid"));
    let alertmanager = first_line(&home.join("logs/alertmanager.pid"));
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
        "reloaded",
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
    for (name, pid) in [("prometheus", prometheus), ("alertmanager", alertmanager)] {
        assert_eq!(
            first_line(&home.join(format!("logs/{name}.pid"))),
            pid,
            "{name} was restarted"
        );
    }
    assert_eq!(mtimes(&watched), before, "config files were rewritten");
}

/// Runs the model fetcher on one manifest with its own (temp) destination and cache.
fn fetch(models: &std::path::Path, dest: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg(repo_root().join("scripts/fetch_models.py"))
        .arg("--models-dir")
        .arg(models)
        .arg("--dest")
        .arg(dest)
        .arg("--cache")
        .arg(dest.join("cache"))
        .args(extra)
        .output()
        .unwrap()
}

fn temp_models(tag: &str, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("steward-fetch-{tag}-{}", unique()));
    std::fs::create_dir_all(dir.join("models")).unwrap();
    let manifest =
        std::fs::read_to_string(repo_root().join("models/smollm2-135m-instruct.toml")).unwrap();
    std::fs::write(dir.join("models/small.toml"), edit(manifest)).unwrap();
    dir
}

#[test]
fn fetcher_refuses_a_wrong_hash_and_leaves_nothing_behind() {
    let dir = temp_models("badhash", |m| {
        m.replace(
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            &"0".repeat(64),
        )
    });
    let out = fetch(&dir.join("models"), &dir.join("dest"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("sha256 mismatch") && err.contains("re-run"),
        "{err}"
    );
    let model_dir = dir.join("dest/smollm2-135m-instruct-q4_1");
    let left: Vec<_> = std::fs::read_dir(&model_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "no final or partial file may remain: {left:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn fetcher_repairs_a_tampered_file_on_verify() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = temp_models("tamper", |m| m);
    let (models, dest) = (dir.join("models"), dir.join("dest"));
    let file = dest.join("smollm2-135m-instruct-q4_1/SmolLM2-135M-Instruct.Q4_1.gguf");
    let out = fetch(&models, &dest, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).ends_with("models: changed=1\n"),
        "{}",
        stdout(&out)
    );

    // Flip one byte but keep size and mtime, so only a re-hash can tell.
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.seek(SeekFrom::Start(1_000_000)).unwrap();
    f.write_all(&[0xff]).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);

    let trusted = fetch(&models, &dest, &[]);
    assert!(
        stdout(&trusted).contains("(cached)"),
        "the stamp is trusted without --verify"
    );
    let verified = fetch(&models, &dest, &["--verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        stdout(&verified).ends_with("models: changed=1\n"),
        "--verify must re-fetch: {}",
        stdout(&verified)
    );
    let sha = Command::new("sha256sum").arg(&file).output().unwrap();
    assert!(stdout(&sha)
        .starts_with("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"));
    std::fs::remove_dir_all(dir).unwrap();
}
