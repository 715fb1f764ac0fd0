//! The demo app image against the real Docker Engine, Traefik and PostgreSQL: it starts,
//! turns healthy, answers directly and through Traefik by host name, counts rows, can be
//! told to turn unhealthy, and a release that never gets healthy is never routed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::FutureExt;
use serde_json::Value;
use steward_cli::config::Key;
use steward_exec::platform::{Outcome, Platform, ServiceSpec};

const TEST_LABEL: &str = "steward.test";

fn spec(
    cfg: &steward_cli::config::Config,
    service: &str,
    tag: &str,
    env: Vec<(String, String)>,
) -> ServiceSpec {
    ServiceSpec {
        service: service.into(),
        kind: "platform".into(),
        release: "r1".into(),
        image: format!("steward-demo:{tag}"),
        env,
        port: 8080,
        host: format!("{service}.test.{}", get(cfg, Key::Domain)),
        extra_labels: vec![(TEST_LABEL.into(), service.into())],
    }
}

/// Runs `body`, then removes the service whatever happened, then re-raises any failure.
async fn with_cleanup<F: std::future::Future<Output = ()>>(
    platform: &Platform,
    service: &str,
    body: F,
) {
    let result = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    platform.remove_service(service).await.unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn get_json(client: &reqwest::Client, url: &str, host: Option<&str>) -> (u16, Value) {
    let mut req = client.get(url);
    if let Some(h) = host {
        req = req.header("Host", h);
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

async fn wait_health(platform: &Platform, container: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = platform.docker.container(container).await.unwrap();
        if c.health == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{container} stayed {} instead of {want}",
            c.health
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn demo_app_serves_directly_and_through_traefik() {
    let cfg = real_config();
    let platform = steward_cli::demo::platform(&cfg).await.unwrap();
    let service = format!("t{}", unique());
    with_cleanup(&platform, &service.clone(), async {
        let spec = spec(&cfg, &service, "v1", vec![]);
        let outcome = platform
            .ensure_service(&spec, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(matches!(outcome, Outcome::Started(_)), "{outcome:?}");
        let c = outcome.container().clone();
        assert_eq!(
            (c.health.as_str(), c.state.as_str()),
            ("healthy", "running")
        );
        assert_eq!(c.image, "steward-demo:v1");
        let ip = c.ip.clone().unwrap();
        let client = reqwest::Client::new();

        let (code, body) = get_json(&client, &format!("http://{ip}:8080/health"), None).await;
        assert_eq!(
            (code, body["version"].as_str()),
            (200, Some("v1")),
            "{body}"
        );

        let web = get(&cfg, Key::TraefikWeb);
        let (code, body) = get_json(&client, &format!("{web}/"), Some(&spec.host)).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["service"], service.as_str());
        let (code, _) = get_json(&client, &format!("{web}/"), Some("nobody.test.localhost")).await;
        assert_eq!(code, 404, "an unknown host is not routed");

        // Converges: a second run finds it running and changes nothing.
        let again = platform
            .ensure_service(&spec, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(matches!(again, Outcome::AlreadyRunning(_)), "{again:?}");

        // status shows it with the route Traefik really serves.
        let out = TestHome::new().run(&["status", "--json"]);
        assert!(out.status.success());
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = status["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == service.as_str())
            .unwrap();
        assert_eq!(row["route"], format!("Host(`{}`)", spec.host));
        assert_eq!(row["health"], "healthy");

        // Told to fail, Docker's health check sees it.
        let resp = client
            .post(format!("http://{ip}:8080/admin/health/fail"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let (code, _) = get_json(&client, &format!("http://{ip}:8080/health"), None).await;
        assert_eq!(code, 503);
        wait_health(&platform, &c.name, "unhealthy").await;
        client
            .post(format!("http://{ip}:8080/admin/health/ok"))
            .send()
            .await
            .unwrap();
        wait_health(&platform, &c.name, "healthy").await;
    })
    .await;
    assert!(platform
        .docker
        .managed_containers(&[format!("{TEST_LABEL}={service}")])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "current_thread")]
async fn release_that_never_gets_healthy_is_not_routed() {
    let cfg = real_config();
    let platform = steward_cli::demo::platform(&cfg).await.unwrap();
    let service = format!("t{}", unique());
    with_cleanup(&platform, &service.clone(), async {
        let spec = spec(&cfg, &service, "broken", vec![]);
        let err = platform
            .ensure_service(&spec, Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not become healthy"), "{err}");
        let route_file =
            std::path::Path::new(&get(&cfg, Key::TraefikDynamicDir)).join(format!("{service}.yml"));
        assert!(!route_file.exists(), "no route for an unhealthy release");
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn demo_app_counts_rows_when_given_a_database() {
    let cfg = real_config();
    let admin = get(&cfg, Key::PgUrl);
    let db = format!("steward_demo_{}", unique());
    let pool = sqlx::PgPool::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&pool)
        .await
        .unwrap();
    // The container reaches PostgreSQL through the Docker bridge gateway, not loopback.
    let from_container = admin
        .replacen("127.0.0.1", &get(&cfg, Key::PgContainerHost), 1)
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/{db}"))
        .unwrap();
    let platform = steward_cli::demo::platform(&cfg).await.unwrap();
    let service = format!("t{}", unique());
    with_cleanup(&platform, &service.clone(), async {
        let spec = spec(
            &cfg,
            &service,
            "v2",
            vec![("DATABASE_URL".into(), from_container)],
        );
        let c = platform
            .ensure_service(&spec, Duration::from_secs(30))
            .await
            .unwrap()
            .container()
            .clone();
        let base = format!("http://{}:8080", c.ip.unwrap());
        let client = reqwest::Client::new();
        let (code, body) = get_json(&client, &format!("{base}/"), None).await;
        assert_eq!(
            (code, body["rows"].as_i64(), body["version"].as_str()),
            (200, Some(0), Some("v2")),
            "{body}"
        );
        for expected in 1..=3 {
            let resp = client.post(format!("{base}/items")).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 201);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["rows"], expected);
        }
        let (_, body) = get_json(&client, &format!("{base}/"), None).await;
        assert_eq!(body["rows"], 3);
    })
    .await;
    let rows: i64 = {
        let url = format!("{}/{db}", &admin[..admin.rfind('/').unwrap()]);
        let conn = sqlx::PgPool::connect(&url).await.unwrap();
        let n = sqlx::query_scalar("SELECT count(*) FROM items")
            .fetch_one(&conn)
            .await
            .unwrap();
        conn.close().await;
        n
    };
    sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 3, "the rows really are in PostgreSQL");
}
