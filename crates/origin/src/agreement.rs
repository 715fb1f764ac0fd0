//! The agreements the engine knows, and the general provisions that differ between them
//! (tolerance, document texts).

use rust_decimal::Decimal;
use serde::Serialize;

/// An agreement id as the tools take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum AgreementId {
    #[serde(rename = "uk-eu-tca")]
    UkEuTca,
    #[serde(rename = "uk-japan-cepa")]
    UkJapanCepa,
    #[serde(rename = "uk-canada")]
    UkCanada,
}

impl AgreementId {
    pub const ALL: [AgreementId; 3] = [
        AgreementId::UkEuTca,
        AgreementId::UkJapanCepa,
        AgreementId::UkCanada,
    ];

    pub fn parse(s: &str) -> Option<AgreementId> {
        Self::ALL.into_iter().find(|a| a.id() == s)
    }

    pub fn id(self) -> &'static str {
        match self {
            AgreementId::UkEuTca => "uk-eu-tca",
            AgreementId::UkJapanCepa => "uk-japan-cepa",
            AgreementId::UkCanada => "uk-canada",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AgreementId::UkEuTca => "UK-EU Trade and Cooperation Agreement",
            AgreementId::UkJapanCepa => "UK-Japan Comprehensive Economic Partnership Agreement",
            AgreementId::UkCanada => "UK-Canada Trade Continuity Agreement",
        }
    }

    /// The partner whose origin the statement names ("European Union", "Japan", "Canada").
    pub fn partner(self) -> &'static str {
        match self {
            AgreementId::UkEuTca => "European Union",
            AgreementId::UkJapanCepa => "Japan",
            AgreementId::UkCanada => "Canada",
        }
    }

    pub(crate) fn data(self) -> &'static str {
        match self {
            AgreementId::UkEuTca => include_str!("../data/psr/uk-eu-tca.json"),
            AgreementId::UkJapanCepa => include_str!("../data/psr/uk-japan-cepa.json"),
            AgreementId::UkCanada => include_str!("../data/psr/uk-canada.json"),
        }
    }

    /// The general tolerance of the agreement for a product of `chapter`.
    ///
    /// - TCA, Art. ORIG.13: 10% of the ex-works price; for products of chapters 2 and 4 to
    ///   24 (other than processed fishery products of chapter 16, headings 1604 and 1605)
    ///   15% of the net weight of the product; chapters 50 to 63 follow Notes 6 and 7 of
    ///   Annex ORIG-1.
    /// - UK-Japan CEPA, Art. 3.6 (as EU-Japan EPA): 10% of the ex-works price or of the FOB
    ///   price for chapters 1 to 49 and 64 to 97; chapters 50 to 63 follow Notes 6 to 8 of
    ///   Annex 3-B.
    /// - UK-Canada (CETA Protocol on rules of origin, Art. 6): 10% of the transaction value
    ///   or ex-works price; chapters 50 to 63 follow Notes 6 and 7 of Annex 1.
    pub fn tolerance(self, heading: u32) -> Tolerance {
        let chapter = heading / 100;
        if (50..=63).contains(&chapter) {
            return Tolerance::TextileNotes;
        }
        let ten = Decimal::from(10);
        match self {
            AgreementId::UkEuTca => {
                let fishery = heading == 1604 || heading == 1605;
                if (chapter == 2 || (4..=24).contains(&chapter)) && !fishery {
                    Tolerance::Weight {
                        percent: Decimal::from(15),
                    }
                } else {
                    Tolerance::Value {
                        percent: ten,
                        fob_too: false,
                        transaction_value: false,
                    }
                }
            }
            AgreementId::UkJapanCepa => Tolerance::Value {
                percent: ten,
                fob_too: true,
                transaction_value: false,
            },
            AgreementId::UkCanada => Tolerance::Value {
                percent: ten,
                fob_too: false,
                transaction_value: true,
            },
        }
    }

    /// The origin statement (TCA Annex ORIG-4; Japan Annex 3-D; Canada: origin declaration
    /// of Annex 2 of the rules-of-origin protocol), with the exporter's fields left open.
    pub fn origin_statement(self, criteria: &str) -> String {
        let reference = match self {
            AgreementId::UkCanada => {
                "customs or competent governmental authority authorisation No ..."
            }
            _ => "Exporter Reference No ...",
        };
        format!(
            "(Period: from ... to ...)\n\
             The exporter of the products covered by this document ({reference}) declares \
             that, except where otherwise clearly indicated, these products are of United \
             Kingdom preferential origin.\n\
             (Origin criteria used: {criteria})\n\
             (Place and date)\n\
             (Name of the exporter)"
        )
    }
}

/// How much non-compliant non-originating material an alternative may absorb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Tolerance {
    /// Breaking materials' value up to `percent` of the ex-works price (or FOB, or the
    /// transaction value where the agreement allows).
    Value {
        percent: Decimal,
        fob_too: bool,
        transaction_value: bool,
    },
    /// Breaking materials' weight up to `percent` of the product's net weight.
    Weight { percent: Decimal },
    /// Textiles: the notes' own tolerances (per fibre weight), not modelled here.
    TextileNotes,
}
