//! The typed conditions a ladder waits on, and the signals that stop a wait early.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use steward_policy::rules::Gate;
use tokio::sync::Notify;

/// A one-way stop signal: set once, seen by every waiter (a resolved event cancelling one
/// ladder, or the engine shutting down).
#[derive(Debug, Default)]
pub(crate) struct Stop {
    set: AtomicBool,
    notify: Notify,
}

impl Stop {
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Returns once the signal is set.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// Whether the previous step's output satisfies a step's gate; `Err` says what was found.
pub(crate) fn gate_holds(gate: &Gate, previous: Option<&Value>) -> Result<(), String> {
    let found = previous.and_then(|p| p.pointer(&gate.pointer));
    match found {
        Some(v) if *v == gate.equals => Ok(()),
        Some(v) => Err(format!(
            "the previous step's {} is {v}, not {}",
            gate.pointer, gate.equals
        )),
        None => Err(format!(
            "the previous step's output has no {} (needed {})",
            gate.pointer, gate.equals
        )),
    }
}

/// Whether a `service_status` output says the service is healthy: its live container runs
/// and reports healthy, or runs without a health check (what the restart executor waits for).
pub(crate) fn is_healthy(status_output: &Value) -> bool {
    let live = &status_output["live"];
    let running = live["state"].as_str() == Some("running");
    running && matches!(live["health"].as_str(), Some("healthy") | Some("none"))
}

/// The wait before health check `n` (0-based) after the first: doubling from `initial`,
/// capped at `cap`.
pub(crate) fn backoff(n: u32, initial: Duration, cap: Duration) -> Duration {
    initial
        .saturating_mul(2u32.saturating_pow(n.min(16)))
        .min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gates_compare_the_value_at_the_pointer() {
        let gate = Gate {
            pointer: "/available".into(),
            equals: json!(true),
        };
        assert!(gate_holds(&gate, Some(&json!({"available": true}))).is_ok());
        let no = gate_holds(&gate, Some(&json!({"available": false}))).unwrap_err();
        assert!(no.contains("false"), "{no}");
        assert!(gate_holds(&gate, None).is_err());
        assert!(gate_holds(&gate, Some(&json!({}))).is_err());
    }

    #[test]
    fn healthy_means_a_running_live_container_that_is_healthy_or_has_no_check() {
        let st = |state: &str, health: &str| json!({"live": {"state": state, "health": health}});
        assert!(is_healthy(&st("running", "healthy")));
        assert!(is_healthy(&st("running", "none")));
        assert!(!is_healthy(&st("running", "unhealthy")));
        assert!(!is_healthy(&st("running", "starting")));
        assert!(!is_healthy(&st("exited", "healthy")));
        assert!(!is_healthy(&json!({"password": "x"})));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (i, c) = (Duration::from_secs(1), Duration::from_secs(5));
        let waits: Vec<u64> = (0..5).map(|n| backoff(n, i, c).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
    }

    #[tokio::test]
    async fn a_stop_set_before_or_during_a_wait_ends_it() {
        let s = std::sync::Arc::new(Stop::default());
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        s.set();
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_millis(100), s.wait())
            .await
            .unwrap();
    }
}
