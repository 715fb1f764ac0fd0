//! The release executor against the real Docker Engine and Traefik: deploy v1 → v2 serves v2
//! through Traefik with the old release kept stopped; a broken image never takes over; rollback
//! to the previous release, a release id and a time (with a manual clock); retention pruning;
//! re-runs change nothing; dry runs change nothing; refusals.
//!
//! Every test makes its own services (names carry the test's id), runs its body under a time
//! limit and removes everything it made even when the body panics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, ContainerUpdateBody};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use common::{call, test_env, test_env_with_clock, TestEnv, TEST_LABEL};
use futures_util::FutureExt;
use serde_json::{json, Value};
use steward_exec::env::Env;
use steward_exec::platform::ServiceSpec;
use steward_exec::releases::{time, ReleaseExecutor};
use steward_protocol::Timestamp;
use steward_tools::{Clock, Done, ErrorKind, Executor, ManualClock, SystemClock, ToolError};

const MIB: i64 = 1024 * 1024;
const HOUR: i64 = 3_600_000;

/// Runs `body` with a time limit, then cleans up whatever happened, then re-raises.
async fn guarded(te: &TestEnv, limit: Duration, body: impl Future<Output = ()>) {
    let outcome = AssertUnwindSafe(tokio::time::timeout(limit, body))
        .catch_unwind()
        .await;
    te.cleanup().await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("test body did not finish within {limit:?}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn spec(te: &TestEnv, suffix: &str) -> ServiceSpec {
    let service = te.name(suffix);
    ServiceSpec {
        host: format!("{service}.localhost"),
        service,
        kind: "platform".into(),
        release: "r1".into(),
        image: "steward-demo:v1".into(),
        env: vec![("EXTRA_SETTING".into(), "kept".into())],
        port: 8080,
        extra_labels: te.env.config.extra_labels.clone(),
    }
}

/// Release r1 of a service, brought up the way the demo platform does it.
async fn up(te: &TestEnv, suffix: &str) -> ServiceSpec {
    let spec = spec(te, suffix);
    te.env
        .platform
        .ensure_service(&spec, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("ensure_service {}: {e}", spec.service));
    spec
}

/// The same world with other settings (retention), sharing the test's clock and state dir.
fn with_retention(te: &TestEnv, retention: usize) -> Arc<Env> {
    let mut config = te.env.config.clone();
    config.release_retention = retention;
    Arc::new(Env::new(
        te.env.platform.clone(),
        te.env.clock.clone(),
        config,
    ))
}

async fn ok(ex: &ReleaseExecutor, tool: &str, args: Value) -> Done {
    ex.execute(&call(tool, args.clone()))
        .await
        .unwrap_or_else(|e| panic!("{tool} {args}: {:?} {e}", e.kind))
}

async fn err(ex: &ReleaseExecutor, tool: &str, args: Value) -> ToolError {
    match ex.execute(&call(tool, args.clone())).await {
        Ok(done) => panic!("{tool} {args} should fail, got {}", done.summary),
        Err(e) => e,
    }
}

async fn deploy(ex: &ReleaseExecutor, service: &str, tag: &str) -> Done {
    ok(
        ex,
        "service_deploy",
        json!({"service": service, "image": format!("steward-demo:{tag}")}),
    )
    .await
}

async fn rollback(ex: &ReleaseExecutor, service: &str, to: &str) -> Done {
    ok(
        ex,
        "service_rollback",
        json!({"service": service, "to": to}),
    )
    .await
}

/// `GET /` through Traefik's web entry point with the service's host: (status, version).
async fn serving(te: &TestEnv, host: &str) -> (u16, String) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}/", te.env.config.traefik_web))
        .header("Host", host)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["version"].as_str().unwrap_or("").to_string())
}

/// Every request through Traefik during `window` answers 200 with `version`.
async fn keeps_serving(te: &TestEnv, host: &str, version: &str, window: Duration) {
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        assert_eq!(serving(te, host).await, (200, version.to_string()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `name → state` of every container of `service`.
async fn containers(te: &TestEnv, service: &str) -> HashMap<String, String> {
    let filter = format!("steward.service={service}");
    te.env
        .platform
        .docker
        .managed_containers(&[filter])
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.state))
        .collect()
}

fn states(pairs: &[(&str, &str)], service: &str) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(r, s)| (format!("{service}-{r}"), s.to_string()))
        .collect()
}

