//! `steward doctor`: one line per dependency, ok or what is wrong and how to fix it.

use std::path::Path;

use serde::Serialize;
use steward_audit::Store;
use steward_exec::docker::DockerClient;
use steward_exec::traefik::TraefikApi;
use steward_llm::manifest::{FileState, ModelManifest};

use crate::config::{mask_password, Config, Key};

mod alerting;

/// The verdict on one dependency.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    fn new(name: impl Into<String>, result: Result<String, String>) -> Self {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        Self {
            name: name.into(),
            ok,
            detail,
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{:<4}  {:<36}  {}",
            if self.ok { "ok" } else { "FAIL" },
            self.name,
            self.detail
        )
    }
}

/// Runs every check concurrently; the slowest dependency bounds the wait, not their sum.
pub async fn run(cfg: &Config) -> Vec<Check> {
    let (docker, postgres, traefik, state, prometheus, alertmanager, serve) = tokio::join!(
        check_docker(),
        check_postgres(cfg),
        check_traefik(cfg),
        check_state(cfg),
        alerting::check_prometheus(cfg),
        alerting::check_alertmanager(cfg),
        alerting::check_serve(cfg),
    );
    let mut checks = vec![
        docker,
        postgres,
        traefik,
        state,
        prometheus,
        alertmanager,
        serve,
    ];
    checks.extend(check_models(cfg));
    checks
}

async fn check_docker() -> Check {
    let res = async {
        let docker = DockerClient::connect().await.map_err(|e| e.to_string())?;
        docker
            .version()
            .await
            .map(|v| format!("engine {v}"))
            .map_err(|e| e.to_string())
    };
    Check::new(
        "docker",
        res.await.map_err(|e| {
            format!("cannot reach the Docker Engine: {e}; start dockerd or set DOCKER_HOST")
        }),
    )
}

async fn check_postgres(cfg: &Config) -> Check {
    let res = async {
        let url = cfg.require(Key::PgUrl).map_err(|e| e.to_string())?;
        let source = cfg
            .get(Key::PgUrl)
            .map(|s| s.source.to_string())
            .unwrap_or_default();
        match steward_exec::postgres::server_version(url).await {
            Ok(v) => Ok(format!("{v} at {}", mask_password(url))),
            Err(e) => Err(format!("{e} (pg_url {} from {source})", mask_password(url))),
        }
    };
    Check::new("postgres", res.await)
}

async fn check_traefik(cfg: &Config) -> Check {
    let res = async {
        let base = cfg.require(Key::TraefikApi).map_err(|e| e.to_string())?;
        let api = TraefikApi::new(base).map_err(|e| e.to_string())?;
        let version = api.version().await.map_err(|e| e.to_string())?;
        let routers = api.http_routers().await.map_err(|e| e.to_string())?;
        let dir = cfg
            .require(Key::TraefikDynamicDir)
            .map_err(|e| e.to_string())?;
        if !Path::new(dir).is_dir() {
            return Err(format!(
                "dynamic config dir {dir} is missing; run scripts/setup"
            ));
        }
        Ok(format!(
            "Traefik {version} at {base}, {} routers, routes in {dir}",
            routers.len()
        ))
    };
    Check::new("traefik", res.await)
}

async fn check_state(cfg: &Config) -> Check {
    let res = async {
        let url = cfg.require(Key::StateUrl).map_err(|e| e.to_string())?;
        crate::config::check_state_dir(cfg).map_err(|e| e.to_string())?;
        let store = Store::open(url).await.map_err(|e| e.to_string())?;
        let version = store.schema_version().await.map_err(|e| e.to_string());
        store.close().await;
        Ok(format!(
            "{} at {}, schema v{}",
            store.backend().name(),
            mask_password(url),
            version?
        ))
    };
    Check::new("state", res.await)
}

fn check_models(cfg: &Config) -> Vec<Check> {
    let (Ok(models_dir), Ok(weights_dir)) =
        (cfg.data_path(Key::ModelsDir), cfg.require(Key::WeightsDir))
    else {
        return vec![Check::new(
            "models",
            Err("models_dir or weights_dir is not set".into()),
        )];
    };
    let manifests = match ModelManifest::load_dir(&models_dir) {
        Ok(m) if m.is_empty() => {
            return vec![Check::new(
                "models",
                Err(format!("no manifests in {}", models_dir.display())),
            )];
        }
        Ok(m) => m,
        Err(e) => return vec![Check::new("models", Err(e.to_string()))],
    };
    manifests
        .iter()
        .map(|m| {
            let problems: Vec<String> = m
                .check(Path::new(weights_dir))
                .into_iter()
                .filter_map(|(path, state)| {
                    let path = path.display();
                    match state {
                        FileState::Verified => None,
                        FileState::Missing => Some(format!("{path} is missing")),
                        FileState::WrongSize { expected, actual } => {
                            Some(format!("{path} has {actual} bytes, expected {expected}"))
                        }
                        FileState::Unverified => Some(format!("{path} was never verified")),
                    }
                })
                .collect();
            let total: u64 = m.files.iter().map(|f| f.size).sum();
            let res = if problems.is_empty() {
                Ok(format!(
                    "{} ({}), {} verified",
                    m.role,
                    human_bytes(total),
                    plural(m.files.len(), "file")
                ))
            } else {
                Err(format!("{}; run scripts/setup", problems.join("; ")))
            };
            Check::new(format!("model {}", m.name), res)
        })
        .collect()
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn human_bytes(n: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    let n = n as f64;
    if n >= 1024.0 * MB {
        format!("{:.1} GiB", n / 1024.0 / MB)
    } else {
        format!("{:.0} MiB", n / MB)
    }
}
