//! Loading and compiling the agreements: raw rule sets, grouped by range and subdivision,
//! compiled (or overridden), split by date, ready for lookup.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::agreement::AgreementId;
use crate::compile::{compile_rule, GROUP};
use crate::error::{Error, Result};
use crate::hs::HsSet;
use crate::overrides::{self, Override};
use crate::rule::{Alternative, Condition, Provenance, RuleSet};

#[derive(Debug, Deserialize)]
struct RawFile {
    rule_sets: Vec<RawSet>,
}

#[derive(Debug, Deserialize)]
struct RawSet {
    heading: String,
    #[serde(default)]
    subdivision: String,
    min: String,
    max: String,
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
struct RawRule {
    rule: String,
    #[serde(default)]
    operator: Option<String>,
}

/// One agreement's compiled rules.
#[derive(Debug, Clone)]
pub struct Agreement {
    pub id: AgreementId,
    /// Sorted by `lo`, then by range size.
    pub rule_sets: Vec<RuleSet>,
    pub coverage: Coverage,
}

/// Coverage of one agreement, counted over the rule sets of the published data.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Coverage {
    pub agreement: String,
    pub rule_sets: usize,
    pub compiled: usize,
    pub overridden: usize,
    pub unsupported: usize,
    pub unsupported_sets: Vec<UnsupportedSet>,
}

impl Coverage {
    /// Share of rule sets structured (compiled or overridden), in percent.
    pub fn structured_percent(&self) -> f64 {
        if self.rule_sets == 0 {
            return 0.0;
        }
        (self.compiled + self.overridden) as f64 * 100.0 / self.rule_sets as f64
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct UnsupportedSet {
    pub heading: String,
    pub subdivision: String,
    pub range: String,
    pub reason: String,
}

/// All agreements, compiled once.
#[derive(Debug, Clone)]
pub struct Engine {
    agreements: Vec<Agreement>,
}

impl Engine {
    /// Compiles the embedded rule data with the shipped overrides.
    pub fn load() -> Result<Engine> {
        Self::with_overrides(overrides::SHIPPED)
    }

    /// Compiles the embedded rule data with the given overrides text.
    pub fn with_overrides(overrides_text: &str) -> Result<Engine> {
        let ov = overrides::parse(overrides_text)?;
        let mut agreements = Vec::new();
        for id in AgreementId::ALL {
            agreements.push(compile_agreement(id, id.data(), &ov)?);
        }
        Ok(Engine { agreements })
    }

    pub fn agreement(&self, id: AgreementId) -> &Agreement {
        // ALL is compiled in order, so the index is the enum's position.
        let i = AgreementId::ALL.iter().position(|a| *a == id).unwrap_or(0);
        &self.agreements[i]
    }

    pub fn agreements(&self) -> &[Agreement] {
        &self.agreements
    }

    pub fn coverage(&self) -> Vec<Coverage> {
        self.agreements.iter().map(|a| a.coverage.clone()).collect()
    }
}

struct Group {
    heading: String,
    subdivision: String,
    min: String,
    max: String,
    members: Vec<RawSet>,
}

fn bound(s: &str, agreement: AgreementId) -> Result<u64> {
    if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Data {
            agreement: agreement.id().into(),
            message: format!("bad commodity bound {s:?}"),
        });
    }
    s.parse().map_err(|_| Error::Data {
        agreement: agreement.id().into(),
        message: format!("bad commodity bound {s:?}"),
    })
}

/// Compiles one agreement's JSON.
pub fn compile_agreement(id: AgreementId, json: &str, ov: &[Override]) -> Result<Agreement> {
    let raw: RawFile = serde_json::from_str(json).map_err(|e| Error::Data {
        agreement: id.id().into(),
        message: e.to_string(),
    })?;
    let total = raw.rule_sets.len();
    // Sets with the same range and subdivision are one rule set split in the data: their
    // rules are alternatives of each other.
    let mut groups: Vec<Group> = Vec::new();
    for set in raw.rule_sets {
        let sub = set.subdivision.trim().to_string();
        match groups
            .iter_mut()
            .find(|g| g.min == set.min && g.max == set.max && g.subdivision == sub)
        {
            Some(g) => g.members.push(set),
            None => groups.push(Group {
                heading: set.heading.clone(),
                subdivision: sub,
                min: set.min.clone(),
                max: set.max.clone(),
                members: vec![set],
            }),
        }
    }
    let mut coverage = Coverage {
        agreement: id.id().into(),
        rule_sets: total,
        compiled: 0,
        overridden: 0,
        unsupported: 0,
        unsupported_sets: vec![],
    };
    let mut rule_sets = Vec::new();
    for g in groups {
        let (lo, hi) = (bound(&g.min, id)?, bound(&g.max, id)?);
        let text: Vec<String> = g
            .members
            .iter()
            .flat_map(|m| m.rules.iter())
            .map(|r| match r.operator.as_deref() {
                Some(op) => format!("[{op}] {}", r.rule),
                None => r.rule.clone(),
            })
            .collect();
        let n = g.members.len();
        let (provenance, alternatives, note) = match ov
            .iter()
            .find(|o| o.matches(id.id(), &g.min, &g.max, &g.subdivision))
        {
            Some(o) => (
                Provenance::Overridden,
                o.alternatives.clone(),
                Some(o.why.clone()),
            ),
            None => match compile_group(&g, lo, hi) {
                Ok(alts) => (Provenance::Compiled, alts, None),
                Err(reason) => (Provenance::Unsupported, vec![], Some(reason)),
            },
        };
        match provenance {
            Provenance::Compiled => coverage.compiled += n,
            Provenance::Overridden => coverage.overridden += n,
            Provenance::Unsupported => {
                coverage.unsupported += n;
                coverage.unsupported_sets.push(UnsupportedSet {
                    heading: g.heading.clone(),
                    subdivision: g.subdivision.clone(),
                    range: format!("{}-{}", g.min, g.max),
                    reason: note.clone().unwrap_or_default(),
                });
            }
        }
        let alternatives: Vec<Alternative> = alternatives
            .into_iter()
            .map(|a| fill_group(a, &g.heading, lo, hi))
            .collect();
        let base = RuleSet {
            heading: g.heading.clone(),
            subdivision: g.subdivision.clone(),
            hs_min: g.min.clone(),
            hs_max: g.max.clone(),
            lo,
            hi,
            valid_from: None,
            valid_to: None,
            alternatives: vec![],
            provenance,
            note,
            text,
        };
        rule_sets.extend(split_by_date(base, alternatives));
    }
    rule_sets.sort_by_key(|r| (r.lo, r.hi - r.lo));
    Ok(Agreement {
        id,
        rule_sets,
        coverage,
    })
}

