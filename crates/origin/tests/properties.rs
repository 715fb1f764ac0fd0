//! Properties: adding a non-originating material never turns `not-originating` into
//! `originating` under a MaxNOM-only rule; and the input parser never panics on any bytes
//! (the body of the fuzz target, run here over a few thousand random and mutated inputs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::json;
use steward_origin::{check, input, Engine, Outcome};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::load().unwrap())
}

fn material(hs: &str, value: u32, origin: &str) -> serde_json::Value {
    json!({"hs": hs, "value": format!("{}.{:02}", value / 100, value % 100), "origin": origin})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// TCA 8712 is "MaxNOM 45%" and nothing else (no CTC, so no tolerance).
    #[test]
    fn adding_non_originating_material_never_helps(
        mats in proptest::collection::vec((0u32..3_000, any::<bool>()), 0..20),
        extra in 0u32..3_000,
    ) {
        let exw = 100_000u32; // cents: 1000.00, more than 20 materials can add up to
        let mut materials: Vec<_> = mats
            .iter()
            .map(|(v, orig)| material("871491", *v, if *orig { "originating" } else { "non-originating" }))
            .collect();
        let product = json!({"hs": "871200", "exw": format!("{}.00", exw / 100)});
        let before = check(engine(), &json!({"agreement": "uk-eu-tca", "shipment_date": "2026-06-01",
            "product": product, "materials": materials})).unwrap();
        materials.push(material("871492", extra, "non-originating"));
        let after = check(engine(), &json!({"agreement": "uk-eu-tca", "shipment_date": "2026-06-01",
            "product": product, "materials": materials})).unwrap();
        if before.verdict == Outcome::NotOriginating {
            prop_assert_eq!(after.verdict, Outcome::NotOriginating);
        }
        if after.verdict == Outcome::Originating {
            prop_assert_eq!(before.verdict, Outcome::Originating);
        }
    }
}

/// The fuzz target's body: parse, and on success evaluate; never panic.
fn fuzz_body(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(req) = input::parse_str(text) {
            let _ = steward_origin::evaluate(engine(), &req);
        }
    }
}

#[test]
fn the_input_parser_survives_random_and_mutated_bytes() {
    let seed = br#"{"agreement":"uk-eu-tca","shipment_date":"2026-06-01","product":{"hs":"871200","exw":200,"fob":210,"net_weight_kg":14},"materials":[{"hs":"871491","value":60,"weight_kg":2.1,"origin":"originating","declaration":{"kind":"ltsd","valid_from":"2026-01-01","valid_to":"2026-12-31"},"bom":[{"hs":"730630","value":10}]}]}"#;
    fuzz_body(seed);
    // A small deterministic generator (xorshift), so CI runs the same inputs every time.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"{}[]\":,-.0123456789eE aehnorstuvyz\\";
    for i in 0..4000 {
        let mut data = seed.to_vec();
        if i % 4 == 0 {
            data = (0..(next() % 300)).map(|_| next() as u8).collect();
        } else {
            for _ in 0..(1 + next() % 6) {
                let at = (next() as usize) % data.len().max(1);
                match next() % 3 {
                    0 => data[at] = alphabet[(next() as usize) % alphabet.len()],
                    1 => {
                        data.remove(at);
                    }
                    _ => data.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                }
            }
        }
        fuzz_body(&data);
    }
    // Deep nesting is refused with a field error, not a stack overflow.
    let mut deep = json!([{"hs": "730630", "value": 1}]);
    for _ in 0..20 {
        deep = json!([{"hs": "871491", "value": 1, "bom": deep}]);
    }
    let req = json!({"agreement": "uk-eu-tca", "shipment_date": "2026-06-01",
        "product": {"hs": "871200", "exw": 200}, "materials": deep});
    let e = check(engine(), &req).unwrap_err().to_string();
    assert!(e.contains("nest deeper"), "{e}");
}
