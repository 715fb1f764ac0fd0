//! Hand-worked cases: every rule type and every general provision, each answer worked out
//! from the rule text (quoted in the comment) before the engine was asked.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::sync::OnceLock;

use serde_json::{json, Value};
use steward_origin::eval::{Tri, Verdict};
use steward_origin::{check, Engine, Outcome};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::load().unwrap())
}

fn run(req: Value) -> Verdict {
    check(engine(), &req).unwrap_or_else(|e| panic!("{e}"))
}

fn req(agreement: &str, date: &str, product: Value, materials: Value) -> Value {
    json!({"agreement": agreement, "shipment_date": date, "product": product, "materials": materials})
}

fn cond(v: &Verdict, alt: usize, i: usize) -> &steward_origin::eval::CondReport {
    &v.alternatives[alt].conditions[i]
}

/// TCA 8712 (bicycles): "A maximum of 45% of the ex-works price (EXW) is made up of
/// non-originating parts (MAXNOM)". EXW 200, non-originating 90: 90/200 = 45.000%, and
/// "does not exceed" is <=, so it passes. EXW 200000, non-originating 90010: 45.005% fails.
#[test]
fn maxnom_exact_limit_is_inclusive() {
    let at = |exw: i64, nom: i64| {
        run(req(
            "uk-eu-tca",
            "2026-06-01",
            json!({"hs": "871200", "exw": exw}),
            json!([{"hs": "871491", "value": nom, "origin": "non-originating"}]),
        ))
    };
    let v = at(200, 90);
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
    assert_eq!(cond(&v, 0, 0).figure.unwrap().to_string(), "45");
    assert_eq!(cond(&v, 0, 0).headroom.unwrap().to_string(), "0");
    // Minimum EXW that still passes: 90 / 45% = 200.
    assert_eq!(v.min_exw.unwrap().to_string(), "200");
    let v = at(200_000, 90_010);
    assert_eq!(v.verdict, Outcome::NotOriginating);
    assert_eq!(cond(&v, 0, 0).figure.unwrap().to_string(), "45.005");
    assert_eq!(cond(&v, 0, 0).result, Tri::Fail);
    assert_eq!(
        v.breaking_materials.len(),
        0,
        "a cap has no breaking materials"
    );
}

/// TCA 9401-9406: "CTH" or "MaxNOM 50%". Table 940360, EXW 1000: sawn wood (4407, 520,
/// non-originating) changes heading; a non-originating furniture part (940390, 80) does not.
/// MaxNOM: 600/1000 = 60% > 50% fails. CTH fails only by the part; the TCA tolerance for a
/// chapter-94 product is 10% of EXW = 100 >= 80, so CTH passes with tolerance: originating.
/// With the part at 101 (10.1%) the tolerance is exceeded: not originating.
#[test]
fn tolerance_lifts_a_ctc_by_value() {
    let bom = |part: i64| {
        req(
            "uk-eu-tca",
            "2026-06-01",
            json!({"hs": "940360", "exw": 1000}),
            json!([{"hs": "440799", "value": 520, "origin": "non-originating"},
                   {"hs": "940390", "value": part, "origin": "non-originating"}]),
        )
    };
    let v = run(bom(80));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
    let ctc = cond(&v, 0, 0);
    assert!(ctc.by_tolerance);
    let t = v.tolerance.clone().unwrap();
    assert_eq!(
        (t.basis, t.used.to_string(), t.limit.to_string(), t.applied),
        ("value", "80".into(), "100".into(), true)
    );
    assert_eq!(v.breaking_materials[0].hs, "940390");
    assert_eq!(cond(&v, 1, 0).result, Tri::Fail, "MaxNOM 60% still fails");
    let v = run(bom(101));
    assert_eq!(v.verdict, Outcome::NotOriginating);
    assert!(!v.tolerance.unwrap().applied);
}

