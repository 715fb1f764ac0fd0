//! Whether a required argument of another project's tool was *given*: its value is in the
//! conversation, not made up by the model. A small model asked something no offered tool
//! does ("the area of a triangle" next to `determine_body_mass_index`, "the mass of an
//! electron" next to `calculate_current`) still fills in a call, with numbers and words
//! that nobody wrote (`voltage: 1, resistance: 1e-06`). Such a call is asked about instead.
//!
//! Steward's own tools are grounded by [`crate::ground`] against the inventory; this is
//! the check for tool sets whose arguments mean nothing Steward knows.

use serde_json::Value;

/// What the conversation holds, lowercased: its words and its numbers.
#[derive(Debug)]
pub struct Given {
    words: Vec<String>,
    /// Letters and digits only, for values written with other separators.
    compact: String,
    numbers: Vec<f64>,
    /// The numbers said in words only ("monthly", "two", "a deck"): a subset of `numbers`.
    worded: Vec<f64>,
    /// Whether a power of a variable is written without a coefficient ("x^2", "- x**2").
    bare_power: bool,
}

/// Words people write instead of digits ("started from rest", "over the past decade"),
/// spans of days among them ("rain tomorrow" is one day ahead, "the coming week" seven).
const NUMBER_WORDS: [(&str, f64); 28] = [
    ("zero", 0.0),
    ("rest", 0.0),
    ("none", 0.0),
    ("dozen", 12.0),
    ("decade", 10.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("twenty", 20.0),
    ("thirty", 30.0),
    ("hundred", 100.0),
    ("century", 100.0),
    ("thousand", 1000.0),
    ("million", 1e6),
    ("half", 0.5),
    ("quarter", 0.25),
    ("tomorrow", 1.0),
    ("week", 7.0),
    ("fortnight", 14.0),
];

/// Counts a word means by common knowledge: how often ("twice", "compounded quarterly"),
/// and the sizes of a deck of cards and of a die, which probability tools ask for.
const COUNT_WORDS: [(&str, f64); 24] = [
    ("twice", 2.0),
    ("thrice", 3.0),
    ("pair", 2.0),
    ("annually", 1.0),
    ("yearly", 1.0),
    ("semiannually", 2.0),
    ("biannually", 2.0),
    ("quarterly", 4.0),
    ("monthly", 12.0),
    ("weekly", 52.0),
    ("daily", 365.0),
    ("deck", 52.0),
    ("cards", 52.0),
    ("die", 6.0),
    ("dice", 6.0),
    ("king", 4.0),
    ("queen", 4.0),
    ("jack", 4.0),
    ("ace", 4.0),
    ("suit", 13.0),
    ("heart", 13.0),
    ("spade", 13.0),
    ("diamond", 13.0),
    ("club", 13.0),
];

impl Given {
    /// What `texts` (the person's words, earlier calls, data the agent read) give.
    pub fn of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Given {
        let mut lower = String::new();
        for t in texts {
            lower.push_str(&t.to_lowercase());
            lower.push(' ');
        }
        let words: Vec<String> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        let mut worded: Vec<f64> = words
            .iter()
            .flat_map(|w| {
                let singular = w.strip_suffix('s').unwrap_or(w);
                NUMBER_WORDS
                    .iter()
                    .chain(&COUNT_WORDS)
                    .filter(move |(n, _)| n == w || *n == singular)
                    .map(|(_, v)| *v)
            })
            .collect();
        if one_of_a_unit(&words) {
            worded.push(1.0);
        }
        let mut numbers = numbers_in(&lower);
        numbers.extend(&worded);
        Given {
            bare_power: bare_power(&lower),
            compact: lower.chars().filter(|c| c.is_alphanumeric()).collect(),
            words,
            numbers,
            worded,
        }
    }

    /// Whether `value`, of the parameter declared as `schema`, was given: a number that
    /// was written (its sign, a percentage, or a thousand, million or billion times it,
    /// aside: "$1.2M"), a string one of whose
    /// words was written (or one the schema lists as a choice), a list whose every item
    /// was given. Booleans and objects are choices, not data, and always pass.
    pub fn gives(&self, value: &Value, schema: &Value) -> bool {
        match value {
            Value::Null => false,
            Value::Bool(_) | Value::Object(_) => true,
            Value::Number(n) => n.as_f64().is_some_and(|v| self.gives_number(v)),
            Value::String(s) => self.is_choice(s, schema) || is_code(s) || self.gives_text(s),
            Value::Array(items) => {
                let item_schema = schema.get("items").unwrap_or(&Value::Null);
                !items.is_empty() && items.iter().all(|i| self.gives(i, item_schema))
            }
        }
    }

    /// Whether `v` was said in words ("monthly compounding" says 12), not in digits.
    pub fn says_in_words(&self, v: f64) -> bool {
        self.worded.iter().any(|&x| (x - v).abs() < 1e-9)
    }

    fn wrote_number(&self, v: f64) -> bool {
        let v = v.abs();
        self.numbers.iter().any(|&x| {
            [x, x / 100.0, x * 1e3, x / 1e3, x * 1e6, x * 1e9]
                .iter()
                .any(|c| (c - v).abs() <= 1e-9 * c.abs().max(v))
        })
    }

    /// A number nobody wrote is still given when it is a term's unwritten coefficient:
    /// "x^2 - 5x + 6" gives `a = 1`.
    fn gives_number(&self, v: f64) -> bool {
        self.wrote_number(v) || (v.abs() == 1.0 && self.bare_power)
    }

    fn gives_text(&self, s: &str) -> bool {
        let lower = s.to_lowercase();
        let compact: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
        if compact.len() >= 3 && self.compact.contains(&compact) {
            return true;
        }
        // A name with a number in it ("pantone 270", "room 12") is given only with its
        // number: a word of it alone ("pantone") does not give the rest.
        let mut parts = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty());
        let has_letters = lower.chars().any(char::is_alphabetic);
        if has_letters
            && !parts
                .clone()
                .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
                .all(|w| w.parse::<f64>().is_ok_and(|v| self.wrote_number(v)))
        {
            return false;
        }
        // A lone capital is a unit's symbol ("F" for fahrenheit); "A" and "I" are words.
        let symbol = s.len() == 1 && s.chars().all(|c| c.is_ascii_uppercase()) && !is_word(&lower);
        parts.any(|w| {
            !is_function_word(w) && {
                self.words.iter().any(|x| {
                    x == w
                        || ((w.len() >= 2 || symbol) && x.starts_with(w))
                        || (w.len() >= 4 && x.len() >= 4 && w.starts_with(x.as_str()))
                        || abbreviates(x, w)
                })
            }
        })
    }

    fn is_choice(&self, s: &str, schema: &Value) -> bool {
        schema
            .get("enum")
            .and_then(Value::as_array)
            .is_some_and(|options| options.iter().any(|o| o.as_str() == Some(s)))
    }
}

