//! Time expressions, resolved by deterministic code against an injected clock (never by the
//! model): durations (`10m`, `3h ago`, `2 days ago`, `last week`, `this week`, `an hour ago`),
//! `yesterday` (24 hours before now),
//! `now`, RFC3339 times and plain dates (`2026-11-20`, meaning the end of that day, UTC).

use chrono::{DateTime, NaiveDate, NaiveTime};
use steward_protocol::Timestamp;

/// Resolves `expr` to an instant at or before `now`.
pub fn resolve(expr: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = expr.trim().to_ascii_lowercase();
    let err = || {
        format!(
            "cannot read time {expr:?}: use a duration like 10m, 3h ago or 2 days ago, \
             `yesterday`, an RFC3339 time or a date YYYY-MM-DD"
        )
    };
    match text.as_str() {
        "" => return Err(err()),
        "now" => return Ok(now),
        "yesterday" => return Ok(Timestamp(now.0 - DAY_MS)),
        _ => {}
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(expr.trim()) {
        let at = not_before_epoch(Timestamp(t.timestamp_millis()), expr)?;
        return not_future(at, now, expr);
    }
    if let Ok(d) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        let end = d.and_time(NaiveTime::from_hms_milli_opt(23, 59, 59, 999).ok_or_else(err)?);
        let at = not_before_epoch(Timestamp(end.and_utc().timestamp_millis()), expr)?;
        return Ok(if at > now { now } else { at });
    }
    let span = text.strip_suffix(" ago").unwrap_or(&text);
    // "last week", "this week", "the past day", "an hour ago": one of the unit.
    let one = [
        "last ",
        "the last ",
        "a ",
        "an ",
        "this ",
        "past ",
        "the past ",
    ]
    .iter()
    .find_map(|p| span.strip_prefix(p))
    .map(|unit| format!("1 {unit}"));
    let ms = duration_ms(one.as_deref().unwrap_or(span)).ok_or_else(err)?;
    Ok(Timestamp(now.0 - ms))
}

const DAY_MS: i64 = 86_400_000;

/// Whether `expr` names an instant (RFC3339 or a date) rather than a span back from now.
/// Executors refuse an instant before the thing they look at existed, which is a mistake;
/// a span reaching back further just covers its whole life.
pub fn is_absolute(expr: &str) -> bool {
    let t = expr.trim();
    DateTime::parse_from_rfc3339(t).is_ok() || NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok()
}

/// RFC3339 in UTC with milliseconds, for showing stored timestamps to people.
pub fn format(at: Timestamp) -> String {
    DateTime::from_timestamp_millis(at.0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{}ms", at.0))
}

/// 2000-01-01T00:00:00Z. Nothing steward manages is older, so an absolute time before it is a
/// typo (`0026-...`, `1970-...`), refused instead of read as "since the beginning".
pub const EARLIEST: Timestamp = Timestamp(946_684_800_000);

fn not_before_epoch(at: Timestamp, expr: &str) -> Result<Timestamp, String> {
    if at < EARLIEST {
        Err(format!(
            "time {expr:?} is before 2000-01-01; nothing steward manages is that old"
        ))
    } else {
        Ok(at)
    }
}

fn not_future(at: Timestamp, now: Timestamp, expr: &str) -> Result<Timestamp, String> {
    if at > now {
        Err(format!("time {expr:?} is in the future"))
    } else {
        Ok(at)
    }
}

/// `90s`, `10m`, `3h`, `2d`, `1w`, and the spelt-out forms `3 hours`, `1 day`, `45 minutes`.
pub fn duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = text.split_at(split);
    let n: i64 = num.parse().ok()?;
    let unit_ms = match unit.trim() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => DAY_MS,
        "w" | "week" | "weeks" => 7 * DAY_MS,
        _ => return None,
    };
    n.checked_mul(unit_ms).filter(|ms| *ms <= 3650 * DAY_MS)
}

/// Where `service_rollback` should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The release that was live before the current one.
    Previous,
    /// A release id such as `r3`.
    Release(String),
    /// The release that was live at this instant.
    At(Timestamp),
}