/// TCA 7601: "CTH and MaxNOM 50%" or "Thermal or electrolytic treatment from unalloyed
/// aluminium or waste and scrap of aluminium". Aluminium 760110, EXW 1000, with non-originating
/// scrap (7602) worth 510: CTH passes, MaxNOM 51% > 50% fails. Tolerance applies to CTC
/// only, never to a cap, so the first alternative fails; the process was not carried out
/// (processes: []), so the second fails too.
#[test]
fn tolerance_never_lifts_a_cap() {
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "760110", "exw": 1000, "processes": []}),
        json!([{"hs": "760200", "value": 510, "origin": "non-originating"}]),
    ));
    assert_eq!(v.verdict, Outcome::NotOriginating, "{}", v.reason);
    let cap = cond(&v, 0, 1);
    assert_eq!(cap.result, Tri::Fail);
    assert!(!cap.by_tolerance);
    assert!(
        v.tolerance.is_none(),
        "no CTC failed, so no tolerance was used"
    );
}

/// Weight versus value by chapter. TCA 1801-1805: "CTH". Cocoa powder 180500, EXW 100, net
/// weight 10 kg, with non-originating cocoa powder (same heading 1805) worth 12 and weighing
/// 1.2 kg. For chapters 2 and 4-24 the TCA tolerance is 15% of the net weight: 1.2 kg <= 1.5
/// kg, originating (by value it would be 12% > 10%). The same shares on a chapter-94 product
/// (TCA 9401-9406, value tolerance) fail the CTH: 12 > 10% of 100; and MaxNOM 12% <= 50%
/// passes there anyway, so the furniture case uses a 60% other material to fail MaxNOM.
#[test]
fn weight_tolerance_for_food_value_tolerance_otherwise() {
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "180500", "exw": 100, "net_weight_kg": 10}),
        json!([{"hs": "180500", "value": 12, "weight_kg": 1.2, "origin": "non-originating"}]),
    ));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
    let t = v.tolerance.unwrap();
    assert_eq!((t.basis, t.percent.to_string()), ("weight", "12".into()));
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "940360", "exw": 100, "net_weight_kg": 10}),
        json!([{"hs": "940390", "value": 12, "weight_kg": 1.2, "origin": "non-originating"},
               {"hs": "440799", "value": 48, "weight_kg": 5, "origin": "non-originating"}]),
    ));
    assert_eq!(v.verdict, Outcome::NotOriginating, "{}", v.reason);
    assert_eq!(v.tolerance.unwrap().basis, "value");
    // Without the weight of the breaking material, the weight tolerance cannot be applied.
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "180500", "exw": 100, "net_weight_kg": 10}),
        json!([{"hs": "180500", "value": 12, "origin": "non-originating"}]),
    ));
    assert_eq!(v.verdict, Outcome::Undetermined, "{}", v.reason);
}

/// Supplier declarations on the shipment date. Bicycle 871200, EXW 200: frame 871491 worth
/// 80 declared originating; wheels 871492 worth 20 non-originating. With a declaration valid
/// on 2026-06-01, NOM = 20 = 10%: originating, and the declaration ending 2026-07-15 is
/// flagged (44 days). If it expired on 2026-05-31 the frame counts as non-originating: NOM
/// 100 = 50% > 45%, not originating, with an evidence gap.
#[test]
fn expired_declaration_counts_as_non_originating() {
    let bom = |to: &str| {
        req(
            "uk-eu-tca",
            "2026-06-01",
            json!({"hs": "871200", "exw": 200}),
            json!([{"hs": "871491", "value": 80, "origin": "originating",
                    "declaration": {"kind": "ltsd", "valid_from": "2025-07-01", "valid_to": to}},
                   {"hs": "871492", "value": 20, "origin": "non-originating"}]),
        )
    };
    let v = run(bom("2026-07-15"));
    assert_eq!(v.verdict, Outcome::Originating);
    assert_eq!(v.expiring_declarations[0].days_left, 44);
    assert!(v.evidence_gaps.is_empty());
    let v = run(bom("2026-05-31"));
    assert_eq!(v.verdict, Outcome::NotOriginating);
    assert!(
        v.evidence_gaps[0].reason.contains("expired on 2026-05-31"),
        "{:?}",
        v.evidence_gaps
    );
}

