//! RFC3339 for release timestamps: formatting for people and parsing Docker's `Created`.
//!
//! This crate has no date library and only ever needs UTC civil dates, so the two
//! conversions are done by hand (H. Hinnant's days-from-civil algorithms).

use steward_protocol::Timestamp;

const MS_PER_DAY: i64 = 86_400_000;

/// `2026-11-23T12:00:00Z`, with `.mmm` only when the milliseconds are not zero.
pub fn format(t: Timestamp) -> String {
    let days = t.0.div_euclid(MS_PER_DAY);
    let ms_of_day = t.0.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    let (hh, mm, ss, ms) = (secs / 3600, secs / 60 % 60, secs % 60, ms_of_day % 1000);
    if ms == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{ms:03}Z")
    }
}

/// Parses the RFC3339 times Docker reports (`2025-06-01T10:00:00.123456789Z`, or with a
/// `+hh:mm` offset); `None` for anything else, e.g. Docker's zero time is still parsed.
pub fn parse(s: &str) -> Option<Timestamp> {
    let (date, rest) = s.trim().split_once(['T', 't', ' '])?;
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: i64 = dp.next()?.parse().ok()?;
    let d: i64 = dp.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (clock, offset_ms) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':')?;
        let (oh, om): (i64, i64) = (oh.parse().ok()?, om.parse().ok()?);
        (c, sign * (oh * 3_600_000 + om * 60_000))
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut tp = hms.splitn(3, ':');
    let hh: i64 = tp.next()?.parse().ok()?;
    let mm: i64 = tp.next()?.parse().ok()?;
    let ss: i64 = tp.next()?.parse().ok()?;
    if hh > 23 || mm > 59 || ss > 60 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    let day_ms = (hh * 3600 + mm * 60 + ss) * 1000 + ms;
    Some(Timestamp(
        days_from_civil(y, m, d) * MS_PER_DAY + day_ms - offset_ms,
    ))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // 2026-11-23T12:00:00Z
    const NOW: Timestamp = Timestamp(1_795_435_200_000);

    #[test]
    fn formats_utc() {
        assert_eq!(format(NOW), "2026-11-23T12:00:00Z");
        assert_eq!(format(Timestamp(NOW.0 + 1)), "2026-11-23T12:00:00.001Z");
        assert_eq!(format(Timestamp(0)), "1970-01-01T00:00:00Z");
        assert_eq!(format(Timestamp(951_782_400_000)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_docker_times() {
        assert_eq!(parse("2026-11-23T12:00:00Z"), Some(NOW));
        assert_eq!(
            parse("2026-11-23T12:00:00.123456789Z"),
            Some(Timestamp(NOW.0 + 123))
        );
        assert_eq!(parse("2026-11-23T13:00:00+01:00"), Some(NOW));
        assert_eq!(parse("2026-11-23T11:30:00-00:30"), Some(NOW));
        assert_eq!(parse("0001-01-01T00:00:00Z").map(|t| t.0 < 0), Some(true));
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-23T12:00:00",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for ms in [0, 1, 86_399_999, NOW.0, NOW.0 + 12_345, -86_400_000] {
            assert_eq!(parse(&format(Timestamp(ms))), Some(Timestamp(ms)), "{ms}");
        }
    }
}
