//! `service_set_limits`: memory, CPUs and PIDs of the live container, changed in place
//! through Docker's update API and then proven: the container is inspected again, and when
//! it runs the kernel's cgroup figures are read through the stats API. A limit that did not
//! take is an error, never a silent success.

use bollard::models::{ContainerUpdateBody, HostConfig, RestartPolicyNameEnum};
use serde_json::{json, Value};
use steward_tools::args::ServiceSetLimitsArgs;
use steward_tools::{Done, ErrorKind, Plan, Result, ToolError};

use super::{docker_refused, target};
use crate::env::Env;

const MIB: i64 = 1024 * 1024;

/// The resource limits of a container as Docker reports them. `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Limits {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids: Option<i64>,
}

impl Limits {
    pub fn from_host_config(hc: &HostConfig) -> Self {
        let positive = |v: Option<i64>| v.filter(|v| *v > 0);
        // A CPU limit may also come as quota/period (`docker run --cpu-quota`).
        let from_quota = match (positive(hc.cpu_quota), positive(hc.cpu_period)) {
            (Some(q), Some(p)) => Some(q * 1_000_000_000 / p),
            _ => None,
        };
        Self {
            memory: positive(hc.memory),
            // -1 is "unlimited swap".
            memory_swap: positive(hc.memory_swap),
            nano_cpus: positive(hc.nano_cpus).or(from_quota),
            pids: positive(hc.pids_limit),
        }
    }

    /// `memory 256 MiB, cpus 0.5, pids 100` with `unlimited` for absent ones.
    pub fn describe(&self) -> String {
        format!(
            "memory {}, cpus {}, pids {}",
            show_memory(self.memory),
            show_cpus(self.nano_cpus),
            self.pids
                .map(|p| p.to_string())
                .unwrap_or_else(|| "unlimited".into())
        )
    }
}

fn show_memory(bytes: Option<i64>) -> String {
    match bytes {
        Some(b) if b % MIB == 0 => format!("{} MiB", b / MIB),
        Some(b) => format!("{b} bytes"),
        None => "unlimited".into(),
    }
}

fn show_cpus(nano: Option<i64>) -> String {
    nano.map(|n| format!("{}", n as f64 / 1e9))
        .unwrap_or_else(|| "unlimited".into())
}

/// Everything `service_status` shows about a container's confinement, read from its
/// `HostConfig`.
pub(super) fn host_config_json(hc: &HostConfig) -> Value {
    let l = Limits::from_host_config(hc);
    json!({
        "memory_mb": l.memory.map(|b| b as f64 / MIB as f64),
        "memory_bytes": l.memory,
        "memory_swap_bytes": l.memory_swap,
        "cpus": l.nano_cpus.map(|n| n as f64 / 1e9),
        "nano_cpus": l.nano_cpus,
        "pids": l.pids,
        "security_opt": hc.security_opt.clone().unwrap_or_default(),
        "cap_drop": hc.cap_drop.clone().unwrap_or_default(),
        "cap_add": hc.cap_add.clone().unwrap_or_default(),
        "read_only_rootfs": hc.readonly_rootfs.unwrap_or(false),
        "privileged": hc.privileged.unwrap_or(false),
        "restart_policy": hc
            .restart_policy
            .as_ref()
            .and_then(|p| p.name)
            .map(|n| n.to_string())
            .unwrap_or_else(|| RestartPolicyNameEnum::NO.to_string()),
    })
}

/// The requested limits in Docker's units; only the fields the call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted {
    memory: Option<i64>,
    nano_cpus: Option<i64>,
    pids: Option<i64>,
}

impl Wanted {
    fn from_args(args: &ServiceSetLimitsArgs) -> Result<Self> {
        if args.memory_mb.is_none() && args.cpus.is_none() && args.pids.is_none() {
            return Err(ToolError::new(
                ErrorKind::InvalidArgs,
                "service_set_limits needs at least one of memory_mb, cpus or pids",
            ));
        }
        if let Some(c) = args.cpus {
            if !c.is_finite() || !(0.01..=64.0).contains(&c) {
                return Err(ToolError::new(
                    ErrorKind::InvalidArgs,
                    format!("cpus {c} is out of range: give 0.01 to 64 cores"),
                ));
            }
        }
        Ok(Self {
            memory: args.memory_mb.map(|m| i64::from(m) * MIB),
            nano_cpus: args.cpus.map(|c| (c * 1e9).round() as i64),
            pids: args.pids.map(i64::from),
        })
    }