/// Unknown origin means non-originating, reported as an evidence gap. Bicycle EXW 100 with
/// an unknown-origin part worth 46: 46% > 45%, not originating.
#[test]
fn unknown_origin_is_non_originating() {
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "871200", "exw": 100}),
        json!([{"hs": "871499", "value": 46, "origin": "unknown"}]),
    ));
    assert_eq!(v.verdict, Outcome::NotOriginating);
    assert_eq!(v.evidence_gaps.len(), 1);
    assert!(v.evidence_gaps[0].reason.contains("origin unknown"));
}

/// A sub-assembly that qualifies counts as 100% originating. Bicycle 871200, EXW 200: a frame
/// (871491, worth 100) made in the UK from non-originating steel tubes (730630, worth 30), and
/// non-originating wheels (871492, worth 80). The frame's own rule (TCA, heading 8714) is met
/// because the tubes change heading, so the frame is originating; the bicycle's NOM is the
/// wheels only: 80/200 = 40% <= 45%, originating. Counting the frame as non-originating
/// would give 90%.
#[test]
fn recursive_sub_assembly_that_qualifies() {
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "871200", "exw": 200}),
        json!([{"name": "frame", "hs": "871491", "value": 100, "origin": "non-originating",
                "bom": [{"hs": "730630", "value": 30, "origin": "non-originating"}]},
               {"hs": "871492", "value": 80, "origin": "non-originating"}]),
    ));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
    assert_eq!(v.sub_assemblies[0].verdict, Outcome::Originating);
    assert_eq!(cond(&v, 0, 0).figure.unwrap().to_string(), "40");
}

/// Dated rules around their end date (TCA 8507 battery cells, from the overrides file):
/// "CTH except active cathode materials", or "MaxNOM 35%", and until 31 December 2023 also
/// "CTH" or "MaxNOM 70%". Cells 850760, EXW 100, with non-originating battery parts
/// (850790, same heading, worth 65): every CTH fails (tolerance 10 < 65), MaxNOM 65% fails
/// 35% but passes 70%. So originating on 2023-12-31, not originating on 2024-01-01.
#[test]
fn dated_rules_around_their_end_date() {
    let on = |date: &str| {
        run(req(
            "uk-eu-tca",
            date,
            json!({"hs": "850760", "exw": 100, "subdivision": "Battery cells, battery modules"}),
            json!([{"hs": "850790", "value": 65, "origin": "non-originating"}]),
        ))
    };
    let v = on("2023-12-31");
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
    assert_eq!(
        v.rule_set.as_ref().unwrap().valid_to.unwrap().to_string(),
        "2023-12-31"
    );
    let v = on("2024-01-01");
    assert_eq!(v.verdict, Outcome::NotOriginating, "{}", v.reason);
    assert_eq!(v.alternatives.len(), 2);
}

/// TCA 1704 has two subdivisions ("White chocolate", "Others") with different rules. Without
/// product.subdivision the answer is undetermined, listing both; naming one picks it.
#[test]
fn subdivision_ambiguity_is_undetermined() {
    let bom = |sub: Value| {
        req(
            "uk-eu-tca",
            "2026-06-01",
            json!({"hs": "170490", "exw": 10, "net_weight_kg": 1, "subdivision": sub}),
            json!([{"hs": "170199", "value": 2, "weight_kg": 0.3, "origin": "non-originating"}]),
        )
    };
    let v = run(bom(Value::Null));
    assert_eq!(v.verdict, Outcome::Undetermined);
    assert_eq!(v.subdivisions.len(), 2, "{:?}", v.subdivisions);
    // "Others": CTH (sugar 1701 changes heading), chapter-4 materials wholly obtained (none
    // used), sugar of 1701/1702 at most 40% of the weight: 0.3/1 = 30%. Originating.
    let v = run(bom(json!("Others")));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
}