impl RollbackTarget {
    pub fn parse(to: &str, now: Timestamp) -> Result<Self, String> {
        let t = to.trim();
        if t.eq_ignore_ascii_case("previous") || t.eq_ignore_ascii_case("prev") {
            return Ok(Self::Previous);
        }
        if is_release_id(t) {
            return Ok(Self::Release(t.to_string()));
        }
        resolve(t, now).map(Self::At).map_err(|e| {
            format!("{e}; or give `previous` or a release id such as r3 (see service_releases)")
        })
    }
}

/// Release ids are `r<N>`.
pub fn is_release_id(s: &str) -> bool {
    s.len() > 1 && s.starts_with('r') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23T12:00:00Z
    const NOW: Timestamp = Timestamp(1_795_435_200_000);

    #[test]
    fn relative_expressions_resolve_against_the_clock() {
        assert_eq!(resolve("yesterday", NOW), Ok(Timestamp(NOW.0 - DAY_MS)));
        assert_eq!(resolve("3h ago", NOW), Ok(Timestamp(NOW.0 - 3 * 3_600_000)));
        assert_eq!(
            resolve("3 hours ago", NOW),
            Ok(Timestamp(NOW.0 - 3 * 3_600_000))
        );
        assert_eq!(resolve("10m", NOW), Ok(Timestamp(NOW.0 - 600_000)));
        assert_eq!(
            resolve("2 days ago", NOW),
            Ok(Timestamp(NOW.0 - 2 * DAY_MS))
        );
        assert_eq!(resolve(" Now ", NOW), Ok(NOW));
        assert_eq!(resolve("last week", NOW), Ok(Timestamp(NOW.0 - 7 * DAY_MS)));
        assert_eq!(
            resolve("an hour ago", NOW),
            Ok(Timestamp(NOW.0 - 3_600_000))
        );
        assert_eq!(resolve("a day ago", NOW), resolve("yesterday", NOW));
        assert_eq!(resolve("this week", NOW), resolve("last week", NOW));
        assert_eq!(resolve("the past day", NOW), resolve("yesterday", NOW));
        assert!(resolve("last tuesday", NOW).is_err());
    }

    #[test]
    fn absolute_expressions() {
        assert_eq!(
            resolve("2026-11-23T10:00:00Z", NOW),
            Ok(Timestamp(NOW.0 - 2 * 3_600_000))
        );
        assert_eq!(
            resolve("2026-11-23T11:00:00+01:00", NOW),
            Ok(Timestamp(NOW.0 - 2 * 3_600_000))
        );
        // End of the given day, or now if that is still to come.
        assert_eq!(
            resolve("2026-11-22", NOW),
            Ok(Timestamp(NOW.0 - 12 * 3_600_000 - 1))
        );
        assert_eq!(resolve("2026-11-23", NOW), Ok(NOW));
        assert!(resolve("2026-11-24T00:00:00Z", NOW)
            .unwrap_err()
            .contains("future"));
    }

    #[test]
    fn absolute_times_before_2000_are_refused() {
        for old in [
            "0000-01-01T00:00:00Z",
            "0001-01-01",
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59Z",
            "1999-12-31",
        ] {
            let err = resolve(old, NOW).unwrap_err();
            assert!(err.contains("before 2000"), "{old}: {err}");
            assert!(RollbackTarget::parse(old, NOW)
                .unwrap_err()
                .contains("before 2000"));
        }
        assert_eq!(resolve("2000-01-01T00:00:00Z", NOW), Ok(EARLIEST));
        assert!(is_absolute("2026-11-23T10:00:00Z") && is_absolute(" 2026-11-22 "));
        assert!(!is_absolute("10m") && !is_absolute("yesterday"));
    }

    #[test]
    fn nonsense_is_refused_with_the_accepted_forms() {
        for bad in ["", "soon", "3 fortnights ago", "-5m", "99999999999d", "r"] {
            let err = resolve(bad, NOW).unwrap_err();
            assert!(err.contains("RFC3339"), "{bad}: {err}");
        }
    }

    #[test]
    fn rollback_targets() {
        assert_eq!(
            RollbackTarget::parse("previous", NOW),
            Ok(RollbackTarget::Previous)
        );
        assert_eq!(
            RollbackTarget::parse("r12", NOW),
            Ok(RollbackTarget::Release("r12".into()))
        );
        assert_eq!(
            RollbackTarget::parse("yesterday", NOW),
            Ok(RollbackTarget::At(Timestamp(NOW.0 - DAY_MS)))
        );
        assert!(RollbackTarget::parse("the good one", NOW).is_err());
    }
}