/// Rules of a group: within one raw set, `or` starts an alternative and consecutive rules
/// without an operator are all required; raw sets of one group are alternatives.
fn compile_group(g: &Group, lo: u64, hi: u64) -> std::result::Result<Vec<Alternative>, String> {
    let mut all = Vec::new();
    for set in &g.members {
        let mut current: Option<Vec<Alternative>> = None;
        for rule in &set.rules {
            if rule.operator.is_none() {
                if let Some(cur) = current.as_mut() {
                    if let Some(res) = crate::compile::allowance(&rule.rule, lo, hi, cur) {
                        cur.extend(res?);
                        continue;
                    }
                }
            }
            let alts = match crate::compile::change_from_list(&rule.rule, lo, hi) {
                Some(res) => res?,
                None => compile_rule(&rule.rule)?,
            };
            if alts.is_empty() {
                return Err(format!("empty rule {:?}", rule.rule));
            }
            current = match (current, rule.operator.as_deref()) {
                (None, _) => Some(alts),
                (Some(cur), Some("or")) => {
                    all.extend(cur);
                    Some(alts)
                }
                (Some(_), Some(op)) => return Err(format!("unknown operator {op:?}")),
                (Some(cur), None) => Some(and_alts(&cur, &alts)),
            };
        }
        all.extend(current.unwrap_or_default());
    }
    if all.is_empty() {
        return Err("no rules".into());
    }
    Ok(all)
}

fn and_alts(a: &[Alternative], b: &[Alternative]) -> Vec<Alternative> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let mut c = x.conditions.clone();
            c.extend(y.conditions.iter().cloned());
            let valid_to = match (x.valid_to, y.valid_to) {
                (Some(p), Some(q)) => Some(p.min(q)),
                (p, q) => p.or(q),
            };
            out.push(Alternative {
                conditions: c,
                valid_to,
                valid_from: x.valid_from.max(y.valid_from),
                quota: x.quota || y.quota,
            });
        }
    }
    out
}

/// Replaces the "this group" marker of a CTC exception with the rule set's own range.
fn fill_group(mut a: Alternative, heading: &str, lo: u64, hi: u64) -> Alternative {
    for c in &mut a.conditions {
        if let Condition::ChangeOfClassification { except, .. } = c {
            if except.described.iter().any(|d| d == GROUP) {
                except.described.retain(|d| d != GROUP);
                let mut s = HsSet::default();
                s.push_bounds(format!("this group ({heading})"), lo, hi);
                except.extend(&s);
            }
        }
    }
    a
}

/// One rule set per period: each alternative lives from its `valid_from` to its
/// `valid_to`; the periods are cut at every such date.
fn split_by_date(base: RuleSet, alts: Vec<Alternative>) -> Vec<RuleSet> {
    let mut cuts: BTreeSet<NaiveDate> = BTreeSet::new();
    for a in &alts {
        if let Some(f) = a.valid_from {
            cuts.insert(f);
        }
        if let Some(t) = a.valid_to.and_then(|t| t.checked_add_days(Days::new(1))) {
            cuts.insert(t);
        }
    }
    if cuts.is_empty() {
        return vec![RuleSet {
            alternatives: alts,
            ..base
        }];
    }
    let starts: Vec<Option<NaiveDate>> = std::iter::once(None)
        .chain(cuts.iter().copied().map(Some))
        .collect();
    let mut out = Vec::new();
    for (i, from) in starts.iter().enumerate() {
        let to = starts
            .get(i + 1)
            .copied()
            .flatten()
            .and_then(|next| next.pred_opt());
        let live: Vec<Alternative> = alts
            .iter()
            .filter(|a| {
                let starts_ok = match (a.valid_from, from) {
                    (None, _) => true,
                    (Some(f), Some(p)) => f <= *p,
                    (Some(_), None) => false,
                };
                let ends_ok = match (a.valid_to, to) {
                    (None, _) => true,
                    (Some(e), Some(t)) => e >= t,
                    (Some(_), None) => false,
                };
                starts_ok && ends_ok
            })
            .cloned()
            .collect();
        if live.is_empty() {
            continue;
        }
        out.push(RuleSet {
            valid_from: *from,
            valid_to: to,
            alternatives: live,
            ..base.clone()
        });
    }
    out
}
