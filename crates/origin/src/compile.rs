//! The rule compiler: product-specific rule prose to the structured grammar of [`crate::rule`].
//!
//! It reads the recurring phrasings of the three agreements (see the crate README for the
//! list). Anything it cannot read fully is an error naming what it could not read; the caller
//! then looks for an override, and failing that the rule set is `unsupported`. The compiler
//! never guesses at a partly understood sentence.

use std::str::FromStr;
use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;
use rust_decimal::Decimal;

use crate::hs::HsSet;
use crate::rule::{Alternative, Base, Condition, Level, Materials, WeightOf};

type R<T> = std::result::Result<T, String>;

fn re(pattern: &str) -> Regex {
    // Patterns are literals of this file; a broken one is caught by the unit tests.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}"))
}

macro_rules! regex {
    ($name:ident = $pat:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| re($pat));
    };
}

regex!(ABBR = r"<abbr[^>]*>([^<]*)</abbr>");
regex!(LINK = r"\[([^\]]*)\]\([^)]*\)");
regex!(SPACE = r"\s+");
regex!(UNTIL = r"\s*\(until (\d{1,2} [A-Za-z]+ \d{4})\)");
regex!(
    PERIOD = r"\s*\((\d{1,2})(?:st|nd|rd|th)? ([A-Za-z]+) (\d{4}) to (\d{1,2})(?:st|nd|rd|th)? ([A-Za-z]+) (\d{4})\)"
);
regex!(
    CHANGE_FROM_LIST = r"^A change from (.+?), whether or not there is also a change from any other (chapter|heading|subheading),? provided(?: that)?:? (.+)$"
);
regex!(
    ALLOWANCE = r"^However,? non-originating materials of (.+?) may be used, provided that their total value does not exceed (\d+(?:\.\d+)?)% of the ex-works price(?: \(EXW\))?(?: of the product)?(?: or (\d+(?:\.\d+)?)% of the Free on Board \(FOB\) (?:cost|price)(?: of the product)?)?$"
);
regex!(ONWARDS = r"\s*\((\d{1,2})(?:st|nd|rd|th)? ([A-Za-z]+) (\d{4}) onwards\)");
regex!(PARA_OR = r"\n\s*\n\s*or\s*\n\s*\n");
regex!(QUOTA = r"\s*-\s*within the limits of the applicable annual quota");
regex!(PCT = r"^(\d+(?:\.\d+)?)%");
regex!(
    CTC_TCA = r"^(CC|CTH|CTSH): All non-originating materials used in the production of the good have undergone a change in tariff classification at the \d-digit level \((?:chapter|tariff heading|subheading)\)"
);
regex!(CHANGE_OTHER = r"^A change from any other (chapter|heading|subheading)");
regex!(CHANGE_GROUP = r"^A change from any (?:other )?(heading|subheading) outside this group");
regex!(
    CHANGE_WITHIN = r"^(?:A c|C)hange from within (?:this|any one of these|any of these|the same) (chapter|heading|subheading)s?"
);
regex!(CHANGE_WITHIN_CODE = r"^A change from within (?:chapter|heading|subheading) [0-9.]+");
regex!(
    WHETHER = r"^,? ?whether or not there is also a change from (?:any other|another) (?:chapter|heading|subheading)s?(?:,? except (?:from )?(.+?))?,? provided(?: that)?:? (.+)$"
);
regex!(
    DESC_OF_CODE = r"^([a-z][a-z ()-]*?) of ((?:chapter|heading|subheading) [0-9.]+(?: (?:to|through) (?:chapter |heading |subheading )?[0-9.]+)?)(?: (containing [^,]+))?$"
);
regex!(ANY_HEADING = r"^Production from non-originating materials of any heading");
regex!(
    MAXNOM_TCA = r"^A maximum of (\d+(?:\.\d+)?)% of the ex-works price \(EXW\) is made up of non-originating parts \(MAXNOM\)"
);
regex!(
    RVC = r"^Your goods contain a Regional Value Content \(RVC\) of at least (\d+(?:\.\d+)?)% of the Free on Board \(FOB\) cost of the goods"
);
regex!(
    VALUE_ALL = r"^Production in which the value of all non-originating materials used does not exceed:? (?:- )?(\d+(?:\.\d+)?)% of the (.*)$"
);
regex!(NET_COST = r"^(\d+(?:\.\d+)?)% of the net cost of the product$");
regex!(
    PRODUCT_WO =
        r"^(?:All (?:the )?[A-Za-z][^%]{0,120} (?:are|is) wholly obtained|Wholly obtained)$"
);
regex!(MWO = r"^(?:all )?(?:the )?materials? of (.+?)(?: used)? (?:are|is) wholly obtained$");
regex!(MWO_DESC = r"^all (?:the )?([a-z ]+ materials) used are wholly obtained$");
regex!(
    SHARE = r"^the (?:total |net )?(weight|value) of (?:all )?(?:the )?non-originating (.+?) does not exceed (\d+(?:\.\d+)?)% of (.*)$"
);
regex!(
    WEIGHT_OF_SET = r"^the (?:net )?weight of (?:all )?(?:the )?materials? of (.+?) used(?: in the production of the product)?$"
);
regex!(
    VALUE_DESC = r"^the value of (?:the )?(?:non-originating )?(.+?)(?: used)? does not exceed (\d+(?:\.\d+)?)% of the (.*)$"
);
regex!(
    PROCESS_TAIL =
        r"^(?:the product is |the change is the result of |the non-originating materials )"
);

/// Markdown and HTML of the published prose reduced to plain text on one line.
pub fn normalize(raw: &str) -> String {
    let t = raw.replace("&nbsp;", " ");
    let t = ABBR.replace_all(&t, "$1");
    let t = LINK.replace_all(&t, "$1");
    let t = t
        .replace("**", "")
        .replace("*and*", "and")
        .replace("*or*", "or")
        .replace("non- originating", "non-originating")
        .replace("Non- originating", "Non-originating");
    let t = SPACE.replace_all(&t, " ");
    t.trim().to_string()
}

/// "Jan" and "January" alike.
fn month(m: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    MONTHS
        .iter()
        .find(|full| full.starts_with(m) && m.len() >= 3)
        .map(|f| f.to_string())
        .unwrap_or_else(|| m.to_string())
}

/// Canada: "A change from <codes>, whether or not there is also a change from any other
/// heading, provided that <conditions>": the listed materials are allowed (under the
/// conditions) besides a change of heading. Read only when the listed codes lie outside the
/// rule set's own classification, where it is exactly "CTH and the conditions".
pub fn change_from_list(text: &str, lo: u64, hi: u64) -> Option<R<Vec<Alternative>>> {
    let t = normalize(text);
    let t = t.trim_end_matches('.');
    let c = CHANGE_FROM_LIST.captures(t)?;
    if c[1].starts_with("within") || c[1].starts_with("any ") {
        return None;
    }
    Some((|| {
        let list = except_list(&c[1])?;
        let level = level_word(&c[2]);
        let digits = level.digits().ok_or("no level")?;
        let unit = 10u64.pow(10 - digits as u32);
        let (first, last) = (lo / unit * unit, (hi / unit + 1) * unit - 1);
        let overlaps = |r: &crate::hs::HsRange| r.lo <= last && first <= r.hi;
        if !list.described.is_empty()
            && (list.described_within.is_empty() || list.described_within.iter().any(overlaps))
        {
            return Err(format!(
                "the change from {:?} may be within the product's own {}",
                &c[1], &c[2]
            ));
        }
        if list.ranges.iter().any(overlaps) {
            // "A change from subheading 830590, whether or not there is also a change from
            // any other heading" for a product of heading 8305: the listed codes of the
            // product's own heading are allowed besides any other heading, so only the rest
            // of the own heading breaks the rule. Read only when the rule set lies in one
            // heading (subheading, chapter), whose codes are then known.
            if lo / unit != hi / unit {
                return Err(format!(
                    "the change from {:?} is within the product's own {}, and the rule set spans several",
                    &c[1], &c[2]
                ));
            }
            let own = format!("{} {:0w$}", &c[2], lo / unit, w = digits);
            let inside: Vec<String> = list
                .ranges
                .iter()
                .filter(|r| overlaps(r))
                .map(|r| r.label.clone())
                .collect();
            let label = format!("{own} other than {}", inside.join(", "));
            let except = complement(first, last, &list, &label);
            let alts = and(
                one(vec![Condition::ChangeOfClassification {
                    level: Level::Any,
                    except,
                }]),
                conditions(&c[3])?,
            );
            return Ok(alts
                .into_iter()
                .map(|conditions| Alternative {
                    conditions,
                    ..Alternative::default()
                })
                .collect());
        }
        let alts = and(one(vec![ctc(level)]), conditions(&c[3])?);
        Ok(alts
            .into_iter()
            .map(|conditions| Alternative {
                conditions,
                ..Alternative::default()
            })
            .collect())
    })())
}

