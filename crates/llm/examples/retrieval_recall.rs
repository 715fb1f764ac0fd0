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
    for case in cases.iter().filter(|c| c.tools.is_none()) {
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
    for k in [1, 3, 5, 6, 8, 10, 12] {
        let hit = ranks.iter().filter(|&&r| r < k).count();
        println!(
            "recall@{k:<2} {:.3}",
            hit as f64 / ranks.len().max(1) as f64
        );
    }
    Ok(())
}
