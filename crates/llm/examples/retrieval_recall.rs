//! Recall@k of tool retrieval over the eval cases: for each case that expects a tool other
//! than `respond`, is that tool among the k best? Also the embedding latency.
//! `cargo run -p steward-llm --example retrieval_recall -- [cases dir] [embedder dir]`

use std::path::PathBuf;
use std::time::Instant;

use steward_llm::eval::{load_cases, ToolSet};
use steward_llm::retrieval::{load_hints, Embedder, ToolIndex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let cases = PathBuf::from(args.next().unwrap_or_else(|| "evals/cases".into()));
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| ".steward/models/all-minilm-l6-v2".into()),
    );
    let t = Instant::now();
    let embedder = Embedder::load(&dir)?;
    println!("embedder load {} ms", t.elapsed().as_millis());
    let hints = load_hints(&std::fs::read_to_string("prompts/tool_hints.toml")?)?;
    let tools = ToolSet::catalogue();
    let t = Instant::now();
    let index = ToolIndex::build(&embedder, &tools.defs, &hints)?;
    println!(
        "index of {} tools {} ms",
        tools.defs.len(),
        t.elapsed().as_millis()
    );
    let cases = load_cases(&cases)?;
    let mut ranks = Vec::new();
    let mut times = Vec::new();
    let mut top_scores: Vec<(f32, bool)> = Vec::new();
    // Rule-drafting cases offer no catalogue tool to retrieve.
    for case in cases
        .iter()
        .filter(|c| c.tools.is_none() && c.rule.is_none())
    {
        let best = index.rank(&embedder, &case.text)?[0].1;
        top_scores.push((best, case.category == "irrelevant"));
        let Some(want) = case
            .expect
            .iter()
            .map(|e| e.tool.as_str())
            .find(|t| *t != "respond")
        else {
            continue;
        };
        let t = Instant::now();
        let ranked = index.rank(&embedder, &case.text)?;
        times.push(t.elapsed().as_micros());
        let rank = ranked
            .iter()
            .position(|(n, _)| n == want)
            .unwrap_or(usize::MAX);
        if rank >= 6 {
            println!("rank {rank:>2} {want:<22} {:?}", case.text);
        }
        ranks.push(rank);
    }
    times.sort_unstable();
    println!(
        "{} cases; query embedding p50 {} µs",
        ranks.len(),
        times.get(times.len() / 2).copied().unwrap_or(0)
    );
    // How well the best tool's similarity separates irrelevant requests from the rest.
    for threshold in [0.15f32, 0.2, 0.25, 0.3, 0.35] {
        let irrelevant_below = top_scores
            .iter()
            .filter(|(s, irr)| *irr && *s < threshold)
            .count();
        let relevant_below = top_scores
            .iter()
            .filter(|(s, irr)| !*irr && *s < threshold)
            .count();
        println!(
            "best score < {threshold}: {irrelevant_below} of {} irrelevant, {relevant_below} of {} others",
            top_scores.iter().filter(|(_, i)| *i).count(),
            top_scores.iter().filter(|(_, i)| !*i).count()
        );
    }
    for k in [1, 3, 5, 6, 8, 10, 12] {
        let hit = ranks.iter().filter(|&&r| r < k).count();
        println!(
            "recall@{k:<2} {:.3}",
            hit as f64 / ranks.len().max(1) as f64
        );
    }
    Ok(())
}