/// The codes of `first..=last` outside the ranges of `list`, each piece labelled `label`.
fn complement(first: u64, last: u64, list: &HsSet, label: &str) -> HsSet {
    let mut cut: Vec<(u64, u64)> = list
        .ranges
        .iter()
        .filter(|r| r.lo <= last && first <= r.hi)
        .map(|r| (r.lo.max(first), r.hi.min(last)))
        .collect();
    cut.sort_unstable();
    let mut out = HsSet::default();
    let mut next = first;
    for (a, b) in cut {
        if a > next {
            out.push_bounds(label.to_string(), next, a - 1);
        }
        next = next.max(b.saturating_add(1));
    }
    if next <= last {
        out.push_bounds(label.to_string(), next, last);
    }
    out
}

/// "However, non-originating materials of <list> may be used, provided that their total
/// value does not exceed N% of the EXW", following a CTC rule of the same rule set: when the
/// list covers the product's whole heading (or subheading, for CTSH), the CTC binds only
/// through its exceptions, and the listed materials are capped.
/// Returns the extra alternatives to add (the FOB variants), if any.
pub fn allowance(
    text: &str,
    lo: u64,
    hi: u64,
    current: &mut [Alternative],
) -> Option<R<Vec<Alternative>>> {
    let t = normalize(text);
    let t = t.trim_end_matches('.');
    let c = ALLOWANCE.captures(t)?;
    Some((|| {
        let list = hs_list(&c[1])?;
        let percent = pct(&c[2])?;
        let fob = c.get(3).map(|m| pct(m.as_str())).transpose()?;
        for alt in current.iter_mut() {
            let mut done = false;
            for cond in alt.conditions.iter_mut() {
                if let Condition::ChangeOfClassification { level, except } = cond {
                    let digits = level
                        .digits()
                        .ok_or("an allowance after a rule of any heading")?;
                    let unit = 10u64.pow(10 - digits as u32);
                    let (first, last) = (lo / unit, hi / unit);
                    let covered = (first..=last).all(|k| {
                        list.ranges
                            .iter()
                            .any(|r| r.lo <= k * unit && (k + 1) * unit - 1 <= r.hi)
                    });
                    if !covered || last - first > 100 {
                        return Err(format!(
                            "the allowance {:?} does not cover the product's own classification",
                            &c[1]
                        ));
                    }
                    *cond = Condition::ChangeOfClassification {
                        level: Level::Any,
                        except: except.clone(),
                    };
                    done = true;
                    break;
                }
            }
            if !done {
                return Err(
                    "an allowance without a change-of-classification rule before it".into(),
                );
            }
            alt.conditions.push(Condition::MaxNom {
                percent,
                base: Base::Exw,
                of: Materials::Set(list.clone()),
            });
        }
        if let Some(fob) = fob {
            // "N% of the EXW or M% of the FOB": each alternative once per base.
            let with_fob: Vec<Alternative> = current
                .iter()
                .map(|a| {
                    let mut b = a.clone();
                    if let Some(Condition::MaxNom { percent, base, .. }) = b.conditions.last_mut() {
                        *percent = fob;
                        *base = Base::Fob;
                    }
                    b
                })
                .collect();
            return Ok(with_fob);
        }
        Ok(vec![])
    })())
}

fn pct(s: &str) -> R<Decimal> {
    Decimal::from_str(s).map_err(|_| format!("bad percentage {s:?}"))
}

fn date(s: &str) -> R<NaiveDate> {
    NaiveDate::parse_from_str(s, "%d %B %Y").map_err(|_| format!("bad date {s:?}"))
}

/// The base a value cap names ("ex-works price (EXW) of the product", "transaction value or
/// ex-works price of the product", "Free on Board (FOB) cost").
fn base(text: &str) -> R<Base> {
    let t = text.trim_end_matches('.').trim();
    let t = t.strip_prefix("the ").unwrap_or(t);
    let t = t.strip_suffix(" of the product").unwrap_or(t);
    let t = t.strip_suffix(" of the set").unwrap_or(t);
    match t {
        "ex-works price (EXW)" | "ex-works price" => Ok(Base::Exw),
        "transaction value or ex-works price" => Ok(Base::TransactionValueOrExw),
        "Free on Board (FOB) cost" | "Free on Board (FOB) price" => Ok(Base::Fob),
        "net cost" => Ok(Base::NetCost),
        other => Err(format!("unknown value base {other:?}")),
    }
}

/// A list of codes as the rules write them: "chapter 04", "heading 7208 to heading 7217",
/// "chapters 01, 2, 3 and 16", "subheading 170191 through 170199", "heading 10.06".
pub fn hs_list(text: &str) -> R<HsSet> {
    let mut set = HsSet::default();
    let cleaned = text.replace(',', " , ");
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    let mut i = 0;
    let mut kind_digits: Option<usize> = None;
    let number = |w: &str, kind: Option<usize>| -> Option<String> {
        let w = w.trim_end_matches('.');
        let digits: String = w.chars().filter(|c| *c != '.').collect();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if w.contains('.') && digits.len() != 4 {
            return None;
        }
        match (digits.len(), kind) {
            (1, _) => Some(format!("0{digits}")),
            (2 | 4 | 6 | 8 | 10, _) => Some(digits),
            _ => None,
        }
        .filter(|d| kind.is_none_or(|k| k == d.len() || (k == 2 && d.len() == 2)))
    };
    let kind_of = |w: &str| match w {
        "chapter" | "chapters" => Some(2),
        "heading" | "headings" => Some(4),
        "subheading" | "subheadings" => Some(6),
        _ => None,
    };
    let mut expect_item = true;
    while i < words.len() {
        let w = words[i];
        if let Some(k) = kind_of(w) {
            kind_digits = Some(k);
            i += 1;
            continue;
        }
        if !expect_item && matches!(w, "," | "and" | "or") {
            expect_item = true;
            i += 1;
            continue;
        }
        if matches!(w, "and" | "or") && expect_item {
            i += 1;
            continue;
        }
        let Some(from) = number(w, None) else {
            return Err(format!("cannot read codes in {text:?} at {w:?}"));
        };
        // A bare number takes the kind its digits say; a declared kind must agree.
        if let Some(k) = kind_digits {
            if k != from.len() && !(k == 2 && from.len() <= 2) {
                kind_digits = Some(from.len());
            }
        }
        i += 1;
        let mut to = from.clone();
        if i + 1 < words.len() && matches!(words[i], "to" | "through") {
            let mut j = i + 1;
            if kind_of(words[j]).is_some() {
                j += 1;
            }
            match words.get(j).and_then(|w| number(w, None)) {
                Some(t) if t.len() == from.len() => {
                    to = t;
                    i = j + 1;
                }
                _ => return Err(format!("cannot read the range in {text:?}")),
            }
        }
        if !set.push_span(&from, &to) {
            return Err(format!("bad code range {from} to {to}"));
        }
        expect_item = false;
    }
    if set.is_empty() {
        return Err(format!("no codes in {text:?}"));
    }
    Ok(set)
}

