//! The health conditions between a ladder's steps, read from the words: "restart it, and
//! if it is not healthy within a minute notify me" has the restart wait up to a minute for
//! the service to be healthy (`until = "healthy within 1m"`) and go on to the notice only
//! if it is not. A small model leaves `until` out; the words leave no doubt of it. The
//! "healthy" of such a condition asks for no status read either.

/// Words that make "healthy" a condition the ladder waits for: "not", the "t" of "isn't",
/// "unless".
const NEGATIONS: [&str; 4] = ["not", "t", "unless", "never"];
/// Words between "healthy" and its deadline.
const CONNECTORS: [&str; 4] = ["within", "in", "after", "by"];
/// How far before "healthy" a negation may stand: "if it is still not healthy".
const NEGATION_REACH: usize = 3;

/// One health condition: where its words are and how long it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    words: std::ops::Range<usize>,
    deadline: String,
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The health conditions with a deadline in `words`, in order.
fn conditions(words: &[String]) -> Vec<Condition> {
    let mut found = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if w != "healthy" {
            continue;
        }
        let reach = i.saturating_sub(NEGATION_REACH)..i;
        let Some(negation) = reach
            .clone()
            .find(|&j| NEGATIONS.contains(&words[j].as_str()))
        else {
            continue;
        };
        if !words
            .get(i + 1)
            .is_some_and(|c| CONNECTORS.contains(&c.as_str()))
        {
            continue;
        }
        if let Some((deadline, used)) = duration(&words[i + 2..]) {
            found.push(Condition {
                words: negation..i + 2 + used,
                deadline,
            });
        }
    }
    found
}

/// The duration `words` begin with, as a rule writes it ("90s", "1m", "2h"), and how many
/// words it took: "90 seconds", "60s", "a minute", "two minutes". Units are those of the
/// tools' own durations ([`steward_tools::when::duration_ms`]), number words the planner's.
fn duration(words: &[String]) -> Option<(String, usize)> {
    let first = words.first()?;
    // "60s", "5m": the number and its unit in one word.
    if first.starts_with(|c: char| c.is_ascii_digit())
        && steward_tools::when::duration_ms(first).is_some()
    {
        return Some((first.clone(), 1));
    }
    let n = match first.as_str() {
        "a" | "an" => 1.0,
        w => w
            .parse::<f64>()
            .ok()
            .or_else(|| crate::ground::number_word(w))?,
    };
    let unit = words.get(1)?;
    let whole = n.fract() == 0.0 && n >= 1.0;
    let said = format!("{n} {unit}");
    let abbreviated = unit.chars().next()?;
    (whole && steward_tools::when::duration_ms(&said).is_some())
        .then(|| (format!("{n}{abbreviated}"), 2))
}

/// The deadlines of `text`'s health conditions, in order: "not healthy within a minute"
/// is "1m", "isn't healthy in 90 seconds" "90s".
pub fn health_deadlines(text: &str) -> Vec<String> {
    conditions(&words(text))
        .into_iter()
        .map(|c| c.deadline)
        .collect()
}

/// `text`'s words without its health conditions, for reading which tools it names.
pub fn without_health_conditions(text: &str) -> String {
    let words = words(text);
    let conditions = conditions(&words);
    words
        .iter()
        .enumerate()
        .filter(|(i, _)| !conditions.iter().any(|c| c.words.contains(i)))
        .map(|(_, w)| w.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negated_health_with_a_deadline_is_a_condition_of_the_ladder() {
        assert_eq!(
            health_deadlines("if claude-chat is unhealthy restart it and if it is not healthy within a minute notify me"),
            ["1m"]
        );
        assert_eq!(
            health_deadlines(
                "psra crashed? start it, and if it isn't healthy in 90 seconds page someone"
            ),
            ["90s"]
        );
        assert_eq!(
            health_deadlines("when ServiceDown fires for wpcs restart it, then roll back if it is still not healthy after 60s, and page me unless it is healthy within two minutes"),
            ["60s", "2m"]
        );
        assert_eq!(
            health_deadlines("restart psra when it is unhealthy for 5 minutes"),
            Vec::<String>::new(),
            "how long a state lasts is the trigger's, not a condition between steps"
        );
        assert_eq!(
            health_deadlines("check that psra is healthy within a minute"),
            Vec::<String>::new(),
            "a health without negation asks for a look"
        );
        assert_eq!(
            health_deadlines("if it is not healthy soon page me"),
            Vec::<String>::new(),
            "no deadline, no condition"
        );
    }

    #[test]
    fn the_words_of_a_condition_name_no_tool() {
        assert_eq!(
            without_health_conditions(
                "psra crashed? start it, and if it isn't healthy in 90 seconds page someone"
            ),
            "psra crashed start it and if it isn page someone"
        );
        assert_eq!(
            without_health_conditions("check the health of psra"),
            "check the health of psra"
        );
    }
}
