//! Planner latency on the shipped path against a same-run baseline, with the same requests
//! and the same retrieval and grounding as `steward eval`:
//!
//! - **baseline**: prefix reuse off, so every request decodes its whole prompt (system
//!   part, tool list, inventory, request), which is what a naive single call costs;
//! - **shipped**: prefix reuse on; the first request of a fresh process restores the
//!   saved prefix state, and the rest reuse the KV cache of the previous request.
//!
//! Also model load time, peak RSS (one model and the embedder loaded), and this machine's
//! raw speed (prompt and generated tokens per second), so figures from machines of
//! different speed can be compared.
//!
//! `cargo run -p steward-llm --example plan_bench -- [cases.jsonl] [requests] [rounds]`
//! (defaults: `evals/cases/lifecycle.jsonl`, 6 requests, 3 rounds; weights and the
//! prefix state go under `.steward/`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use steward_llm::eval::{load_cases, load_inventory, request_for, Case, ToolSet};
use steward_llm::ground::Grounding;
use steward_llm::local::{LocalBackend, LocalConfig};
use steward_llm::manifest::ModelManifest;
use steward_llm::retrieval::load_hints;
use steward_llm::retrieving::{Retrieving, DEFAULT_TOP_K};
use steward_llm::{Backend, Inventory, Proposal};

const MANIFEST: &str = "models/qwen2.5-coder-1.5b-instruct.toml";
const WEIGHTS: &str = ".steward/models";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let cases_file = args
        .next()
        .unwrap_or_else(|| "evals/cases/lifecycle.jsonl".into());
    let n: usize = args.next().map_or(Ok(6), |s| s.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |s| s.parse())?;
    let cases: Vec<Case> = load_cases(Path::new(&cases_file))?
        .into_iter()
        .take(n)
        .collect();
    let inventory = load_inventory(Path::new("evals/inventory.json"))?;
    let tools = ToolSet::catalogue();
    let state_dir = std::env::temp_dir().join(format!("steward-plan-bench-{}", std::process::id()));

    // A first process's worth: decodes the prefix once and saves its state.
    let started = Instant::now();
    let first = planner(true, Some(state_dir.clone()))?;
    let load_ms = started.elapsed().as_millis();
    let (saving, decoded) = time(&first, &cases[0], &tools, &inventory).await?;
    let prompt_speed = decoded.prompt_tokens as f64 / (saving / 1000.0);
    drop(first);

    // A fresh process: restores the saved prefix, then reuses the cache request to request.
    let shipped = planner(true, Some(state_dir.clone()))?;
    let (restoring, _) = time(&shipped, &cases[0], &tools, &inventory).await?;
    let mut warm = Vec::new();
    for _ in 0..rounds {
        for case in &cases {
            warm.push(time(&shipped, case, &tools, &inventory).await?.0);
        }
    }
    // A plain-text answer: every token is a forward pass of its own.
    let mut chat = cases[0].clone();
    chat.text = "explain in detail how DNS works".into();
    let (answer_ms, answer) = time(&shipped, &chat, &tools, &inventory).await?;
    let generation_speed = answer.generated_tokens as f64 / (answer_ms / 1000.0);
    let peak_rss = peak_rss_mib();
    drop(shipped);

    let baseline = planner(false, None)?;
    let mut naive = Vec::new();
    for case in &cases {
        naive.push(time(&baseline, case, &tools, &inventory).await?.0);
    }
    let _ = std::fs::remove_dir_all(&state_dir);

    let (w, b) = (median(&mut warm), median(&mut naive));
    println!(
        "requests: {} from {cases_file}, shipped {rounds} rounds",
        cases.len()
    );
    println!(
        "machine speed: prompt {prompt_speed:.0} tokens/s ({} tokens), generation {generation_speed:.1} tokens/s ({} tokens)",
        decoded.prompt_tokens, answer.generated_tokens
    );
    println!("model load:                         {load_ms} ms");
    println!("peak RSS (model + embedder):        {peak_rss} MiB");
    println!("first request, prefix decoded+saved {saving:.0} ms");
    println!("first request, prefix state loaded  {restoring:.0} ms");
    println!(
        "shipped   median {w:.0} ms  p95 {:.0} ms  ({} requests)",
        percentile(&warm, 95),
        warm.len()
    );
    println!(
        "baseline  median {b:.0} ms  p95 {:.0} ms  ({} requests)",
        percentile(&naive, 95),
        naive.len()
    );
    println!("ratio shipped/baseline {:.3}", w / b);
    Ok(())
}

/// The eval's stack (grounding over retrieval over the local model), with prefix reuse on
/// or off.
fn planner(
    prefix_reuse: bool,
    cache_dir: Option<PathBuf>,
) -> Result<Arc<dyn Backend>, Box<dyn std::error::Error>> {
    let mut cfg = LocalConfig::new(
        ModelManifest::load(Path::new(MANIFEST))?,
        PathBuf::from(WEIGHTS),
    );
    cfg.prefix_reuse = prefix_reuse;
    cfg.cache_dir = cache_dir;
    let local = Arc::new(LocalBackend::load(cfg)?);
    let hints = load_hints(&std::fs::read_to_string("prompts/tool_hints.toml")?)?;
    let retrieving = Retrieving::load(
        local,
        &Path::new(WEIGHTS).join("all-minilm-l6-v2"),
        hints,
        DEFAULT_TOP_K,
    )?;
    Ok(Arc::new(Grounding { inner: retrieving }))
}

/// Milliseconds to a grounded proposal for `case`, and the proposal.
async fn time(
    planner: &Arc<dyn Backend>,
    case: &Case,
    tools: &ToolSet,
    inventory: &Inventory,
) -> Result<(f64, Proposal), Box<dyn std::error::Error>> {
    let req = request_for(case, tools, inventory);
    let started = Instant::now();
    let proposal = planner.propose(&req).await?;
    Ok((started.elapsed().as_secs_f64() * 1000.0, proposal))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    percentile(xs, 50)
}

/// Nearest-rank percentile (`pct` of 100) of sorted `xs`.
fn percentile(xs: &[f64], pct: usize) -> f64 {
    let rank = (xs.len() * pct).div_ceil(100).clamp(1, xs.len());
    xs[rank - 1]
}

/// The process's peak resident set (`VmHWM`), in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
