//! The reviewed overrides file (`data/overrides.toml`): structured rules for rule sets the
//! compiler cannot read, or reads wrongly because the data is wrong (operators missing).
//!
//! Each entry names the agreement, the code range, optionally the start of the subdivision,
//! a `why`, and the alternatives in a compact notation, one string per alternative with its
//! conditions joined by `&`:
//!
//! ```text
//! WO                                   the product is wholly obtained
//! MWO <set>                            all materials of <set> used are wholly obtained
//! CC | CTH | CTSH | ANY [except <set>] change of classification (ANY: any heading)
//! MAXNOM <pct> <EXW|FOB|TV|NETCOST> [of <set>|of same-heading|of same-subheading]
//! RVC <pct>                            regional value content, FOB
//! MAXWEIGHT <pct> of <set> [per <set>] weight share of the product (or of <set> used)
//! PROCESS "<text>"                     a specific process the producer declares
//! QUOTA                                only within an annual origin quota
//! until <YYYY-MM-DD>                   the alternative ends on that day
//! ```
//!
//! A `<set>` is comma-separated without spaces: `ch04`, `h1701`, `h7208-7217`, `sh071010`,
//! `sh170191-170199`, or a quoted description `"active cathode materials"`, optionally with
//! where such materials are classified: `"forged blanks"@h7207`. Sets joined by `+` are a
//! union: `sh230910+"dog or cat food"@sh230990`.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::compile::process_code;
use crate::error::{Error, Result};
use crate::hs::HsSet;
use crate::rule::{Alternative, Base, Condition, Level, Materials, WeightOf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "override", default)]
    overrides: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    agreement: String,
    range: String,
    #[serde(default)]
    subdivision: Option<String>,
    why: String,
    alternatives: Vec<String>,
}

/// One parsed override.
#[derive(Debug, Clone)]
pub struct Override {
    pub agreement: String,
    pub min: String,
    pub max: String,
    pub subdivision: Option<String>,
    pub why: String,
    pub alternatives: Vec<Alternative>,
}

impl Override {
    pub fn matches(&self, agreement: &str, min: &str, max: &str, subdivision: &str) -> bool {
        self.agreement == agreement
            && self.min == min
            && self.max == max
            && self
                .subdivision
                .as_deref()
                .is_none_or(|s| subdivision.trim().starts_with(s))
    }
}

/// The overrides shipped with the engine.
pub const SHIPPED: &str = include_str!("../data/overrides.toml");

/// Parses an overrides file; any malformed entry refuses the whole file.
pub fn parse(text: &str) -> Result<Vec<Override>> {
    let file: File = toml::from_str(text).map_err(|e| Error::Overrides(e.to_string()))?;
    let mut out = Vec::new();
    for (i, e) in file.overrides.into_iter().enumerate() {
        let at = |m: String| {
            Error::Overrides(format!(
                "override {} ({} {}): {m}",
                i + 1,
                e.agreement,
                e.range
            ))
        };
        if crate::AgreementId::parse(&e.agreement).is_none() {
            return Err(at("unknown agreement".into()));
        }
        let (min, max) = e
            .range
            .split_once('-')
            .filter(|(a, b)| a.len() == 10 && b.len() == 10)
            .ok_or_else(|| at("range must be <10 digits>-<10 digits>".into()))?;
        if e.why.trim().is_empty() {
            return Err(at("why is empty".into()));
        }
        let mut alternatives = Vec::new();
        for a in &e.alternatives {
            alternatives.push(alternative(a).map_err(|m| at(format!("{a:?}: {m}")))?);
        }
        if alternatives.is_empty() {
            return Err(at("no alternatives".into()));
        }
        out.push(Override {
            agreement: e.agreement.clone(),
            min: min.to_string(),
            max: max.to_string(),
            subdivision: e.subdivision.clone(),
            why: e.why.clone(),
            alternatives,
        });
    }
    Ok(out)
}