/// A wholly obtained product is originating, whatever its rule; TCA 0101-0106 "All animals
/// of chapter 1 are wholly obtained" fails for a horse that is not.
#[test]
fn wholly_obtained_products() {
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "010121", "exw": 5000, "wholly_obtained": true}),
        json!([]),
    ));
    assert_eq!(v.verdict, Outcome::Originating);
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "010121", "exw": 5000}),
        json!([]),
    ));
    assert_eq!(v.verdict, Outcome::NotOriginating);
}

/// TCA 0401-0410: "all the materials of chapter 4 used are wholly obtained, and the total
/// weight of non-originating materials of headings 1701 and 1702 does not exceed 20% of the
/// weight of the product". Yoghurt 040320, 1 kg: wholly obtained milk 0.85 kg, non-originating
/// sugar 0.15 kg (15%): originating. Sugar 0.25 kg (25%): the weight cap fails, and tolerance
/// never lifts a cap. Milk not wholly obtained (non-originating): breaks the MWO condition,
/// 0.85 kg > 15% tolerance: not originating.
#[test]
fn materials_wholly_obtained_and_max_weight() {
    let bom = |milk: &str, sugar: f64| {
        req(
            "uk-eu-tca",
            "2026-06-01",
            json!({"hs": "040320", "exw": 5, "net_weight_kg": 1}),
            json!([{"hs": "040110", "value": 2, "weight_kg": 0.85, "origin": milk, "wholly_obtained": milk == "originating"},
                   {"hs": "170199", "value": 0.5, "weight_kg": sugar, "origin": "non-originating"}]),
        )
    };
    assert_eq!(run(bom("originating", 0.15)).verdict, Outcome::Originating);
    let v = run(bom("originating", 0.25));
    assert_eq!(v.verdict, Outcome::NotOriginating);
    assert_eq!(cond(&v, 0, 1).figure.unwrap().to_string(), "25");
    let v = run(bom("non-originating", 0.15));
    assert_eq!(v.verdict, Outcome::NotOriginating);
    assert_eq!(cond(&v, 0, 0).breaking.len(), 1);
}

/// Japan 8712: "MaxNOM 45% (EXW)" or "RVC at least 60% of FOB". EXW 100, FOB 110, NOM 50:
/// MaxNOM 50% fails; RVC = (110-50)/110 = 54.5% < 60% fails. With FOB 130: RVC = 80/130 =
/// 61.54% >= 60%, originating.
#[test]
fn japan_rvc_on_fob() {
    let bom = |fob: i64| {
        req(
            "uk-japan-cepa",
            "2026-06-01",
            json!({"hs": "871200", "exw": 100, "fob": fob}),
            json!([{"hs": "871491", "value": 50, "origin": "non-originating"}]),
        )
    };
    assert_eq!(run(bom(110)).verdict, Outcome::NotOriginating);
    let v = run(bom(130));
    assert_eq!(v.verdict, Outcome::Originating);
    assert_eq!(cond(&v, 1, 0).figure.unwrap().to_string(), "61.5385");
    // Without a FOB price, RVC cannot be computed: undetermined, not a guess.
    let v = run(req(
        "uk-japan-cepa",
        "2026-06-01",
        json!({"hs": "871200", "exw": 100}),
        json!([{"hs": "871491", "value": 50, "origin": "non-originating"}]),
    ));
    assert_eq!(v.verdict, Outcome::Undetermined);
}

