//! HTML for the console: escaping, the page frame and the stylesheet. Every piece of text
//! that did not come from this file goes through [`esc`], so a log line or an alert
//! annotation holding markup is shown, never run.

use std::fmt::Write;

/// Text made safe for an HTML element or a quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Milliseconds since the epoch as `2026-12-04 10:00:00 UTC`.
pub fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A status word as a coloured badge: green for good, red for bad, amber otherwise.
pub fn badge(word: &str) -> String {
    let class = match word {
        "healthy" | "running" | "resolved" | "done" | "executed" | "ok" | "allow" => "good",
        "unhealthy" | "exited" | "dead" | "failed" | "refused" | "denied" | "unresolved"
        | "interrupted" | "deny" => "bad",
        _ => "warn",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(word))
}

/// Where a person is in the console, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Approvals,
    Incidents,
    Audit,
    Chat,
    None,
}

/// A whole page: frame, navigation (when signed in) and `body` (already HTML).
pub fn page(
    title: &str,
    nav: Nav,
    who: Option<(&str, &str)>,
    flash: Option<&str>,
    body: &str,
) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Steward</title><link rel=\"stylesheet\" href=\"/console/static/console.css\">\
         </head><body><header><a class=\"brand\" href=\"/console\">Steward</a>",
        esc(title)
    );
    if let Some((principal, csrf)) = who {
        out.push_str("<nav>");
        for (item, href, label) in [
            (Nav::Overview, "/console", "Overview"),
            (Nav::Approvals, "/console/approvals", "Approvals"),
            (Nav::Incidents, "/console/incidents", "Incidents"),
            (Nav::Audit, "/console/audit", "Audit"),
            (Nav::Chat, "/console/chat", "Chat"),
        ] {
            let current = if item == nav {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<a href=\"{href}\"{current}>{label}</a>");
        }
        let _ = write!(
            out,
            "</nav><form class=\"who\" method=\"post\" action=\"/console/logout\">\
             <span>{}</span><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            esc(principal),
            esc(csrf)
        );
    }
    out.push_str("</header><main>");
    if let Some(f) = flash.filter(|f| !f.is_empty()) {
        let _ = write!(out, "<p class=\"flash\" role=\"status\">{}</p>", esc(f));
    }
    let _ = write!(out, "<h1>{}</h1>{body}</main></body></html>", esc(title));
    out
}

/// The stylesheet: readable on a phone first (on-call approvals happen there), wider
/// tables scroll inside their own box.
pub const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1b1f24;background:#f6f7f9}\
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;padding:.6rem 1rem;background:#1b1f24;color:#fff}\
header a{color:#fff;text-decoration:none}.brand{font-weight:700;margin-right:.5rem}\
nav{display:flex;flex-wrap:wrap;gap:.25rem .9rem}nav a[aria-current]{text-decoration:underline}\
.who{margin-left:auto;display:flex;gap:.5rem;align-items:center;font-size:.9rem}\
main{padding:1rem;max-width:70rem;margin:0 auto}h1{font-size:1.4rem;margin:.2rem 0 1rem}\
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}\
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{padding:.45rem .6rem;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}\
th{font-size:.85rem;color:#57606a}\
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.85rem;font-weight:600}\
.good{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}.warn{background:#fff8c5;color:#7d4e00}\
.card{background:#fff;border:1px solid #e3e6ea;border-radius:.5rem;padding:.8rem 1rem;margin:0 0 1rem}\
.card h2{margin-top:0}pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:.5rem;border-radius:.3rem;font-size:.85rem}\
form.answer{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.6rem}\
input[type=text],input[type=password],input[type=search]{flex:1 1 12rem;min-width:0;padding:.55rem;font-size:1rem;border:1px solid #c9ced4;border-radius:.3rem}\
button{padding:.55rem 1rem;font-size:1rem;border:0;border-radius:.3rem;background:#1f6feb;color:#fff;cursor:pointer}\
button.deny{background:#cf222e}.who button{padding:.3rem .7rem;font-size:.85rem;background:#57606a}\
.flash{background:#ddf4ff;border:1px solid #54aeff;padding:.6rem .8rem;border-radius:.3rem}\
.muted{color:#57606a;font-size:.9rem}\
.login{max-width:26rem;margin:2rem auto}.login form{display:flex;flex-direction:column;gap:.6rem}\
#chat-log{background:#fff;border:1px solid #e3e6ea;border-radius:.5rem;padding:.6rem .9rem;min-height:12rem}\
#chat-log p{margin:.35rem 0;white-space:pre-wrap;word-break:break-word}\
#chat-log .you{font-weight:600}#chat-log .step{color:#57606a;font-size:.9rem}\
@media (max-width:40rem){th.wide,td.wide{display:none}main{padding:.7rem}}\
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped_everywhere_it_is_shown() {
        let hostile = "<script>alert('x')</script> & \"q\"";
        let e = esc(hostile);
        assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''));
        assert_eq!(
            e,
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let p = page(
            hostile,
            Nav::None,
            Some((hostile, hostile)),
            Some(hostile),
            "",
        );
        assert!(!p.contains("<script>"), "{p}");
        assert!(badge("<b>").contains("&lt;b&gt;"));
    }
}
