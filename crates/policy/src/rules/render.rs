//! Rules as people write them, for `steward rules` and messages: `alert:ServiceDown
//! {severity=critical}`, `healthy within 60s`, `previous /available == true`.

use std::fmt;

use super::model::{Gate, Matcher, Until};

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels = match self {
            Matcher::Alert { name, labels } => {
                write!(f, "alert:{name}")?;
                labels
            }
            Matcher::Monitor { kind, labels } => {
                write!(f, "monitor:{kind}")?;
                labels
            }
            Matcher::Hook { name } => return write!(f, "hook:{name}"),
            Matcher::Schedule {
                cron,
                timezone,
                for_each,
                ..
            } => {
                write!(f, "schedule:{cron} ({timezone})")?;
                if let Some(each) = for_each {
                    write!(f, " for each {each}")?;
                }
                return Ok(());
            }
        };
        if !labels.is_empty() {
            let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, " {{{}}}", pairs.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Until::Healthy { within_ms } => write!(f, "healthy within {}", duration(*within_ms)),
            Until::Done => f.write_str("done"),
        }
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "previous {} == {}", self.pointer, self.equals)
    }
}

/// The largest whole unit: `60s` stays `1m`, `90s` stays `90s`.
pub fn duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_back() {
        assert_eq!(duration(60_000), "1m");
        assert_eq!(duration(90_000), "90s");
        assert_eq!(duration(7_200_000), "2h");
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(1500), "1500ms");
    }
}