/// Compiles one rule (one entry of a rule set) into its alternatives.
pub fn compile_rule(raw: &str) -> R<Vec<Alternative>> {
    let mut out = Vec::new();
    for part in PARA_OR.split(raw) {
        out.extend(compile_part(part)?);
    }
    Ok(out)
}

fn compile_part(raw: &str) -> R<Vec<Alternative>> {
    let mut t = normalize(raw);
    let mut valid_to = None;
    if let Some(c) = UNTIL.captures(&t) {
        valid_to = Some(date(&c[1])?);
        t = UNTIL.replace_all(&t, "").to_string();
    }
    let mut valid_from = None;
    if let Some(c) = PERIOD.captures(&t) {
        valid_from = Some(date(&format!("{} {} {}", &c[1], month(&c[2]), &c[3]))?);
        valid_to = Some(date(&format!("{} {} {}", &c[4], month(&c[5]), &c[6]))?);
        t = PERIOD.replace_all(&t, "").to_string();
    }
    if let Some(c) = ONWARDS.captures(&t) {
        valid_from = Some(date(&format!("{} {} {}", &c[1], month(&c[2]), &c[3]))?);
        t = ONWARDS.replace_all(&t, "").to_string();
    }
    let quota = QUOTA.is_match(&t);
    if quota {
        t = QUOTA.replace_all(&t, "").to_string();
    }
    let t = t.trim().trim_end_matches('.').trim().to_string();
    let alts = sentence(&t)?;
    Ok(alts
        .into_iter()
        .map(|conditions| Alternative {
            conditions,
            valid_to,
            valid_from,
            quota,
        })
        .collect())
}

type Alts = Vec<Vec<Condition>>;

fn one(c: Vec<Condition>) -> Alts {
    vec![c]
}

/// AND of two lists of alternatives: every pair.
fn and(a: Alts, b: Alts) -> Alts {
    let mut out = Vec::new();
    for x in &a {
        for y in &b {
            let mut c = x.clone();
            c.extend(y.iter().cloned());
            out.push(c);
        }
    }
    out
}

/// Splits "HEAD, provided that TAIL" (also "in which").
fn split_tail(t: &str) -> (&str, Option<&str>) {
    for sep in [
        ", provided that",
        " provided that",
        ", in which",
        " in which",
    ] {
        if let Some(i) = t.find(sep) {
            return (
                &t[..i],
                Some(t[i + sep.len()..].trim_start_matches(':').trim()),
            );
        }
    }
    (t, None)
}

fn sentence(t: &str) -> R<Alts> {
    if PRODUCT_WO.is_match(t) && !t.contains("materials") && !t.contains("material of") {
        return Ok(one(vec![Condition::WhollyObtained]));
    }
    if let Some(rest) = t.strip_prefix("Production in which") {
        let rest = rest.trim_start_matches(':').trim();
        if let Some(c) = VALUE_ALL.captures(t) {
            let b = base(&c[2])?;
            return Ok(one(vec![Condition::MaxNom {
                percent: pct(&c[1])?,
                base: b,
                of: Materials::All,
            }]));
        }
        return conditions(rest);
    }
    if let Some(c) = NET_COST.captures(t) {
        return Ok(one(vec![Condition::MaxNom {
            percent: pct(&c[1])?,
            base: Base::NetCost,
            of: Materials::All,
        }]));
    }
    if let Some(c) = RVC.captures(t) {
        if c[0].len() != t.len() {
            return Err(format!("text after the RVC rule: {:?}", &t[c[0].len()..]));
        }
        return Ok(one(vec![Condition::Rvc {
            percent: pct(&c[1])?,
            base: Base::Fob,
        }]));
    }
    if let Some(c) = MAXNOM_TCA.captures(t) {
        if c[0].len() != t.len() {
            return Err(format!(
                "text after the MaxNOM rule: {:?}",
                &t[c[0].len()..]
            ));
        }
        return Ok(one(vec![maxnom_all(&c[1], Base::Exw)?]));
    }
    for (word, level) in [
        ("CTSH", Level::Subheading),
        ("CTH", Level::Heading),
        ("CC", Level::Chapter),
    ] {
        if let Some(r) = t.strip_prefix(word) {
            if r.is_empty() || r.starts_with(' ') || r.starts_with(',') {
                return ctc_rest(level, r);
            }
        }
    }
    if let Some(c) = CTC_TCA.captures(t) {
        let level = match &c[1] {
            "CC" => Level::Chapter,
            "CTH" => Level::Heading,
            _ => Level::Subheading,
        };
        return ctc_rest(level, &t[c[0].len()..]);
    }
    if let Some(c) = CHANGE_GROUP.captures(t) {
        // The group's own range is filled in by the caller (it is the rule set's range).
        let rest = &t[c[0].len()..];
        let mut alts = ctc_rest(level_word(&c[1]), rest)?;
        for a in &mut alts {
            for cond in a.iter_mut() {
                if let Condition::ChangeOfClassification { except, .. } = cond {
                    except.described.push(GROUP.to_string());
                }
            }
        }
        return Ok(alts);
    }
    if let Some(c) = CHANGE_OTHER.captures(t) {
        let level = level_word(&c[1]);
        return ctc_rest(level, &t[c[0].len()..]);
    }
    if let Some(c) = CHANGE_WITHIN.captures(t) {
        let level = level_word(&c[1]);
        let rest = t[c[0].len()..].trim_start_matches(',').trim();
        return change_within(level, rest);
    }
    if let Some(c) = CHANGE_WITHIN_CODE.captures(t) {
        // "A change from within heading 8517, whether or not there is also a change from any
        // other heading, provided that ...": materials of the named heading or of any other
        // heading, so only the conditions bind.
        return match WHETHER.captures(&t[c[0].len()..]) {
            Some(w) => whether(&w),
            None => Err(format!("cannot read {t:?}")),
        };
    }
    if let Some(c) = ANY_HEADING.captures(t) {
        return ctc_rest(Level::Any, &t[c[0].len()..]);
    }
    process(t)
}

/// Marker for "this group" in a CTC exception, replaced by the rule set's range.
pub const GROUP: &str = "\u{1}group";

fn level_word(w: &str) -> Level {
    match w {
        "chapter" => Level::Chapter,
        "heading" => Level::Heading,
        _ => Level::Subheading,
    }
}

fn ctc(level: Level) -> Condition {
    Condition::ChangeOfClassification {
        level,
        except: HsSet::default(),
    }
}

fn maxnom_all(p: &str, base: Base) -> R<Condition> {
    Ok(Condition::MaxNom {
        percent: pct(p)?,
        base,
        of: Materials::All,
    })
}

/// What follows "CTH: ... (tariff heading)" or "A change from any other heading".
fn ctc_rest(level: Level, rest: &str) -> R<Alts> {
    let mut rest = rest.trim().trim_start_matches(',').trim();
    let mut except = HsSet::default();
    // ", however, non-originating materials of the same heading as the product may be
    // used, provided that their total value does not exceed N% of the EXW": the same-heading
    // materials are allowed up to a cap, so only the cap remains of the CTC.
    for (lvl, word) in [
        (Level::Heading, "heading"),
        (Level::Subheading, "subheading"),
    ] {
        let allowance = format!("however, non-originating materials of the same {word} as the product may be used, provided that their total value does not exceed ");
        if let Some(r) = rest.strip_prefix(allowance.as_str()) {
            if level != lvl {
                return Err(format!("same-{word} allowance on a {} rule", level.short()));
            }
            let (p, b) = pct_of(r)?;
            return Ok(one(vec![Condition::MaxNom {
                percent: p,
                base: b,
                of: Materials::SameAs(lvl),
            }]));
        }
    }
    if let Some(r) = rest
        .strip_prefix("except from ")
        .or_else(|| rest.strip_prefix("except "))
    {
        let end = [
            ", provided that",
            " and A maximum",
            " and Your goods",
            " provided that",
            ", in which",
            " in which",
        ]
        .iter()
        .filter_map(|s| r.find(s))
        .min()
        .unwrap_or(r.len());
        except = except_list(r[..end].trim_end_matches(','))?;
        rest = r[end..].trim().trim_start_matches(',').trim();
    }
    let mut alts = one(vec![Condition::ChangeOfClassification { level, except }]);
    if let Some(r) = rest.strip_prefix("and ") {
        return Ok(and(alts, sentence(r.trim())?));
    }
    let tail = rest
        .strip_prefix("provided that")
        .or_else(|| rest.strip_prefix("in which"));
    match tail {
        Some(t) => alts = and(alts, conditions(t.trim_start_matches(':'))?),
        None if rest.is_empty() => {}
        None => return Err(format!("cannot read {rest:?} after the CTC rule")),
    }
    Ok(alts)
}

