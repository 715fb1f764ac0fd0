//! Commodity codes and sets of them.
//!
//! Codes are kept as their digits (6 to 10). A set is a list of ranges over 10-digit codes;
//! "chapter 04" is `0400000000..=0499999999`, "heading 1701" is `1701000000..=1701999999`.
//! Some rules name materials only by description ("active cathode materials"); such a set
//! is [`HsSet::described`]: membership cannot be read from a code, and the evaluator treats
//! it soundly (see `eval`).

use serde::Serialize;
use std::fmt;

/// A commodity code of 6 to 10 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HsCode {
    digits: String,
}

impl HsCode {
    /// Parses 6 to 10 ASCII digits (dots and spaces are not accepted).
    pub fn parse(s: &str) -> Option<HsCode> {
        let ok = (6..=10).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| HsCode {
            digits: s.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// The first `n` digits (n <= 6 is always available).
    pub fn prefix(&self, n: usize) -> &str {
        &self.digits[..n.min(self.digits.len())]
    }

    pub fn chapter(&self) -> u32 {
        self.digits[..2].parse().unwrap_or(0)
    }

    /// The code padded with zeros to 10 digits, as a number.
    pub fn low(&self) -> u64 {
        pad(&self.digits, b'0')
    }

    /// The code padded with nines to 10 digits: the last code it covers.
    pub fn high(&self) -> u64 {
        pad(&self.digits, b'9')
    }
}

fn pad(digits: &str, with: u8) -> u64 {
    let mut v: u64 = 0;
    for i in 0..10 {
        let d = digits.as_bytes().get(i).copied().unwrap_or(with);
        v = v * 10 + u64::from(d - b'0');
    }
    v
}

impl fmt::Display for HsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

impl Serialize for HsCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.digits)
    }
}

/// One named range: its label as the rule says it ("heading 7208 to 7217") and its bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HsRange {
    pub label: String,
    #[serde(skip)]
    pub lo: u64,
    #[serde(skip)]
    pub hi: u64,
}

/// A set of codes, possibly with described (uncoded) members.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HsSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<HsRange>,
    /// Materials named only by description; no code can be tested against them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub described: Vec<String>,
    /// Where described materials can be classified, when the rule says ("forged blanks of
    /// heading 7207"): codes outside these ranges are certainly not described members.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub described_within: Vec<HsRange>,
}

/// Whether a code belongs to a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    Yes,
    No,
    /// The set has described members and the code is not in its coded ranges.
    Maybe,
}

impl HsSet {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.described.is_empty()
    }

    pub fn described(text: &str) -> HsSet {
        HsSet {
            ranges: vec![],
            described: vec![text.to_string()],
            described_within: vec![],
        }
    }

    /// Adds a chapter (2 digits), heading (4) or subheading (6) by its digits.
    pub fn push_prefix(&mut self, digits: &str) -> bool {
        self.push_span(digits, digits)
    }

    /// Adds `from` to `to` (inclusive, same digit count).
    pub fn push_span(&mut self, from: &str, to: &str) -> bool {
        let level = |d: &str| match d.len() {
            2 => Some("chapter"),
            4 => Some("heading"),
            6 => Some("subheading"),
            8 | 10 => Some("code"),
            _ => None,
        };
        if !from.bytes().all(|b| b.is_ascii_digit()) || !to.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let (Some(kind), Some(_)) = (level(from), level(to)) else {
            return false;
        };
        let (lo, hi) = (pad(from, b'0'), pad(to, b'9'));
        if lo > hi {
            return false;
        }
        let label = if from == to {
            format!("{kind} {from}")
        } else {
            format!("{kind}s {from} to {to}")
        };
        self.ranges.push(HsRange { label, lo, hi });
        true
    }

    /// Adds a raw 10-digit range (a rule set's own range, "this group").
    pub fn push_bounds(&mut self, label: String, lo: u64, hi: u64) {
        self.ranges.push(HsRange { label, lo, hi });
    }

    pub fn extend(&mut self, other: &HsSet) {
        self.ranges.extend(other.ranges.iter().cloned());
        self.described.extend(other.described.iter().cloned());
        self.described_within
            .extend(other.described_within.iter().cloned());
    }

    /// Membership of a code: every code of the material must lie inside one range.
    pub fn member(&self, code: &HsCode) -> Member {
        let (lo, hi) = (code.low(), code.high());
        if self.ranges.iter().any(|r| r.lo <= lo && hi <= r.hi) {
            Member::Yes
        } else if self.described.is_empty() {
            Member::No
        } else if self.described_within.is_empty()
            || self
                .described_within
                .iter()
                .any(|r| r.lo <= hi && lo <= r.hi)
        {
            Member::Maybe
        } else {
            Member::No
        }
    }

    /// A short label: "chapter 04, headings 1701 to 1702".
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for r in &self.ranges {
            // Pieces of one named set ("heading 8305 other than subheading 830590") share
            // their label.
            if parts.last() != Some(&r.label) {
                parts.push(r.label.clone());
            }
        }
        parts.extend(self.described.iter().map(|d| format!("\"{d}\"")));
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_and_sets() {
        assert!(HsCode::parse("87149").is_none());
        assert!(HsCode::parse("87149100001").is_none());
        assert!(HsCode::parse("8714.91").is_none());
        let c = HsCode::parse("871491").unwrap();
        assert_eq!(c.low(), 8_714_910_000);
        assert_eq!(c.high(), 8_714_919_999);
        let mut s = HsSet::default();
        assert!(s.push_span("7208", "7217"));
        assert!(s.push_prefix("04"));
        assert_eq!(s.member(&HsCode::parse("721011").unwrap()), Member::Yes);
        assert_eq!(s.member(&HsCode::parse("040120").unwrap()), Member::Yes);
        assert_eq!(s.member(&HsCode::parse("7218100000").unwrap()), Member::No);
        s.described.push("forged blanks".into());
        assert_eq!(
            s.member(&HsCode::parse("7218100000").unwrap()),
            Member::Maybe
        );
        assert_eq!(
            s.label(),
            "headings 7208 to 7217, chapter 04, \"forged blanks\""
        );
    }
}
