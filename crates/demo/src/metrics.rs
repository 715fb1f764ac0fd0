//! The app's Prometheus metrics, written by hand in the text exposition format: three
//! series do not justify a metrics crate in a static binary.
//!
//! Health probes and scrapes are not counted: Docker probes `/health` every 2 s, and a
//! failing probe answers 503, so counting them would turn every health failure into an
//! error rate too, and `HighErrorRate` would fire alongside `ServiceDown`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Requests by status code, counted since the process started.
#[derive(Debug, Default)]
pub struct Counters {
    by_status: Mutex<BTreeMap<u16, u64>>,
}

impl Counters {
    /// Counts one answered request, unless `path` is a probe or a scrape.
    pub fn record(&self, path: &str, status: u16) {
        if path == "/health" || path == "/metrics" {
            return;
        }
        // A poisoned lock only means another request panicked mid-increment; the map is
        // still a map, and losing metrics would hide exactly the failure being watched.
        let mut map = self.by_status.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(status).or_default() += 1;
    }

    /// The exposition: `demo_http_requests_total{status}` for every answer,
    /// `demo_http_errors_total{status}` for the 5xx ones, and `demo_healthy` (1 or 0, what
    /// `/health` answers).
    pub fn render(&self, healthy: bool, errors_on: bool) -> String {
        let map = self
            .by_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = String::new();
        family(
            &mut out,
            "demo_http_requests_total",
            "counter",
            "HTTP requests answered, by status (health probes and scrapes excluded).",
            map.iter(),
        );
        family(
            &mut out,
            "demo_http_errors_total",
            "counter",
            "HTTP requests answered with a 5xx status, by status.",
            map.iter().filter(|(s, _)| **s >= 500),
        );
        let gauge = |out: &mut String, name: &str, help: &str, on: bool| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {}", u8::from(on));
        };
        gauge(
            &mut out,
            "demo_healthy",
            "1 when /health answers 200, 0 when it answers 503.",
            healthy,
        );
        gauge(
            &mut out,
            "demo_errors_injected",
            "1 while POST /admin/errors/on makes every request fail with 500.",
            errors_on,
        );
        out
    }
}

fn family<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl Iterator<Item = (&'a u16, &'a u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (status, n) in samples {
        let _ = writeln!(out, "{name}{{status=\"{status}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_answers_by_status_and_errors_apart_but_never_probes() {
        let c = Counters::default();
        c.record("/", 200);
        c.record("/", 200);
        c.record("/items", 500);
        c.record("/health", 503);
        c.record("/metrics", 200);
        let text = c.render(false, true);
        assert!(text.contains("demo_http_requests_total{status=\"200\"} 2\n"));
        assert!(text.contains("demo_http_requests_total{status=\"500\"} 1\n"));
        assert!(text.contains("demo_http_errors_total{status=\"500\"} 1\n"));
        assert!(!text.contains("status=\"503\""), "{text}");
        assert!(!text.contains("demo_http_errors_total{status=\"200\"}"));
        assert!(text.contains("demo_healthy 0\n"));
        assert!(text.contains("demo_errors_injected 1\n"));
    }
}
