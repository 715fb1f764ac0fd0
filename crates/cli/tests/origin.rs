//! `steward origin ...` as a user runs it, with an isolated STEWARD_HOME (SQLite state store
//! under it), through the real request path: validate, vet, audit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{repo_root, stderr, stdout, unique};
use serde_json::{json, Value};

struct Home(PathBuf);

impl Home {
    fn new() -> Home {
        let dir = std::env::temp_dir().join(format!("steward-origin-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Home(dir)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(args)
            .env("STEWARD_HOME", &self.0)
            .env_remove("STEWARD_STATE_URL")
            .current_dir(repo_root())
            .output()
            .unwrap()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bike() -> Value {
    json!({"agreement": "uk-eu-tca", "shipment_date": "2026-06-01",
           "product": {"hs": "871200", "exw": 200, "fob": 210},
           "materials": [{"hs": "871491", "value": 60, "origin": "non-originating"},
                         {"hs": "871492", "value": 40, "origin": "originating",
                          "declaration": {"kind": "ltsd", "valid_from": "2026-01-01", "valid_to": "2026-07-01"}}]})
}

#[test]
fn check_goes_through_the_request_path_and_explains() {
    let h = Home::new();
    let f = h.file("bike.json", &bike().to_string());
    let out = h.run(&["origin", "check", &f, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["output"]["verdict"], "originating", "{v}");
    assert_eq!(
        v["output"]["alternatives"][0]["conditions"][0]["figure"],
        "30"
    );
    assert_eq!(v["output"]["expiring_declarations"][0]["days_left"], 30);
    assert!(v["output"]["documents"]["origin_statement"]
        .as_str()
        .unwrap()
        .contains("preferential origin"));
    // Human output by default.
    let out = h.run(&["origin", "check", &f]);
    let text = stdout(&out);
    assert!(
        text.contains("ORIGINATING") && text.contains("MaxNOM 30% <= 45% of EXW"),
        "{text}"
    );
    // Audited like any call.
    let out = h.run(&["audit", "search", "origin_check", "--json"]);
    assert!(stdout(&out).contains("origin_check"), "{}", stdout(&out));
}

#[test]
fn bad_input_exits_2_and_names_the_field() {
    let h = Home::new();
    let mut b = bike();
    b["materials"][0]["value"] = json!(500);
    let f = h.file("dear.json", &b.to_string());
    let out = h.run(&["origin", "check", &f]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("materials: the materials are worth 540"),
        "{}",
        stderr(&out)
    );
    let f = h.file("ok.json", &bike().to_string());
    let out = h.run(&["origin", "check", &f, "--agreement", "uk-mars"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        // The schema lists the agreements, so the refusal names the field and the choices.
        stderr(&out).contains("/agreement: \"uk-mars\" is not one of \"uk-eu-tca\""),
        "{}",
        stderr(&out)
    );
    let out = h.run(&["origin", "check", &f, "--date", "2026-02-30"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("shipment_date"), "{}", stderr(&out));
    let mut b = bike();
    b["product"]["hs"] = json!("8712");
    let f = h.file("short.json", &b.to_string());
    let out = h.run(&["origin", "check", &f]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/product/hs"), "{}", stderr(&out));
}

#[test]
fn stored_products_use_stored_declarations_and_compare() {
    let h = Home::new();
    let products = json!([{"id": "bike-1",
        "product": {"hs": "871200", "exw": 200, "fob": 210},
        "materials": [{"part": "frame-7", "supplier": "acme", "hs": "871491", "value": 80},
                      {"hs": "871492", "value": 20, "origin": "non-originating"}]}]);
    let pf = h.file("products.json", &products.to_string());
    let out = h.run(&["origin", "import-products", &pf]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = "supplier,part,hs,origin,kind,valid_from,valid_to,issued_on\n\
               acme,frame-7,871491,originating,ltsd,2026-01-01,2026-12-31,2026-01-01\n";
    let cf = h.file("decls.csv", csv);
    let out = h.run(&["origin", "import-declarations", &cf]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The frame's declaration is valid on 2026-06-01: NOM 20/200 = 10%.
    let sf = h.file(
        "stored.json",
        &json!({"product": "bike-1", "agreement": "uk-eu-tca", "shipment_date": "2026-06-01"})
            .to_string(),
    );
    let out = h.run(&["origin", "check", &sf, "--json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["output"]["verdict"], "originating", "{v}");
    // In 2027 it has expired: the frame counts as non-originating, 100/200 = 50% > 45%.
    let out = h.run(&["origin", "check", &sf, "--json", "--date", "2027-02-01"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["output"]["verdict"], "not-originating", "{v}");
    assert!(v["output"]["evidence_gaps"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("expired"));
    // Which agreements?
    let out = h.run(&[
        "origin",
        "compare",
        "bike-1",
        "--agreements",
        "uk-eu-tca,uk-japan-cepa",
        "--date",
        "2026-06-01",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v["output"]["qualifies_under"],
        json!(["uk-eu-tca", "uk-japan-cepa"]),
        "{v}"
    );
    // An unknown product is reported, not guessed.
    let out = h.run(&["origin", "compare", "bike-404"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    // A declaration longer than 24 months is refused with its line and column.
    let bad = h.file("bad.csv", "supplier,part,hs,origin,kind,valid_from,valid_to\nacme,frame-7,871491,originating,ltsd,2026-01-01,2028-06-01\n");
    let out = h.run(&["origin", "import-declarations", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 2, column valid_to"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn coverage_report() {
    let h = Home::new();
    let out = h.run(&["origin", "coverage", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let a = v["agreements"].as_array().unwrap();
    assert_eq!(a.len(), 3);
    for c in a {
        let total = c["rule_sets"].as_u64().unwrap();
        let sum = c["compiled"].as_u64().unwrap()
            + c["overridden"].as_u64().unwrap()
            + c["unsupported"].as_u64().unwrap();
        assert_eq!(total, sum, "{c}");
    }
    assert_eq!(a[0]["rule_sets"], 352);
    let out = h.run(&["origin", "coverage"]);
    assert!(
        stdout(&out).contains("unsupported in uk-eu-tca"),
        "{}",
        stdout(&out)
    );
    let _ = Path::new("");
}
