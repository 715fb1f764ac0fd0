//! Supplier declarations and stored products: the CSV import, and filling a stored
//! product's materials from the declarations valid on a shipment date.
//!
//! CSV columns (a header row with these names, in any order; `issued_on` optional):
//!
//! | column | meaning |
//! |---|---|
//! | `supplier` | who declared |
//! | `part` | the part (material) id the stored products' materials refer to |
//! | `hs` | the part's commodity code, 6 to 10 digits |
//! | `origin` | `originating` or `non-originating` |
//! | `kind` | `ltsd` (long-term, at most 24 months), `sd` (one shipment) or `other` |
//! | `valid_from`, `valid_to` | the period, YYYY-MM-DD |
//! | `issued_on` | the issue date; for an LTSD the start must lie 12 months before to 6 after it |

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::hs::HsCode;
use crate::input::{self, validate_period, DeclarationKind};

/// One stored supplier declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDeclaration {
    pub supplier: String,
    pub part: String,
    pub hs: String,
    /// `originating` or `non-originating`.
    pub origin: String,
    pub kind: String,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_on: Option<NaiveDate>,
}

const COLUMNS: [&str; 8] = [
    "supplier",
    "part",
    "hs",
    "origin",
    "kind",
    "valid_from",
    "valid_to",
    "issued_on",
];

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

/// Parses the declarations CSV; the first bad cell refuses the file with its line and column.
pub fn parse_csv(text: &str) -> Result<Vec<StoredDeclaration>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((_, header)) = lines.next() else {
        return Err(Error::Csv {
            line: 1,
            column: "header".into(),
            message: format!("empty file; expected a header row: {}", COLUMNS.join(",")),
        });
    };
    let header = split_csv(header);
    for h in &header {
        if !COLUMNS.contains(&h.as_str()) {
            return Err(Error::Csv {
                line: 1,
                column: h.clone(),
                message: format!("unknown column; expected {}", COLUMNS.join(",")),
            });
        }
    }
    for c in &COLUMNS[..7] {
        if !header.iter().any(|h| h == c) {
            return Err(Error::Csv {
                line: 1,
                column: (*c).into(),
                message: "missing column".into(),
            });
        }
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        let line_no = n + 1;
        let cells = split_csv(line);
        if cells.len() != header.len() {
            return Err(Error::Csv {
                line: line_no,
                column: "row".into(),
                message: format!("{} cells, the header has {}", cells.len(), header.len()),
            });
        }
        let get = |c: &str| {
            header
                .iter()
                .position(|h| h == c)
                .map(|i| cells[i].as_str())
                .unwrap_or("")
        };
        let err = |c: &str, m: String| Error::Csv {
            line: line_no,
            column: c.into(),
            message: m,
        };
        let need = |c: &str| -> Result<String> {
            let v = get(c);
            if v.is_empty() {
                Err(err(c, "is empty".into()))
            } else {
                Ok(v.to_string())
            }
        };
        let day = |c: &str| -> Result<NaiveDate> {
            let v = get(c);
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|_| err(c, format!("{v:?} is not a date (use YYYY-MM-DD)")))
        };
        let hs = need("hs")?;
        if HsCode::parse(&hs).is_none() {
            return Err(err(
                "hs",
                format!("{hs:?} is not a commodity code of 6 to 10 digits"),
            ));
        }
        let origin = need("origin")?;
        if origin != "originating" && origin != "non-originating" {
            return Err(err(
                "origin",
                "must be originating or non-originating".into(),
            ));
        }
        let kind_s = need("kind")?;
        let kind =
            input::kind(&kind_s).ok_or_else(|| err("kind", "must be ltsd, sd or other".into()))?;
        let from = day("valid_from")?;
        let to = day("valid_to")?;
        let issued = if get("issued_on").is_empty() {
            None
        } else {
            Some(day("issued_on")?)
        };
        validate_period(kind, from, to, issued, "").map_err(|e| match e {
            Error::Invalid { field, message } => err(&field, message),
            other => other,
        })?;
        out.push(StoredDeclaration {
            supplier: need("supplier")?,
            part: need("part")?,
            hs,
            origin,
            kind: kind_s,
            valid_from: from,
            valid_to: to,
            issued_on: issued,
        });
    }
    Ok(out)
}

/// Fills the origin and declaration of every material that names a `part` and gives no
/// `origin` of its own, from the declarations: the one valid on `date`, else the latest one
/// (whose period then shows as an evidence gap). Parts without declarations stay unknown.
pub fn apply(stored: &Value, decls: &[StoredDeclaration], date: NaiveDate) -> Value {
    let mut v = stored.clone();
    if let Some(ms) = v.get_mut("materials").and_then(Value::as_array_mut) {
        fill(ms, decls, date);
    }
    v
}

