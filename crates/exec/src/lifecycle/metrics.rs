//! `service_metrics`: CPU, memory, network and PIDs of the live container from Docker's
//! stats API.
//!
//! Two one-shot samples `window` apart (default 1s, at most 60s): CPU % is the container's
//! share of the host's CPU time between them, scaled to cores the way `docker stats` shows
//! it (100% = one core), and network rates are the byte deltas over the measured interval.
//! Memory and PIDs come from the second sample.

use std::time::{Duration, Instant};

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;
use serde_json::json;
use steward_tools::args::ServiceMetricsArgs;
use steward_tools::{when, Done, ErrorKind, Plan, Result, ToolError};

use super::read_only;
use super::target;
use crate::env::Env;
use crate::Error;

pub(super) const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
pub(super) const MAX_WINDOW: Duration = Duration::from_secs(60);

fn window(args: &ServiceMetricsArgs) -> Result<Duration> {
    let Some(text) = &args.window else {
        return Ok(DEFAULT_WINDOW);
    };
    let ms = when::duration_ms(text).ok_or_else(|| {
        ToolError::new(
            ErrorKind::InvalidArgs,
            format!("window {text:?} is not a duration: use e.g. 1s, 5s or 1m (at most 60s)"),
        )
    })?;
    let w = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    if w < Duration::from_secs(1) || w > MAX_WINDOW {
        return Err(ToolError::new(
            ErrorKind::InvalidArgs,
            format!("window {text:?} is out of range: give 1s to 60s"),
        ));
    }
    Ok(w)
}

pub(super) async fn plan(env: &Env, args: &ServiceMetricsArgs) -> Result<Plan> {
    let w = window(args)?;
    let t = target::resolve(env, args.service.as_str()).await?;
    Ok(read_only(
        format!("metrics of {} over {}s", t.name(), w.as_secs()),
        vec![
            format!(
                "read one stats sample of container {} (release {})",
                t.primary.name, t.primary.release
            ),
            format!("wait {}s and read a second sample", w.as_secs()),
            "compute CPU %, memory, network rates and PIDs from the two".into(),
        ],
    ))
}

async fn sample(env: &Env, id: &str, name: &str) -> Result<(ContainerStatsResponse, Instant)> {
    Ok((one_shot_stats(env, id, name).await?, Instant::now()))
}

/// One stats reading of a container from the Docker stats API (no streaming).
pub(super) async fn one_shot_stats(
    env: &Env,
    id: &str,
    name: &str,
) -> Result<ContainerStatsResponse> {
    let opts = StatsOptionsBuilder::new()
        .stream(false)
        .one_shot(true)
        .build();
    let stats = env
        .platform
        .docker
        .api()
        .stats(id, Some(opts))
        .next()
        .await
        .ok_or_else(|| {
            ToolError::new(
                ErrorKind::Failed,
                format!("docker returned no stats for container {name}"),
            )
        })?
        .map_err(Error::from)?;
    Ok(stats)
}

fn cpu_total(s: &ContainerStatsResponse) -> u64 {
    s.cpu_stats
        .as_ref()
        .and_then(|c| c.cpu_usage.as_ref())
        .and_then(|u| u.total_usage)
        .unwrap_or(0)
}

fn system_total(s: &ContainerStatsResponse) -> u64 {
    s.cpu_stats
        .as_ref()
        .and_then(|c| c.system_cpu_usage)
        .unwrap_or(0)
}

fn online_cpus(s: &ContainerStatsResponse) -> u64 {
    let c = s.cpu_stats.as_ref();
    c.and_then(|c| c.online_cpus)
        .map(u64::from)
        .filter(|n| *n > 0)
        .or_else(|| {
            c.and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|p| p.len() as u64)
        })
        .unwrap_or(1)
}

