//! Documents that follow from an originating verdict: the text of an origin statement, and
//! the data of a long-term supplier's declaration (Implementing Regulation (EU) 2015/2447,
//! Art. 62 and Annex 22-16), with its validity rules enforced.

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::error::Result;
use crate::eval::Verdict;
use crate::input::{validate_period, DeclarationKind, Request};
use crate::rule::Condition;

#[derive(Debug, Clone, Serialize)]
pub struct Documents {
    pub origin_statement: String,
    pub supplier_declaration: Ltsd,
}

/// Long-term supplier's declaration data (Annex 22-16). Empty strings are for the supplier
/// to fill in.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ltsd {
    pub issued_on: NaiveDate,
    pub valid_from: NaiveDate,
    pub valid_to: NaiveDate,
    pub commodity_code: String,
    pub description: String,
    pub originating_in: String,
    pub preferential_trade_with: String,
    pub origin_criteria: String,
    pub declaration_text: String,
    pub supplier: String,
    pub customer: String,
}

impl Ltsd {
    /// Validates the period: at most 24 months from the start; the start between 12 months
    /// before and 6 months after the issue date.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issued_on: NaiveDate,
        valid_from: NaiveDate,
        valid_to: NaiveDate,
        commodity_code: &str,
        description: &str,
        partner: &str,
        origin_criteria: &str,
    ) -> Result<Ltsd> {
        validate_period(
            DeclarationKind::Ltsd,
            valid_from,
            valid_to,
            Some(issued_on),
            "supplier_declaration",
        )?;
        let declaration_text = format!(
            "I, the undersigned, declare that the goods described in this document \
             ({description}, commodity code {commodity_code}), which are regularly supplied \
             to the customer named, originate in the United Kingdom and satisfy the rules of \
             origin governing preferential trade with the {partner}. This declaration is \
             valid for all shipments of these products dispatched from {valid_from} to \
             {valid_to}. I undertake to inform the customer immediately if this declaration \
             is no longer valid."
        );
        Ok(Ltsd {
            issued_on,
            valid_from,
            valid_to,
            commodity_code: commodity_code.to_string(),
            description: description.to_string(),
            originating_in: "United Kingdom".into(),
            preferential_trade_with: partner.to_string(),
            origin_criteria: origin_criteria.to_string(),
            declaration_text,
            supplier: String::new(),
            customer: String::new(),
        })
    }
}

/// The longest period a declaration starting on `from` may cover.
pub fn max_valid_to(from: NaiveDate) -> Option<NaiveDate> {
    from.checked_add_months(Months::new(24))?.pred_opt()
}

/// The origin criteria of the passing alternative, in the agreements' words: "wholly
/// obtained" or "product-specific rule".
fn criteria(v: &Verdict) -> String {
    if v.reason == "the product is wholly obtained" {
        return "wholly obtained".into();
    }
    let passing = v
        .alternatives
        .iter()
        .find(|a| a.result == crate::eval::Tri::Pass);
    let rule = passing
        .map(|a| {
            a.conditions
                .iter()
                .map(|c| match &c.condition {
                    Condition::ChangeOfClassification { level, .. } => level.short().to_string(),
                    Condition::MaxNom { .. } => "MaxNOM".to_string(),
                    Condition::Rvc { .. } => "RVC".to_string(),
                    Condition::MaxWeight { .. } => "MaxWeight".to_string(),
                    Condition::MaterialsWhollyObtained { .. } => {
                        "materials wholly obtained".to_string()
                    }
                    Condition::WhollyObtained => "wholly obtained".to_string(),
                    Condition::SpecificProcess { .. } => "specific process".to_string(),
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .unwrap_or_default();
    let tol = if v.tolerance.as_ref().is_some_and(|t| t.applied) {
        ", with tolerance"
    } else {
        ""
    };
    format!("product-specific rule ({rule}{tol})")
}

/// Documents for an originating verdict: declaration issued on the shipment date, covering
/// the longest period allowed from that day.
pub fn for_verdict(req: &Request, v: &Verdict) -> Documents {
    let crit = criteria(v);
    let issued = req.shipment_date;
    let to = max_valid_to(issued).unwrap_or(issued);
    let description = req
        .product
        .description
        .clone()
        .unwrap_or_else(|| format!("goods of commodity code {}", req.product.hs));
    let partner = req.agreement.partner();
    let ltsd = Ltsd::new(
        issued,
        issued,
        to,
        req.product.hs.as_str(),
        &description,
        partner,
        &crit,
    )
    .unwrap_or_else(|_| Ltsd {
        issued_on: issued,
        valid_from: issued,
        valid_to: issued,
        commodity_code: req.product.hs.to_string(),
        description: description.clone(),
        originating_in: "United Kingdom".into(),
        preferential_trade_with: partner.into(),
        origin_criteria: crit.clone(),
        declaration_text: String::new(),
        supplier: String::new(),
        customer: String::new(),
    });
    Documents {
        origin_statement: req.agreement.origin_statement(&crit),
        supplier_declaration: ltsd,
    }
}