/// Canada 8712: "A change from any other heading, except from 8714", or "A change from
/// heading 8714, ... provided that the value of non-originating materials of heading 8714
/// does not exceed 50% of the transaction value or ex-works price". Frame 871491 worth 90,
/// EXW 200: the first fails (8714 excepted; 90 > 10% tolerance), the second: 45% <= 50%,
/// originating. With a transaction value of 170: 90/170 = 52.94% > 50%, not originating.
#[test]
fn canada_transaction_value_or_exw() {
    let bom = |tv: Value| {
        req(
            "uk-canada",
            "2026-06-01",
            json!({"hs": "871200", "exw": 200, "transaction_value": tv}),
            json!([{"hs": "871491", "value": 90, "origin": "non-originating"}]),
        )
    };
    let v = run(bom(Value::Null));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
    assert_eq!(run(bom(json!(170))).verdict, Outcome::NotOriginating);
}

/// Canada 8305: "CTH", or "A change from subheading 830590, whether or not there is also a
/// change from any other heading, provided that the value of non-originating materials of
/// subheading 830590 does not exceed 50% of the transaction value or ex-works price".
/// Staples in strips 830520, EXW 100, non-originating parts of 830590 worth 40: CTH fails
/// (same heading, 40 > 10 tolerance); the second passes (830590 is allowed, 40% <= 50%):
/// originating. Add non-originating fittings of 830510 worth 20: the rest of heading 8305 is
/// not allowed by either rule, and 20 > 10 tolerance, so not originating. With those
/// fittings worth only 5, the tolerance (5 <= 10) lifts the second rule: originating.
#[test]
fn canada_change_from_a_subheading_of_the_own_heading() {
    let bom = |extra: Option<i64>| {
        let mut m = vec![json!({"hs": "830590", "value": 40, "origin": "non-originating"})];
        if let Some(v) = extra {
            m.push(json!({"hs": "830510", "value": v, "origin": "non-originating"}));
        }
        req(
            "uk-canada",
            "2026-06-01",
            json!({"hs": "830520", "exw": 100}),
            Value::Array(m),
        )
    };
    let v = run(bom(None));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
    assert_eq!(v.alternatives[0].result, Tri::Fail);
    assert_eq!(v.alternatives[1].result, Tri::Pass);
    assert_eq!(cond(&v, 1, 1).figure.unwrap().to_string(), "40");
    let v = run(bom(Some(20)));
    assert_eq!(v.verdict, Outcome::NotOriginating, "{}", v.reason);
    let v = run(bom(Some(5)));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
}

/// Canada 0401: "A change from any other chapter, except from dairy preparations of
/// subheading 190190 containing more than 10% by dry weight of milk solids, provided that
/// all the material of chapter 4 used is wholly obtained". Cream 040150, EXW 100, with a
/// non-originating 190190 preparation worth 30: the code cannot tell whether it is such a
/// dairy preparation, so undetermined (30 > 10 tolerance either way); with a non-originating
/// 170199 sugar instead, and no chapter-4 material: originating.
#[test]
fn canada_described_dairy_exception() {
    let bom = |hs: &str| {
        req(
            "uk-canada",
            "2026-06-01",
            json!({"hs": "040150", "exw": 100}),
            json!([{"hs": hs, "value": 30, "origin": "non-originating"}]),
        )
    };
    let v = run(bom("190190"));
    assert_eq!(v.verdict, Outcome::Undetermined, "{}", v.reason);
    let v = run(bom("170199"));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
}

/// TCA 2901-2905: "CTSH", or "A chemical reaction ... is undergone", or "MaxNOM 50%".
/// Methanol 290511, EXW 100, non-originating methanol (same subheading) worth 60: CTSH fails
/// (60 > 10 tolerance), MaxNOM 60% fails; the process decides. Undeclared: undetermined.
/// Declared: originating. Declared list without it: not originating.
#[test]
fn specific_process() {
    // The code is the process text's words, hyphenated, at most 64 characters.
    let code = steward_origin::compile::process_code(
        "A chemical reaction, purification, mixing and blending, production of standard materials",
    );
    assert_eq!(
        code,
        "a-chemical-reaction-purification-mixing-and-blending-production"
    );
    let bom = |processes: Value| {
        req(
            "uk-eu-tca",
            "2026-06-01",
            json!({"hs": "290511", "exw": 100, "processes": processes}),
            json!([{"hs": "290511", "value": 60, "origin": "non-originating"}]),
        )
    };
    assert_eq!(run(bom(Value::Null)).verdict, Outcome::Undetermined);
    let v = run(bom(json!([code])));
    assert_eq!(v.verdict, Outcome::Originating, "{}", v.reason);
    assert_eq!(run(bom(json!([]))).verdict, Outcome::NotOriginating);
}

