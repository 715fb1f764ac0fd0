//! Benchmarks: compiling all three agreements (start-up) and the verdict for a 50-material
//! bill of materials (p50/p99 latency and verdicts per second on one thread; median of
//! several runs).
//!
//! `cargo run --release -p steward-origin --example bench_verdict`
//! (or without `--release`: the dev profile builds steward-origin at opt-level 3).

use std::time::{Duration, Instant};

use serde_json::json;
use steward_origin::{evaluate, input, Engine};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), steward_origin::Error> {
    // Start-up: compile the three agreements with the overrides.
    let mut compile = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let e = Engine::load()?;
        compile.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(e);
    }
    let engine = Engine::load()?;

    // A bicycle (TCA 8712, MaxNOM) from 50 materials, one of them a sub-assembly, some with
    // declarations: a realistic explained verdict with documents.
    let mut materials = Vec::new();
    for i in 0..50 {
        let hs = [
            "871491", "871492", "871493", "871494", "871495", "871496", "401150", "731815",
        ][i % 8];
        let mut m = json!({"name": format!("part-{i}"), "hs": hs, "value": format!("{}.{:02}", 1 + i % 3, i), "weight_kg": 0.2,
                           "origin": if i % 3 == 0 { "non-originating" } else { "originating" }});
        if i % 5 == 0 {
            m["declaration"] =
                json!({"kind": "ltsd", "valid_from": "2026-01-01", "valid_to": "2026-07-01"});
        }
        if i == 7 {
            m["bom"] = json!([{"hs": "730630", "value": 1, "origin": "non-originating"}]);
        }
        materials.push(m);
    }
    let req_json = json!({"agreement": "uk-eu-tca", "shipment_date": "2026-06-01",
        "product": {"hs": "871200", "exw": 400, "fob": 420, "net_weight_kg": 14}, "materials": materials});
    let req = input::parse(&req_json)?;

    let runs = 7;
    let per_run = 20_000;
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut rates = Vec::new();
    let mut with_parse = Vec::new();
    for _ in 0..runs {
        let mut lat = Vec::with_capacity(per_run);
        let start = Instant::now();
        for _ in 0..per_run {
            let t = Instant::now();
            let v = evaluate(&engine, &req);
            lat.push(t.elapsed());
            std::hint::black_box(v);
        }
        let total = start.elapsed();
        lat.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        p50s.push(us(lat[per_run / 2]));
        p99s.push(us(lat[per_run * 99 / 100]));
        rates.push(per_run as f64 / total.as_secs_f64());
        let t = Instant::now();
        for _ in 0..2000 {
            let r = input::parse(&req_json)?;
            std::hint::black_box(evaluate(&engine, &r));
        }
        with_parse.push(t.elapsed().as_secs_f64() * 1e6 / 2000.0);
    }
    let v = evaluate(&engine, &req);
    println!("verdict: {} ({})", v.verdict.as_str(), v.reason);
    println!(
        "compile 3 agreements: median {:.1} ms (of 7)",
        median(compile)
    );
    println!(
        "verdict, 50 materials, one thread, median of {runs} runs x {per_run}: p50 {:.1} us, p99 {:.1} us, {:.0} verdicts/s",
        median(p50s),
        median(p99s),
        median(rates)
    );
    println!(
        "parse + validate + verdict: mean {:.1} us",
        median(with_parse)
    );
    Ok(())
}