fn route_file(te: &TestEnv, service: &str) -> String {
    std::fs::read_to_string(te.env.platform.routes.path().join(format!("{service}.yml")))
        .unwrap_or_default()
}

fn history_file(te: &TestEnv, service: &str) -> Option<Value> {
    let path = te
        .state_dir
        .join("releases")
        .join(format!("{service}.json"));
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

async fn container_env(te: &TestEnv, name: &str) -> Vec<String> {
    te.env
        .platform
        .docker
        .api()
        .inspect_container(name, None)
        .await
        .unwrap()
        .config
        .unwrap()
        .env
        .unwrap()
}

fn release<'a>(list: &'a Done, id: &str) -> &'a Value {
    list.output["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["release"] == id)
        .unwrap_or_else(|| panic!("{id} missing in {:#}", list.output))
}

#[tokio::test]
async fn deploy_switches_traffic_and_keeps_the_old_release() {
    let te = test_env().await;
    guarded(&te, Duration::from_secs(120), async {
        let ex = ReleaseExecutor::new(te.env.clone());
        let s = up(&te, "web").await;
        let svc = s.service.as_str();
        // Limits set on the live release must survive the deploy.
        te.env
            .platform
            .docker
            .api()
            .update_container(
                &format!("{svc}-r1"),
                ContainerUpdateBody {
                    memory: Some(96 * MIB),
                    memory_swap: Some(96 * MIB),
                    nano_cpus: Some(500_000_000),
                    pids_limit: Some(64),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(serving(&te, &s.host).await, (200, "v1".into()));

        let done = deploy(&ex, svc, "v2").await;
        assert!(done.changed);
        assert_eq!(done.output["release"], "r2", "{:#}", done.output);
        assert_eq!(done.output["container"], format!("{svc}-r2"));
        assert_eq!(done.output["previous"]["release"], "r1");
        assert!(
            done.summary.contains("kept for rollback"),
            "{}",
            done.summary
        );

        assert_eq!(serving(&te, &s.host).await, (200, "v2".into()));
        assert_eq!(
            containers(&te, svc).await,
            states(&[("r1", "exited"), ("r2", "running")], svc)
        );
        assert!(route_file(&te, svc).contains(&format!(
            "http://{}:8080",
            te.env
                .platform
                .docker
                .container(&format!("{svc}-r2"))
                .await
                .unwrap()
                .ip
                .unwrap()
        )));

        // Same env (not the old image's version), labels and limits.
        let env = container_env(&te, &format!("{svc}-r2")).await;
        assert!(env.contains(&"EXTRA_SETTING=kept".to_string()), "{env:?}");
        assert!(env.contains(&format!("SERVICE_NAME={svc}")), "{env:?}");
        assert!(env.contains(&"DEMO_VERSION=v2".to_string()), "{env:?}");
        assert!(!env.contains(&"DEMO_VERSION=v1".to_string()), "{env:?}");
        let r2 = te
            .env
            .platform
            .docker
            .api()
            .inspect_container(&format!("{svc}-r2"), None)
            .await
            .unwrap();
        let hc = r2.host_config.unwrap();
        assert_eq!(hc.memory, Some(96 * MIB));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.pids_limit, Some(64));
        let labels = r2.config.unwrap().labels.unwrap();
        assert_eq!(labels["steward.service"], svc);
        assert_eq!(labels["steward.kind"], "platform");
        assert_eq!(labels["steward.release"], "r2");
        assert_eq!(labels[TEST_LABEL], te.id);

        // The history has both, with r2 live and r1's interval closed.
        let list = ok(&ex, "service_releases", json!({"service": svc})).await;
        assert!(!list.changed);
        assert_eq!(list.output["live"], "r2");
        let (h1, h2) = (release(&list, "r1"), release(&list, "r2"));
        assert_eq!(
            (h1["live"].clone(), h1["kept"].clone(), h1["state"].clone()),
            (json!(false), json!(true), json!("exited"))
        );
        assert_eq!(h1["image"], "steward-demo:v1");
        assert_eq!(h2["image"], "steward-demo:v2");
        assert_eq!(
            (h2["live"].clone(), h2["kept"].clone()),
            (json!(true), json!(true))
        );
        assert!(h1["live_intervals"][0]["until"].is_string(), "{h1:#}");
        assert!(h2["live_intervals"][0]["until"].is_null(), "{h2:#}");
        assert!(
            list.summary.contains("r2 (steward-demo:v2) is live"),
            "{}",
            list.summary
        );
        let stored = history_file(&te, svc).expect("history persisted");
        assert_eq!(stored["releases"].as_array().unwrap().len(), 2);

        // Idempotent: the same image again changes nothing.
        let route_before = route_file(&te, svc);
        let again = deploy(&ex, svc, "v2").await;
        assert!(!again.changed, "{}", again.summary);
        assert_eq!(route_file(&te, svc), route_before);
        assert_eq!(containers(&te, svc).await.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn deploy_of_a_broken_image_keeps_the_old_release_serving() {
    let te = test_env().await;
    guarded(&te, Duration::from_secs(120), async {
        let ex = ReleaseExecutor::new(te.env.clone());
        let s = up(&te, "web").await;
        let svc = s.service.as_str();
        let route_before = route_file(&te, svc);

        let call = call(
            "service_deploy",
            json!({"service": svc, "image": "steward-demo:broken"}),
        );
        let (result, ()) = tokio::join!(
            ex.execute(&call),
            keeps_serving(&te, &s.host, "v1", Duration::from_secs(3))
        );
        let e = result.expect_err("a release that never turns healthy must not deploy");
        assert_eq!(e.kind, ErrorKind::Failed, "{e}");
        for needle in [
            "steward-demo:broken",
            "did not become healthy",
            "last health check exit 1",
            &format!("removed {svc}-r2"),
            "r1 (steward-demo:v1) keeps serving",
        ] {
            assert!(e.message.contains(needle), "{needle:?} missing in: {e}");
        }

        assert_eq!(serving(&te, &s.host).await, (200, "v1".into()));
        assert_eq!(route_file(&te, svc), route_before);
        assert_eq!(
            containers(&te, svc).await,
            states(&[("r1", "running")], svc),
            "no broken container left"
        );
        let list = ok(&ex, "service_releases", json!({"service": svc})).await;
        assert_eq!(list.output["live"], "r1");
        assert_eq!(list.output["releases"].as_array().unwrap().len(), 1);

        // A good deploy afterwards still works and takes the next release id.
        let done = deploy(&ex, svc, "v2").await;
        assert_eq!(done.output["release"], "r2");
        assert_eq!(serving(&te, &s.host).await, (200, "v2".into()));
    })
    .await;
}

#[tokio::test]
async fn rollback_to_previous_and_to_a_release_id() {
    let te = test_env().await;
    guarded(&te, Duration::from_secs(150), async {
        let ex = ReleaseExecutor::new(te.env.clone());
        let s = up(&te, "web").await;
        let svc = s.service.as_str();
        deploy(&ex, svc, "v2").await;

        let back = rollback(&ex, svc, "previous").await;
        assert!(back.changed);
        assert_eq!(back.output["release"], "r1", "{:#}", back.output);
        assert_eq!(back.output["previous"]["release"], "r2");
        assert_eq!(serving(&te, &s.host).await, (200, "v1".into()));
        assert_eq!(
            containers(&te, svc).await,
            states(&[("r1", "running"), ("r2", "exited")], svc)
        );

        // Re-running the same rollback changes nothing.
        let again = rollback(&ex, svc, "r1").await;
        assert!(!again.changed, "{}", again.summary);

        // `previous` now means r2 (live before the current r1).
        let fwd = rollback(&ex, svc, "previous").await;
        assert_eq!(fwd.output["release"], "r2");
        assert_eq!(serving(&te, &s.host).await, (200, "v2".into()));
        let by_id = rollback(&ex, svc, "r1").await;
        assert_eq!(by_id.output["release"], "r1");
        assert_eq!(serving(&te, &s.host).await, (200, "v1".into()));

        // Every switch is in the history: r1 live twice... three times, r2 twice.
        let list = ok(&ex, "service_releases", json!({"service": svc})).await;
        assert_eq!(
            release(&list, "r1")["live_intervals"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            release(&list, "r2")["live_intervals"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(list.output["live"], "r1");

        let e = err(&ex, "service_rollback", json!({"service": svc, "to": "r9"})).await;
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("has no release r9"), "{e}");
        let e = err(
            &ex,
            "service_rollback",
            json!({"service": svc, "to": "the good one"}),
        )
        .await;
        assert_eq!(e.kind, ErrorKind::InvalidArgs);
        assert!(e.message.contains("previous"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn rollback_by_time_picks_the_release_live_then() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let te = test_env_with_clock(clock.clone()).await;
    guarded(&te, Duration::from_secs(150), async {
        let ex = ReleaseExecutor::new(te.env.clone());
        let s = up(&te, "web").await;
        let svc = s.service.as_str();
        // The clock stands at t0, just before r1 was created; the history bootstrapped from
        // the containers has r1 live since its creation. Then the clock moves by hand.
        let t0 = clock.now();
        let first = ok(&ex, "service_releases", json!({"service": svc})).await;
        assert_eq!(first.output["live"], "r1");
        let since = first.output["releases"][0]["live_intervals"][0]["from"]
            .as_str()
            .and_then(time::parse)
            .unwrap();
        assert!(since >= t0, "{since:?} < {t0:?}");
        assert!(history_file(&te, svc).is_none(), "listing writes nothing");

        clock.set(Timestamp(t0.0 + HOUR));
        assert_eq!(deploy(&ex, svc, "v2").await.output["release"], "r2");
        clock.set(Timestamp(t0.0 + 2 * HOUR));
        // Same image as r1, but a release of its own.
        assert_eq!(deploy(&ex, svc, "v1").await.output["release"], "r3");
        clock.set(Timestamp(t0.0 + 3 * HOUR));

        // An RFC3339 time between the r2 and r3 deploys picks r2.
        let mid = time::format(Timestamp(t0.0 + HOUR + HOUR / 2));
        let plan = ex
            .dry_run(&call(
                "service_rollback",
                json!({"service": svc, "to": mid}),
            ))
            .await
            .unwrap();
        assert!(plan.changes);
        assert!(
            plan.summary.contains(&format!("{svc}-r2")) || plan.summary.contains("r2 ("),
            "{}",
            plan.summary
        );
        let done = rollback(&ex, svc, &mid).await;
        assert_eq!(done.output["release"], "r2", "{}", done.summary);
        assert_eq!(serving(&te, &s.host).await, (200, "v2".into()));

        clock.set(Timestamp(t0.0 + 4 * HOUR));
        // 3h ago = t0+1h: r2 went live then, and it is live now: nothing to do.
        let same = rollback(&ex, svc, "3h ago").await;
        assert!(!same.changed, "{}", same.summary);
        assert_eq!(same.output["release"], "r2");
        // 210 minutes ago = t0+30m: r1.
        let old = rollback(&ex, svc, "210 minutes ago").await;
        assert_eq!(old.output["release"], "r1", "{}", old.summary);
        assert_eq!(serving(&te, &s.host).await, (200, "v1".into()));
        // 1 hour ago = t0+3h: r2 again (the rollback made it live from t0+3h to t0+4h).
        let later = rollback(&ex, svc, "1h ago").await;
        assert_eq!(later.output["release"], "r2", "{}", later.summary);
        // 90 minutes ago = t0+2h30m: r3.
        let r3 = rollback(&ex, svc, "90m ago").await;
        assert_eq!(r3.output["release"], "r3", "{}", r3.summary);
        assert_eq!(serving(&te, &s.host).await, (200, "v1".into()));

        // Before the service existed, and in the future: invalid input, at dry-run already.
        for (to, kind, needle) in [
            ("yesterday", ErrorKind::InvalidArgs, "did not exist"),
            (
                "2020-06-01T00:00:00Z",
                ErrorKind::InvalidArgs,
                "did not exist",
            ),
            ("2020-06-01", ErrorKind::InvalidArgs, "first release r1"),
            (
                "1970-01-01T00:00:00Z",
                ErrorKind::InvalidArgs,
                "before 2000",
            ),
            (
                "0000-01-01T00:00:00Z",
                ErrorKind::InvalidArgs,
                "before 2000",
            ),
            ("2999-01-01T00:00:00Z", ErrorKind::InvalidArgs, "future"),
        ] {
            let e = ex
                .dry_run(&call("service_rollback", json!({"service": svc, "to": to})))
                .await
                .unwrap_err();
            assert_eq!(e.kind, kind, "{to}: {e}");
            assert!(e.message.contains(needle), "{to}: {e}");
        }

        // The persisted history holds the switches at the manual clock's times.
        let h = history_file(&te, svc).unwrap();
        let r2 = h["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["release"] == "r2")
            .unwrap();
        assert_eq!(r2["created_at"], t0.0 + HOUR);
        assert_eq!(
            r2["live"],
            json!([
                {"from": t0.0 + HOUR, "until": t0.0 + 2 * HOUR},
                {"from": t0.0 + 3 * HOUR, "until": t0.0 + 4 * HOUR},
                {"from": t0.0 + 4 * HOUR, "until": t0.0 + 4 * HOUR},
            ])
        );
    })
    .await;
}

#[tokio::test]
async fn a_switch_made_outside_steward_is_recorded() {
    let te = test_env().await;
    guarded(&te, Duration::from_secs(120), async {
        let ex = ReleaseExecutor::new(te.env.clone());
        let s = up(&te, "web").await;
        let svc = s.service.as_str();
        deploy(&ex, svc, "v2").await;
        // Someone (the demo platform, a crash between route switch and history write) points
        // the route back at r1.
        te.env
            .platform
            .ensure_service(&s, Duration::from_secs(30))
            .await
            .unwrap();
        // ensure_service only waits for the router, whose rule did not change: wait for the
        // backend switch by asking.
        let deadline = Instant::now() + Duration::from_secs(10);
        while serving(&te, &s.host).await != (200, "v1".into()) {
            assert!(Instant::now() < deadline, "traefik never served r1 again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let list = ok(&ex, "service_releases", json!({"service": svc})).await;
        assert_eq!(list.output["live"], "r1", "{:#}", list.output);
        assert_eq!(
            release(&list, "r1")["live_intervals"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(!release(&list, "r2")["live_intervals"][0]["until"].is_null());
        // Deploying v1 now is a no-op (it is what serves); v2 again makes a new release
        // next to r1 and retires it, leaving the stray running r2 alone until it stops.
        assert!(!deploy(&ex, svc, "v1").await.changed);
        let d = deploy(&ex, svc, "v2").await;
        assert_eq!(d.output["release"], "r3");
        assert_eq!(serving(&te, &s.host).await, (200, "v2".into()));
    })
    .await;
}

#[tokio::test]
async fn retention_prunes_the_oldest_retired_releases() {
    let te = test_env().await;
    guarded(&te, Duration::from_secs(150), async {
        let ex = ReleaseExecutor::new(with_retention(&te, 1));
        let s = up(&te, "web").await;
        let svc = s.service.as_str();
        let d2 = deploy(&ex, svc, "v2").await;
        assert_eq!(d2.output["pruned"], json!([]));
        let d3 = deploy(&ex, svc, "v1").await;
        assert_eq!(d3.output["release"], "r3");
        assert_eq!(d3.output["pruned"], json!([format!("{svc}-r1")]));
        assert!(
            d3.summary.contains(&format!("pruned {svc}-r1")),
            "{}",
            d3.summary
        );
        assert_eq!(
            containers(&te, svc).await,
            states(&[("r2", "exited"), ("r3", "running")], svc)
        );

        let list = ok(&ex, "service_releases", json!({"service": svc})).await;
        assert_eq!(release(&list, "r1")["kept"], false);
        assert_eq!(release(&list, "r2")["kept"], true);

        let e = err(&ex, "service_rollback", json!({"service": svc, "to": "r1"})).await;
        assert_eq!(e.kind, ErrorKind::NotFound);
        for needle in [
            "no longer kept",
            "release_retention",
            "steward-demo:v1",
            "service_deploy",
        ] {
            assert!(e.message.contains(needle), "{needle:?} missing in: {e}");
        }
        // The kept one still works.
        rollback(&ex, svc, "previous").await;
        assert_eq!(serving(&te, &s.host).await, (200, "v2".into()));
    })
    .await;
}

#[tokio::test]
async fn dry_run_changes_nothing_and_describes_the_steps() {
    let te = test_env().await;
    guarded(&te, Duration::from_secs(120), async {
        let ex = ReleaseExecutor::new(te.env.clone());
        let s = up(&te, "web").await;
        let svc = s.service.as_str();
        let before = (containers(&te, svc).await, route_file(&te, svc));

        let plan = ex
            .dry_run(&call(
                "service_deploy",
                json!({"service": svc, "image": "steward-demo:v2"}),
            ))
            .await
            .unwrap();
        assert!(plan.changes);
        let steps = plan.steps.join("\n");
        for needle in [
            format!("create {svc}-r2"),
            "steward-demo:v2".to_string(),
            format!("switch route {}", s.host),
            format!("stop {svc}-r1"),
        ] {
            assert!(steps.contains(&needle), "{needle:?} missing in:\n{steps}");
        }
        let same = ex
            .dry_run(&call(
                "service_deploy",
                json!({"service": svc, "image": "steward-demo:v1"}),
            ))
            .await
            .unwrap();
        assert!(!same.changes, "{}", same.summary);
        let e = ex
            .dry_run(&call(
                "service_rollback",
                json!({"service": svc, "to": "previous"}),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
        let listed = ex
            .dry_run(&call("service_releases", json!({"service": svc})))
            .await
            .unwrap();
        assert!(!listed.changes);

        assert_eq!((containers(&te, svc).await, route_file(&te, svc)), before);
        assert!(history_file(&te, svc).is_none(), "dry run wrote no history");

        // After a real deploy, a dry-run rollback names the target and still changes nothing.
        deploy(&ex, svc, "v2").await;
        let before = (
            containers(&te, svc).await,
            route_file(&te, svc),
            history_file(&te, svc),
        );
        let plan = ex
            .dry_run(&call(
                "service_rollback",
                json!({"service": svc, "to": "previous"}),
            ))
            .await
            .unwrap();
        assert!(plan.changes);
        let steps = plan.steps.join("\n");
        assert!(
            steps.contains(&format!("start kept container {svc}-r1")),
            "{steps}"
        );
        assert!(steps.contains(&format!("stop {svc}-r2")), "{steps}");
        let e = ex
            .dry_run(&call(
                "service_rollback",
                json!({"service": svc, "to": "r7"}),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            (
                containers(&te, svc).await,
                route_file(&te, svc),
                history_file(&te, svc)
            ),
            before
        );
        assert_eq!(serving(&te, &s.host).await, (200, "v2".into()));
    })
    .await;
}

#[tokio::test]
async fn refuses_unknown_unowned_and_missing_images() {
    let te = test_env().await;
    guarded(&te, Duration::from_secs(60), async {
        let ex = ReleaseExecutor::new(te.env.clone());
        let ghost = te.name("ghost");
        for (tool, args) in [
            (
                "service_deploy",
                json!({"service": ghost, "image": "steward-demo:v2"}),
            ),
            (
                "service_rollback",
                json!({"service": ghost, "to": "previous"}),
            ),
            ("service_releases", json!({"service": ghost})),
        ] {
            let e = err(&ex, tool, args).await;
            assert_eq!(e.kind, ErrorKind::NotFound, "{tool}: {e}");
        }

        // A container without steward's labels is never touched.
        let plain = te.name("plain");
        let api = te.env.platform.docker.api();
        api.create_container(
            Some(CreateContainerOptionsBuilder::new().name(&plain).build()),
            ContainerCreateBody {
                image: Some("steward-demo:v1".into()),
                labels: Some(HashMap::from([(TEST_LABEL.to_string(), te.id.clone())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let e = err(
            &ex,
            "service_deploy",
            json!({"service": plain, "image": "steward-demo:v2"}),
        )
        .await;
        assert_eq!(e.kind, ErrorKind::NotOwned, "{e}");
        let e = err(
            &ex,
            "service_rollback",
            json!({"service": plain, "to": "r1"}),
        )
        .await;
        assert_eq!(e.kind, ErrorKind::NotOwned, "{e}");

        let s = up(&te, "web").await;
        let e = err(
            &ex,
            "service_deploy",
            json!({"service": s.service, "image": "steward-demo:missing"}),
        )
        .await;
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.message.contains("not present on this host"), "{e}");
        assert_eq!(
            containers(&te, &s.service).await,
            states(&[("r1", "running")], &s.service)
        );

        // Hostile input never reaches the executor: the typed args refuse it.
        let e = steward_tools::Call::parse(
            "service_deploy",
            json!({"service": "../etc", "image": "steward-demo:v2"}),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgs);
    })
    .await;
}
