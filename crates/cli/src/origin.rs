//! `steward origin ...`: rules-of-origin checks through the request path (validate, vet,
//! audit), imports of products and supplier declarations into the state store, and the rule
//! compiler's coverage report.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use steward_agent::{Outcome, Request};
use steward_exec::origin::OriginStore;
use steward_origin::Engine;
use steward_tools::{SystemClock, ToolError};

use crate::call::{self, Caller};
use crate::config::Config;
use crate::wiring::open_store;

fn read_json(file: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))
}

/// Runs one origin tool down the request path and prints the outcome.
pub async fn run_tool(
    cfg: &Config,
    caller: &Caller,
    tool: &str,
    args: Value,
    as_json: bool,
) -> Result<ExitCode> {
    let fail = |e: ToolError| {
        eprintln!("steward origin: {e}");
        Ok(ExitCode::from(
            steward_agent::status::for_error("input", e.kind).0,
        ))
    };
    let (principal, origin) = match call::parse_caller(caller) {
        Ok(pc) => pc,
        Err(e) => return fail(e),
    };
    let steward = match call::steward(cfg).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let outcome = steward
        .orchestrator
        .handle(Request {
            principal,
            origin,
            intent_text: None,
            untrusted_text: caller.untrusted_text,
            tool: tool.to_string(),
            args,
            dry_run_only: false,
        })
        .await?;
    steward.close().await?;
    if let (false, Outcome::Done { done, .. }) = (as_json, &outcome) {
        match done.output.get("explanation").and_then(Value::as_str) {
            Some(text) => print!("{text}"),
            None => println!("{}", done.summary),
        }
        return Ok(ExitCode::SUCCESS);
    }
    Ok(call::render(tool, false, as_json, &outcome))
}

/// `steward origin check FILE.json`: the file holds `origin_check` arguments (an inline bill
/// of materials, or `{product: "<id>", agreement}`); `--agreement` and `--date` override.
pub async fn check(
    cfg: &Config,
    caller: &Caller,
    file: &Path,
    agreement: Option<String>,
    date: Option<String>,
    as_json: bool,
) -> Result<ExitCode> {
    let mut args = read_json(file)?;
    if !args.is_object() {
        eprintln!(
            "steward origin check: {} must hold a JSON object",
            file.display()
        );
        return Ok(ExitCode::from(2));
    }
    if let Some(a) = agreement {
        args["agreement"] = json!(a);
    }
    if let Some(d) = date {
        args["shipment_date"] = json!(d);
    }
    run_tool(cfg, caller, "origin_check", args, as_json).await
}

/// `steward origin compare PRODUCT`: PRODUCT is a stored product id or a JSON file with an
/// inline bill of materials.
pub async fn compare(
    cfg: &Config,
    caller: &Caller,
    product: &str,
    agreements: Vec<String>,
    date: Option<String>,
    as_json: bool,
) -> Result<ExitCode> {
    let mut args = if Path::new(product).is_file() {
        let mut v = read_json(Path::new(product))?;
        if let Some(o) = v.as_object_mut() {
            o.remove("agreement");
        }
        v
    } else {
        json!({"product": product})
    };
    args["agreements"] = json!(agreements);
    if let Some(d) = date {
        args["shipment_date"] = json!(d);
    }
    run_tool(cfg, caller, "origin_compare", args, as_json).await
}

async fn origin_store(cfg: &Config) -> Result<OriginStore> {
    Ok(OriginStore::new(open_store(cfg).await?))
}

/// `steward origin import-declarations FILE.csv`.
pub async fn import_declarations(cfg: &Config, file: &Path) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let decls = match steward_origin::declarations::parse_csv(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "steward origin import-declarations: {}: {e}",
                file.display()
            );
            return Ok(ExitCode::from(2));
        }
    };
    let n = origin_store(cfg).await?.put_declarations(&decls).await?;
    println!("imported {n} declarations from {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// `steward origin import-products FILE.json`: one product document or a list of them.
pub async fn import_products(cfg: &Config, file: &Path) -> Result<ExitCode> {
    let v = read_json(file)?;
    let docs: Vec<Value> = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    let mut checked = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        match steward_origin::declarations::validate_product(d) {
            Ok(id) => checked.push((id, d)),
            Err(e) => {
                eprintln!(
                    "steward origin import-products: {} product {}: {e}",
                    file.display(),
                    i + 1
                );
                return Ok(ExitCode::from(2));
            }
        }
    }
    let store = origin_store(cfg).await?;
    let now = steward_tools::Clock::now(&SystemClock).0;
    for (id, d) in &checked {
        store.put_product(id, d, now).await?;
    }
    println!(
        "imported {} products from {}",
        checked.len(),
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `steward origin coverage`: a pure local report of the rule compiler.
pub fn coverage(as_json: bool) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let engine = Engine::load().context("cannot compile the rules of origin")?;
    let took = started.elapsed();
    let cov = engine.coverage();
    if as_json {
        let out = json!({"agreements": cov, "compile_ms": took.as_secs_f64() * 1000.0});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", steward_origin::render::coverage(&cov));
        println!("\ncompiled in {:.1} ms", took.as_secs_f64() * 1000.0);
    }
    Ok(ExitCode::SUCCESS)
}