fn tokens(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unbalanced quote".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn alternative(text: &str) -> std::result::Result<Alternative, String> {
    let mut alt = Alternative::default();
    for part in text.split('&') {
        let t = tokens(part)?;
        let word = |i: usize| t.get(i).map(String::as_str);
        match word(0) {
            Some("QUOTA") => alt.quota = true,
            Some("until") => {
                alt.valid_to = Some(day(word(1))?);
            }
            Some("WO") => alt.conditions.push(Condition::WhollyObtained),
            Some("MWO") => alt
                .conditions
                .push(Condition::MaterialsWhollyObtained { of: set(word(1))? }),
            Some(l @ ("CC" | "CTH" | "CTSH" | "ANY")) => {
                let level = match l {
                    "CC" => Level::Chapter,
                    "CTH" => Level::Heading,
                    "CTSH" => Level::Subheading,
                    _ => Level::Any,
                };
                let except = match word(1) {
                    Some("except") => set(word(2))?,
                    None => HsSet::default(),
                    Some(other) => return Err(format!("unexpected {other:?}")),
                };
                alt.conditions
                    .push(Condition::ChangeOfClassification { level, except });
            }
            Some("MAXNOM") => {
                let percent = pct(word(1))?;
                let base = match word(2) {
                    Some("EXW") => Base::Exw,
                    Some("FOB") => Base::Fob,
                    Some("TV") => Base::TransactionValueOrExw,
                    Some("NETCOST") => Base::NetCost,
                    other => return Err(format!("unknown base {other:?}")),
                };
                let of = match (word(3), word(4)) {
                    (None, _) => Materials::All,
                    (Some("of"), Some("same-heading")) => Materials::SameAs(Level::Heading),
                    (Some("of"), Some("same-subheading")) => Materials::SameAs(Level::Subheading),
                    (Some("of"), s) => Materials::Set(set(s)?),
                    (other, _) => return Err(format!("unexpected {other:?}")),
                };
                alt.conditions.push(Condition::MaxNom { percent, base, of });
            }
            Some("RVC") => alt.conditions.push(Condition::Rvc {
                percent: pct(word(1))?,
                base: Base::Fob,
            }),
            Some("MAXWEIGHT") => {
                if word(2) != Some("of") {
                    return Err("MAXWEIGHT <pct> of <set>".into());
                }
                let of_weight = match (word(4), word(5)) {
                    (None, _) => WeightOf::Product,
                    (Some("per"), s) => WeightOf::Materials(set(s)?),
                    (other, _) => return Err(format!("unexpected {other:?}")),
                };
                alt.conditions.push(Condition::MaxWeight {
                    percent: pct(word(1))?,
                    of: Materials::Set(set(word(3))?),
                    of_weight,
                });
            }
            Some("PROCESS") => {
                let text = t[1..].join(" ");
                let text = text.trim_matches('"').to_string();
                if text.is_empty() {
                    return Err("PROCESS needs a text".into());
                }
                alt.conditions.push(Condition::SpecificProcess {
                    code: process_code(&text),
                    text,
                });
            }
            other => return Err(format!("unknown condition {other:?}")),
        }
    }
    Ok(alt)
}

fn pct(w: Option<&str>) -> std::result::Result<Decimal, String> {
    let w = w.ok_or("missing percentage")?;
    Decimal::from_str(w.trim_end_matches('%')).map_err(|_| format!("bad percentage {w:?}"))
}

fn day(w: Option<&str>) -> std::result::Result<NaiveDate, String> {
    let w = w.ok_or("missing date")?;
    NaiveDate::parse_from_str(w, "%Y-%m-%d").map_err(|_| format!("bad date {w:?}"))
}

fn set(w: Option<&str>) -> std::result::Result<HsSet, String> {
    let w = w.ok_or("missing set")?;
    let mut s = HsSet::default();
    // `<set>+<set>`: a union, so codes and a described member can be mixed.
    if let Some((a, b)) = w.split_once('+') {
        s = set(Some(a))?;
        s.extend(&set(Some(b))?);
        return Ok(s);
    }
    if let Some(d) = w.strip_prefix('"') {
        // "description"@<set>: described materials, classified within <set>.
        let (text, within) = match d.split_once("\"@") {
            Some((t, within)) => (t, Some(set(Some(within))?)),
            None => (d.trim_end_matches('"'), None),
        };
        s.described.push(text.to_string());
        if let Some(w) = within {
            s.described_within = w.ranges;
        }
        return Ok(s);
    }
    for item in w.split(',') {
        let (kind, rest) = if let Some(r) = item.strip_prefix("ch") {
            (2, r)
        } else if let Some(r) = item.strip_prefix("sh") {
            (6, r)
        } else if let Some(r) = item.strip_prefix('h') {
            (4, r)
        } else {
            return Err(format!("bad set item {item:?}"));
        };
        let (from, to) = rest.split_once('-').unwrap_or((rest, rest));
        if from.len() != kind || to.len() != kind || !s.push_span(from, to) {
            return Err(format!("bad set item {item:?}"));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shipped_overrides_parse() {
        let o = parse(SHIPPED).unwrap();
        assert!(!o.is_empty());
    }

    #[test]
    fn notation() {
        let a =
            alternative("CTH except h7208-7217,ch04 & MAXNOM 50 EXW & until 2023-12-31").unwrap();
        assert_eq!(a.conditions.len(), 2);
        assert_eq!(a.valid_to, NaiveDate::from_ymd_opt(2023, 12, 31));
        let a = alternative("PROCESS \"Assembly of battery packs\" & QUOTA").unwrap();
        assert!(a.quota);
        assert!(alternative("MAXNOM fifty EXW").is_err());
        assert!(alternative("CTH except h72").is_err());
        let a = alternative("ANY except sh230910+\"dog or cat food\"@sh230990").unwrap();
        let Condition::ChangeOfClassification { except, .. } = &a.conditions[0] else {
            panic!("{a:?}")
        };
        assert_eq!(except.label(), "subheading 230910, \"dog or cat food\"");
        assert_eq!(except.described_within[0].label, "subheading 230990");
        assert!(
            parse("[[override]]\nagreement='x'\nrange='1-2'\nwhy='w'\nalternatives=['CTH']")
                .is_err()
        );
    }
}
