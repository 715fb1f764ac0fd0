//! Benchmark: container create+start through bollard against `docker run -d` of the same
//! image, alternating in one run so both see the same machine state.
//!
//! Run: `cargo run -p steward-exec --example bench_container_start [runs]`
//! (the dev profile already optimizes dependencies; see the workspace Cargo.toml)
//! (needs the Docker Engine and the steward-demo:v1 image that scripts/setup builds).

use std::collections::HashMap;
use std::process::Command;
use std::time::Instant;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use steward_exec::docker::DockerClient;

const IMAGE: &str = "steward-demo:v1";
const LABEL: &str = "steward.test";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(15);
    let docker = DockerClient::connect().await?;
    let api = docker.api();
    let run_id = format!("bench{}", std::process::id());
    let mut bollard_ms = Vec::new();
    let mut cli_ms = Vec::new();
    for i in 0..runs {
        let name = format!("{run_id}-bollard-{i}");
        let started = Instant::now();
        let body = ContainerCreateBody {
            image: Some(IMAGE.into()),
            labels: Some(HashMap::from([(LABEL.to_string(), run_id.clone())])),
            ..Default::default()
        };
        api.create_container(
            Some(CreateContainerOptionsBuilder::new().name(&name).build()),
            body,
        )
        .await?;
        api.start_container(&name, None).await?;
        bollard_ms.push(started.elapsed().as_secs_f64() * 1000.0);

        let name = format!("{run_id}-cli-{i}");
        let started = Instant::now();
        let status = Command::new("docker")
            .args(["run", "-d", "-q", "--name", &name, "--label"])
            .arg(format!("{LABEL}={run_id}"))
            .arg(IMAGE)
            .stdout(std::process::Stdio::null())
            .status()?;
        cli_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        if !status.success() {
            return Err(format!("docker run failed: {status}").into());
        }
    }
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    for i in 0..runs {
        for kind in ["bollard", "cli"] {
            let _ = api
                .remove_container(&format!("{run_id}-{kind}-{i}"), Some(remove.clone()))
                .await;
        }
    }
    let b = median(&mut bollard_ms);
    let c = median(&mut cli_ms);
    println!("runs: {runs}");
    println!("bollard create+start  median {b:.1} ms");
    println!("docker run -d         median {c:.1} ms");
    println!("ratio bollard/cli     {:.2}", b / c);
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
