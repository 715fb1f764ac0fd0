//! The rules-of-origin engine (see `crates/origin/README.md` and the project's ORIGIN.md).
//! Pure: no I/O besides the agreement rule data embedded at build time.
//!
//! - [`Engine::load`] compiles the three agreements' rule prose (with the reviewed
//!   overrides) into the structured grammar of [`rule`].
//! - [`check`] validates an `origin_check` request and returns an explained [`Verdict`].
//! - [`compare`] answers "under which agreements does this product qualify?".
//! - [`declarations`] imports supplier declarations and fills stored products from them.

pub mod agreement;
pub mod compile;
pub mod declarations;
pub mod documents;
pub mod engine;
mod error;
pub mod eval;
pub mod hs;
pub mod input;
pub mod overrides;
pub mod render;
pub mod rule;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;

pub use agreement::AgreementId;
pub use engine::{Coverage, Engine};
pub use error::{Error, Result};
pub use eval::{evaluate, Outcome, Verdict};
pub use input::Request;

/// Validates an inline request (ORIGIN.md "Input") and evaluates it.
pub fn check(engine: &Engine, request: &Value) -> Result<Verdict> {
    let req = input::parse(request)?;
    Ok(evaluate(engine, &req))
}

/// Evaluates a stored product (`{id, product, materials}`) under `agreement` on `date`,
/// with its materials' origin taken from the stored declarations.
pub fn check_stored(
    engine: &Engine,
    stored: &Value,
    declarations: &[declarations::StoredDeclaration],
    agreement: AgreementId,
    date: NaiveDate,
) -> Result<Verdict> {
    let filled = declarations::apply(stored, declarations, date);
    let o = filled
        .as_object()
        .ok_or_else(|| Error::invalid("product", "the stored product is not an object"))?;
    let (product, materials) = input::parse_bom(o)?;
    let req = Request {
        agreement,
        shipment_date: date,
        product,
        materials,
    };
    Ok(evaluate(engine, &req))
}

/// The answer of `origin_compare`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub product: String,
    pub shipment_date: NaiveDate,
    /// The agreements under which the product originates.
    pub qualifies_under: Vec<&'static str>,
    pub results: Vec<Verdict>,
}

/// Evaluates one bill of materials under several agreements.
pub fn compare(
    product: &str,
    date: NaiveDate,
    mut evaluate_one: impl FnMut(AgreementId) -> Result<Verdict>,
    agreements: &[AgreementId],
) -> Result<Comparison> {
    let mut results = Vec::new();
    for a in agreements {
        results.push(evaluate_one(*a)?);
    }
    Ok(Comparison {
        product: product.to_string(),
        shipment_date: date,
        qualifies_under: results
            .iter()
            .filter(|v| v.verdict == Outcome::Originating)
            .map(|v| v.agreement)
            .collect(),
        results,
    })
}

/// Parses a list of agreement ids; an empty list means all of them.
pub fn agreements(ids: &[String], field: &str) -> Result<Vec<AgreementId>> {
    if ids.is_empty() {
        return Ok(AgreementId::ALL.to_vec());
    }
    ids.iter()
        .enumerate()
        .map(|(i, s)| {
            AgreementId::parse(s).ok_or_else(|| {
                Error::invalid(
                    format!("{field}[{i}]"),
                    format!("unknown agreement {s:?}; known: uk-eu-tca, uk-japan-cepa, uk-canada"),
                )
            })
        })
        .collect()
}
