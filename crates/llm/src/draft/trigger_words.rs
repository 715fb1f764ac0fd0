//! Which trigger a standing instruction speaks of, read from its words: a time ("every
//! night at 2", "hourly") is a schedule; a container's fate ("dies", "unhealthy", "out of
//! memory", "a restart loop") the Docker monitor's; an alert's name ("ServiceDown"), the
//! word "alert" or a measured condition ("when CPU is high") an alert; a webhook a hook.
//! A small model reads "check psra every hour" as a monitor event and "psra crashed?" as
//! an unhealthy one; the draft's trigger is narrowed to what the words name, as its steps
//! are to the tools they name. Words that name none leave every trigger on offer.

/// The sources and monitor kinds an instruction's words name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TriggersNamed {
    /// `alert`, `monitor`, `hook` or `schedule`, in that order.
    pub sources: Vec<&'static str>,
    /// The monitor's kinds (`unhealthy`, `died`, `oom`, `restart_loop`) the words name.
    pub monitor_kinds: Vec<&'static str>,
}

/// Words and phrases for each of the monitor's kinds. A phrase matches whole words in a
/// row; a word ending in `*` matches any word it begins.
const MONITOR_WORDS: [(&str, &[&str]); 4] = [
    (
        "unhealthy",
        &["unhealthy", "health check fail*", "healthcheck fail*"],
    ),
    (
        "died",
        &[
            "die",
            "dies",
            "died",
            "dying",
            "dead",
            "crash",
            "crashes",
            "crashed",
            "crashing",
            "exit",
            "exits",
            "exited",
            "goes down",
            "went down",
            "stops running",
        ],
    ),
    ("oom", &["oom*", "out of memory"]),
    (
        "restart_loop",
        &[
            "restart loop*",
            "restart-loop*",
            "crash loop*",
            "crashloop*",
            "keeps restarting",
            "keeps crashing",
            "restarting over and over",
        ],
    ),
];

/// Words that name a time of a schedule after "every" or "each" ("every night", "each
/// sunday", "every 15 minutes").
const TIMES: [&str; 21] = [
    "night",
    "day",
    "morning",
    "evening",
    "afternoon",
    "hour",
    "minute",
    "week",
    "month",
    "weekday",
    "weekend",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "midnight",
    "noon",
    "year",
];
/// Words that are a schedule on their own.
const SCHEDULE_WORDS: [&str; 7] = [
    "nightly", "daily", "hourly", "weekly", "monthly", "midnight", "noon",
];

/// Words of an alert: the alert itself, and conditions only a measurement tells.
const ALERT_WORDS: [&str; 8] = [
    "alert",
    "alerts",
    "alerting",
    "cpu",
    "latency",
    "error rate",
    "disk",
    "fires",
];
const HOOK_WORDS: [&str; 4] = ["hook", "hooks", "webhook", "webhooks"];

/// The triggers `text` names.
pub fn triggers_named(text: &str) -> TriggersNamed {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == ':'))
        .filter(|w| !w.is_empty())
        .collect();
    let monitor_kinds: Vec<&'static str> = MONITOR_WORDS
        .iter()
        .filter(|(_, phrases)| phrases.iter().any(|p| says(&words, p)))
        .map(|(kind, _)| *kind)
        .collect();
    let hook = HOOK_WORDS.iter().any(|w| says(&words, w));
    // "when the signup hook fires" fires a hook, not an alert.
    let alert = names_an_alert(text)
        || ALERT_WORDS
            .iter()
            .filter(|w| !(hook && **w == "fires"))
            .any(|w| says(&words, w));
    let mut sources = Vec::new();
    if alert {
        sources.push("alert");
    }
    if !monitor_kinds.is_empty() {
        sources.push("monitor");
    }
    if hook {
        sources.push("hook");
    }
    if names_a_time(&words) {
        sources.push("schedule");
    }
    TriggersNamed {
        sources,
        monitor_kinds,
    }
}

/// Whether `words` hold `phrase`'s words in a row (its last one a prefix when it ends in
/// `*`).
fn says(words: &[&str], phrase: &str) -> bool {
    let wanted: Vec<&str> = phrase.split(' ').collect();
    let matches = |word: &str, want: &str| match want.strip_suffix('*') {
        Some(prefix) => word.starts_with(prefix),
        None => word == want,
    };
    words.windows(wanted.len()).any(|window| {
        window
            .iter()
            .zip(&wanted)
            .all(|(word, want)| matches(word, want))
    })
}

