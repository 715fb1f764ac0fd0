//! The `origin_check` input (ORIGIN.md, "Input"), parsed and validated with errors that
//! name the field: `product.hs`, `materials[2].value`, `materials[0].bom[1].declaration.valid_to`.
//!
//! Numbers may be JSON numbers or decimal strings; they become exact decimals from their
//! shortest decimal text, so `0.1` is exactly one tenth.

use std::str::FromStr;

use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::agreement::AgreementId;
use crate::error::{Error, Result};
use crate::hs::HsCode;

/// Deepest sub-assembly nesting accepted.
pub const MAX_DEPTH: usize = 8;
/// Most materials accepted in one bill (all levels together).
pub const MAX_MATERIALS: usize = 10_000;

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub agreement: AgreementId,
    pub shipment_date: NaiveDate,
    pub product: Product,
    pub materials: Vec<Material>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub hs: HsCode,
    pub exw: Decimal,
    pub fob: Option<Decimal>,
    pub transaction_value: Option<Decimal>,
    pub net_cost: Option<Decimal>,
    pub net_weight_kg: Option<Decimal>,
    pub wholly_obtained: bool,
    pub subdivision: Option<String>,
    /// Specific processes carried out (codes as the rule explanation gives them); `None`
    /// when the producer did not say.
    pub processes: Option<Vec<String>>,
    pub description: Option<String>,
}

/// Declared origin of a material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Originating,
    NonOriginating,
    Unknown,
}

/// Kind of supplier's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclarationKind {
    /// Long-term supplier's declaration (at most 24 months).
    Ltsd,
    /// Single-shipment supplier's declaration.
    Sd,
    /// Any other evidence (an origin statement, a certificate).
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Declaration {
    pub kind: DeclarationKind,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
}

impl Declaration {
    pub fn covers(&self, d: NaiveDate) -> bool {
        self.valid_from <= d && d <= self.valid_to
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Material {
    pub name: Option<String>,
    pub part: Option<String>,
    pub hs: HsCode,
    pub value: Decimal,
    pub weight_kg: Option<Decimal>,
    pub origin: Origin,
    pub wholly_obtained: Option<bool>,
    pub declaration: Option<Declaration>,
    pub bom: Option<Vec<Material>>,
    pub processes: Option<Vec<String>>,
    pub subdivision: Option<String>,
}

/// Parses a request from JSON text (the fuzz target's entry point).
pub fn parse_str(text: &str) -> Result<Request> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid("request", format!("not valid JSON: {e}")))?;
    parse(&v)
}

/// Parses and validates a full inline request.
pub fn parse(v: &Value) -> Result<Request> {
    let o = object(v, "request")?;
    known(
        o,
        "",
        &["agreement", "shipment_date", "product", "materials"],
    )?;
    let agreement = agreement(o.get("agreement"))?;
    let shipment_date = date(req(o, "", "shipment_date")?, "shipment_date")?;
    let (product, materials) = parse_bom(o)?;
    Ok(Request {
        agreement,
        shipment_date,
        product,
        materials,
    })
}

/// The agreement field: present, a string, and known.
pub fn agreement(v: Option<&Value>) -> Result<AgreementId> {
    let s = v
        .ok_or_else(|| Error::invalid("agreement", "is required"))?
        .as_str()
        .ok_or_else(|| Error::invalid("agreement", "must be a string"))?;
    AgreementId::parse(s).ok_or_else(|| Error::UnknownAgreement(s.to_string()))
}

/// `product` and `materials` of an object (an inline request or a stored product).
pub fn parse_bom(o: &Map<String, Value>) -> Result<(Product, Vec<Material>)> {
    let product = product(req(o, "", "product")?, "product")?;
    let mut count = 0;
    let materials = match o.get("materials") {
        None | Some(Value::Null) => vec![],
        Some(m) => materials(m, "materials", 0, &mut count)?,
    };
    check_total(&materials, product.exw, "materials", "product.exw")?;
    Ok((product, materials))
}

fn check_total(ms: &[Material], limit: Decimal, field: &str, of: &str) -> Result<()> {
    let total = ms
        .iter()
        .try_fold(Decimal::ZERO, |acc, m| acc.checked_add(m.value))
        .ok_or_else(|| Error::invalid(field, "the values are too large to add up"))?;
    if total > limit {
        return Err(Error::invalid(
            field,
            format!("the materials are worth {total}, more than {of} ({limit})"),
        ));
    }
    Ok(())
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Error::invalid(field, "must be a JSON object"))
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn known(o: &Map<String, Value>, prefix: &str, names: &[&str]) -> Result<()> {
    for k in o.keys() {
        if !names.contains(&k.as_str()) {
            return Err(Error::invalid(
                join(prefix, k),
                format!("unknown field; expected one of {}", names.join(", ")),
            ));
        }
    }
    Ok(())
}