/// Whether the words count one of a unit without a digit: "every hour", "next month",
/// "per year", "an hour" each give 1.
fn one_of_a_unit(words: &[String]) -> bool {
    const ONE: [&str; 8] = ["every", "each", "per", "a", "an", "next", "last", "this"];
    const UNITS: [&str; 8] = [
        "second", "minute", "hour", "day", "night", "week", "month", "year",
    ];
    words
        .windows(2)
        .any(|w| ONE.contains(&w[0].as_str()) && UNITS.contains(&w[1].as_str()))
}

/// A short all-capitals code (a ticker, currency or airport: "MSFT", "GBP", "BCN") is how
/// such tool sets want a name the person wrote in words, so it counts as given.
fn is_code(s: &str) -> bool {
    (2..=5).contains(&s.len()) && s.chars().all(|c| c.is_ascii_uppercase())
}

/// Words that say nothing of a value by themselves: "the" of "The Old Guitarist" does not
/// give that title.
fn is_function_word(w: &str) -> bool {
    matches!(
        w,
        "the"
            | "a"
            | "an"
            | "of"
            | "in"
            | "on"
            | "at"
            | "to"
            | "for"
            | "and"
            | "or"
            | "by"
            | "with"
            | "from"
            | "is"
            | "my"
            | "me"
            | "your"
            | "this"
            | "that"
            | "it"
    )
}

