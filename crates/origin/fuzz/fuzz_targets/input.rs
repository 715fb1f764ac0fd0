//! Fuzz target for the `origin_check` input parser (and the evaluator behind it):
//! `cargo fuzz run input` from `crates/origin`. CI runs the same body over a few thousand
//! deterministic inputs in `tests/properties.rs`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use steward_origin::{input, Engine};

static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(engine) = ENGINE.get_or_init(|| Engine::load().ok()) else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(req) = input::parse_str(text) {
            let _ = steward_origin::evaluate(engine, &req);
        }
    }
});