fn req<'a>(o: &'a Map<String, Value>, prefix: &str, name: &str) -> Result<&'a Value> {
    match o.get(name) {
        None | Some(Value::Null) => Err(Error::invalid(join(prefix, name), "is required")),
        Some(v) => Ok(v),
    }
}

fn opt<'a>(o: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    o.get(name).filter(|v| !v.is_null())
}

/// A commodity code of 6 to 10 digits.
pub fn hs(v: &Value, field: &str) -> Result<HsCode> {
    let s = v
        .as_str()
        .ok_or_else(|| Error::invalid(field, "must be a string of 6 to 10 digits"))?;
    HsCode::parse(s).ok_or_else(|| {
        Error::invalid(
            field,
            format!("{s:?} is not a commodity code: use 6 to 10 digits, no dots"),
        )
    })
}

/// A non-negative exact decimal from a JSON number or a decimal string.
pub fn amount(v: &Value, field: &str) -> Result<Decimal> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return Err(Error::invalid(field, "must be a number")),
    };
    let d = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| Error::invalid(field, format!("{text:?} is not a decimal number")))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(Error::invalid(
            field,
            format!("must not be negative (got {d})"),
        ));
    }
    if d > Decimal::from(1_000_000_000_000_000i64) {
        return Err(Error::invalid(field, "is too large"));
    }
    Ok(d.normalize())
}

/// A date as YYYY-MM-DD.
pub fn date(v: &Value, field: &str) -> Result<NaiveDate> {
    let s = v
        .as_str()
        .ok_or_else(|| Error::invalid(field, "must be a date string YYYY-MM-DD"))?;
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Error::invalid(field, format!("{s:?} is not a date (use YYYY-MM-DD)")))
}

fn boolean(v: &Value, field: &str) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| Error::invalid(field, "must be true or false"))
}

fn text(v: &Value, field: &str) -> Result<String> {
    let s = v
        .as_str()
        .ok_or_else(|| Error::invalid(field, "must be a string"))?;
    if s.len() > 500 {
        return Err(Error::invalid(field, "is longer than 500 characters"));
    }
    Ok(s.to_string())
}

fn processes(v: &Value, field: &str) -> Result<Vec<String>> {
    let a = v
        .as_array()
        .ok_or_else(|| Error::invalid(field, "must be a list of process codes"))?;
    a.iter()
        .enumerate()
        .map(|(i, p)| text(p, &format!("{field}[{i}]")))
        .collect()
}

fn product(v: &Value, field: &str) -> Result<Product> {
    let o = object(v, field)?;
    known(
        o,
        field,
        &[
            "hs",
            "exw",
            "fob",
            "transaction_value",
            "net_cost",
            "net_weight_kg",
            "wholly_obtained",
            "subdivision",
            "processes",
            "description",
        ],
    )?;
    let f = |n: &str| join(field, n);
    let exw = amount(req(o, field, "exw")?, &f("exw"))?;
    if exw.is_zero() {
        return Err(Error::invalid(f("exw"), "must be greater than zero"));
    }
    let optional = |n: &str| opt(o, n).map(|v| amount(v, &f(n))).transpose();
    Ok(Product {
        hs: hs(req(o, field, "hs")?, &f("hs"))?,
        exw,
        fob: optional("fob")?,
        transaction_value: optional("transaction_value")?,
        net_cost: optional("net_cost")?,
        net_weight_kg: optional("net_weight_kg")?,
        wholly_obtained: opt(o, "wholly_obtained")
            .map(|v| boolean(v, &f("wholly_obtained")))
            .transpose()?
            .unwrap_or(false),
        subdivision: opt(o, "subdivision")
            .map(|v| text(v, &f("subdivision")))
            .transpose()?,
        processes: opt(o, "processes")
            .map(|v| processes(v, &f("processes")))
            .transpose()?,
        description: opt(o, "description")
            .map(|v| text(v, &f("description")))
            .transpose()?,
    })
}

fn materials(v: &Value, field: &str, depth: usize, count: &mut usize) -> Result<Vec<Material>> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(
            field,
            format!("sub-assemblies nest deeper than {MAX_DEPTH} levels"),
        ));
    }
    let a = v
        .as_array()
        .ok_or_else(|| Error::invalid(field, "must be a list of materials"))?;
    let mut out = Vec::with_capacity(a.len());
    for (i, m) in a.iter().enumerate() {
        *count += 1;
        if *count > MAX_MATERIALS {
            return Err(Error::invalid(
                field,
                format!("more than {MAX_MATERIALS} materials"),
            ));
        }
        out.push(material(m, &format!("{field}[{i}]"), depth, count)?);
    }
    Ok(out)
}