/// The one-letter words, never read as a symbol.
fn is_word(letter: &str) -> bool {
    letter == "a" || letter == "i"
}

/// Whether `short` (one to three letters, "F", "km") is an abbreviation of `word`
/// ("fahrenheit", "kilometers"): its first letter starts the word and the others follow in
/// order.
fn abbreviates(short: &str, word: &str) -> bool {
    if !(1..=3).contains(&short.len()) || word.len() <= short.len() || is_word(short) {
        return false;
    }
    let mut rest = word.chars();
    short.chars().enumerate().all(|(i, c)| {
        if i == 0 {
            rest.next() == Some(c)
        } else {
            rest.any(|w| w == c)
        }
    })
}

/// Whether `text` has a power of a one-letter variable with no digit before it.
fn bare_power(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(2).enumerate().any(|(i, w)| {
        let before = if i == 0 { ' ' } else { chars[i - 1] };
        w[0].is_ascii_alphabetic()
            && matches!(w[1], '^' | '²' | '*')
            && !before.is_alphanumeric()
            && before != '.'
    })
}

/// The numbers written in `text`, thousands separators read ("300,000"), exponents too
/// ("1e-6").
fn numbers_in(text: &str) -> Vec<f64> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut n = String::new();
        // Where each group after a thousands separator begins: "[200,300,400]" may be a
        // list as well as one number, so its groups are read too.
        let mut groups = vec![0];
        while i < chars.len() {
            let c = chars[i];
            let next_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if c.is_ascii_digit() || (c == '.' && next_digit) {
                n.push(c);
            } else if c == ','
                && next_digit
                && chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count()
                    == 3
            {
                // a thousands separator: skip it
                groups.push(n.len());
            } else if (c == 'e' || c == 'E')
                && (next_digit
                    || (chars.get(i + 1) == Some(&'-')
                        && chars.get(i + 2).is_some_and(char::is_ascii_digit)))
            {
                n.push('e');
                if chars[i + 1] == '-' {
                    n.push('-');
                    i += 1;
                }
            } else {
                break;
            }
            i += 1;
        }
        if let Ok(v) = n.parse() {
            out.push(v);
        }
        if groups.len() > 1 {
            groups.push(n.len());
            out.extend(
                groups
                    .windows(2)
                    .filter_map(|g| n.get(g[0]..g[1]))
                    .filter(|g| !g.starts_with('0'))
                    .filter_map(|g| g.parse::<f64>().ok()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn given(text: &str) -> Given {
        Given::of([text])
    }

    #[test]
    fn numbers_must_be_written_in_some_form() {
        let g = given("Budget $300,000 to 400k, rate 5% over two years, x = -5, $1.2M, a decade");
        for v in [300000.0, 0.05, 2.0, 5.0, -5.0, 400.0, 1_200_000.0, 10.0] {
            assert!(g.gives(&json!(v), &json!({})), "{v}");
        }
        for v in [1.0, 0.0, 4.184, 1000.0] {
            assert!(!g.gives(&json!(v), &json!({})), "{v}");
        }
        // Spans of days: "rain tomorrow" is a 1-day forecast, "the coming week" 7 days.
        let g = given("will it rain in tokyo tomorrow, and over the coming week?");
        for v in [1.0, 7.0] {
            assert!(g.gives(&json!(v), &json!({})), "{v}");
        }
        assert!(!g.gives(&json!(3.0), &json!({})));
        // One of a unit, said without a digit.
        for text in [
            "doubles every hour",
            "prices for the next month",
            "3% per year",
        ] {
            assert!(given(text).gives(&json!(1), &json!({})), "{text}");
        }
        assert!(!given("prices for the coming months").gives(&json!(1), &json!({})));
        let g = given("charges of 1e-9 and 2E-9, from rest");
        for v in [1e-9, 2e-9, 0.0] {
            assert!(g.gives(&json!(v), &json!({})), "{v}");
        }
    }

    #[test]
    fn counts_said_in_words_are_given() {
        let g = given("probability of drawing a king from a deck, compounded monthly, twice");
        for v in [4.0, 52.0, 12.0, 2.0] {
            assert!(g.gives(&json!(v), &json!({})), "{v}");
            assert!(g.says_in_words(v), "{v}");
        }
        assert!(!g.gives(&json!(13.0), &json!({})));
        assert!(given("pull a heart from 52 cards").gives(&json!(13), &json!({})));
        assert!(!given("from 52 cards").says_in_words(13.0));
    }

    #[test]
    fn a_comma_list_of_numbers_gives_each_number() {
        let g = given("cash_flows=[200,300,400,500] and a budget of 300,000");
        assert!(g.gives(&json!([200, 300, 400, 500]), &json!({})));
        assert!(g.gives(&json!(300000), &json!({})));
        assert!(
            !g.gives(&json!(0), &json!({})),
            "the group 000 is no number of its own"
        );
    }

    #[test]
    fn strings_need_a_word_of_theirs_or_a_declared_choice() {
        let g = given("What is the dominant genetic trait of a Lion? f(x) = 3x^2 in New York");
        assert!(g.gives(&json!("lions"), &json!({})));
        assert!(g.gives(&json!("3x^2"), &json!({})));
        assert!(g.gives(&json!("New York, NY"), &json!({})));
        assert!(!g.gives(&json!("Cub"), &json!({})));
        assert!(!g.gives(&json!("round"), &json!({})));
        // A function word gives no title; a word gives no number written beside it.
        let g = given("Find the year of a Picasso's painting in pantone colours");
        assert!(!g.gives(&json!("The Old Guitarist"), &json!({})));
        assert!(g.gives(&json!("Pablo Picasso"), &json!({})));
        assert!(!g.gives(&json!("pantone 270"), &json!({})));
        assert!(given("pantone 270 please").gives(&json!("Pantone 270"), &json!({})));
        assert!(g.gives(&json!("round"), &json!({"enum": ["round", "flat"]})));
    }

    #[test]
    fn codes_and_unwritten_coefficients_are_given() {
        let g = given("solve x^2 - 5x + 6 = 0 and price of microsoft in pounds");
        assert!(g.gives(&json!(1), &json!({})));
        assert!(g.gives(&json!("MSFT"), &json!({})));
        assert!(g.gives(&json!("GBP"), &json!({})));
        assert!(!g.gives(&json!("A"), &json!({})));
        assert!(!given("solve 2x^2 + 3 = 0").gives(&json!(1), &json!({})));
        // Units written short or long, either way round.
        let g = given("how many km is 10 miles, in F, lbs");
        for unit in ["kilometers", "mi", "fahrenheit", "F", "lb"] {
            assert!(g.gives(&json!(unit), &json!({})), "{unit}");
        }
        assert!(!g.gives(&json!("C"), &json!({})));
    }

    #[test]
    fn lists_need_every_item_and_an_empty_one_gives_nothing() {
        let g = given("average of 3, 4 and 8");
        assert!(g.gives(&json!([3, 4, 8]), &json!({"items": {"type": "integer"}})));
        assert!(!g.gives(&json!([3, 4, 9]), &json!({})));
        assert!(!g.gives(&json!([]), &json!({})));
        assert!(g.gives(&json!(true), &json!({})));
        assert!(!g.gives(&json!(null), &json!({})));
    }
}