/// An originating verdict carries the documents; the supplier's declaration covers the
/// longest period allowed: 24 months from the start, minus a day.
#[test]
fn documents_when_originating() {
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "871200", "exw": 200}),
        json!([]),
    ));
    let d = v.documents.unwrap();
    assert!(d
        .origin_statement
        .contains("United Kingdom preferential origin"));
    assert_eq!(d.supplier_declaration.valid_to.to_string(), "2028-05-31");
    let bad = steward_origin::documents::Ltsd::new(
        "2026-06-01".parse().unwrap(),
        "2027-01-01".parse().unwrap(),
        "2027-06-01".parse().unwrap(),
        "871200",
        "bicycles",
        "European Union",
        "MaxNOM",
    );
    assert!(bad.unwrap_err().to_string().contains("6 months after"));
    let long = steward_origin::documents::Ltsd::new(
        "2026-06-01".parse().unwrap(),
        "2026-06-01".parse().unwrap(),
        "2028-06-01".parse().unwrap(),
        "871200",
        "bicycles",
        "European Union",
        "MaxNOM",
    );
    assert!(long.unwrap_err().to_string().contains("24 months"));
}

/// Bad input never gets a verdict; the error names the field.
#[test]
fn bad_input_names_the_field() {
    let base = || {
        req(
            "uk-eu-tca",
            "2026-06-01",
            json!({"hs": "871200", "exw": 200}),
            json!([{"hs": "871491", "value": 60, "origin": "non-originating"}]),
        )
    };
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["product"]["hs"] = json!("87120")),
            "product.hs",
        ),
        (
            Box::new(|v| v["materials"][0]["hs"] = json!("8714910000123")),
            "materials[0].hs",
        ),
        (
            Box::new(|v| v["materials"][0]["value"] = json!(-1)),
            "materials[0].value: must not be negative",
        ),
        (
            Box::new(|v| v["materials"][0]["value"] = json!(201)),
            "materials: the materials are worth 201, more than product.exw",
        ),
        (
            Box::new(|v| v["agreement"] = json!("uk-mars")),
            "agreement: unknown agreement",
        ),
        (
            Box::new(|v| v["shipment_date"] = json!("2026-13-01")),
            "shipment_date",
        ),
        (
            Box::new(|v| {
                v["materials"][0]["declaration"] =
                    json!({"valid_from": "2026-01-01", "valid_to": "2028-06-01"})
            }),
            "materials[0].declaration.valid_to",
        ),
        (
            Box::new(|v| v["materials"][0]["origin"] = json!("maybe")),
            "materials[0].origin",
        ),
        (
            Box::new(|v| v["product"]["colour"] = json!("red")),
            "product.colour: unknown field",
        ),
    ];
    for (edit, needle) in cases {
        let mut v = base();
        edit(&mut v);
        let e = check(engine(), &v).unwrap_err().to_string();
        assert!(e.starts_with(needle) || e.contains(needle), "{needle}: {e}");
    }
}

/// No product-specific rule for a code: undetermined with the reason, never a guess.
#[test]
fn no_rule_is_undetermined() {
    let v = run(req(
        "uk-eu-tca",
        "2026-06-01",
        json!({"hs": "990000", "exw": 1}),
        json!([]),
    ));
    assert_eq!(v.verdict, Outcome::Undetermined);
    assert!(
        v.reason.contains("no product-specific rule"),
        "{}",
        v.reason
    );
}
