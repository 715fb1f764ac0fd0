//! Plans a few requests with a local model and prints each call with its latency:
//! `cargo run -p steward-llm --example plan_smoke -- [model manifest] [weights dir]`.

use std::path::PathBuf;
use std::time::Instant;

use steward_llm::eval::ToolSet;
use steward_llm::local::{LocalBackend, LocalConfig};
use steward_llm::manifest::ModelManifest;
use steward_llm::{Backend, Inventory, InventoryItem, PlanRequest, Turn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let manifest = args
        .next()
        .unwrap_or_else(|| "models/qwen2.5-coder-1.5b-instruct.toml".into());
    let weights = args.next().unwrap_or_else(|| ".steward/models".into());
    let mut cfg = LocalConfig::new(
        ModelManifest::load(manifest.as_ref())?,
        PathBuf::from(weights),
    );
    cfg.cache_dir = Some(PathBuf::from(".steward/cache/kv"));
    let t = Instant::now();
    let backend = LocalBackend::load(cfg)?;
    println!("load {} ms", t.elapsed().as_millis());
    let inventory = Inventory {
        services: ["rentguy", "psra", "n8n", "vps-manager"]
            .iter()
            .map(|n| InventoryItem {
                name: n.to_string(),
                kind: "platform".into(),
                description: String::new(),
                image: String::new(),
            })
            .chain(std::iter::once(InventoryItem {
                name: "acme-research".into(),
                kind: "tenant".into(),
                description: "Fresco instance of Acme Research".into(),
                image: String::new(),
            }))
            .collect(),
    };
    let tools = ToolSet::catalogue().with_respond().defs;
    for text in [
        "rollback RentGuy to yesterday's state",
        "restart psra pls",
        "show me the last 50 lines of n8n logs with error",
        "back up the fresco instance of acme research",
        "what's the capital of France?",
        "cap psra at 512mb memory",
    ] {
        let req = PlanRequest {
            turns: vec![Turn::User { text: text.into() }],
            tools: tools.clone(),
            inventory: inventory.clone(),
            ..Default::default()
        };
        let t = Instant::now();
        let p = backend.propose(&req).await?;
        println!(
            "{:>6} ms  conf {:.2}  prompt {:>4}  gen {:>3}  {text:?} -> {} {}",
            t.elapsed().as_millis(),
            p.confidence,
            p.prompt_tokens,
            p.generated_tokens,
            p.call.name,
            p.call.arguments
        );
    }
    Ok(())
}