    /// Each named limit as `what: before -> after`, with whether it differs.
    fn changes(&self, now: &Limits) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        if let Some(m) = self.memory {
            let differs = now.memory != Some(m) || now.memory_swap != Some(m);
            out.push((
                format!(
                    "memory {} -> {} (swap {} -> {})",
                    show_memory(now.memory),
                    show_memory(Some(m)),
                    show_memory(now.memory_swap),
                    show_memory(Some(m))
                ),
                differs,
            ));
        }
        if let Some(n) = self.nano_cpus {
            out.push((
                format!(
                    "cpus {} -> {}",
                    show_cpus(now.nano_cpus),
                    show_cpus(Some(n))
                ),
                now.nano_cpus != Some(n),
            ));
        }
        if let Some(p) = self.pids {
            out.push((
                format!(
                    "pids {} -> {p}",
                    now.pids
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "unlimited".into())
                ),
                now.pids != Some(p),
            ));
        }
        out
    }

    /// What differs between these wishes and what the container reports.
    fn mismatches(&self, got: &Limits) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(m) = self.memory {
            if got.memory != Some(m) {
                out.push(format!(
                    "memory asked {}, container reports {}",
                    show_memory(Some(m)),
                    show_memory(got.memory)
                ));
            }
            if got.memory_swap != Some(m) {
                out.push(format!(
                    "memory+swap asked {}, container reports {}",
                    show_memory(Some(m)),
                    show_memory(got.memory_swap)
                ));
            }
        }
        if let Some(n) = self.nano_cpus {
            if got.nano_cpus != Some(n) {
                out.push(format!(
                    "cpus asked {}, container reports {}",
                    show_cpus(Some(n)),
                    show_cpus(got.nano_cpus)
                ));
            }
        }
        if let Some(p) = self.pids {
            if got.pids != Some(p) {
                out.push(format!(
                    "pids asked {p}, container reports {}",
                    got.pids
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "unlimited".into())
                ));
            }
        }
        out
    }
}

async fn current(env: &Env, id: &str) -> crate::Result<Limits> {
    let inspect = env
        .platform
        .docker
        .api()
        .inspect_container(id, None)
        .await?;
    Ok(Limits::from_host_config(
        &inspect.host_config.unwrap_or_default(),
    ))
}

pub(super) async fn plan(env: &Env, args: &ServiceSetLimitsArgs) -> Result<Plan> {
    let wanted = Wanted::from_args(args)?;
    let t = target::resolve(env, args.service.as_str()).await?;
    let now = current(env, &t.primary.id).await?;
    let changes = wanted.changes(&now);
    let differs = changes.iter().any(|(_, d)| *d);
    let c = &t.primary.name;
    let mut steps: Vec<String> = changes
        .iter()
        .map(|(what, d)| {
            if *d {
                format!("update container {c}: {what}")
            } else {
                format!("keep container {c}: {what} (already set)")
            }
        })
        .collect();
    if differs {
        steps.push(format!(
            "inspect {c} again and check HostConfig holds every new value"
        ));
        if t.is_up() {
            steps.push(format!(
                "read {c}'s cgroup limits (memory, pids) through the stats API"
            ));
        }
    }
    Ok(Plan {
        summary: if differs {
            format!("set limits of {} on {c}", t.name())
        } else {
            format!("limits of {} on {c} already match; nothing to do", t.name())
        },
        steps,
        changes: differs,
    })
}

