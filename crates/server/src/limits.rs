//! Per-token rate limits: a token bucket per authenticated principal, so one runaway
//! script cannot starve the others or the trigger engine. Over the limit, the answer is 429
//! with `Retry-After`; nothing is parsed or run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most buckets kept; past it, the fullest (idle) ones are forgotten, which only ever
/// grants a forgotten token a fresh burst.
const MAX_BUCKETS: usize = 10_000;

/// Requests per second a token may sustain, and how many it may send at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl Default for RateLimit {
    /// Generous for people and scripts, far below what the server sustains.
    fn default() -> Self {
        RateLimit {
            per_second: 50.0,
            burst: 100.0,
        }
    }
}

impl RateLimit {
    /// `N/s` or `N/min` (the `api_rate_limit` setting); the burst is twice a second's worth,
    /// at least 10.
    pub fn parse(text: &str) -> Result<RateLimit, String> {
        let bad = || format!("{text:?}: expected a rate such as 50/s or 600/min");
        let (n, per) = text.trim().split_once('/').ok_or_else(bad)?;
        let n: f64 = n.trim().parse().map_err(|_| bad())?;
        let per_second = match per.trim() {
            "s" | "sec" | "second" => n,
            "min" | "minute" => n / 60.0,
            _ => return Err(bad()),
        };
        if !(per_second > 0.0 && per_second.is_finite()) {
            return Err(bad());
        }
        Ok(RateLimit {
            per_second,
            burst: (per_second * 2.0).max(10.0),
        })
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every principal seen.
#[derive(Debug, Clone)]
pub struct Limiter {
    limit: RateLimit,
    buckets: Arc<Mutex<HashMap<Arc<str>, Bucket>>>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Arc::default(),
        }
    }

    /// Takes one request from `who`'s bucket; `Err(seconds)` to wait when it is empty.
    pub fn admit(&self, who: &Arc<str>) -> Result<(), u64> {
        self.admit_at(who, Instant::now())
    }

    fn admit_at(&self, who: &Arc<str>, now: Instant) -> Result<(), u64> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(who) {
            let limit = self.limit;
            buckets.retain(|_, b| refill(b, limit, now) < limit.burst);
        }
        let bucket = buckets.entry(who.clone()).or_insert(Bucket {
            tokens: self.limit.burst,
            at: now,
        });
        let tokens = refill(bucket, self.limit, now);
        bucket.tokens = tokens;
        bucket.at = now;
        if tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - tokens) / self.limit.per_second;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

fn refill(b: &Bucket, limit: RateLimit, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + elapsed * limit.per_second).min(limit.burst)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_next_waits_and_refills_at_the_rate() {
        let l = Limiter::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let a: Arc<str> = "operator:a".into();
        let b: Arc<str> = "operator:b".into();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit_at(&a, t0), Ok(()));
        }
        assert_eq!(l.admit_at(&a, t0), Err(1));
        // Another token has its own bucket.
        assert_eq!(l.admit_at(&b, t0), Ok(()));
        // Half a second refills one request at 2/s.
        assert_eq!(l.admit_at(&a, t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(l.admit_at(&a, t0 + Duration::from_millis(500)), Err(1));
    }

    #[test]
    fn rates_parse_per_second_and_per_minute_and_refuse_nonsense() {
        assert_eq!(RateLimit::parse("50/s").unwrap().per_second, 50.0);
        let m = RateLimit::parse("120/min").unwrap();
        assert_eq!((m.per_second, m.burst), (2.0, 10.0));
        for bad in ["", "50", "0/s", "-1/s", "x/s", "5/hour"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad:?}");
        }
    }
}
