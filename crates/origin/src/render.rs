//! Human-readable text of verdicts, comparisons and coverage (the CLI's default output).

use std::fmt::Write;

use crate::engine::Coverage;
use crate::eval::{Tri, Verdict};
use crate::Comparison;

fn mark(t: Tri) -> &'static str {
    match t {
        Tri::Pass => "pass",
        Tri::Fail => "FAIL",
        Tri::Unknown => "??  ",
    }
}

/// A verdict, explained.
pub fn verdict(v: &Verdict) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} under {} on {}: {}",
        v.product_hs,
        v.agreement,
        v.shipment_date,
        v.verdict.as_str().to_uppercase()
    );
    let _ = writeln!(s, "  why: {}", v.reason);
    if let Some(rs) = &v.rule_set {
        let sub = if rs.subdivision.is_empty() {
            String::new()
        } else {
            format!(" [{}]", rs.subdivision)
        };
        let dates = match (rs.valid_from, rs.valid_to) {
            (None, None) => String::new(),
            (f, t) => format!(
                " in force {} to {}",
                f.map(|d| d.to_string()).unwrap_or_else(|| "...".into()),
                t.map(|d| d.to_string()).unwrap_or_else(|| "...".into())
            ),
        };
        let _ = writeln!(
            s,
            "  rule set: {} ({}){sub}{dates}, {:?}",
            rs.heading, rs.range, rs.provenance
        );
        for t in &rs.text {
            let _ = writeln!(s, "    | {}", crate::compile::normalize(t));
        }
    }
    for c in &v.subdivisions {
        let _ = writeln!(s, "  subdivision: {c}");
    }
    for (i, a) in v.alternatives.iter().enumerate() {
        let until = a
            .valid_to
            .map(|d| format!(" (until {d})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  alternative {}{until}: {}",
            i + 1,
            mark(a.result).trim()
        );
        for c in &a.conditions {
            let tol = if c.by_tolerance {
                " (with tolerance)"
            } else {
                ""
            };
            let head = c
                .headroom
                .map(|h| format!(", headroom {h}"))
                .unwrap_or_default();
            let _ = writeln!(s, "    [{}] {}{tol}{head}", mark(c.result), c.summary);
            if !c.breaking.is_empty() {
                let _ = writeln!(s, "           broken by: {}", c.breaking.join(", "));
            }
            if let Some(n) = &c.note {
                let _ = writeln!(s, "           {n}");
            }
        }
        if let Some(n) = &a.note {
            let _ = writeln!(s, "    {n}");
        }
    }
    if let Some(t) = &v.tolerance {
        let _ = writeln!(
            s,
            "  tolerance ({}): {} used = {}% of a {}% allowance ({}){}",
            t.basis,
            t.used,
            t.percent,
            t.limit_percent,
            t.limit,
            if t.applied { ", applied" } else { ", exceeded" }
        );
    }
    for g in &v.evidence_gaps {
        let _ = writeln!(s, "  evidence gap: {}: {}", g.material, g.reason);
    }
    for e in &v.expiring_declarations {
        let _ = writeln!(
            s,
            "  expiring: {} declaration ends {} ({} days)",
            e.material, e.valid_to, e.days_left
        );
    }
    for sa in &v.sub_assemblies {
        let _ = writeln!(
            s,
            "  sub-assembly {}: {} ({})",
            sa.material,
            sa.verdict.as_str(),
            sa.reason
        );
    }
    if let Some(m) = v.min_exw {
        let _ = writeln!(s, "  minimum EXW that still passes: {m}");
    }
    if let Some(d) = &v.documents {
        let _ = writeln!(s, "  origin statement:");
        for l in d.origin_statement.lines() {
            let _ = writeln!(s, "    {l}");
        }
        let l = &d.supplier_declaration;
        let _ = writeln!(
            s,
            "  long-term supplier's declaration: {} to {} (issued {})",
            l.valid_from, l.valid_to, l.issued_on
        );
    }
    s
}

pub fn comparison(c: &Comparison) -> String {
    let mut s = String::new();
    let q = if c.qualifies_under.is_empty() {
        "none".to_string()
    } else {
        c.qualifies_under.join(", ")
    };
    let _ = writeln!(
        s,
        "{} on {}: qualifies under {q}",
        c.product, c.shipment_date
    );
    for v in &c.results {
        let _ = writeln!(
            s,
            "  {:<14} {:<16} {}",
            v.agreement,
            v.verdict.as_str(),
            v.reason
        );
    }
    s
}

pub fn coverage(cs: &[Coverage]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<14} {:>9} {:>9} {:>11} {:>12} {:>11}",
        "agreement", "rule sets", "compiled", "overridden", "unsupported", "structured"
    );
    for c in cs {
        let _ = writeln!(
            s,
            "{:<14} {:>9} {:>9} {:>11} {:>12} {:>10.1}%",
            c.agreement,
            c.rule_sets,
            c.compiled,
            c.overridden,
            c.unsupported,
            c.structured_percent()
        );
    }
    for c in cs {
        if c.unsupported_sets.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\nunsupported in {}:", c.agreement);
        for u in &c.unsupported_sets {
            let sub = if u.subdivision.is_empty() {
                String::new()
            } else {
                format!(" [{}]", u.subdivision.chars().take(60).collect::<String>())
            };
            let _ = writeln!(
                s,
                "  {} ({}){sub}: {}",
                u.heading,
                u.range,
                u.reason.chars().take(160).collect::<String>()
            );
        }
    }
    s
}