pub(super) async fn run(env: &Env, args: &ServiceSetLimitsArgs) -> Result<Done> {
    let wanted = Wanted::from_args(args)?;
    let t = target::resolve(env, args.service.as_str()).await?;
    let c = t.primary.name.clone();
    let before = current(env, &t.primary.id).await?;
    let changes = wanted.changes(&before);
    let differs = changes.iter().any(|(_, d)| *d);
    let described: Vec<String> = changes.into_iter().map(|(what, _)| what).collect();

    if differs {
        let update = ContainerUpdateBody {
            memory: wanted.memory,
            // Equal to memory: the container may not swap beyond its memory limit.
            memory_swap: wanted.memory,
            nano_cpus: wanted.nano_cpus,
            pids_limit: wanted.pids,
            ..Default::default()
        };
        env.platform
            .docker
            .api()
            .update_container(&t.primary.id, update)
            .await
            .map_err(|e| docker_refused(e, format!("setting limits on container {c}")))?;
    }

    let after = current(env, &t.primary.id).await?;
    let wrong = wanted.mismatches(&after);
    if !wrong.is_empty() {
        return Err(ToolError::new(
            ErrorKind::Failed,
            format!(
                "limits on container {c} did not take ({}); the container keeps {}",
                wrong.join("; "),
                after.describe()
            ),
        ));
    }
    let mut verified = vec!["inspect"];
    if t.is_up() {
        verify_cgroup(env, &t.primary.id, &c, &wanted).await?;
        verified.push("cgroup");
    }

    Ok(Done {
        summary: if differs {
            format!(
                "limits of {} set on {c}: {}",
                t.name(),
                described.join(", ")
            )
        } else {
            format!(
                "limits of {} on {c} already {}; nothing changed",
                t.name(),
                after.describe()
            )
        },
        output: json!({
            "service": t.name(),
            "container": c,
            "before": limits_value(&before),
            "after": limits_value(&after),
            "verified_by": verified,
        }),
        changed: differs,
    })
}

fn limits_value(l: &Limits) -> Value {
    json!({
        "memory_mb": l.memory.map(|b| b as f64 / MIB as f64),
        "memory_swap_mb": l.memory_swap.map(|b| b as f64 / MIB as f64),
        "cpus": l.nano_cpus.map(|n| n as f64 / 1e9),
        "pids": l.pids,
    })
}

/// Reads the limits the kernel enforces (the cgroup's memory and pids maxima, as the stats
/// API reports them) and compares them with what was asked.
async fn verify_cgroup(env: &Env, id: &str, name: &str, wanted: &Wanted) -> Result<()> {
    let stats = super::metrics::one_shot_stats(env, id, name).await?;
    let mut wrong = Vec::new();
    if let Some(m) = wanted.memory {
        let got = stats.memory_stats.as_ref().and_then(|s| s.limit);
        if got != u64::try_from(m).ok() {
            wrong.push(format!("cgroup memory limit is {:?} bytes, asked {m}", got));
        }
    }
    if let Some(p) = wanted.pids {
        let got = stats.pids_stats.as_ref().and_then(|s| s.limit);
        if got != u64::try_from(p).ok() {
            wrong.push(format!("cgroup pids limit is {got:?}, asked {p}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(ToolError::new(
            ErrorKind::Failed,
            format!(
                "docker accepted the limits for container {name} but the kernel does not enforce them: {}",
                wrong.join("; ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_from_host_config() {
        let hc = HostConfig {
            memory: Some(256 * MIB),
            memory_swap: Some(256 * MIB),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(100),
            ..Default::default()
        };
        let l = Limits::from_host_config(&hc);
        assert_eq!(l.describe(), "memory 256 MiB, cpus 0.5, pids 100");
        let unlimited = HostConfig {
            memory: Some(0),
            memory_swap: Some(-1),
            pids_limit: Some(-1),
            ..Default::default()
        };
        assert_eq!(
            Limits::from_host_config(&unlimited).describe(),
            "memory unlimited, cpus unlimited, pids unlimited"
        );
        let quota = HostConfig {
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            ..Default::default()
        };
        assert_eq!(
            Limits::from_host_config(&quota).nano_cpus,
            Some(500_000_000)
        );
    }

    #[test]
    fn only_named_limits_are_compared() {
        let args = ServiceSetLimitsArgs {
            service: steward_tools::ident::ServiceName::parse("web").unwrap(),
            memory_mb: None,
            cpus: Some(0.5),
            pids: None,
        };
        let w = Wanted::from_args(&args).unwrap();
        let now = Limits {
            nano_cpus: Some(500_000_000),
            ..Default::default()
        };
        assert!(w.changes(&now).iter().all(|(_, d)| !d));
        assert!(w.mismatches(&now).is_empty());
        let none = ServiceSetLimitsArgs { cpus: None, ..args };
        assert_eq!(
            Wanted::from_args(&none).unwrap_err().kind,
            ErrorKind::InvalidArgs
        );
    }
}
