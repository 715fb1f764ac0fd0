//! Vet latency with 50 policies loaded: the shipped defaults plus generated ones of the kinds
//! operators add (change freezes, approval for large limits, log-grep guards), over a mix of
//! requests from every kind of principal. Goal: p99 <= 50 µs.
//!
//! `cargo run -p steward-policy --example bench_vet [-- <calls>]` (default 200000 calls).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use steward_policy::{DecisionKind, PolicySet, Principal, VetRequest};
use steward_protocol::Origin;
use steward_tools::Call;

const TARGET_POLICIES: usize = 50;

fn main() -> Result<(), Box<dyn Error>> {
    let calls: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 200_000,
    };
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let dir = std::env::temp_dir().join(format!("steward-bench-vet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(&shipped)? {
        let p = entry?.path();
        if let (true, Some(name)) = (p.is_file(), p.file_name()) {
            std::fs::copy(&p, dir.join(name))?;
        }
    }
    let base = PolicySet::load_dir(&dir)?.len();
    generate(&dir, TARGET_POLICIES.saturating_sub(base))?;

    let started = Instant::now();
    let set = PolicySet::load_dir(&dir)?;
    let load = started.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "loaded {} policies ({} shipped + {} generated), {} examples checked, in {:.1} ms",
        set.len(),
        base,
        set.len() - base,
        set.examples_checked(),
        load.as_secs_f64() * 1e3
    );

    let mix = requests()?;
    let mut kinds = [0usize; 3];
    // Warm up caches and the allocator.
    for (p, c, o, t) in mix.iter().cycle().take(5_000) {
        std::hint::black_box(set.vet(&req(p, c, *o, *t)));
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(calls);
    let mut by_shape: Vec<Vec<Duration>> = vec![Vec::new(); mix.len()];
    let total = Instant::now();
    for (i, (p, c, o, t)) in mix.iter().cycle().take(calls).enumerate() {
        let r = req(p, c, *o, *t);
        let t0 = Instant::now();
        let d = set.vet(&r);
        let took = t0.elapsed();
        samples.push(took);
        if let Some(v) = by_shape.get_mut(i % mix.len()) {
            v.push(took);
        }
        kinds[match DecisionKind::of(&d) {
            DecisionKind::Allow => 0,
            DecisionKind::NeedsApproval => 1,
            DecisionKind::Deny => 2,
        }] += 1;
    }
    let wall = total.elapsed();
    samples.sort_unstable();
    let pct = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "{calls} vet() calls over {} request shapes: allow {} / needs_approval {} / deny {}",
        mix.len(),
        kinds[0],
        kinds[1],
        kinds[2]
    );
    println!(
        "latency µs: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (mean {:.1}; {:.0} calls/s on one thread)",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        wall.as_secs_f64() * 1e6 / calls as f64,
        calls as f64 / wall.as_secs_f64()
    );
    println!("per request shape, µs:  p50    p99");
    for ((p, c, o, t), mut v) in mix.iter().zip(by_shape) {
        v.sort_unstable();
        let at = |q: f64| {
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
        };
        let (med, p99) = (at(0.5), at(0.99));
        let d = set.vet(&req(p, c, *o, *t));
        println!(
            "  {med:6.1} {p99:6.1}  {p} {} origin={o:?}{} -> {:?}",
            c.tool(),
            if *t { " untrusted_text" } else { "" },
            DecisionKind::of(&d)
        );
    }
    let ok = pct(0.99) <= 50.0;
    println!("goal p99 <= 50 µs: {}", if ok { "met" } else { "NOT met" });
    Ok(())
}

type Shape = (Principal, Call, Origin, bool);

fn req<'a>(p: &'a Principal, c: &'a Call, origin: Origin, text: bool) -> VetRequest<'a> {
    VetRequest {
        principal: p,
        call: c,
        origin,
        untrusted_text: text,
        hour_utc: 14,
    }
}

