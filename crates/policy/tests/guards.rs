//! Guards: rate limits trip under a burst, the blast radius caps destructive calls, and one
//! write per target runs at a time (refused or waited for), released when the permit drops.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::json;
use steward_policy::{
    target_of, ConcurrencyMode, GuardKind, Guards, GuardsConfig, Principal, GUARDS_FILE,
};

fn p(s: &str) -> Principal {
    Principal::parse(s).unwrap()
}

fn guards(toml: &str) -> Guards {
    Guards::parse(Path::new("guards.toml"), toml).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_burst_trips_the_rate_limit_per_principal_then_the_window_frees_it() {
    let g = guards("[rate_limit]\nwindow_secs = 60\nper_principal = 5\n");
    let alice = p("operator:alice");
    let status = call("service_status", json!({"service": "rentguy"}));
    for i in 0..5 {
        let _ = g.admit(&alice, &status, None, 1_000 + i).unwrap();
    }
    let r = g.admit(&alice, &status, None, 1_010).unwrap_err();
    assert_eq!(r.guard, GuardKind::PrincipalRate);
    assert_eq!(
        r.to_string(),
        "rate limit per principal: operator:alice made 5 calls in the last 60s (limit 5 per 60s)"
    );
    assert_eq!(r.retry_after_ms, Some(60_000 - 10));
    // Others are not affected, and a refused call used no quota.
    let _ = g.admit(&p("operator:bob"), &status, None, 1_010).unwrap();
    // Once the first call leaves the window, one more fits.
    let _ = g.admit(&alice, &status, None, 61_000).unwrap();
    assert!(g.admit(&alice, &status, None, 61_000).is_err());
    // `respond` is never limited.
    let respond = call("respond", json!({"text": "hi"}));
    for _ in 0..100 {
        let _ = g.admit(&alice, &respond, None, 61_000).unwrap();
    }
}

#[test]
fn a_burst_trips_the_rate_limit_per_tool_across_principals() {
    // Default: service_restart 10 per minute.
    let g = Guards::defaults();
    for i in 0..10 {
        let c = call("service_restart", json!({"service": format!("svc{i}")}));
        let permit = g
            .admit(
                &p(&format!("operator:o{i}")),
                &c,
                target_of(&c).as_deref(),
                0,
            )
            .unwrap();
        drop(permit);
    }
    let c = call("service_restart", json!({"service": "rentguy"}));
    let r = g
        .admit(&p("operator:z"), &c, Some("rentguy"), 5)
        .unwrap_err();
    assert_eq!(r.guard, GuardKind::ToolRate);
    assert!(r.message.contains("limit 10 per 60s"), "{r}");
    // Another tool still passes.
    let _ = g
        .admit(
            &p("operator:z"),
            &call("service_status", json!({"service": "rentguy"})),
            None,
            5,
        )
        .unwrap();
}

#[test]
fn blast_radius_caps_destructive_calls_platform_wide() {
    let g = guards("[blast_radius]\nwindow_secs = 3600\nmax_destructive = 2\n");
    let destroy = |t: &str| call("tenant_destroy", json!({"tenant": t}));
    for (i, t) in ["a1", "a2"].iter().enumerate() {
        let c = destroy(t);
        let _ = g
            .admit(
                &p(&format!("operator:o{i}")),
                &c,
                target_of(&c).as_deref(),
                10,
            )
            .unwrap();
    }
    let c = destroy("a3");
    let r = g.admit(&p("operator:o9"), &c, Some("a3"), 20).unwrap_err();
    assert_eq!(r.guard, GuardKind::BlastRadius);
    assert_eq!(
        r.to_string(),
        "blast radius: 2 destructive calls platform-wide in the last 3600s (limit 2 per 3600s); tenant_destroy must wait"
    );
    // Writes are not destructive and pass.
    let w = call("service_restart", json!({"service": "rentguy"}));
    let _ = g.admit(&p("operator:o9"), &w, Some("rentguy"), 20).unwrap();
    // An hour later the window has moved on.
    let _ = g
        .admit(&p("operator:o9"), &c, Some("a3"), 3_600_011)
        .unwrap();

    let none = guards("[blast_radius]\nmax_destructive = 0\n");
    assert_eq!(
        none.admit(&p("operator:o1"), &c, Some("a3"), 0)
            .unwrap_err()
            .guard,
        GuardKind::BlastRadius
    );
}

#[test]
fn second_write_on_a_target_is_refused_while_the_first_holds_its_permit() {
    let g = Guards::defaults();
    let restart = call("service_restart", json!({"service": "rentguy"}));
    let deploy = call(
        "service_deploy",
        json!({"service": "rentguy", "image": "rentguy:v2"}),
    );
    let restore = call(
        "db_restore",
        json!({"target": "rentguy", "backup": "rentguy-20261123T101500Z"}),
    );
    let first = g
        .admit(
            &p("operator:alice"),
            &restart,
            target_of(&restart).as_deref(),
            0,
        )
        .unwrap();
    assert_eq!(first.target(), Some("rentguy"));

    for second in [&deploy, &restore] {
        let r = g
            .admit(&p("operator:bob"), second, target_of(second).as_deref(), 1)
            .unwrap_err();
        assert_eq!(r.guard, GuardKind::TargetBusy);
        assert!(
            r.message.starts_with(
                "a write on rentguy is already running (service_restart by operator:alice)"
            ),
            "{r}"
        );
        assert!(r.message.contains("(mode refuse)"), "{r}");
    }
    // Reads of the same target and writes elsewhere go ahead.
    let _ = g
        .admit(
            &p("operator:bob"),
            &call("service_logs", json!({"service": "rentguy"})),
            Some("rentguy"),
            1,
        )
        .unwrap();
    let other = call("service_restart", json!({"service": "psra"}));
    let psra = g
        .admit(&p("operator:bob"), &other, Some("psra"), 1)
        .unwrap();
    assert_eq!(g.busy_targets().len(), 2);

    drop(first);
    let again = g
        .admit(&p("operator:bob"), &deploy, Some("rentguy"), 2)
        .unwrap();
    assert_eq!(again.target(), Some("rentguy"));
    drop((again, psra));
    assert!(g.busy_targets().is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn wait_mode_waits_for_the_target_and_times_out() {
    let g = guards("[target]\nmode = \"wait\"\nwait_timeout_ms = 2000\n");
    assert_eq!(g.config().target.mode, ConcurrencyMode::Wait);
    let restart = call("service_restart", json!({"service": "rentguy"}));
    let first = g
        .admit(&p("operator:alice"), &restart, Some("rentguy"), 0)
        .unwrap();

    // Released after 50 ms: the waiter gets in.
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
    });
    let started = std::time::Instant::now();
    let second = g
        .admit_wait(&p("operator:bob"), &restart, Some("rentguy"), 1)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(40));
    releaser.await.unwrap();

    // Never released: refused after the timeout, naming it.
    let g2 = guards("[target]\nmode = \"wait\"\nwait_timeout_ms = 100\n");
    let _held = g2
        .admit(&p("operator:alice"), &restart, Some("rentguy"), 0)
        .unwrap();
    let r = g2
        .admit_wait(&p("operator:bob"), &restart, Some("rentguy"), 1)
        .await
        .unwrap_err();
    assert_eq!(r.guard, GuardKind::TargetBusy);
    assert!(r.message.contains("waited 100 ms (wait_timeout_ms)"), "{r}");
    drop(second);
}