/// Whether `text` holds an alert's name as alerts are named: one word of capitalized parts,
/// "ServiceDown", "HighCpu" (not "CPU", not "Psra").
fn names_an_alert(text: &str) -> bool {
    text.split(|c: char| !c.is_alphanumeric()).any(|word| {
        let mut chars = word.chars();
        chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && word
                .chars()
                .zip(word.chars().skip(1))
                .any(|(a, b)| a.is_ascii_lowercase() && b.is_ascii_uppercase())
    })
}

/// Whether `words` name a time a schedule runs at: "every night", "each sunday", "every 15
/// minutes", "nightly", "at 2am", "at 4:30". "at most once every 15 minutes" is a throttle,
/// not a time.
fn names_a_time(words: &[&str]) -> bool {
    let is_time = |w: &str| TIMES.iter().any(|t| w == *t || w == format!("{t}s"));
    let clock = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_digit())
            && (w.contains(':') || w.ends_with("am") || w.ends_with("pm"))
    };
    words.iter().enumerate().any(|(i, w)| {
        let before = |k: usize| i.checked_sub(k).map(|j| words[j]);
        let throttle = before(1) == Some("once");
        let every = matches!(*w, "every" | "each") && !throttle;
        (every
            && words[i + 1..]
                .iter()
                .take(2)
                .any(|next| is_time(next) || next.parse::<u32>().is_ok()))
            || SCHEDULE_WORDS.contains(w)
            || clock(w)
            || (*w == "at" && words.get(i + 1).is_some_and(|n| n.parse::<u32>().is_ok()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(text: &str) -> (Vec<&'static str>, Vec<&'static str>) {
        let t = triggers_named(text);
        (t.sources, t.monitor_kinds)
    }

    #[test]
    fn a_time_is_a_schedule_and_a_throttle_is_not() {
        for text in [
            "check the status of psra every hour",
            "every sunday at 4:30 take a backup of globex-labs",
            "back up the billing db nightly",
            "each weekday at 18:00 back up globex",
            "send me a summary at 9am",
            "restart the workers every 6 hours",
        ] {
            assert_eq!(named(text), (vec!["schedule"], vec![]), "{text}");
        }
        assert_eq!(
            named("when any service dies restart it, at most once every 15 minutes per service"),
            (vec!["monitor"], vec!["died"])
        );
        assert_eq!(
            named("destroy every tenant when load is heavy"),
            (vec![], vec![]),
            "every before a thing is no time"
        );
    }

    #[test]
    fn a_containers_fate_is_the_monitors_kind() {
        for (text, kind) in [
            (
                "psra crashed? start it, and if it isn't healthy in 90 seconds page someone",
                "died",
            ),
            ("if the worker container exits, bring it back", "died"),
            ("tell me when any container gets oom killed", "oom"),
            (
                "if vps-manager runs out of memory raise its memory limit",
                "oom",
            ),
            (
                "let me know whenever something is in a restart loop",
                "restart_loop",
            ),
            (
                "page me if langgraph goes unhealthy for 5 minutes",
                "unhealthy",
            ),
        ] {
            assert_eq!(named(text), (vec!["monitor"], vec![kind]), "{text}");
        }
        assert_eq!(
            named("if billing keeps crashing roll it back"),
            (vec!["monitor"], vec!["died", "restart_loop"]),
            "words that fit two kinds leave both"
        );
    }

    #[test]
    fn an_alerts_name_or_a_measured_condition_is_an_alert_and_a_hook_is_a_hook() {
        for text in [
            "on HighErrorRate for rentguy roll it back",
            "when the DiskFull alert fires send a critical notification",
            "destroy every tenant when CPU is high",
            "warn on-call when latency climbs on the api",
        ] {
            assert_eq!(named(text), (vec!["alert"], vec![]), "{text}");
        }
        assert_eq!(
            named("when the signup hook fires check the subdomain it sends"),
            (vec!["hook"], vec![])
        );
        assert_eq!(
            named("do something useful about psra"),
            (vec![], vec![]),
            "words that name no trigger"
        );
    }
}
