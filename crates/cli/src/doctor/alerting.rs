//! Doctor's checks of the alert loop: Prometheus evaluates the alert rules, Alertmanager
//! routes what fires, and `steward serve` takes Alertmanager's posts. Any one of them down
//! and no alert ever reaches a rulebook, with nothing else saying so.

use std::time::Duration;

use serde_json::Value;

use super::Check;
use crate::config::{Config, Key};

/// The alerts the shipped rulebook (policies/rules/heal.toml) listens for; Prometheus must
/// have a rule for each (policies/prometheus/alerts.yml), or that ladder never runs.
const ALERTS: [&str; 2] = ["ServiceDown", "HighErrorRate"];

const TIMEOUT: Duration = Duration::from_secs(3);

/// GETs `url` and returns the body of a 2xx answer; anything else is the error to show.
async fn get(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| {
        let refused = if e.is_connect() {
            " (connection refused or unreachable)"
        } else {
            ""
        };
        format!("GET {url}: {e}{refused}")
    })?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: {status} {}", body.trim()));
    }
    Ok(body)
}

fn json(url: &str, body: &str) -> Result<Value, String> {
    serde_json::from_str(body).map_err(|e| format!("GET {url}: not JSON ({e})"))
}

pub async fn check_prometheus(cfg: &Config) -> Check {
    let res = async {
        let base = cfg.require(Key::PrometheusUrl).map_err(|e| e.to_string())?;
        let base = base.trim_end_matches('/');
        get(&format!("{base}/-/ready")).await?;
        let url = format!("{base}/api/v1/rules?type=alert");
        let rules = json(&url, &get(&url).await?)?;
        let loaded: Vec<&str> = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .filter_map(|r| r["name"].as_str())
            .collect();
        let missing: Vec<&str> = ALERTS.into_iter().filter(|a| !loaded.contains(a)).collect();
        if !missing.is_empty() {
            return Err(format!(
                "Prometheus at {base} has no alert rule {}; run scripts/setup (it installs policies/prometheus/alerts.yml)",
                missing.join(", ")
            ));
        }
        let url = format!("{base}/api/v1/targets?state=active");
        let targets = json(&url, &get(&url).await?)?;
        let targets = targets["data"]["activeTargets"].as_array().cloned();
        let total = targets.as_ref().map_or(0, Vec::len);
        let up = targets
            .into_iter()
            .flatten()
            .filter(|t| t["health"] == "up")
            .count();
        Ok(format!(
            "ready at {base}, alert rules {} loaded, {up} of {total} platform targets up",
            ALERTS.join(", ")
        ))
    };
    Check::new(
        "prometheus",
        res.await.map_err(|e| {
            if e.contains("scripts/setup") {
                e
            } else {
                format!("{e}; is Prometheus running? run scripts/setup (or set prometheus_url)")
            }
        }),
    )
}

pub async fn check_alertmanager(cfg: &Config) -> Check {
    let res = async {
        let base = cfg
            .require(Key::AlertmanagerUrl)
            .map_err(|e| e.to_string())?;
        let base = base.trim_end_matches('/');
        get(&format!("{base}/-/ready")).await?;
        let url = format!("{base}/api/v2/status");
        let status = json(&url, &get(&url).await?)?;
        let version = status["versionInfo"]["version"].as_str().unwrap_or("?");
        Ok::<_, String>(format!("Alertmanager {version} ready at {base}"))
    };
    Check::new(
        "alertmanager",
        res.await.map_err(|e| {
            format!("{e}; is Alertmanager running? run scripts/setup (or set alertmanager_url)")
        }),
    )
}

pub async fn check_serve(cfg: &Config) -> Check {
    let res = async {
        let listen = cfg.require(Key::Listen).map_err(|e| e.to_string())?;
        let url = format!("http://{listen}/readyz");
        get(&url).await.map_err(|e| {
            format!("{e}; start it with `steward serve` (scripts/demo does), or set listen")
        })?;
        Ok(format!("steward serve ready at http://{listen}"))
    };
    Check::new("serve", res.await)
}
