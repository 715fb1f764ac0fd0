//! `steward doctor` against the real services: all ok, then each way a dependency can be
//! wrong, with a clear message and a non-zero exit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use steward_cli::config::Key;

fn doctor_json(extra: &[&str]) -> (bool, Vec<Value>) {
    doctor_in(&TestHome::new(), &[], extra)
}

/// `steward doctor --json` in `home`, with `env` added to its environment.
fn doctor_in(home: &TestHome, env: &[(&str, &str)], extra: &[&str]) -> (bool, Vec<Value>) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let out = home
        .command()
        .envs(env.iter().copied())
        .args(&args)
        .output()
        .unwrap();
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {}", stdout(&out)));
    (out.status.success(), checks)
}

/// `steward serve` on a free port of `home`, killed on drop: doctor checks that one runs.
struct Serve {
    child: Child,
    listen: String,
}

impl Serve {
    fn start(home: &TestHome) -> Serve {
        let listen = format!("127.0.0.1:{}", free_port());
        let child = home
            .command()
            .env("STEWARD_MONITOR", "off")
            .args(["serve", "--listen", &listen])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(&listen, "/readyz") {
            assert!(
                Instant::now() < deadline,
                "steward serve never became ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Serve { child, listen }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Doctor with everything up, `steward serve` included.
fn doctor_all_up(extra: &[&str]) -> (bool, Vec<Value>) {
    let home = TestHome::new();
    let serve = Serve::start(&home);
    doctor_in(&home, &[("STEWARD_LISTEN", &serve.listen)], extra)
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {checks:?}"))
}

fn temp_state_url(tag: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("steward-doctor-{tag}-{}", unique()));
    // steward refuses a store in a directory that does not exist (a typo, not a new store).
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("state.db").display());
    (dir, url)
}

#[test]
fn every_dependency_is_ok_after_setup() {
    let (dir, state_url) = temp_state_url("ok");
    let (ok, checks) = doctor_all_up(&["--state-url", &state_url]);
    assert!(ok, "doctor failed: {checks:#?}");
    for name in [
        "docker",
        "postgres",
        "traefik",
        "state",
        "prometheus",
        "alertmanager",
        "serve",
    ] {
        assert_eq!(check(&checks, name)["ok"], true, "{name}: {checks:#?}");
    }
    let models: Vec<&Value> = checks
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("model "))
        .collect();
    assert_eq!(models.len(), 3, "one line per model manifest: {checks:#?}");
    assert!(models
        .iter()
        .all(|m| m["ok"] == true && m["detail"].as_str().unwrap().contains("verified")));
    let state = check(&checks, "state")["detail"].as_str().unwrap();
    assert!(
        state.contains("sqlite") && state.contains("schema v10"),
        "{state}"
    );
    assert!(
        dir.join("state.db").exists(),
        "the sqlite state store was created and migrated"
    );
    let prometheus = check(&checks, "prometheus")["detail"].as_str().unwrap();
    assert!(
        prometheus.contains("ServiceDown, HighErrorRate loaded"),
        "{prometheus}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn human_output_is_one_line_per_dependency() {
    let (dir, state_url) = temp_state_url("lines");
    let home = TestHome::new();
    let serve = Serve::start(&home);
    let out = home
        .command()
        .env("STEWARD_LISTEN", &serve.listen)
        .args(["doctor", "--state-url", &state_url])
        .output()
        .unwrap();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        10,
        "docker, postgres, traefik, state, prometheus, alertmanager, serve and 3 models:\n{text}"
    );
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn wrong_postgres_password_and_port_are_reported() {
    let cfg = real_config();
    let good = get(&cfg, Key::PgUrl);
    let at = good.rfind('@').unwrap();
    let colon = good[..at].rfind(':').unwrap();
    let bad_password = format!("{}:not-the-password{}", &good[..colon], &good[at..]);
    let (ok, checks) = doctor_json(&["--pg-url", &bad_password]);
    assert!(!ok, "doctor must exit non-zero");
    let pg = check(&checks, "postgres");
    assert_eq!(pg["ok"], false);
    let detail = pg["detail"].as_str().unwrap();
    assert!(
        detail.contains("password authentication failed"),
        "{detail}"
    );
    assert!(
        detail.contains("from flag") && !detail.contains("not-the-password"),
        "{detail}"
    );
    assert_eq!(
        check(&checks, "docker")["ok"],
        true,
        "other checks are unaffected"
    );

    let port = free_port();
    let bad_port = format!("postgres://steward:x@127.0.0.1:{port}/steward");
    let (ok, checks) = doctor_json(&["--pg-url", &bad_port]);
    assert!(!ok);
    let detail = check(&checks, "postgres")["detail"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(detail.contains("connection refused"), "{detail}");

    let (ok, checks) = doctor_json(&["--pg-url", "mysql://root@localhost/x"]);
    assert!(!ok);
    assert_eq!(check(&checks, "postgres")["ok"], false);
}

/// A Traefik owned by this test: ok while it runs, a clear failure once it is stopped.
#[test]
fn stopped_traefik_is_reported() {
    let api_port = free_port();
    let web_port = free_port();
    let dynamic = std::env::temp_dir().join(format!("steward-doctor-traefik-{}", unique()));
    std::fs::create_dir_all(&dynamic).unwrap();
    let mut traefik: Child = Command::new(traefik_bin())
        .arg(format!(
            "--entryPoints.traefik.address=127.0.0.1:{api_port}"
        ))
        .arg(format!("--entryPoints.web.address=127.0.0.1:{web_port}"))
        .arg("--api.insecure=true")
        .arg("--ping=true")
        .arg(format!("--providers.file.directory={}", dynamic.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{api_port}");
    let deadline = Instant::now() + Duration::from_secs(15);
    // The port accepts connections a moment before the API routes answer 200.
    while !api_answers(api_port) {
        assert!(Instant::now() < deadline, "test traefik did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, checks) = doctor_json(&["--traefik-api", &api]);
    let running = check(&checks, "traefik").clone();

    traefik.kill().unwrap();
    traefik.wait().unwrap();
    let (ok, checks) = doctor_json(&["--traefik-api", &api]);
    std::fs::remove_dir_all(&dynamic).unwrap();

    assert_eq!(running["ok"], true, "{running}");
    assert!(running["detail"].as_str().unwrap().contains(&api));
    assert!(!ok, "doctor must exit non-zero when traefik is down");
    let detail = check(&checks, "traefik")["detail"].as_str().unwrap();
    assert!(
        detail.contains("connection refused") && detail.contains("is Traefik running?"),
        "{detail}"
    );
}

#[test]
fn state_store_on_postgres_is_migrated() {
    let cfg = real_config();
    let admin = get(&cfg, Key::PgUrl);
    let db = format!("steward_doctor_{}", unique());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = rt.block_on(sqlx::PgPool::connect(&admin)).unwrap();
    rt.block_on(sqlx::query(&format!("CREATE DATABASE {db}")).execute(&pool))
        .unwrap();
    let url = format!("{}/{db}", &admin[..admin.rfind('/').unwrap()]);

    let (ok, checks) = doctor_all_up(&["--state-url", &url]);
    let tables: i64 = rt
        .block_on(async {
            let conn = sqlx::PgPool::connect(&url).await?;
            let n = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'audit_log'",
            )
            .fetch_one(&conn)
            .await;
            conn.close().await;
            n
        })
        .unwrap();
    rt.block_on(sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)")).execute(&pool))
        .unwrap();

    assert!(ok, "{checks:#?}");
    let state = check(&checks, "state")["detail"].as_str().unwrap();
    assert!(
        state.starts_with("postgres at") && state.contains("schema v10"),
        "{state}"
    );
    assert!(!state.contains(&admin), "password must be masked: {state}");
    assert_eq!(tables, 1);
}

#[test]
fn unsupported_state_url_is_refused() {
    let (ok, checks) = doctor_json(&["--state-url", "redis://localhost"]);
    assert!(!ok);
    let detail = check(&checks, "state")["detail"].as_str().unwrap();
    assert!(detail.contains("unsupported state store URL"), "{detail}");
}

/// Nothing answers on the URLs doctor is given, and no serve runs: each of the alert loop's
/// checks fails, says what it tried and how to fix it, and the others are unaffected.
#[test]
fn a_stopped_prometheus_alertmanager_or_serve_is_reported_with_the_fix() {
    let prometheus = format!("http://127.0.0.1:{}", free_port());
    let alertmanager = format!("http://127.0.0.1:{}", free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let (ok, checks) = doctor_in(
        &TestHome::new(),
        &[
            ("STEWARD_PROMETHEUS_URL", &prometheus),
            ("STEWARD_ALERTMANAGER_URL", &alertmanager),
            ("STEWARD_LISTEN", &listen),
        ],
        &[],
    );
    assert!(!ok, "doctor must exit non-zero");
    for (name, url, fix) in [
        ("prometheus", prometheus.as_str(), "run scripts/setup"),
        ("alertmanager", alertmanager.as_str(), "run scripts/setup"),
        ("serve", listen.as_str(), "steward serve"),
    ] {
        let c = check(&checks, name);
        assert_eq!(c["ok"], false, "{c}");
        let detail = c["detail"].as_str().unwrap();
        assert!(
            detail.contains(url) && detail.contains(fix),
            "{name}: {detail}"
        );
    }
    assert_eq!(check(&checks, "docker")["ok"], true);
}

/// True when Traefik's API answers `GET /api/version` with 200.
fn api_answers(port: u16) -> bool {
    answers(&format!("127.0.0.1:{port}"), "/api/version")
}

/// True when `GET <path>` on `addr` answers 200.
fn answers(addr: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut reply = String::new();
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_to_string(&mut reply).is_ok()
        && (reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"))
}
