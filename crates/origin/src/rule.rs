//! The structured rule grammar the compiler produces (ORIGIN.md, "Rule grammar"):
//!
//! ```text
//! RuleSet     = { hs_min, hs_max, subdivision, valid_from?, valid_to?, alternatives: [Alternative] }   // OR
//! Alternative = [Condition]                                                                      // AND
//! ```
//!
//! Two small extensions, both documented in the crate README: the classification level
//! `Any` ("production from non-originating materials of any heading"), and material sets
//! relative to the product (`SameHeading`: "non-originating materials of this heading").

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::hs::HsSet;

/// The level of a change of tariff classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// CC: 2 digits.
    Chapter,
    /// CTH: 4 digits.
    Heading,
    /// CTSH: 6 digits.
    Subheading,
    /// Materials of any heading, the product's own included: only the exceptions bind.
    Any,
}

impl Level {
    /// How many leading digits must differ; `None` for `Any`.
    pub fn digits(self) -> Option<usize> {
        match self {
            Level::Chapter => Some(2),
            Level::Heading => Some(4),
            Level::Subheading => Some(6),
            Level::Any => None,
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Level::Chapter => "CC",
            Level::Heading => "CTH",
            Level::Subheading => "CTSH",
            Level::Any => "any heading",
        }
    }
}

/// What a value cap is a percentage of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Base {
    Exw,
    Fob,
    /// Canada: "the transaction value or ex-works price of the product".
    TransactionValueOrExw,
    NetCost,
}

impl Base {
    pub fn label(self) -> &'static str {
        match self {
            Base::Exw => "EXW",
            Base::Fob => "FOB",
            Base::TransactionValueOrExw => "transaction value or EXW",
            Base::NetCost => "net cost",
        }
    }
}

/// Which materials a cap or requirement counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Materials {
    /// All non-originating materials.
    All,
    /// Non-originating materials in a set of codes (or described).
    Set(HsSet),
    /// Non-originating materials classified at the same level as the product
    /// ("materials of this heading").
    SameAs(Level),
    /// Non-originating materials classified at the same level as the product, or in a set
    /// of codes ("materials of this heading or heading 8708").
    SameAsOr(Level, HsSet),
}

impl Materials {
    pub fn label(&self) -> String {
        match self {
            Materials::All => "all non-originating materials".into(),
            Materials::Set(s) => format!("non-originating materials of {}", s.label()),
            Materials::SameAs(l) => {
                format!("non-originating materials of the product's own {}", own(*l))
            }
            Materials::SameAsOr(l, s) => format!(
                "non-originating materials of the product's own {} or of {}",
                own(*l),
                s.label()
            ),
        }
    }
}

fn own(l: Level) -> &'static str {
    match l {
        Level::Chapter => "chapter",
        Level::Heading => "heading",
        Level::Subheading | Level::Any => "subheading",
    }
}

/// What a weight cap is a share of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightOf {
    /// The product's net weight.
    Product,
    /// The weight of all materials of a set used (TCA 2402: "of the weight of materials of
    /// chapter 24 used").
    Materials(HsSet),
    /// The weight of all materials used (Canada: "the net weight of all material used in
    /// production").
    AllMaterials,
}

/// One requirement of an alternative.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Condition {
    /// The product itself is wholly obtained.
    WhollyObtained,
    /// All materials of the set used are wholly obtained.
    MaterialsWhollyObtained { of: HsSet },
    /// Every non-originating material changes classification at `level`, and none is in
    /// `except`.
    ChangeOfClassification {
        level: Level,
        #[serde(skip_serializing_if = "HsSet::is_empty")]
        except: HsSet,
    },
    /// The value of the counted non-originating materials is at most `percent` of `base`.
    MaxNom {
        percent: Decimal,
        base: Base,
        of: Materials,
    },
    /// Regional value content of at least `percent` of FOB.
    Rvc { percent: Decimal, base: Base },
    /// The weight of the counted non-originating materials is at most `percent` of `of_weight`.
    MaxWeight {
        percent: Decimal,
        of: Materials,
        of_weight: WeightOf,
    },
    /// A manufacturing process the producer must declare (`processes` in the input).
    SpecificProcess { code: String, text: String },
}

/// Conditions that all must hold, with an optional period and quota mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Alternative {
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<NaiveDate>,
    /// "within the limits of the applicable annual quota": whether quota remains cannot be
    /// known here, so a passing alternative with a quota is `undetermined`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quota: bool,
}

/// How a rule set came to be structured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    Compiled,
    Overridden,
    Unsupported,
}

/// One rule set of an agreement, structured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSet {
    pub heading: String,
    pub subdivision: String,
    pub hs_min: String,
    pub hs_max: String,
    #[serde(skip)]
    pub lo: u64,
    #[serde(skip)]
    pub hi: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<NaiveDate>,
    pub alternatives: Vec<Alternative>,
    pub provenance: Provenance,
    /// Why the rule set is unsupported, or the override's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The rule text, verbatim, each rule with its operator ("or" starts an alternative).
    pub text: Vec<String>,
}

impl RuleSet {
    pub fn covers_date(&self, d: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= d) && self.valid_to.is_none_or(|t| d <= t)
    }
}