fn fill(ms: &mut [Value], decls: &[StoredDeclaration], date: NaiveDate) {
    for m in ms {
        let Some(o) = m.as_object_mut() else { continue };
        if let Some(b) = o.get_mut("bom").and_then(Value::as_array_mut) {
            fill(b, decls, date);
        }
        if o.get("origin").is_some_and(|v| !v.is_null()) {
            continue;
        }
        let Some(part) = o.get("part").and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        let supplier = o
            .get("supplier")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut candidates: Vec<&StoredDeclaration> = decls
            .iter()
            .filter(|d| d.part == part && supplier.as_ref().is_none_or(|s| *s == d.supplier))
            .collect();
        candidates.sort_by_key(|d| d.valid_to);
        let chosen = candidates
            .iter()
            .rev()
            .find(|d| d.valid_from <= date && date <= d.valid_to)
            .or(candidates.last());
        if let Some(d) = chosen {
            put(o, d);
        }
    }
}

fn put(o: &mut Map<String, Value>, d: &StoredDeclaration) {
    o.insert("origin".into(), json!(d.origin));
    if d.origin == "originating" {
        o.insert(
            "declaration".into(),
            json!({"kind": d.kind, "valid_from": d.valid_from.to_string(), "valid_to": d.valid_to.to_string()}),
        );
    }
    if !o.contains_key("supplier") {
        o.insert("supplier".into(), json!(d.supplier));
    }
}

/// Validates a stored product document `{id, product, materials}` and returns its id.
pub fn validate_product(v: &Value) -> Result<String> {
    let o = v
        .as_object()
        .ok_or_else(|| Error::invalid("product", "must be a JSON object"))?;
    for k in o.keys() {
        if !["id", "product", "materials"].contains(&k.as_str()) {
            return Err(Error::invalid(
                k.clone(),
                "unknown field; expected id, product, materials",
            ));
        }
    }
    let id = o
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid("id", "is required (a product id string)"))?;
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(Error::invalid(
            "id",
            "use 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    input::parse_bom(o)?;
    let _ = DeclarationKind::Ltsd;
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_rows_and_errors() {
        let ok = "supplier,part,hs,origin,kind,valid_from,valid_to,issued_on\n\
                  acme,frame-1,871491,originating,ltsd,2026-01-01,2026-12-31,2026-01-01\n";
        let d = parse_csv(ok).unwrap();
        assert_eq!(d[0].part, "frame-1");
        let long = "supplier,part,hs,origin,kind,valid_from,valid_to\n\
                    acme,frame-1,871491,originating,ltsd,2026-01-01,2028-01-01\n";
        let e = parse_csv(long).unwrap_err().to_string();
        assert!(
            e.contains("line 2, column valid_to") && e.contains("24 months"),
            "{e}"
        );
        let early = "supplier,part,hs,origin,kind,valid_from,valid_to,issued_on\n\
                    acme,frame-1,871491,originating,ltsd,2025-01-01,2025-12-31,2026-03-01\n";
        let e = parse_csv(early).unwrap_err().to_string();
        assert!(
            e.contains("column valid_from") && e.contains("12 months before"),
            "{e}"
        );
        let bad = "supplier,part,hs,origin,kind,valid_from,valid_to\nacme,x,8714,originating,ltsd,2026-01-01,2026-02-01\n";
        assert!(parse_csv(bad)
            .unwrap_err()
            .to_string()
            .contains("column hs"));
    }

    #[test]
    fn apply_picks_the_declaration_in_force() {
        let decls = parse_csv(
            "supplier,part,hs,origin,kind,valid_from,valid_to\n\
             acme,p1,871491,originating,ltsd,2025-01-01,2025-12-31\n\
             acme,p1,871491,originating,ltsd,2026-01-01,2026-12-31\n",
        )
        .unwrap();
        let stored = json!({"materials": [{"part": "p1", "hs": "871491", "value": 1}, {"part": "p2", "hs": "871492", "value": 1}]});
        let day = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let v = apply(&stored, &decls, day);
        assert_eq!(v["materials"][0]["declaration"]["valid_to"], "2026-12-31");
        assert!(v["materials"][1].get("origin").is_none());
        let later = apply(
            &stored,
            &decls,
            NaiveDate::from_ymd_opt(2027, 6, 1).unwrap(),
        );
        assert_eq!(
            later["materials"][0]["declaration"]["valid_to"],
            "2026-12-31"
        );
    }
}