/// The list after "except from": codes ("non-originating materials of heading 7106"),
/// "yarn of heading 5004 to 5006, ...", a description ("non-originating forged blanks"),
/// a description with where it is classified ("dairy preparations of subheading 190190
/// containing more than 10% by dry weight of milk solids"), or codes and such a
/// description joined by "or" / "and from" ("chapter 4 or dairy preparations of ...").
fn except_list(list: &str) -> R<HsSet> {
    let l = list.trim();
    let first = match except_item(l) {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    for sep in [" or ", ", ", " and from "] {
        for (i, _) in l.match_indices(sep) {
            let (left, right) = (l[..i].trim_end_matches(','), &l[i + sep.len()..]);
            let left = left
                .strip_prefix("non-originating materials of ")
                .or_else(|| left.strip_prefix("materials of "))
                .unwrap_or(left);
            if let (Ok(mut a), Ok(b)) = (hs_list(left), except_item(right)) {
                if !b.described.is_empty() {
                    a.extend(&b);
                    return Ok(a);
                }
            }
        }
    }
    Err(first)
}

fn except_item(list: &str) -> R<HsSet> {
    let l = list.trim();
    let l = l
        .strip_prefix("non-originating materials of ")
        .or_else(|| l.strip_prefix("materials of "))
        .unwrap_or(l);
    if let Ok(s) = hs_list(l) {
        return Ok(s);
    }
    for lead in ["yarn of ", "fabric of ", "fibres of "] {
        if let Some(r) = l.strip_prefix(lead) {
            return hs_list(r);
        }
    }
    let d = l.strip_prefix("non-originating ").unwrap_or(l);
    if !d.chars().any(|c| c.is_ascii_digit()) && d.len() < 120 && l.starts_with("non-originating ")
    {
        return Ok(HsSet::described(d));
    }
    // "dairy preparations of subheading 190190 containing more than 10% by dry weight of milk
    // solids": described (with the qualifier), classified within the codes.
    if let Some(c) = DESC_OF_CODE.captures(d) {
        if let Ok(within) = hs_list(&c[2]) {
            let mut s = HsSet::described(if c.get(3).is_some() { d } else { c[1].trim() });
            s.described_within = within.ranges;
            return Ok(s);
        }
    }
    // "forged blanks of heading 7207": described materials, classified within the codes.
    if let Some((desc, codes)) = d.split_once(" of ") {
        if !desc.chars().any(|c| c.is_ascii_digit()) && !desc.contains(',') && desc.len() < 80 {
            if let Ok(within) = hs_list(codes) {
                let mut s = HsSet::described(desc);
                s.described_within = within.ranges;
                return Ok(s);
            }
        }
    }
    Err(format!("cannot read the exception {l:?}"))
}

/// "N% of the ex-works price (EXW) of the product" → (N, base).
fn pct_of(r: &str) -> R<(Decimal, Base)> {
    let r = r.trim().trim_end_matches('.');
    let c = PCT
        .captures(r)
        .ok_or_else(|| format!("no percentage in {r:?}"))?;
    let p = pct(&c[1])?;
    let rest = r[c[0].len()..].trim();
    let rest = rest
        .strip_prefix("of the ")
        .ok_or_else(|| format!("cannot read the base in {r:?}"))?;
    Ok((p, base(rest)?))
}

/// Canada: "A change from within this heading, whether or not ..., provided that the value
/// of non-originating materials of this heading does not exceed N% of ...", or "... or any
/// other heading".
fn change_within(level: Level, rest: &str) -> R<Alts> {
    if rest.starts_with("or any other ") || rest.starts_with("or any ") {
        let after = rest
            .split_once(" heading")
            .or_else(|| rest.split_once(" subheading"));
        let tail = after.map(|(_, a)| a.trim()).unwrap_or("");
        let tail = tail.trim_start_matches('s').trim();
        if tail.is_empty() {
            return Ok(one(vec![ctc(Level::Any)]));
        }
        if let Some(r) = tail.strip_prefix(", except from ") {
            return Ok(one(vec![Condition::ChangeOfClassification {
                level: Level::Any,
                except: except_list(r)?,
            }]));
        }
        let (_, t) = split_tail(tail);
        return match t {
            Some(t) => and(one(vec![ctc(Level::Any)]), conditions(t)?).pipe(Ok),
            None => Err(format!("cannot read {tail:?}")),
        };
    }
    // "A change from within this heading or heading 8708, whether or not there is also a
    // change from any other heading, provided that <conditions>": with the "whether or not"
    // clause, materials of any heading are allowed, so only the conditions bind. Extra codes
    // after "within this heading" are read only with that clause.
    if let Some(i) = rest.find("whether or not") {
        let extra = rest[..i].trim().trim_end_matches(',').trim();
        let extra_ok =
            extra.is_empty() || hs_list(extra.strip_prefix("or ").unwrap_or(extra)).is_ok();
        if let (true, Some(w)) = (extra_ok, WHETHER.captures(&rest[i..])) {
            return whether(&w);
        }
    }
    let (_, tail) = split_tail(rest);
    let tail =
        tail.ok_or_else(|| format!("no condition after 'a change from within': {rest:?}"))?;
    let same = [
        "the value of non-originating materials of this heading does not exceed ",
        "the value of non-originating materials of this subheading does not exceed ",
        "the value of non-originating materials classified in the same heading as the final product does not exceed ",
        "the value of non-originating materials classified in the same subheading as the final product does not exceed ",
    ];
    for s in same {
        if let Some(r) = tail.strip_prefix(s) {
            let (p, b) = pct_of(r)?;
            return Ok(one(vec![Condition::MaxNom {
                percent: p,
                base: b,
                of: Materials::SameAs(level),
            }]));
        }
    }
    Err(format!("cannot read the condition {tail:?}"))
}

/// The "whether or not there is also a change from any other heading[, except from X],
/// provided that <conditions>" of a change from within: materials of any heading but X.
fn whether(w: &regex::Captures) -> R<Alts> {
    let conds = conditions(&w[2])?;
    match w.get(1) {
        None => Ok(conds),
        Some(x) => Ok(and(
            one(vec![Condition::ChangeOfClassification {
                level: Level::Any,
                except: except_list(x.as_str())?,
            }]),
            conds,
        )),
    }
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// The conditions after "provided that" / "in which": bullets or one sentence, joined by
/// "and". In a bullet list, items joined by ", or" are a choice, and a choice binds tighter
/// than "and" (CETA: "(a) X, or Y; and (b) Z").
fn conditions(tail: &str) -> R<Alts> {
    let t = tail
        .trim()
        .trim_start_matches(':')
        .trim()
        .trim_end_matches('.')
        .trim();
    if let Some(i) = t.find(". Note:") {
        return Err(format!(
            "a note the compiler does not read: {:?}",
            &t[i + 2..]
        ));
    }
    let bullets = t.starts_with("- ") || t.contains(" - ");
    let parts: Vec<String> = if bullets {
        t.split(" - ")
            .map(|p| p.trim_start_matches("- ").to_string())
            .collect()
    } else {
        split_and(t)
    };
    let mut alts = one(vec![]);
    let mut group: Option<Alts> = None;
    for p in parts {
        let p = p.trim().trim_start_matches(':').trim();
        if p.is_empty() {
            continue;
        }
        let or_next = bullets && (p.ends_with(", or") || p.ends_with(" or"));
        let p = p
            .trim_end_matches(", or")
            .trim_end_matches(" or")
            .trim_end_matches(", and")
            .trim_end_matches(" and")
            .trim_end_matches(',')
            .trim_end_matches(';')
            .trim_end_matches('.')
            .trim();
        let c = condition(p)?;
        group = Some(match group {
            None => c,
            Some(mut g) => {
                g.extend(c);
                g
            }
        });
        if !or_next {
            if let Some(g) = group.take() {
                alts = and(alts, g);
            }
        }
    }
    if group.is_some() {
        return Err("a choice with nothing after its 'or'".into());
    }
    Ok(alts)
}

/// Splits "X and the Y" / "X, and all the Y" between conditions (not inside lists of codes).
fn split_and(t: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = t;
    loop {
        let cut = [", and the ", " and the ", ", and all ", " and all "]
            .iter()
            .filter_map(|s| {
                rest.find(s)
                    .map(|i| (i, s.len() - "the ".len().min(s.len())))
            })
            .min_by_key(|(i, _)| *i);
        match cut {
            Some((i, _)) => {
                out.push(rest[..i].to_string());
                let after = &rest[i..];
                let after = after
                    .trim_start_matches(',')
                    .trim_start()
                    .trim_start_matches("and ")
                    .trim_start();
                rest = after;
            }
            None => {
                out.push(rest.to_string());
                return out;
            }
        }
    }
}

fn condition(p: &str) -> R<Alts> {
    if let Some(c) = MWO.captures(p) {
        return Ok(one(vec![Condition::MaterialsWhollyObtained {
            of: hs_list(&c[1])?,
        }]));
    }
    if let Some(c) = MWO_DESC.captures(p) {
        return Ok(one(vec![Condition::MaterialsWhollyObtained {
            of: HsSet::described(&c[1]),
        }]));
    }
    if let Some(c) = SHARE.captures(p) {
        let of = materials_phrase(&c[2])?;
        let percent = &c[3];
        let rest = &c[4];
        if &c[1] == "value" {
            return value_caps(of, percent, rest);
        }
        let percent = pct(percent)?;
        let rest = rest.trim();
        let weights: Vec<WeightOf> = match rest {
            // "the weight of the net weight of the product" (Canada 1902, a slip of the text).
            "the weight of the product"
            | "the net weight of the product"
            | "the weight of the net weight of the product" => vec![WeightOf::Product],
            "either the net weight of the product or the net weight of all material used in production" => {
                vec![WeightOf::Product, WeightOf::AllMaterials]
            }
            other => {
                let Some(c2) = WEIGHT_OF_SET.captures(other) else {
                    return Err(format!("cannot read the weight base {other:?}"));
                };
                vec![WeightOf::Materials(hs_list(&c2[1])?)]
            }
        };
        return Ok(weights
            .into_iter()
            .map(|w| {
                vec![Condition::MaxWeight {
                    percent,
                    of: of.clone(),
                    of_weight: w,
                }]
            })
            .collect());
    }
    if let Some(c) = VALUE_DESC.captures(p) {
        let d = c[1].trim();
        if d.chars().any(|ch| ch.is_ascii_digit()) {
            return Err(format!("cannot read the materials {d:?}"));
        }
        return value_caps(Materials::Set(HsSet::described(d)), &c[2], &c[3]);
    }
    if PROCESS_TAIL.is_match(p) {
        return Ok(one(vec![specific(p)]));
    }
    Err(format!("cannot read the condition {p:?}"))
}

/// The materials a share counts: "materials used" (all), "materials of heading 1701",
/// "materials of this heading", "material classified in the same subheading as the final
/// product", a description ("sugar", "unembroidered fabric"), or a union joined by
/// "and non-originating".
fn materials_phrase(s: &str) -> R<Materials> {
    let s = s.trim();
    let s = s.strip_suffix(" used in production").unwrap_or(s);
    let s = s.strip_suffix(" used").unwrap_or(s);
    if let Some((a, b)) = s.split_once(" and non-originating ") {
        let (Materials::Set(mut x), Materials::Set(y)) =
            (materials_phrase(a)?, materials_phrase(b)?)
        else {
            return Err(format!("cannot combine the materials {s:?}"));
        };
        x.extend(&y);
        return Ok(Materials::Set(x));
    }
    // "materials of this heading or heading 8708", "materials classified in the same heading
    // as the final product or heading 8466".
    for (lvl, phrases) in [
        (
            Level::Heading,
            [
                "materials of this heading or ",
                "materials classified in the same heading as the final product or ",
            ],
        ),
        (
            Level::Subheading,
            [
                "materials of this subheading or ",
                "materials classified in the same subheading as the final product or ",
            ],
        ),
    ] {
        for p in phrases {
            if let Some(codes) = s.strip_prefix(p) {
                return Ok(Materials::SameAsOr(lvl, hs_list(codes)?));
            }
        }
    }
    match s {
        "materials" | "material" => return Ok(Materials::All),
        "materials of this heading"
        | "material of this heading"
        | "materials classified in the same heading as the final product"
        | "material classified in the same heading as the final product" => {
            return Ok(Materials::SameAs(Level::Heading))
        }
        "materials of this subheading"
        | "material from within that subheading"
        | "materials classified in the same subheading as the final product"
        | "material classified in the same subheading as the final product" => {
            return Ok(Materials::SameAs(Level::Subheading))
        }
        _ => {}
    }
    for lead in [
        "materials of ",
        "material of ",
        "materials classified in ",
        "material classified in ",
        "component products of ",
    ] {
        if let Some(list) = s.strip_prefix(lead) {
            return Ok(Materials::Set(hs_list(list)?));
        }
    }
    // "forged blanks of heading 7207": described, classified within the codes.
    if let Some(c) = DESC_OF_CODE.captures(s) {
        if c.get(3).is_none() && !c[1].starts_with("material") {
            let mut set = HsSet::described(c[1].trim());
            set.described_within = hs_list(&c[2])?.ranges;
            return Ok(Materials::Set(set));
        }
    }
    if s.chars().any(|c| c.is_ascii_digit()) || s.len() > 80 || s.contains(',') {
        return Err(format!("cannot read the materials {s:?}"));
    }
    Ok(Materials::Set(HsSet::described(s)))
}

/// "N% of the ex-works price (EXW) [or M% of the Free on Board (FOB) cost] of the product".
fn value_caps(of: Materials, p: &str, rest: &str) -> R<Alts> {
    let rest = rest.trim().trim_end_matches('.');
    if let Some((exw, fob)) = rest.split_once(" or ") {
        if let Some(c) = PCT.captures(fob.trim()) {
            let b1 = base(exw)?;
            let fob_rest = fob.trim()[c[0].len()..].trim();
            let b2 = base(fob_rest.strip_prefix("of the ").unwrap_or(fob_rest))?;
            return Ok(vec![
                vec![Condition::MaxNom {
                    percent: pct(p)?,
                    base: b1,
                    of: of.clone(),
                }],
                vec![Condition::MaxNom {
                    percent: pct(&c[1])?,
                    base: b2,
                    of,
                }],
            ]);
        }
    }
    Ok(one(vec![Condition::MaxNom {
        percent: pct(p)?,
        base: base(rest)?,
        of,
    }]))
}

/// Words that begin a manufacturing-process rule.
const PROCESS_WORDS: &[&str] = &[
    "A chemical reaction",
    "Weaving",
    "Spinning",
    "Knitting",
    "Extrusion",
    "Printing",
    "Making-up",
    "Making up",
    "Dyeing",
    "Yarn dyeing",
    "Twisting",
    "Flocking",
    "Tufting",
    "Coating",
    "Calendaring",
    "Calendering",
    "Rubberising",
    "Embroidering",
    "Carding",
    "Non-woven fabric formation",
    "Nonwoven fabric formation",
    "Production from",
    "Manufacture from",
    "Assembly of",
    "Surfacing of",
    "Electrolytic",
    "Fusion or alloying",
    "Thermal or electrolytic",
    "Blending",
    "Mixing",
    "Refining",
    "Distillation",
    "Purification",
    "Non-originating materials undergo",
    "Dyeing of yarn",
    "Bleaching",
    "Scouring",
    "Bonding",
    "Separation",
    "Cutting",
    "Impregnation",
    "A change to ",
    "Retreading",
    "Tempering",
    "Non-originating materials used undergo",
    "All non-originating",
];

/// A process rule, with an optional value cap ("provided that the value of X used does not
/// exceed N% of the EXW").
fn process(t: &str) -> R<Alts> {
    if !PROCESS_WORDS.iter().any(|w| t.starts_with(w)) {
        return Err(format!("not a recognised rule: {t:?}"));
    }
    // A Canada "A change to <goods> from any other chapter" names a kind of good; only the
    // plain "from any other chapter/heading/subheading" form is read.
    if let Some(r) = t.strip_prefix("A change to ") {
        let Some((goods, from)) = r.rsplit_once(", from any other ") else {
            return Err(format!("cannot read {t:?}"));
        };
        if from.contains(' ') {
            return Err(format!("cannot read {t:?}"));
        }
        return Ok(one(vec![
            ctc(level_word(from)),
            specific(&format!("the product is {goods}")),
        ]));
    }
    let (head, tail) = split_tail(t);
    if head.contains('%') {
        return Err(format!("a percentage inside a process rule: {head:?}"));
    }
    if head.contains("However") || head.contains(" may be used") {
        return Err(format!("an allowance inside a process rule: {head:?}"));
    }
    let head_alts = one(vec![specific(head.trim_end_matches(','))]);
    match tail {
        None => Ok(head_alts),
        Some(tail) => Ok(and(head_alts, conditions(tail)?)),
    }
}

fn specific(text: &str) -> Condition {
    let text = text.trim().trim_end_matches('.').trim().to_string();
    Condition::SpecificProcess {
        code: process_code(&text),
        text,
    }
}

/// A stable code for a process text: its words, lower-case, joined by hyphens, at most 64
/// characters ("weaving-combined-with-making-up-including-cutting-of-fabric").
pub fn process_code(text: &str) -> String {
    let mut code = String::new();
    for word in text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let next = word.to_ascii_lowercase();
        if code.len() + next.len() + 1 > 64 {
            break;
        }
        if !code.is_empty() {
            code.push('-');
        }
        code.push_str(&next);
    }
    code
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn conds(raw: &str) -> Vec<Vec<Condition>> {
        compile_rule(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .into_iter()
            .map(|a| a.conditions)
            .collect()
    }

    #[test]
    fn normalizes_markup() {
        assert_eq!(
            normalize("<abbr title='x'>CTH</abbr>: of [heading&nbsp;7106](/headings/7106), **50%**\n\n- a *and*"),
            "CTH: of heading 7106, 50% - a and"
        );
    }

    #[test]
    fn reads_code_lists() {
        let s = hs_list("chapters 01, 2, 3 and 16").unwrap();
        assert_eq!(s.label(), "chapter 01, chapter 02, chapter 03, chapter 16");
        let s =
            hs_list("heading 7213 to heading 7217, heading 7221 to heading 7223 and 7225 to 7229")
                .unwrap();
        assert_eq!(
            s.label(),
            "headings 7213 to 7217, headings 7221 to 7223, headings 7225 to 7229"
        );
        let s = hs_list("subheading 170191 through 170199").unwrap();
        assert_eq!(s.label(), "subheadings 170191 to 170199");
        assert_eq!(hs_list("heading 10.06").unwrap().label(), "heading 1006");
        assert!(hs_list("dried potatoes of subheading 071290").is_err());
    }

    #[test]
    fn reads_the_common_phrasings() {
        let cth = "<abbr title='Change of tariff heading'>CTH</abbr>: All non-originating materials used in the production of the good have undergone a change in tariff classification at the 4-digit level (tariff heading).";
        assert_eq!(conds(cth), vec![vec![ctc(Level::Heading)]]);
        let m = conds("A maximum of **50%** of the ex-works price (EXW) is made up of non-originating parts (MAXNOM).");
        assert_eq!(
            m[0][0],
            Condition::MaxNom {
                percent: Decimal::from(50),
                base: Base::Exw,
                of: Materials::All
            }
        );
        let r = conds("Your goods contain a Regional Value Content (RVC) of at least **55%** of the Free on Board (FOB) cost of the goods.");
        assert_eq!(
            r[0][0],
            Condition::Rvc {
                percent: Decimal::from(55),
                base: Base::Fob
            }
        );
        let dated = compile_rule("A maximum of **70%** of the ex-works price (EXW) is made up of non-originating parts (MAXNOM) (until 31 December 2023).").unwrap();
        assert_eq!(dated[0].valid_to, NaiveDate::from_ymd_opt(2023, 12, 31));
        let japan = conds("Making-up including cutting of fabric, provided that the value of non-originating materials used does not exceed **50%** of the ex-works price (EXW) or **45%** of the Free on Board (FOB) cost of the product.");
        assert_eq!(japan.len(), 2, "{japan:?}");
        let canada = conds("A change from within this heading, whether or not there is also a change from any other heading, provided that the value of non-originating materials of this heading does not exceed **50%** of the transaction value or ex-works price of the product.");
        assert_eq!(
            canada[0][0],
            Condition::MaxNom {
                percent: Decimal::from(50),
                base: Base::TransactionValueOrExw,
                of: Materials::SameAs(Level::Heading)
            }
        );
        let w = conds("<abbr title='Change of tariff heading'>CTH</abbr>: All non-originating materials used in the production of the good have undergone a change in tariff classification at the 4-digit level (tariff heading), provided that:\n\n- all the materials of [chapter&nbsp;4](/chapters/04) used are wholly obtained, *and*\n\n- the total weight of non-originating materials of [heading&nbsp;1701](/headings/1701) and [heading&nbsp;1702](/headings/1702) used does not exceed **40%** of the weight of the product.");
        assert_eq!(w[0].len(), 3, "{w:?}");
        assert!(
            matches!(&w[0][1], Condition::MaterialsWhollyObtained { of } if of.label() == "chapter 04")
        );
        assert!(
            matches!(&w[0][2], Condition::MaxWeight { percent, .. } if *percent == Decimal::from(40))
        );
        let ex = conds("<abbr title='Change of tariff chapter'>CC</abbr>: All non-originating materials used in the production of the good have undergone a change in tariff classification at the 2-digit level (chapter) except from non-originating materials of [heading&nbsp;7208](/headings/7208) to [heading&nbsp;7217](/headings/7217).");
        assert!(
            matches!(&ex[0][0], Condition::ChangeOfClassification { level: Level::Chapter, except } if except.label() == "headings 7208 to 7217")
        );
        let ctc_and_max = conds("<abbr title='Change of tariff heading'>CTH</abbr>: All non-originating materials used in the production of the good have undergone a change in tariff classification at the 4-digit level (tariff heading) and A maximum of **50%** of the ex-works price (EXW) is made up of non-originating parts (MAXNOM).");
        assert_eq!(ctc_and_max[0].len(), 2);
        assert!(compile_rule(
            "However, non-originating mustard flour or meal or prepared mustard may be used."
        )
        .is_err());
        let p = conds("Weaving, combined with making-up, including cutting of fabric.");
        assert!(
            matches!(&p[0][0], Condition::SpecificProcess { code, .. } if code == "weaving-combined-with-making-up-including-cutting-of-fabric")
        );
    }

    fn from_list(raw: &str, lo: u64, hi: u64) -> Vec<Vec<Condition>> {
        change_from_list(raw, lo, hi)
            .unwrap_or_else(|| panic!("not a change-from list: {raw}"))
            .unwrap_or_else(|e| panic!("{raw}: {e}"))
            .into_iter()
            .map(|a| a.conditions)
            .collect()
    }

    fn code(s: &str) -> crate::hs::HsCode {
        crate::hs::HsCode::parse(s).unwrap()
    }

    /// Canada 8305: the listed subheading lies in the product's own heading, so the rest of
    /// heading 8305 is excepted and the listed subheading is capped.
    #[test]
    fn change_from_a_subheading_of_the_own_heading() {
        let raw = "A change from [subheading&nbsp;830590](/subheadings/8305900000-80), whether or not there is also a change from any other heading, provided that the value of non-originating materials of [subheading&nbsp;830590](/subheadings/8305900000-80) does not exceed **50%** of the transaction value or ex-works price of the product.";
        let a = from_list(raw, 8_305_000_000, 8_305_999_999);
        assert_eq!(a.len(), 1);
        let Condition::ChangeOfClassification { level, except } = &a[0][0] else {
            panic!("{a:?}")
        };
        assert_eq!(*level, Level::Any);
        assert_eq!(except.label(), "heading 8305 other than subheading 830590");
        assert_eq!(except.member(&code("830520")), crate::hs::Member::Yes);
        assert_eq!(except.member(&code("830510")), crate::hs::Member::Yes);
        assert_eq!(except.member(&code("830590")), crate::hs::Member::No);
        assert_eq!(except.member(&code("730890")), crate::hs::Member::No);
        assert!(
            matches!(&a[0][1], Condition::MaxNom { percent, base: Base::TransactionValueOrExw, of: Materials::Set(s) } if *percent == Decimal::from(50) && s.label() == "subheading 830590")
        );
        // Canada 820713: one listed code inside the own heading, one outside.
        let raw = "A change from [subheading&nbsp;820719](/subheadings/8207190000-80) or [heading&nbsp;8209](/headings/8209), whether or not there is also a change from any other heading, provided that the value of non-originating materials of [subheading&nbsp;820719](/subheadings/8207190000-80) or [heading&nbsp;8209](/headings/8209) does not exceed **50%** of the transaction value or ex-works price of the product.";
        let a = from_list(raw, 8_207_130_000, 8_207_139_999);
        let Condition::ChangeOfClassification { except, .. } = &a[0][0] else {
            panic!("{a:?}")
        };
        assert_eq!(except.label(), "heading 8207 other than subheading 820719");
        assert_eq!(except.member(&code("820713")), crate::hs::Member::Yes);
        assert_eq!(except.member(&code("820719")), crate::hs::Member::No);
        assert_eq!(except.member(&code("820900")), crate::hs::Member::No);
        // A rule set spanning several headings has no single own heading to complement.
        assert!(change_from_list(raw, 8_206_000_000, 8_207_999_999)
            .unwrap()
            .is_err());
    }

    /// Canada 730721-730729, 8519-8521, 8206, 380910: listed materials outside the own
    /// heading, written as described materials, "classified in", "component products", and
    /// "provided" without "that".
    #[test]
    fn change_from_materials_outside_the_own_heading() {
        let a = from_list("A change from forged blanks of [heading&nbsp;7207](/headings/7207), whether or not there is also a change from any other heading, provided that the value of the non-originating forged blanks of [heading&nbsp;7207](/headings/7207) does not exceed **50%** of the transaction value or ex-works price of the product.", 7_307_210_000, 7_307_299_999);
        assert_eq!(a[0][0], ctc(Level::Heading));
        assert!(
            matches!(&a[0][1], Condition::MaxNom { of: Materials::Set(s), .. } if s.described == vec!["forged blanks".to_string()] && s.member(&code("720711")) == crate::hs::Member::Maybe && s.member(&code("720810")) == crate::hs::Member::No)
        );
        let a = from_list("A change from [heading&nbsp;8522](/headings/8522), whether or not there is also a change from any other heading, provided that the value of non-originating materials classified in [heading&nbsp;8522](/headings/8522) does not exceed **50%** of the transaction value or ex-works price of the product.", 8_519_000_000, 8_521_999_999);
        assert!(
            matches!(&a[0][1], Condition::MaxNom { of: Materials::Set(s), .. } if s.label() == "heading 8522")
        );
        let a = from_list("A change from [heading&nbsp;8202](/headings/8202) to [heading&nbsp;8205](/headings/8205), whether or not there is also a change from any other heading, provided that the value of the non-originating component products of [heading&nbsp;8202](/headings/8202) to [heading&nbsp;8205](/headings/8205) does not exceed **25%** of the transaction value or ex-works price of the set.", 8_206_000_000, 8_206_999_999);
        assert!(
            matches!(&a[0][1], Condition::MaxNom { percent, of: Materials::Set(s), .. } if *percent == Decimal::from(25) && s.label() == "headings 8202 to 8205")
        );
        let a = from_list("A change from [heading&nbsp;1006](/headings/1006) or [heading&nbsp;1101](/headings/1101) to [heading&nbsp;1108](/headings/1108), whether or not there is also a change from any other heading, provided the weight of non-originating materials of [heading&nbsp;1006](/headings/1006) or [heading&nbsp;1101](/headings/1101) to [heading&nbsp;1108](/headings/1108) used in production does not exceed **20%** of the net weight of the product.", 3_809_100_000, 3_809_199_999);
        assert!(
            matches!(&a[0][1], Condition::MaxWeight { of_weight: WeightOf::Product, of: Materials::Set(s), .. } if s.label() == "heading 1006, headings 1101 to 1108")
        );
    }

    /// Canada "a change from within this heading [or heading X] / heading 8517 / this
    /// chapter / the same subheading, whether or not ..., provided that <conditions>".
    #[test]
    fn change_from_within_with_conditions() {
        let a = conds("A change from within this heading or [heading&nbsp;8708](/headings/8708), whether or not there is also a change from any other heading, provided that the value of non-originating materials of this heading or [heading&nbsp;8708](/headings/8708) does not exceed **50%** of the transaction value or ex-works price of the product.");
        assert!(
            matches!(&a[0][..], [Condition::MaxNom { of: Materials::SameAsOr(Level::Heading, s), .. }] if s.label() == "heading 8708")
        );
        let a = conds("A change from within this heading, [heading&nbsp;8407](/headings/8407), [heading&nbsp;8408](/headings/8408) or [heading&nbsp;8708](/headings/8708), whether or not there is also a change from any other heading, provided that the value of non-originating materials of this heading or [heading&nbsp;8407](/headings/8407), [heading&nbsp;8408](/headings/8408) or [heading&nbsp;8708](/headings/8708) does not exceed **50%** of the transaction value or ex-works price of the product.");
        assert!(
            matches!(&a[0][..], [Condition::MaxNom { of: Materials::SameAsOr(Level::Heading, s), .. }] if s.label() == "heading 8407, heading 8408, heading 8708")
        );
        let a = conds("A change from within any one of these heading or [heading&nbsp;8466](/headings/8466), whether or not there is also a change from any other heading, provided that the value of non-originating materials classified in the same heading as the final product or [heading&nbsp;8466](/headings/8466) does not exceed **50%** of the transaction value or ex-works price of the product.");
        assert!(matches!(
            &a[0][..],
            [Condition::MaxNom {
                of: Materials::SameAsOr(Level::Heading, _),
                ..
            }]
        ));
        let a = conds("A change from within [heading&nbsp;8517](/headings/8517), whether or not there is also a change from any other heading, provided that the value of non-originating materials of [heading&nbsp;8517](/headings/8517) does not exceed **50%** of the transaction value or ex-works price of the product.");
        assert!(
            matches!(&a[0][..], [Condition::MaxNom { of: Materials::Set(s), .. }] if s.label() == "heading 8517")
        );
        let a = conds("A change from within this chapter, whether or not there is also a change from any other chapter, provided that the value of non-originating materials of [chapter&nbsp;89](/chapters/89) does not exceed **40%** of the transaction value or ex-works price of the product.");
        assert!(
            matches!(&a[0][..], [Condition::MaxNom { percent, of: Materials::Set(s), .. }] if *percent == Decimal::from(40) && s.label() == "chapter 89")
        );
        // 190410: a weight cap against either of two weights is two alternatives.
        let a = conds("A change from within this heading, whether or not there is also a change from any other heading, provided that the weight of the non-originating materials of this heading does not exceed **30%** of either the net weight of the product or the net weight of all material used in production.");
        assert_eq!(a.len(), 2);
        assert!(matches!(
            &a[1][..],
            [Condition::MaxWeight {
                of: Materials::SameAs(Level::Heading),
                of_weight: WeightOf::AllMaterials,
                ..
            }]
        ));
        // 210610: "material from within that subheading".
        let a = conds("A change from within the same subheading, whether or not there is also a change from any other subheading, provided that the net weight of non-originating material from within that subheading does not exceed **30%** of either the net weight of the product or the net weight of all material used in production.");
        assert!(matches!(
            &a[0][..],
            [Condition::MaxWeight {
                of: Materials::SameAs(Level::Subheading),
                of_weight: WeightOf::Product,
                ..
            }]
        ));
        // 710610-710692: "from another subheading" and a process condition.
        let a = conds("A change from within any one of these subheading, whether or not there is also a change from another subheading, provided that the non-originating materials classified in the same subheading as the final product undergo electrolytic, thermal or chemical separation or alloying.");
        assert!(matches!(&a[0][..], [Condition::SpecificProcess { .. }]));
        // 340130: "Change from within ... any other heading except subheading 340290".
        let a = conds("Change from within this heading, whether or not there is also a change from any other heading except [subheading&nbsp;340290](/subheadings/3402900000-80), provided that the value of non-originating materials of this heading does not exceed **20%** of the transaction value or ex-works price of the product.");
        assert!(
            matches!(&a[0][..], [Condition::ChangeOfClassification { level: Level::Any, except }, Condition::MaxNom { of: Materials::SameAs(Level::Heading), .. }] if except.label() == "subheading 340290")
        );
        // 320110-321000: "within any of these subheading or any other subheading".
        assert_eq!(
            conds("A change from within any of these subheading or any other subheading."),
            vec![vec![ctc(Level::Any)]]
        );
        // Extra codes after "within this heading" without the "whether or not" clause
        // would restrict the materials: not read.
        assert!(compile_rule("A change from within this heading or [heading&nbsp;8708](/headings/8708), provided that the value of non-originating materials of this heading or [heading&nbsp;8708](/headings/8708) does not exceed **50%** of the transaction value or ex-works price of the product.").is_err());
        // 3407: "at least one of the component products of the set is originating" stays
        // unread.
        assert!(compile_rule("A change from within this heading, whether or not there is also a change from any other heading, provided that:  - at least one of the component products of the set is originating, *and*  - the value of the non-originating component products of this heading does not exceed **50%** of the transaction value or ex-works price of the set.").is_err());
    }

    /// Exceptions naming described materials with where they are classified.
    #[test]
    fn described_exceptions() {
        // Canada 0401.
        let a = conds("A change from any other chapter, except from dairy preparations of [subheading&nbsp;190190](/subheadings/1901900000-80) containing more than **10%** by dry weight of milk solids, provided that all the material of [chapter&nbsp;4](/chapters/04) used is wholly obtained.");
        let Condition::ChangeOfClassification { level, except } = &a[0][0] else {
            panic!("{a:?}")
        };
        assert_eq!(*level, Level::Chapter);
        assert_eq!(
            except.described,
            vec!["dairy preparations of subheading 190190 containing more than 10% by dry weight of milk solids".to_string()]
        );
        assert_eq!(except.member(&code("190190")), crate::hs::Member::Maybe);
        assert_eq!(except.member(&code("190110")), crate::hs::Member::No);
        assert!(matches!(
            &a[0][1],
            Condition::MaterialsWhollyObtained { .. }
        ));
        // Japan 230990: codes "or" a described member.
        let a = conds("<abbr title='Change of tariff heading'>CTH</abbr>: All non-originating materials used in the production of the good have undergone a change in tariff classification at the 4-digit level (tariff heading) except from [heading&nbsp;0401](/headings/0401) to [heading&nbsp;0406](/headings/0406) or dairy preparations of [subheading&nbsp;190190](/subheadings/1901900000-80) containing more than **10%** by dry weight of milk solids.");
        let Condition::ChangeOfClassification { except, .. } = &a[0][0] else {
            panic!("{a:?}")
        };
        assert_eq!(except.member(&code("040690")), crate::hs::Member::Yes);
        assert_eq!(except.member(&code("190190")), crate::hs::Member::Maybe);
        // TCA 6401-6405 and Canada 6401-6405.
        let a = conds("Production from non-originating materials of any heading, except from non- originating assemblies of uppers affixed to inner soles or to other sole components of [heading&nbsp;6406](/headings/6406).");
        assert!(
            matches!(&a[0][0], Condition::ChangeOfClassification { level: Level::Any, except } if except.described == vec!["assemblies of uppers affixed to inner soles or to other sole components".to_string()] && except.member(&code("640620")) == crate::hs::Member::Maybe && except.member(&code("640110")) == crate::hs::Member::No)
        );
        // Japan 6401-6406: "... and from assemblies of uppers ... of subheading 640690".
        let a = conds("<abbr title='Change of tariff heading'>CTH</abbr>: All non-originating materials used in the production of the good have undergone a change in tariff classification at the 4-digit level (tariff heading) except from [heading&nbsp;6401](/headings/6401) to [heading&nbsp;6405](/headings/6405) and from assemblies of uppers affixed to inner soles of [subheading&nbsp;640690](/subheadings/6406900000-80) and A maximum of **50%** of the ex-works price (EXW) is made up of non-originating parts (MAXNOM).");
        assert!(
            matches!(&a[0][0], Condition::ChangeOfClassification { except, .. } if except.member(&code("640590")) == crate::hs::Member::Yes && except.member(&code("640690")) == crate::hs::Member::Maybe && except.member(&code("640620")) == crate::hs::Member::No)
        );
        // Japan 190120: "rice flour of subheading 110290" in a value cap.
        let a = conds("<abbr title='Change of tariff chapter'>CC</abbr>: All non-originating materials used in the production of the good have undergone a change in tariff classification at the 2-digit level (chapter), provided that the value of non-originating rice flour of [subheading&nbsp;110290](/subheadings/1102900000-80) used does not exceed **35%** of the ex-works price (EXW) or **30%** of the Free on Board (FOB) cost of the product.");
        assert_eq!(a.len(), 2);
        assert!(
            matches!(&a[0][1], Condition::MaxNom { of: Materials::Set(s), .. } if s.described == vec!["rice flour".to_string()] && s.member(&code("110290")) == crate::hs::Member::Maybe)
        );
        // Canada 3503: "chapter 2 other than swine skin" stays unread.
        assert!(compile_rule("A change from any other heading, except from [chapter&nbsp;2](/chapters/02) other than swine skin or [chapter&nbsp;3](/chapters/03) other than fish skin.").is_err());
    }

    /// Canada 2207-2209 and 1902 (the text's "the weight of the net weight of the product").
    #[test]
    fn group_exceptions_and_weight_slip() {
        let a = conds("A change from any other heading outside this group, except from [heading&nbsp;2204](/headings/2204).");
        assert!(
            matches!(&a[0][0], Condition::ChangeOfClassification { level: Level::Heading, except } if except.ranges.len() == 1 && except.ranges[0].label == "heading 2204" && except.described == vec![GROUP.to_string()])
        );
        let a = conds("A change from any other heading, provided that:   - the net weight of non-originating material of [heading&nbsp;1006](/headings/1006) or [heading&nbsp;1101](/headings/1101) to [heading&nbsp;1108](/headings/1108) used in production does not exceed **20%** of the net weight of the product,   - the net weight of non-originating sugar used in production does not exceed **20%** of the net weight of the product, and   - the net weight of non-originating material of [chapter&nbsp;4](/chapters/04) used in production does not exceed **20%** of the weight of the net weight of the product.");
        assert_eq!(a.len(), 1);
        assert!(matches!(
            &a[0][3],
            Condition::MaxWeight {
                of_weight: WeightOf::Product,
                ..
            }
        ));
    }
}