/// A spread of realistic requests: every kind of principal, every effect, allowed,
/// approval-bound and denied ones.
fn requests() -> Result<Vec<Shape>, Box<dyn Error>> {
    let shapes = [
        (
            "operator:alice",
            "service_status",
            json!({"service": "rentguy"}),
            Origin::Chat,
            false,
        ),
        (
            "operator:alice",
            "service_logs",
            json!({"service": "psra", "tail": 100, "grep": "error"}),
            Origin::Chat,
            false,
        ),
        (
            "operator:local",
            "service_restart",
            json!({"service": "rentguy"}),
            Origin::Chat,
            false,
        ),
        (
            "operator:local",
            "service_deploy",
            json!({"service": "svc3", "image": "svc3:v2"}),
            Origin::Api,
            false,
        ),
        (
            "operator:local",
            "service_set_limits",
            json!({"service": "svc1", "cpus": 9.5}),
            Origin::Chat,
            false,
        ),
        (
            "operator:alice",
            "tenant_destroy",
            json!({"tenant": "acme"}),
            Origin::Chat,
            false,
        ),
        (
            "operator:alice",
            "service_rollback",
            json!({"service": "rentguy", "to": "yesterday"}),
            Origin::Chat,
            true,
        ),
        (
            "alert_rule:rentguy-unhealthy",
            "service_restart",
            json!({"service": "rentguy"}),
            Origin::Alert,
            false,
        ),
        (
            "alert_rule:rentguy-unhealthy",
            "service_restart",
            json!({"service": "psra"}),
            Origin::Alert,
            false,
        ),
        (
            "service_account:tenant-acme",
            "service_status",
            json!({"service": "acme"}),
            Origin::Api,
            false,
        ),
        (
            "service_account:tenant-acme",
            "service_logs",
            json!({"service": "globex"}),
            Origin::Api,
            false,
        ),
        (
            "webhook:n8n",
            "tenant_provision",
            json!({"subdomain": "shop", "plan": "small"}),
            Origin::Webhook,
            false,
        ),
        (
            "mcp:claude-desktop",
            "service_metrics",
            json!({"service": "wpcs"}),
            Origin::Mcp,
            false,
        ),
        (
            "mcp:claude-desktop",
            "db_restore",
            json!({"target": "acme", "backup": "acme-20261123T101500Z"}),
            Origin::Mcp,
            false,
        ),
        (
            "operator:mallory",
            "service_status",
            json!({"service": "rentguy"}),
            Origin::Chat,
            false,
        ),
        (
            "role:viewer",
            "audit_search",
            json!({"query": "restart rentguy"}),
            Origin::Api,
            false,
        ),
    ];
    shapes
        .into_iter()
        .map(|(p, tool, args, origin, text)| {
            Ok((Principal::parse(p)?, Call::parse(tool, args)?, origin, text))
        })
        .collect()
}

/// Writes `n` generated policies, three kinds in turn, each file with its own examples.
fn generate(dir: &Path, n: usize) -> Result<(), Box<dyn Error>> {
    for i in 0..n {
        let (file, text): (PathBuf, String) = match i % 3 {
            0 => (
                dir.join(format!("gen_freeze_{i}.cedar")),
                format!(
                    "// Change freeze on svc{i} at night.\n\
                     // @example deny by freeze-svc{i} {{\"principal\":\"operator:local\",\"tool\":\"service_restart\",\"args\":{{\"service\":\"svc{i}\"}},\"hour\":23}}\n\
                     // @example allow {{\"principal\":\"operator:local\",\"tool\":\"service_restart\",\"args\":{{\"service\":\"svc{i}\"}},\"hour\":10}}\n\
                     @id(\"freeze-svc{i}\")\n@reason(\"svc{i} is frozen at night\")\n\
                     forbid (principal, action in Action::\"write\", resource == Service::\"svc{i}\")\n\
                     when {{ context.hour >= 22 || context.hour < 6 }};\n"
                ),
            ),
            1 => (
                dir.join(format!("gen_limits_{i}.cedar")),
                format!(
                    "// Large limits on svc{i} need approval.\n\
                     // @example needs_approval by big-limits-svc{i} {{\"principal\":\"operator:local\",\"tool\":\"service_set_limits\",\"args\":{{\"service\":\"svc{i}\",\"cpus\":9.5}}}}\n\
                     // @example allow {{\"principal\":\"operator:local\",\"tool\":\"service_set_limits\",\"args\":{{\"service\":\"svc{i}\",\"cpus\":1.0}}}}\n\
                     @id(\"big-limits-svc{i}\")\n@approval(\"required\")\n@reason(\"more than 8 CPUs on svc{i}\")\n\
                     permit (principal, action == Action::\"service_set_limits\", resource == Service::\"svc{i}\")\n\
                     when {{ context.args has cpus && context.args.cpus.greaterThan(decimal(\"8.0\")) }};\n"
                ),
            ),
            _ => (
                dir.join(format!("gen_grep_{i}.cedar")),
                format!(
                    "// Outside agents may not grep logs for secret{i}.\n\
                     // @example deny by grep-guard-{i} {{\"principal\":\"mcp:claude-desktop\",\"tool\":\"service_logs\",\"args\":{{\"service\":\"psra\",\"grep\":\"secret{i}-key\"}},\"origin\":\"mcp\"}}\n\
                     // @example allow {{\"principal\":\"mcp:claude-desktop\",\"tool\":\"service_logs\",\"args\":{{\"service\":\"psra\",\"grep\":\"error\"}},\"origin\":\"mcp\"}}\n\
                     @id(\"grep-guard-{i}\")\n\
                     forbid (principal is McpClient, action == Action::\"service_logs\", resource)\n\
                     when {{ context.args has grep && context.args.grep like \"*secret{i}*\" }};\n"
                ),
            ),
        };
        std::fs::write(file, text)?;
    }
    Ok(())
}