#[tokio::test(flavor = "current_thread")]
async fn refuse_mode_does_not_wait() {
    let g = Guards::defaults();
    let restart = call("service_restart", json!({"service": "rentguy"}));
    let _first = g
        .admit(&p("operator:alice"), &restart, Some("rentguy"), 0)
        .unwrap();
    let r = g
        .admit_wait(&p("operator:bob"), &restart, Some("rentguy"), 1)
        .await
        .unwrap_err();
    assert_eq!(r.guard, GuardKind::TargetBusy);
}

#[test]
fn configuration_loads_with_defaults_and_refuses_mistakes() {
    // Missing file: defaults.
    let g = Guards::load(Path::new("/nonexistent/guards.toml")).unwrap();
    assert_eq!(g.config(), &GuardsConfig::default());
    // The shipped file documents exactly the defaults.
    let shipped = Guards::load(&shipped_dir().join(GUARDS_FILE)).unwrap();
    assert_eq!(shipped.config(), &GuardsConfig::default());

    for (text, needle) in [
        (
            "[rate_limit]\nper_principle = 5\n",
            "unknown field `per_principle`",
        ),
        ("[rate_limit]\nper_principal = 0\n", "at least 1"),
        (
            "[rate_limit.tools]\nservice_reboot = 3\n",
            "unknown tool \"service_reboot\"",
        ),
        ("[target]\nmode = \"queue\"\n", "unknown variant `queue`"),
        (
            "[blast_radius]\nwindow_secs = 0\n",
            "window_secs must be at least 1",
        ),
    ] {
        let e = Guards::parse(Path::new("g.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("g.toml: "), "{e}");
        assert!(e.contains(needle), "{text}: {e}");
    }
}

/// Two `Guards` on one lock dir behave like two processes: each holds its own file handle,
/// and the OS lock, not the in-memory map, is what excludes the other.
#[tokio::test(flavor = "current_thread")]
async fn processes_sharing_a_lock_dir_write_one_target_at_a_time() {
    let dir = std::env::temp_dir().join(format!("steward-guard-locks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cli = Guards::defaults().with_lock_dir(&dir).unwrap();
    let server = guards("[target]\nmode = \"wait\"\nwait_timeout_ms = 2000\n")
        .with_lock_dir(&dir)
        .unwrap();
    let restart = call("service_restart", json!({"service": "rentguy"}));
    let held = cli
        .admit(&p("operator:alice"), &restart, Some("rentguy"), 0)
        .unwrap();
    let r = server
        .admit(&p("operator:bob"), &restart, Some("rentguy"), 1)
        .unwrap_err();
    assert_eq!(r.guard, GuardKind::TargetBusy);
    assert!(
        r.message
            .contains("another steward process (service_restart by operator:alice (pid "),
        "{r}"
    );
    // Another target is free, and reads never take the slot.
    let other = call("service_restart", json!({"service": "psra"}));
    drop(
        server
            .admit(&p("operator:bob"), &other, Some("psra"), 2)
            .unwrap(),
    );
    let status = call("service_status", json!({"service": "rentguy"}));
    drop(
        server
            .admit(&p("operator:bob"), &status, Some("rentguy"), 3)
            .unwrap(),
    );

    // In wait mode the other process's release is noticed by polling.
    let releaser = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(120)).await;
        drop(held);
    });
    let started = std::time::Instant::now();
    let second = server
        .admit_wait(&p("operator:bob"), &restart, Some("rentguy"), 4)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    releaser.await.unwrap();
    assert!(cli
        .admit(&p("operator:alice"), &restart, Some("rentguy"), 5)
        .is_err());
    drop(second);
    drop(
        cli.admit(&p("operator:alice"), &restart, Some("rentguy"), 6)
            .unwrap(),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Calls another process made (read back from the audit log) fill the same windows.
#[test]
fn past_calls_count_against_the_windows() {
    let g = guards("[rate_limit]\nper_principal = 3\n[blast_radius]\nmax_destructive = 2\n");
    assert_eq!(g.lookback_ms(), 3_600_000);
    g.record_past("operator:alice", "tenant_destroy", 1_000);
    g.record_past("operator:bob", "db_restore", 2_000);
    g.record_past("operator:alice", "respond", 2_500); // no effect: never counted
    g.record_past("operator:alice", "no_such_tool", 2_600); // ignored
    let destroy = call("tenant_destroy", json!({"tenant": "acme"}));
    let r = g
        .admit(&p("operator:carol"), &destroy, Some("acme"), 3_000)
        .unwrap_err();
    assert_eq!(r.guard, GuardKind::BlastRadius);
    assert_eq!(r.retry_after_ms, Some(3_600_000 + 1_000 - 3_000));

    g.record_past("operator:alice", "service_status", 2_700);
    g.record_past("operator:alice", "service_logs", 2_800);
    let status = call("service_status", json!({"service": "rentguy"}));
    let r = g
        .admit(&p("operator:alice"), &status, None, 3_000)
        .unwrap_err();
    assert_eq!(r.guard, GuardKind::PrincipalRate);
    assert!(r.message.contains("made 3 calls"), "{r}");
}