fn material(v: &Value, field: &str, depth: usize, count: &mut usize) -> Result<Material> {
    let o = object(v, field)?;
    known(
        o,
        field,
        &[
            "name",
            "part",
            "supplier",
            "hs",
            "value",
            "weight_kg",
            "origin",
            "wholly_obtained",
            "declaration",
            "bom",
            "processes",
            "subdivision",
        ],
    )?;
    let f = |n: &str| join(field, n);
    let origin = match opt(o, "origin") {
        None => Origin::Unknown,
        Some(v) => match v.as_str() {
            Some("originating") => Origin::Originating,
            Some("non-originating") => Origin::NonOriginating,
            Some("unknown") => Origin::Unknown,
            _ => {
                return Err(Error::invalid(
                    f("origin"),
                    "must be \"originating\", \"non-originating\" or \"unknown\"",
                ))
            }
        },
    };
    let value = amount(req(o, field, "value")?, &f("value"))?;
    let bom = match opt(o, "bom") {
        None => None,
        Some(b) => {
            let ms = materials(b, &f("bom"), depth + 1, count)?;
            check_total(&ms, value, &f("bom"), &f("value"))?;
            Some(ms)
        }
    };
    let supplier = opt(o, "supplier")
        .map(|v| text(v, &f("supplier")))
        .transpose()?;
    Ok(Material {
        name: opt(o, "name").map(|v| text(v, &f("name"))).transpose()?,
        part: opt(o, "part").map(|v| text(v, &f("part"))).transpose()?,
        hs: hs(req(o, field, "hs")?, &f("hs"))?,
        value,
        weight_kg: opt(o, "weight_kg")
            .map(|v| amount(v, &f("weight_kg")))
            .transpose()?,
        origin,
        wholly_obtained: opt(o, "wholly_obtained")
            .map(|v| boolean(v, &f("wholly_obtained")))
            .transpose()?,
        declaration: opt(o, "declaration")
            .map(|v| declaration(v, &f("declaration"), supplier.clone()))
            .transpose()?,
        bom,
        processes: opt(o, "processes")
            .map(|v| processes(v, &f("processes")))
            .transpose()?,
        subdivision: opt(o, "subdivision")
            .map(|v| text(v, &f("subdivision")))
            .transpose()?,
    })
}

/// Parses a declaration kind: `ltsd`, `sd` or `other`.
pub fn kind(s: &str) -> Option<DeclarationKind> {
    match s {
        "ltsd" => Some(DeclarationKind::Ltsd),
        "sd" => Some(DeclarationKind::Sd),
        "other" => Some(DeclarationKind::Other),
        _ => None,
    }
}

fn declaration(v: &Value, field: &str, supplier: Option<String>) -> Result<Declaration> {
    let o = object(v, field)?;
    known(o, field, &["kind", "valid_from", "valid_to", "issued_on"])?;
    let f = |n: &str| join(field, n);
    let k = match opt(o, "kind") {
        None => DeclarationKind::Ltsd,
        Some(v) => v
            .as_str()
            .and_then(kind)
            .ok_or_else(|| Error::invalid(f("kind"), "must be \"ltsd\", \"sd\" or \"other\""))?,
    };
    let from = date(req(o, field, "valid_from")?, &f("valid_from"))?;
    let to = date(req(o, field, "valid_to")?, &f("valid_to"))?;
    let issued = opt(o, "issued_on")
        .map(|v| date(v, &f("issued_on")))
        .transpose()?;
    validate_period(k, from, to, issued, field)?;
    Ok(Declaration {
        kind: k,
        valid_from: from,
        valid_to: to,
        supplier,
    })
}

/// The validity rules of a supplier's declaration: the period runs forward; a long-term
/// declaration covers at most 24 months, and its start lies between 12 months before and
/// 6 months after its issue (Reg. (EU) 2015/2447, Art. 62).
pub fn validate_period(
    kind: DeclarationKind,
    from: NaiveDate,
    to: NaiveDate,
    issued: Option<NaiveDate>,
    field: &str,
) -> Result<()> {
    let f = |n: &str| join(field, n);
    if to < from {
        return Err(Error::invalid(
            f("valid_to"),
            format!("{to} is before valid_from {from}"),
        ));
    }
    if kind == DeclarationKind::Ltsd {
        let limit = from
            .checked_add_months(Months::new(24))
            .and_then(|d| d.pred_opt())
            .ok_or_else(|| Error::invalid(f("valid_from"), "is out of range"))?;
        if to > limit {
            return Err(Error::invalid(
                f("valid_to"),
                format!("a long-term supplier's declaration covers at most 24 months: from {from} it may run to {limit}, not {to}"),
            ));
        }
        if let Some(issued) = issued {
            let earliest = issued.checked_sub_months(Months::new(12));
            let latest = issued.checked_add_months(Months::new(6));
            if earliest.is_some_and(|e| from < e) || latest.is_some_and(|l| from > l) {
                return Err(Error::invalid(
                    f("valid_from"),
                    format!("must lie between 12 months before and 6 months after the issue date {issued}"),
                ));
            }
        }
    }
    Ok(())
}
