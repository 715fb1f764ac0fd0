//! The evaluator, in the order ORIGIN.md gives: pick the rule set; work out each material's
//! status (declarations on the shipment date, sub-assemblies recursively); wholly obtained
//! products; each alternative's conditions; tolerance on change-of-classification and
//! wholly-obtained-material conditions only; exact decimals with `<=` at the limit.

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

use crate::agreement::{AgreementId, Tolerance};
use crate::documents::{self, Documents};
use crate::engine::Engine;
use crate::hs::{HsCode, Member};
use crate::input::{Material, Origin, Product, Request};
use crate::rule::{Base, Condition, Level, Materials, Provenance, RuleSet, WeightOf};

/// Declarations that end within this many days of the shipment are flagged.
pub const EXPIRY_WARNING_DAYS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Originating,
    NotOriginating,
    Undetermined,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Originating => "originating",
            Outcome::NotOriginating => "not-originating",
            Outcome::Undetermined => "undetermined",
        }
    }
}

/// Three-valued result of a condition or an alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tri {
    Pass,
    Fail,
    Unknown,
}

/// The full, explained answer.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub verdict: Outcome,
    pub agreement: &'static str,
    pub shipment_date: NaiveDate,
    pub product_hs: String,
    /// One line: why this verdict.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<RuleSetInfo>,
    /// When the subdivision is ambiguous: the ones to choose from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subdivisions: Vec<String>,
    pub alternatives: Vec<AltReport>,
    pub breaking_materials: Vec<Breaking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<ToleranceUse>,
    pub evidence_gaps: Vec<Gap>,
    pub expiring_declarations: Vec<Expiring>,
    /// The lowest ex-works price at which a MaxNOM alternative (all its other conditions
    /// passing) would still pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_exw: Option<Decimal>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sub_assemblies: Vec<SubAssembly>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documents: Option<Documents>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleSetInfo {
    pub heading: String,
    pub subdivision: String,
    pub range: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<NaiveDate>,
    pub provenance: Provenance,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The rule text, verbatim.
    pub text: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AltReport {
    pub result: Tri,
    pub conditions: Vec<CondReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<NaiveDate>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub quota: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<ToleranceUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CondReport {
    pub condition: Condition,
    /// "MaxNOM 44% <= 50% of EXW".
    pub summary: String,
    pub result: Tri,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figure: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Decimal>,
    /// How far the figure is from the limit, in the passing direction (negative: failing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headroom: Option<Decimal>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub breaking: Vec<String>,
    #[serde(skip)]
    breaking_idx: Vec<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub by_tolerance: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_exw: Option<Decimal>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Breaking {
    pub material: String,
    pub hs: String,
    pub value: Decimal,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_kg: Option<Decimal>,
    pub conditions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToleranceUse {
    /// "value" or "weight".
    pub basis: &'static str,
    pub used: Decimal,
    pub limit: Decimal,
    /// The used amount as a percentage of the base.
    pub percent: Decimal,
    pub limit_percent: Decimal,
    pub applied: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub material: String,
    pub hs: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Expiring {
    pub material: String,
    pub valid_to: NaiveDate,
    pub days_left: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubAssembly {
    pub material: String,
    pub hs: String,
    pub verdict: Outcome,
    pub reason: String,
}

/// Evaluates a validated request.
pub fn evaluate(engine: &Engine, req: &Request) -> Verdict {
    let mut v = product_verdict(
        engine,
        req.agreement,
        req.shipment_date,
        &req.product,
        &req.materials,
        "materials",
    );
    if v.verdict == Outcome::Originating {
        v.documents = Some(documents::for_verdict(req, &v));
    }
    v
}

struct Status {
    originating: bool,
}

fn label(m: &Material, path: &str, i: usize) -> String {
    let at = format!("{path}[{i}]");
    match m.name.as_deref().or(m.part.as_deref()) {
        Some(n) => format!("{at} {n} ({})", m.hs),
        None => format!("{at} ({})", m.hs),
    }
}

fn product_verdict(
    engine: &Engine,
    agreement: AgreementId,
    date: NaiveDate,
    product: &Product,
    materials: &[Material],
    path: &str,
) -> Verdict {
    let mut v = Verdict {
        verdict: Outcome::Undetermined,
        agreement: agreement.id(),
        shipment_date: date,
        product_hs: product.hs.to_string(),
        reason: String::new(),
        rule_set: None,
        subdivisions: vec![],
        alternatives: vec![],
        breaking_materials: vec![],
        tolerance: None,
        evidence_gaps: vec![],
        expiring_declarations: vec![],
        min_exw: None,
        sub_assemblies: vec![],
        documents: None,
    };
    // 2. Material status.
    let mut status = Vec::with_capacity(materials.len());
    for (i, m) in materials.iter().enumerate() {
        status.push(material_status(engine, agreement, date, m, path, i, &mut v));
    }
    // 1. Rule set (for a wholly obtained product it is only shown).
    let selected = select(engine, agreement, product, date);
    // 3. Wholly obtained products originate; no tolerance is involved.
    if product.wholly_obtained {
        v.verdict = Outcome::Originating;
        v.reason = "the product is wholly obtained".into();
        if let Ok(rs) = selected {
            v.rule_set = Some(info(rs));
        }
        return v;
    }
    let rs = match selected {
        Ok(rs) => rs,
        Err(Unselected { reason, choices }) => {
            v.reason = reason;
            v.subdivisions = choices;
            return v;
        }
    };
    v.rule_set = Some(info(rs));
    if rs.provenance == Provenance::Unsupported {
        v.reason = format!(
            "the rule for {} is not structured ({}); it cannot be evaluated",
            rs.heading,
            rs.note.as_deref().unwrap_or("unsupported")
        );
        return v;
    }
    let ctx = Ctx {
        agreement,
        path,
        product,
        materials,
        status: &status,
    };
    // 4-6. Alternatives.
    for alt in &rs.alternatives {
        let mut conds: Vec<CondReport> = alt.conditions.iter().map(|c| ctx.condition(c)).collect();
        let (result, tol, note) = ctx.combine(&mut conds, alt.quota);
        v.alternatives.push(AltReport {
            result,
            conditions: conds,
            valid_to: alt.valid_to,
            quota: alt.quota,
            tolerance: tol,
            note,
        });
    }
    // 7. Verdict.
    let passing = v.alternatives.iter().position(|a| a.result == Tri::Pass);
    let unknown = v.alternatives.iter().position(|a| a.result == Tri::Unknown);
    (v.verdict, v.reason) = match (passing, unknown) {
        (Some(i), _) => (
            Outcome::Originating,
            format!(
                "alternative {} passes: {}",
                i + 1,
                alt_summary(&v.alternatives[i])
            ),
        ),
        (None, Some(i)) => (
            Outcome::Undetermined,
            format!(
                "no alternative passes, and alternative {} cannot be decided: {}",
                i + 1,
                unknown_reason(&v.alternatives[i])
            ),
        ),
        (None, None) => (
            Outcome::NotOriginating,
            format!(
                "no alternative passes: {}",
                v.alternatives
                    .iter()
                    .map(alt_summary)
                    .collect::<Vec<_>>()
                    .join("; or ")
            ),
        ),
    };
    v.tolerance = match passing {
        Some(i) => v.alternatives[i].tolerance.clone(),
        None => v.alternatives.iter().find_map(|a| a.tolerance.clone()),
    };
    // Breaking materials, over all alternatives.
    for a in &v.alternatives {
        for c in &a.conditions {
            for &i in &c.breaking_idx {
                let name = label(&materials[i], path, i);
                match v.breaking_materials.iter_mut().find(|b| b.material == name) {
                    Some(b) => {
                        if !b.conditions.contains(&c.summary) {
                            b.conditions.push(c.summary.clone());
                        }
                    }
                    None => v.breaking_materials.push(Breaking {
                        material: name,
                        hs: materials[i].hs.to_string(),
                        value: materials[i].value,
                        weight_kg: materials[i].weight_kg,
                        conditions: vec![c.summary.clone()],
                    }),
                }
            }
        }
    }
    // Minimum EXW: over alternatives whose other conditions all pass.
    v.min_exw = v
        .alternatives
        .iter()
        .filter_map(|a| {
            let mins: Vec<Decimal> = a.conditions.iter().filter_map(|c| c.min_exw).collect();
            let others_pass = a
                .conditions
                .iter()
                .all(|c| c.min_exw.is_some() || c.result == Tri::Pass);
            (others_pass && !a.quota && !mins.is_empty())
                .then(|| mins.into_iter().max())
                .flatten()
        })
        .min();
    v
}

fn alt_summary(a: &AltReport) -> String {
    a.conditions
        .iter()
        .map(|c| {
            let r = match c.result {
                Tri::Pass if c.by_tolerance => "passes with tolerance",
                Tri::Pass => "passes",
                Tri::Fail => "fails",
                Tri::Unknown => "cannot be decided",
            };
            format!("{} {r}", c.summary)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_reason(a: &AltReport) -> String {
    if let Some(n) = &a.note {
        return n.clone();
    }
    a.conditions
        .iter()
        .filter(|c| c.result == Tri::Unknown)
        .map(|c| c.note.clone().unwrap_or_else(|| c.summary.clone()))
        .collect::<Vec<_>>()
        .join("; ")
}

fn info(rs: &RuleSet) -> RuleSetInfo {
    RuleSetInfo {
        heading: rs.heading.clone(),
        subdivision: rs.subdivision.clone(),
        range: format!("{}-{}", rs.hs_min, rs.hs_max),
        valid_from: rs.valid_from,
        valid_to: rs.valid_to,
        provenance: rs.provenance,
        note: rs.note.clone(),
        text: rs.text.clone(),
    }
}

fn material_status(
    engine: &Engine,
    agreement: AgreementId,
    date: NaiveDate,
    m: &Material,
    path: &str,
    i: usize,
    v: &mut Verdict,
) -> Status {
    if let Some(bom) = &m.bom {
        let sub_product = Product {
            hs: m.hs.clone(),
            exw: m.value,
            fob: Some(m.value),
            transaction_value: None,
            net_cost: None,
            net_weight_kg: m.weight_kg,
            wholly_obtained: m.wholly_obtained == Some(true),
            subdivision: m.subdivision.clone(),
            processes: m.processes.clone(),
            description: m.name.clone(),
        };
        let sub_path = format!("{path}[{i}].bom");
        let sub = product_verdict(engine, agreement, date, &sub_product, bom, &sub_path);
        let name = label(m, path, i);
        v.evidence_gaps.extend(sub.evidence_gaps.iter().cloned());
        v.expiring_declarations
            .extend(sub.expiring_declarations.iter().cloned());
        v.sub_assemblies.extend(sub.sub_assemblies.iter().cloned());
        let originating = sub.verdict == Outcome::Originating;
        if sub.verdict == Outcome::Undetermined {
            v.evidence_gaps.push(Gap {
                material: name.clone(),
                hs: m.hs.to_string(),
                reason: format!(
                    "sub-assembly is undetermined ({}); counted as non-originating",
                    sub.reason
                ),
            });
        }
        v.sub_assemblies.push(SubAssembly {
            material: name,
            hs: m.hs.to_string(),
            verdict: sub.verdict,
            reason: sub.reason,
        });
        return Status { originating };
    }
    let gap = |v: &mut Verdict, reason: String| {
        v.evidence_gaps.push(Gap {
            material: label(m, path, i),
            hs: m.hs.to_string(),
            reason,
        })
    };
    match m.origin {
        Origin::NonOriginating => Status { originating: false },
        Origin::Unknown => {
            gap(v, "origin unknown; counted as non-originating".into());
            Status { originating: false }
        }
        Origin::Originating => match &m.declaration {
            None => Status { originating: true },
            Some(d) if d.covers(date) => {
                let left = (d.valid_to - date).num_days();
                if left <= EXPIRY_WARNING_DAYS {
                    v.expiring_declarations.push(Expiring {
                        material: label(m, path, i),
                        valid_to: d.valid_to,
                        days_left: left,
                    });
                }
                Status { originating: true }
            }
            Some(d) => {
                let why = if date > d.valid_to {
                    format!("declaration expired on {}", d.valid_to)
                } else {
                    format!("declaration only valid from {}", d.valid_from)
                };
                gap(v, format!("{why}; counted as non-originating"));
                Status { originating: false }
            }
        },
    }
}

struct Unselected {
    reason: String,
    choices: Vec<String>,
}

/// Step 1: the most specific rule set containing the code; then its version in force on the
/// date; then the subdivision.
fn select<'a>(
    engine: &'a Engine,
    agreement: AgreementId,
    product: &Product,
    date: NaiveDate,
) -> std::result::Result<&'a RuleSet, Unselected> {
    let (lo, hi) = (product.hs.low(), product.hs.high());
    let sets = &engine.agreement(agreement).rule_sets;
    let containing = sets.iter().filter(|r| r.lo <= lo && hi <= r.hi);
    let Some(width) = containing.clone().map(|r| r.hi - r.lo).min() else {
        let finer: Vec<String> = sets
            .iter()
            .filter(|r| r.lo <= hi && lo <= r.hi)
            .map(|r| format!("{} ({}-{})", r.heading, r.hs_min, r.hs_max))
            .collect();
        let reason = if finer.is_empty() {
            format!(
                "{} has no product-specific rule for {}",
                agreement.id(),
                product.hs
            )
        } else {
            format!(
                "the rules differ inside {}; give a longer commodity code",
                product.hs
            )
        };
        return Err(Unselected {
            reason,
            choices: finer,
        });
    };
    let best: Vec<&RuleSet> = containing.filter(|r| r.hi - r.lo == width).collect();
    let in_force: Vec<&RuleSet> = best
        .iter()
        .copied()
        .filter(|r| r.covers_date(date))
        .collect();
    if in_force.is_empty() {
        return Err(Unselected {
            reason: format!(
                "no rule for {} is in force on {date} under {}",
                product.hs,
                agreement.id()
            ),
            choices: vec![],
        });
    }
    let mut subs: Vec<&str> = in_force.iter().map(|r| r.subdivision.as_str()).collect();
    subs.dedup();
    if subs.len() == 1 {
        return Ok(in_force[0]);
    }
    let choices: Vec<String> = subs.iter().map(|s| s.to_string()).collect();
    match product.subdivision.as_deref().map(str::trim) {
        Some(want) if !want.is_empty() => {
            let lower = want.to_lowercase();
            let hits: Vec<&&RuleSet> = in_force
                .iter()
                .filter(|r| r.subdivision.to_lowercase() == lower)
                .collect();
            let hits = if hits.is_empty() {
                in_force
                    .iter()
                    .filter(|r| r.subdivision.to_lowercase().starts_with(&lower))
                    .collect()
            } else {
                hits
            };
            match hits.as_slice() {
                [one] => Ok(one),
                [] => Err(Unselected {
                    reason: format!("subdivision {want:?} matches none of the rules for {}", product.hs),
                    choices,
                }),
                _ => Err(Unselected {
                    reason: format!("subdivision {want:?} matches several rules for {}", product.hs),
                    choices,
                }),
            }
        }
        _ => Err(Unselected {
            reason: format!(
                "{} has {} subdivisions with different rules; say which one applies (product.subdivision)",
                product.hs,
                choices.len()
            ),
            choices,
        }),
    }
}

struct Ctx<'a> {
    agreement: AgreementId,
    path: &'a str,
    product: &'a Product,
    materials: &'a [Material],
    status: &'a [Status],
}

fn round(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

fn pct_of(part: Decimal, whole: Decimal) -> Option<Decimal> {
    if whole.is_zero() {
        return None;
    }
    part.checked_mul(Decimal::ONE_HUNDRED)?.checked_div(whole)
}

fn same(level: Level, a: &HsCode, b: &HsCode) -> bool {
    level.digits().is_some_and(|d| a.prefix(d) == b.prefix(d))
}

impl CondReport {
    fn new(condition: &Condition, summary: String, result: Tri) -> CondReport {
        CondReport {
            condition: condition.clone(),
            summary,
            result,
            figure: None,
            limit: None,
            headroom: None,
            breaking: vec![],
            breaking_idx: vec![],
            by_tolerance: false,
            note: None,
            min_exw: None,
        }
    }

    fn note(mut self, n: String) -> CondReport {
        self.note = Some(n);
        self
    }
}

impl Ctx<'_> {
    fn nom(&self) -> impl Iterator<Item = (usize, &Material)> {
        self.materials
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.status[*i].originating)
    }

    fn name(&self, i: usize) -> String {
        label(&self.materials[i], self.path, i)
    }

    /// Membership of a material in the counted set of a cap.
    fn counted(&self, of: &Materials, m: &Material) -> Member {
        match of {
            Materials::All => Member::Yes,
            Materials::Set(s) => s.member(&m.hs),
            Materials::SameAs(l) => {
                if same(*l, &m.hs, &self.product.hs) {
                    Member::Yes
                } else {
                    Member::No
                }
            }
            Materials::SameAsOr(l, s) => {
                if same(*l, &m.hs, &self.product.hs) {
                    Member::Yes
                } else {
                    s.member(&m.hs)
                }
            }
        }
    }

    fn base_value(&self, base: Base) -> std::result::Result<Decimal, String> {
        let p = self.product;
        match base {
            Base::Exw => Ok(p.exw),
            Base::Fob => p
                .fob
                .ok_or_else(|| "the FOB price (product.fob) is not given".to_string()),
            Base::TransactionValueOrExw => Ok(p.transaction_value.unwrap_or(p.exw)),
            Base::NetCost => p
                .net_cost
                .ok_or_else(|| "the net cost (product.net_cost) is not given".to_string()),
        }
    }

    fn condition(&self, c: &Condition) -> CondReport {
        match c {
            Condition::WhollyObtained => {
                let r = if self.product.wholly_obtained {
                    Tri::Pass
                } else {
                    Tri::Fail
                };
                CondReport::new(c, "the product is wholly obtained".into(), r)
            }
            Condition::SpecificProcess { code, text } => {
                let summary = format!("process: {text}");
                match &self.product.processes {
                    None => CondReport::new(c, summary, Tri::Unknown).note(format!(
                        "process {code:?} is not declared; list it in product.processes if it was carried out"
                    )),
                    Some(ps) if ps.iter().any(|p| p == code) => CondReport::new(c, summary, Tri::Pass),
                    Some(_) => CondReport::new(c, summary, Tri::Fail)
                        .note(format!("{code:?} is not among product.processes")),
                }
            }
            Condition::ChangeOfClassification { level, except } => {
                let mut summary = level.short().to_string();
                if !except.is_empty() {
                    summary.push_str(&format!(" except from {}", except.label()));
                }
                let mut breaking = Vec::new();
                let mut maybe = Vec::new();
                for (i, m) in self.nom() {
                    let member = except.member(&m.hs);
                    if same(*level, &m.hs, &self.product.hs) || member == Member::Yes {
                        breaking.push(i);
                    } else if member == Member::Maybe {
                        maybe.push(i);
                    }
                }
                self.with_breaking(c, summary, breaking, maybe, except.described.join(", "))
            }
            Condition::MaterialsWhollyObtained { of } => {
                let summary = format!("materials of {} wholly obtained", of.label());
                let mut breaking = Vec::new();
                let mut maybe = Vec::new();
                let mut unproven = Vec::new();
                for (i, m) in self.materials.iter().enumerate() {
                    let member = of.member(&m.hs);
                    if member == Member::No {
                        continue;
                    }
                    if !self.status[i].originating {
                        if member == Member::Yes {
                            breaking.push(i);
                        } else {
                            maybe.push(i);
                        }
                    } else if m.wholly_obtained == Some(false) && member == Member::Yes {
                        breaking.push(i);
                    } else if m.wholly_obtained != Some(true) {
                        unproven.push(i);
                    }
                }
                let mut r =
                    self.with_breaking(c, summary, breaking, maybe, of.described.join(", "));
                if r.result == Tri::Pass && !unproven.is_empty() {
                    r.result = Tri::Unknown;
                    r.note = Some(format!(
                        "originating materials not declared wholly obtained (set wholly_obtained): {}",
                        unproven.iter().map(|i| self.name(*i)).collect::<Vec<_>>().join(", ")
                    ));
                }
                r
            }
            Condition::MaxNom { percent, base, of } => self.max_nom(c, *percent, *base, of),
            Condition::Rvc { percent, base } => {
                let summary_base = base.label();
                let fob = match self.base_value(*base) {
                    Ok(v) => v,
                    Err(e) => {
                        return CondReport::new(
                            c,
                            format!("RVC >= {percent}% of {summary_base}"),
                            Tri::Unknown,
                        )
                        .note(e)
                    }
                };
                let vnm: Decimal = self.nom().map(|(_, m)| m.value).sum();
                let Some(figure) = pct_of(fob - vnm, fob) else {
                    return CondReport::new(
                        c,
                        format!("RVC >= {percent}% of {summary_base}"),
                        Tri::Unknown,
                    )
                    .note("the FOB price is zero".into());
                };
                let pass = (fob - vnm) * Decimal::ONE_HUNDRED >= *percent * fob;
                let mut r = CondReport::new(
                    c,
                    format!("RVC {}% >= {percent}% of {summary_base}", round(figure)),
                    if pass { Tri::Pass } else { Tri::Fail },
                );
                r.figure = Some(round(figure));
                r.limit = Some(*percent);
                r.headroom = Some(round(figure - *percent));
                r
            }
            Condition::MaxWeight {
                percent,
                of,
                of_weight,
            } => self.max_weight(c, *percent, of, of_weight),
        }
    }

    fn with_breaking(
        &self,
        c: &Condition,
        summary: String,
        breaking: Vec<usize>,
        maybe: Vec<usize>,
        described: String,
    ) -> CondReport {
        if !breaking.is_empty() {
            let mut r = CondReport::new(c, summary, Tri::Fail);
            r.breaking = breaking.iter().map(|i| self.name(*i)).collect();
            r.breaking_idx = breaking;
            return r;
        }
        if !maybe.is_empty() {
            return CondReport::new(c, summary, Tri::Unknown).note(format!(
                "cannot tell from the codes whether {} are {described}",
                maybe
                    .iter()
                    .map(|i| self.name(*i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        CondReport::new(c, summary, Tri::Pass)
    }

    fn max_nom(&self, c: &Condition, percent: Decimal, base: Base, of: &Materials) -> CondReport {
        let what = match of {
            Materials::All => String::new(),
            other => format!(" ({})", other.label()),
        };
        let head = format!("MaxNOM{what}");
        let base_value = match self.base_value(base) {
            Ok(v) => v,
            Err(e) => {
                return CondReport::new(
                    c,
                    format!("{head} <= {percent}% of {}", base.label()),
                    Tri::Unknown,
                )
                .note(e)
            }
        };
        let mut sure = Decimal::ZERO;
        let mut maybe = Decimal::ZERO;
        for (_, m) in self.nom() {
            match self.counted(of, m) {
                Member::Yes => sure += m.value,
                Member::Maybe => maybe += m.value,
                Member::No => {}
            }
        }
        let limit_value = percent * base_value;
        let within = |v: Decimal| v * Decimal::ONE_HUNDRED <= limit_value;
        let (value, result, note) = if within(sure + maybe) {
            (sure + maybe, Tri::Pass, None)
        } else if !within(sure) {
            (sure, Tri::Fail, None)
        } else {
            (
                sure + maybe,
                Tri::Unknown,
                Some(format!(
                    "counting every material that may be {} exceeds the cap; the codes cannot tell which are",
                    of.label()
                )),
            )
        };
        let Some(figure) = pct_of(value, base_value) else {
            return CondReport::new(
                c,
                format!("{head} <= {percent}% of {}", base.label()),
                Tri::Unknown,
            )
            .note(format!("the {} is zero", base.label()));
        };
        let mut r = CondReport::new(
            c,
            format!(
                "{head} {}% <= {percent}% of {}",
                round(figure),
                base.label()
            ),
            result,
        );
        r.figure = Some(round(figure));
        r.limit = Some(percent);
        r.headroom = Some(round(percent - figure));
        r.note = note;
        let on_exw = base == Base::Exw
            || (base == Base::TransactionValueOrExw && self.product.transaction_value.is_none());
        if on_exw && !percent.is_zero() && result != Tri::Unknown {
            r.min_exw = (value * Decimal::ONE_HUNDRED)
                .checked_div(percent)
                .map(|d| {
                    d.round_dp_with_strategy(2, RoundingStrategy::AwayFromZero)
                        .normalize()
                });
        }
        r
    }

    fn max_weight(
        &self,
        c: &Condition,
        percent: Decimal,
        of: &Materials,
        of_weight: &WeightOf,
    ) -> CondReport {
        let per = match of_weight {
            WeightOf::Product => "of the product's weight".to_string(),
            WeightOf::Materials(s) => format!("of the weight of {} used", s.label()),
            WeightOf::AllMaterials => "of the weight of all materials used".to_string(),
        };
        let summary0 = format!("MaxWeight ({}) <= {percent}% {per}", of.label());
        let mut used = Decimal::ZERO;
        let mut missing = Vec::new();
        let mut maybe = false;
        for (i, m) in self.nom() {
            match self.counted(of, m) {
                Member::No => {}
                Member::Maybe => maybe = true,
                Member::Yes => match m.weight_kg {
                    Some(w) => used += w,
                    None => missing.push(i),
                },
            }
        }
        let whole = match of_weight {
            WeightOf::Product => self.product.net_weight_kg,
            WeightOf::Materials(s) => {
                let mut total = Some(Decimal::ZERO);
                for m in self.materials {
                    if s.member(&m.hs) == Member::Yes {
                        total = total.and_then(|t| m.weight_kg.map(|w| t + w));
                    }
                }
                total
            }
            WeightOf::AllMaterials => self
                .materials
                .iter()
                .try_fold(Decimal::ZERO, |t, m| m.weight_kg.map(|w| t + w)),
        };
        if !missing.is_empty() {
            return CondReport::new(c, summary0, Tri::Unknown).note(format!(
                "weight_kg is missing for {}",
                missing
                    .iter()
                    .map(|i| self.name(*i))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if maybe {
            return CondReport::new(c, summary0, Tri::Unknown).note(format!(
                "cannot tell from the codes which materials are {}",
                of.label()
            ));
        }
        let Some(whole) = whole else {
            return CondReport::new(c, summary0, Tri::Unknown)
                .note("the weight to compare with is not given (product.net_weight_kg or the materials' weight_kg)".into());
        };
        let pass = used * Decimal::ONE_HUNDRED <= percent * whole;
        let figure = pct_of(used, whole).unwrap_or(if used.is_zero() {
            Decimal::ZERO
        } else {
            Decimal::MAX
        });
        let mut r = CondReport::new(
            c,
            format!(
                "MaxWeight ({}) {}% <= {percent}% {per}",
                of.label(),
                round(figure)
            ),
            if pass { Tri::Pass } else { Tri::Fail },
        );
        r.figure = Some(round(figure));
        r.limit = Some(percent);
        r.headroom = Some(round(percent - figure));
        r
    }

    /// AND of the conditions, with tolerance for the breaking materials of
    /// change-of-classification and wholly-obtained-material conditions.
    fn combine(
        &self,
        conds: &mut [CondReport],
        quota: bool,
    ) -> (Tri, Option<ToleranceUse>, Option<String>) {
        let tolerable = |c: &CondReport| {
            matches!(
                c.condition,
                Condition::ChangeOfClassification { .. }
                    | Condition::MaterialsWhollyObtained { .. }
            ) && !c.breaking_idx.is_empty()
        };
        let mut tolerance = None;
        let mut note = None;
        let failing: Vec<usize> = (0..conds.len())
            .filter(|i| conds[*i].result == Tri::Fail)
            .collect();
        let other_fail = failing.iter().any(|i| !tolerable(&conds[*i]));
        if !failing.is_empty() && !other_fail {
            let mut idx: Vec<usize> = failing
                .iter()
                .flat_map(|i| conds[*i].breaking_idx.iter().copied())
                .collect();
            idx.sort_unstable();
            idx.dedup();
            match self.tolerance(&idx) {
                Ok(t) => {
                    if t.applied {
                        for i in &failing {
                            conds[*i].result = Tri::Pass;
                            conds[*i].by_tolerance = true;
                        }
                    }
                    tolerance = Some(t);
                }
                Err(why) => {
                    for i in &failing {
                        conds[*i].result = Tri::Unknown;
                        conds[*i].note = Some(why.clone());
                    }
                }
            }
        }
        let mut result = if conds.iter().any(|c| c.result == Tri::Fail) {
            Tri::Fail
        } else if conds.iter().any(|c| c.result == Tri::Unknown) {
            Tri::Unknown
        } else {
            Tri::Pass
        };
        if quota && result == Tri::Pass {
            result = Tri::Unknown;
            note = Some("this alternative applies only within the annual origin quota, which cannot be checked here".into());
        }
        (result, tolerance, note)
    }

    fn tolerance(&self, idx: &[usize]) -> std::result::Result<ToleranceUse, String> {
        let heading: u32 = self.product.hs.prefix(4).parse().unwrap_or(0);
        match self.agreement.tolerance(heading) {
            Tolerance::TextileNotes => Err(format!(
                "textiles (chapters 50-63) follow the tolerance notes of {}, which are not modelled; breaking materials: {}",
                self.agreement.id(),
                idx.iter().map(|i| self.name(*i)).collect::<Vec<_>>().join(", ")
            )),
            Tolerance::Weight { percent } => {
                let mut used = Decimal::ZERO;
                for i in idx {
                    used += self.materials[*i].weight_kg.ok_or_else(|| {
                        format!("the weight tolerance needs weight_kg of {}", self.name(*i))
                    })?;
                }
                let whole = self
                    .product
                    .net_weight_kg
                    .ok_or("the weight tolerance needs product.net_weight_kg")?;
                let figure = pct_of(used, whole).ok_or("product.net_weight_kg is zero")?;
                Ok(ToleranceUse {
                    basis: "weight",
                    used,
                    limit: round(percent * whole / Decimal::ONE_HUNDRED),
                    percent: round(figure),
                    limit_percent: percent,
                    applied: used * Decimal::ONE_HUNDRED <= percent * whole,
                })
            }
            Tolerance::Value { percent, fob_too, transaction_value } => {
                let used: Decimal = idx.iter().map(|i| self.materials[*i].value).sum();
                let p = self.product;
                let mut base = if transaction_value { p.transaction_value.unwrap_or(p.exw) } else { p.exw };
                // Japan: 10% of the ex-works price or of the FOB price; the larger base is
                // the one that can pass.
                if fob_too {
                    if let Some(fob) = p.fob {
                        base = base.max(fob);
                    }
                }
                let figure = pct_of(used, base).ok_or("the price is zero")?;
                Ok(ToleranceUse {
                    basis: "value",
                    used,
                    limit: round(percent * base / Decimal::ONE_HUNDRED),
                    percent: round(figure),
                    limit_percent: percent,
                    applied: used * Decimal::ONE_HUNDRED <= percent * base,
                })
            }
        }
    }
}