/// Received and sent bytes over all interfaces.
fn network(s: &ContainerStatsResponse) -> (u64, u64) {
    s.networks
        .as_ref()
        .map(|nets| {
            nets.values().fold((0, 0), |(rx, tx), n| {
                (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
            })
        })
        .unwrap_or((0, 0))
}

/// Memory in use as `docker stats` counts it: usage minus the inactive page cache.
fn memory_used(s: &ContainerStatsResponse) -> Option<u64> {
    let m = s.memory_stats.as_ref()?;
    let usage = m.usage?;
    let cache = m.stats.as_ref().and_then(|st| {
        st.get("total_inactive_file")
            .or_else(|| st.get("inactive_file"))
            .copied()
    });
    Some(match cache {
        Some(c) if c < usage => usage - c,
        _ => usage,
    })
}

pub(super) async fn run(env: &Env, args: &ServiceMetricsArgs) -> Result<Done> {
    let w = window(args)?;
    let t = target::resolve(env, args.service.as_str()).await?;
    let c = t.primary.name.clone();
    if !t.is_up() {
        return Ok(Done {
            summary: format!(
                "{} is not running (container {c} is {}); no metrics",
                t.name(),
                t.primary.state
            ),
            output: json!({
                "service": t.name(),
                "container": c,
                "running": false,
                "state": t.primary.state,
            }),
            changed: false,
        });
    }
    let (a, at_a) = sample(env, &t.primary.id, &c).await?;
    tokio::time::sleep(w).await;
    let (b, at_b) = sample(env, &t.primary.id, &c).await?;
    let elapsed = at_b.duration_since(at_a).as_secs_f64().max(0.001);

    let cpu_delta = cpu_total(&b).saturating_sub(cpu_total(&a)) as f64;
    let sys_delta = system_total(&b).saturating_sub(system_total(&a)) as f64;
    let cpus = online_cpus(&b);
    let cpu_percent = if sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus as f64 * 100.0
    } else {
        0.0
    };
    let (rx_a, tx_a) = network(&a);
    let (rx_b, tx_b) = network(&b);
    let mem_used = memory_used(&b);
    let mem_limit = b.memory_stats.as_ref().and_then(|m| m.limit);
    let mem_percent = match (mem_used, mem_limit) {
        (Some(u), Some(l)) if l > 0 => Some(u as f64 / l as f64 * 100.0),
        _ => None,
    };
    let pids = b.pids_stats.as_ref().and_then(|p| p.current);
    let pids_limit = b
        .pids_stats
        .as_ref()
        .and_then(|p| p.limit)
        .filter(|l| *l > 0 && *l < u64::from(u32::MAX));
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    let mib = |b: u64| round2(b as f64 / 1_048_576.0);

    Ok(Done {
        summary: format!(
            "{} ({c}) over {:.1}s: CPU {:.1}%, memory {} / {} MiB, net rx {} B/s tx {} B/s, {} pids",
            t.name(),
            elapsed,
            cpu_percent,
            mem_used.map(mib).map(|m| m.to_string()).unwrap_or_else(|| "?".into()),
            mem_limit.map(mib).map(|m| m.to_string()).unwrap_or_else(|| "?".into()),
            ((rx_b.saturating_sub(rx_a)) as f64 / elapsed).round(),
            ((tx_b.saturating_sub(tx_a)) as f64 / elapsed).round(),
            pids.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
        ),
        output: json!({
            "service": t.name(),
            "container": c,
            "release": t.primary.release,
            "running": true,
            "window_secs": round2(elapsed),
            "cpu_percent": round2(cpu_percent),
            "online_cpus": cpus,
            "memory": {
                "used_bytes": mem_used,
                "limit_bytes": mem_limit,
                "percent": mem_percent.map(round2),
            },
            "network": {
                "rx_bytes": rx_b,
                "tx_bytes": tx_b,
                "rx_bytes_per_sec": round2(rx_b.saturating_sub(rx_a) as f64 / elapsed),
                "tx_bytes_per_sec": round2(tx_b.saturating_sub(tx_a) as f64 / elapsed),
            },
            "pids": {
                "current": pids,
                "limit": pids_limit,
            },
        }),
        changed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_tools::ident::ServiceName;

    fn args(w: Option<&str>) -> ServiceMetricsArgs {
        ServiceMetricsArgs {
            service: ServiceName::parse("web").unwrap(),
            window: w.map(String::from),
        }
    }

    #[test]
    fn window_is_bounded() {
        assert_eq!(window(&args(None)).unwrap(), Duration::from_secs(1));
        assert_eq!(window(&args(Some("5s"))).unwrap(), Duration::from_secs(5));
        assert_eq!(window(&args(Some("1m"))).unwrap(), Duration::from_secs(60));
        for bad in ["61s", "2m", "0s", "soon", ""] {
            let e = window(&args(Some(bad))).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgs, "{bad}");
        }
    }
}
