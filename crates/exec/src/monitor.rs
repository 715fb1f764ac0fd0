//! The health monitor of `steward serve`: it follows the Docker Engine's event stream for
//! the containers Steward labels and turns what it sees into trigger [`Event`]s, the same
//! ones rulebooks match as `monitor:<kind>`. It never polls.
//!
//! | Docker event                        | Event (`monitor:<name>`)   | key                        |
//! |-------------------------------------|----------------------------|----------------------------|
//! | `health_status: unhealthy`          | `unhealthy`, firing        | `unhealthy/<service>`      |
//! | `health_status: healthy`            | `unhealthy`, resolved      | `unhealthy/<service>`      |
//! | `die` not preceded by `kill`/`stop` | `died` (label `exit_code`) | `died/<container>/<time>`  |
//! | `oom`                               | `oom`                      | `oom/<container>/<time>`   |
//! | N crashes within M minutes          | `restart_loop`             | `restart_loop/<service>/…` |
//!
//! A `die` that follows Docker's `kill` or `stop` for the same container is a stop someone
//! asked for (a restart, a rollback, `docker stop`), not a crash. Keys of one-off events
//! carry the event's own time, so an event the engine sees twice (after a reconnect replays
//! from `since`) is a repeat and never runs a ladder twice.
//!
//! When the stream ends (Docker restarted, the socket went away), the monitor reconnects
//! with backoff, asks for the events since it last heard from Docker, and reconciles from a
//! container list: a service that turned unhealthy while nobody was listening still fires,
//! and one that recovered resolves.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use steward_protocol::{Event, EventSource, EventStatus, Timestamp};
use steward_tools::Clock;
use tokio::sync::mpsc;

use crate::docker::{DockerClient, ManagedContainer};
use crate::labels;

/// How the monitor counts restart loops and waits between reconnects. The defaults are
/// the documented ones; tests shorten them.
#[derive(Debug, Clone)]
pub struct MonitorSettings {
    /// A service whose containers crash this many times ...
    pub loop_deaths: usize,
    /// ... within this long is in a restart loop.
    pub loop_window: Duration,
    /// First wait before reconnecting; it doubles up to `backoff_cap`.
    pub backoff_initial: Duration,
    pub backoff_cap: Duration,
    /// Extra label filters (`key=value`) narrowing the containers followed; empty: every
    /// container with a `steward.service` label.
    pub labels: Vec<String>,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            loop_deaths: 3,
            loop_window: Duration::from_secs(5 * 60),
            backoff_initial: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(10),
            labels: Vec::new(),
        }
    }
}

/// What the monitor knows about its connection, for `/readyz` and people.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MonitorState {
    pub connected: bool,
    /// Times the stream was (re)established, the first included.
    pub connections: u64,
    pub last_error: Option<String>,
}

/// The Docker-events health monitor.
#[derive(Debug)]
pub struct Monitor {
    docker: DockerClient,
    clock: Arc<dyn Clock>,
    settings: MonitorSettings,
    state: Arc<Mutex<MonitorState>>,
}

/// Events bound for the trigger engine; one batch per Docker event or reconcile.
pub type EventSink = mpsc::Sender<Vec<Event>>;

impl Monitor {
    pub fn new(docker: DockerClient, clock: Arc<dyn Clock>, settings: MonitorSettings) -> Self {
        Self {
            docker,
            clock,
            settings,
            state: Arc::default(),
        }
    }

    /// A handle on the connection state that stays valid while [`Monitor::run`] runs.
    pub fn state(&self) -> Arc<Mutex<MonitorState>> {
        self.state.clone()
    }

    /// Follows the event stream until `sink` closes, reconnecting whenever it drops.
    pub async fn run(self, sink: EventSink) {
        let mut tracker = Tracker::new(self.settings.clone());
        let mut backoff = self.settings.backoff_initial;
        loop {
            match self.follow(&mut tracker, &sink).await {
                Followed::SinkClosed => return,
                Followed::Dropped { error, connected } => {
                    if connected {
                        backoff = self.settings.backoff_initial;
                    }
                    tracing::warn!(error = %error, retry_in = ?backoff, "the Docker event stream dropped; reconnecting");
                    self.set_state(|s| {
                        s.connected = false;
                        s.last_error = Some(error);
                    });
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.settings.backoff_cap);
                }
            }
        }
    }

    /// One connection: list the containers and reconcile, then follow the events since just
    /// before the list, so nothing between the list and the subscription is missed (what is
    /// replayed twice is a repeat to the engine).
    async fn follow(&self, tracker: &mut Tracker, sink: &EventSink) -> Followed {
        // Docker's `since` has second resolution: one second back covers the rest.
        let since = self.clock.now().0 / 1000 - 1;
        let containers = match self.docker.managed_containers(&self.settings.labels).await {
            Ok(c) => c,
            Err(e) => {
                return Followed::Dropped {
                    error: e.to_string(),
                    connected: false,
                }
            }
        };
        self.set_state(|s| {
            s.connected = true;
            s.connections += 1;
            s.last_error = None;
        });
        let reconciled = tracker.reconcile(&containers, self.clock.now());
        tracing::info!(
            containers = containers.len(),
            events = reconciled.len(),
            "following the Docker event stream"
        );
        if !reconciled.is_empty() && sink.send(reconciled).await.is_err() {
            return Followed::SinkClosed;
        }
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            (
                "label".to_string(),
                std::iter::once(labels::SERVICE.to_string())
                    .chain(self.settings.labels.iter().cloned())
                    .collect(),
            ),
        ]);
        let opts = EventsOptionsBuilder::new()
            .since(&since.to_string())
            .filters(&filters)
            .build();
        let mut stream = std::pin::pin!(self.docker.api().events(Some(opts)));
        while let Some(item) = stream.next().await {
            match item {
                Ok(message) => {
                    let events = tracker.observe(&message, self.clock.now());
                    if !events.is_empty() && sink.send(events).await.is_err() {
                        return Followed::SinkClosed;
                    }
                }
                Err(e) => {
                    return Followed::Dropped {
                        error: e.to_string(),
                        connected: true,
                    }
                }
            }
        }
        Followed::Dropped {
            error: "the Docker Engine closed the event stream".into(),
            connected: true,
        }
    }

    fn set_state(&self, f: impl FnOnce(&mut MonitorState)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

enum Followed {
    SinkClosed,
    /// `connected`: the engine answered before the stream dropped (the backoff restarts).
    Dropped {
        error: String,
        connected: bool,
    },
}

/// How long after Docker's `kill` or `stop` a container's `die` counts as asked for.
const ASKED_STOP_MS: i64 = 60_000;
/// How many one-off Docker events are remembered to recognise a replay.
const SEEN_CAP: usize = 4096;

/// The monitor's memory across events: stops someone asked for, recent crashes per service
/// and the one-off events already counted.
#[derive(Debug)]
struct Tracker {
    settings: MonitorSettings,
    /// Container id → when Docker reported a `kill` or `stop` for it (ms).
    asked_stop: HashMap<String, i64>,
    /// Service → times of its recent crashes (ms).
    crashes: HashMap<String, VecDeque<i64>>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl Tracker {
    fn new(settings: MonitorSettings) -> Self {
        Self {
            settings,
            asked_stop: HashMap::new(),
            crashes: HashMap::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        }
    }

    /// The state of every running service as events: `unhealthy` firing for a service with
    /// an unhealthy container, resolved for one whose containers all report healthy.
    /// Services without a health check, or still starting, say nothing.
    fn reconcile(&mut self, containers: &[ManagedContainer], now: Timestamp) -> Vec<Event> {
        let mut services: BTreeMap<&str, Vec<&ManagedContainer>> = BTreeMap::new();
        for c in containers.iter().filter(|c| c.state == "running") {
            services.entry(c.service.as_str()).or_default().push(c);
        }
        let mut events = Vec::new();
        for (service, running) in services {
            let status = if let Some(c) = running.iter().find(|c| c.health == "unhealthy") {
                (EventStatus::Firing, *c)
            } else if running.iter().all(|c| c.health == "healthy") {
                (EventStatus::Resolved, running[0])
            } else {
                continue;
            };
            let (status, c) = status;
            let mut e = event("unhealthy", status, format!("unhealthy/{service}"), now);
            e.labels = container_labels(&c.service, &c.kind, &c.name);
            e.fields.insert("container_id".into(), json!(c.id));
            e.fields.insert("release".into(), json!(c.release));
            e.fields.insert("reconciled".into(), json!(true));
            events.push(e);
        }
        events
    }

    /// What one Docker event means for the rulebooks (often nothing).
    fn observe(&mut self, m: &EventMessage, now: Timestamp) -> Vec<Event> {
        let Some(actor) = &m.actor else {
            return Vec::new();
        };
        let id = actor.id.clone().unwrap_or_default();
        let attrs = actor.attributes.clone().unwrap_or_default();
        let attr = |k: &str| attrs.get(k).cloned().unwrap_or_default();
        let service = attr(labels::SERVICE);
        if service.is_empty() {
            return Vec::new();
        }
        let labels = container_labels(&service, &attr(labels::KIND), &attr("name"));
        let at = m
            .time_nano
            .map(|n| n / 1_000_000)
            .or(m.time.map(|s| s * 1000))
            .unwrap_or(now.0);
        let at = Timestamp(at.min(now.0));
        let nanos = m.time_nano.unwrap_or(at.0 * 1_000_000);
        let action = m.action.as_deref().unwrap_or_default();
        let one_off = |name: &str, key: String| {
            let mut e = event(name, EventStatus::Firing, key, at);
            e.labels = labels.clone();
            e.fields.insert("container_id".into(), json!(id));
            e.fields
                .insert("release".into(), json!(attr(labels::RELEASE)));
            e
        };
        if let Some(health) = action.strip_prefix("health_status") {
            let status = match health.trim_start_matches(':').trim() {
                "unhealthy" => EventStatus::Firing,
                "healthy" => EventStatus::Resolved,
                _ => return Vec::new(),
            };
            let mut e = one_off("unhealthy", format!("unhealthy/{service}"));
            e.status = status;
            return vec![e];
        }
        match action {
            "kill" | "stop" => {
                self.asked_stop.insert(id, at.0);
                self.asked_stop.retain(|_, t| at.0 - *t < ASKED_STOP_MS);
                Vec::new()
            }
            "oom" => {
                let key = format!("oom/{id}/{nanos}");
                if !self.first_time(&key) {
                    return Vec::new();
                }
                vec![one_off("oom", key)]
            }
            "die" => {
                let asked = self
                    .asked_stop
                    .get(&id)
                    .is_some_and(|t| at.0 - *t < ASKED_STOP_MS);
                let key = format!("died/{id}/{nanos}");
                if asked || !self.first_time(&key) {
                    return Vec::new();
                }
                let exit_code = attr("exitCode");
                let mut died = one_off("died", key);
                died.labels.insert("exit_code".into(), exit_code.clone());
                let mut events = vec![died];
                if let Some(first) = self.crashed(&service, at.0) {
                    let mut e = one_off("restart_loop", format!("restart_loop/{service}/{first}"));
                    e.fields
                        .insert("deaths".into(), json!(self.settings.loop_deaths));
                    e.fields.insert("exit_code".into(), json!(exit_code));
                    events.push(e);
                }
                events
            }
            _ => Vec::new(),
        }
    }

    /// Counts a crash of `service`; when it completes a restart loop, returns the time of
    /// the loop's first crash and starts counting afresh.
    fn crashed(&mut self, service: &str, at_ms: i64) -> Option<i64> {
        let window = self.settings.loop_window.as_millis() as i64;
        let crashes = self.crashes.entry(service.to_string()).or_default();
        crashes.push_back(at_ms);
        while crashes.front().is_some_and(|t| at_ms - *t > window) {
            crashes.pop_front();
        }
        if crashes.len() >= self.settings.loop_deaths.max(1) {
            let first = crashes.front().copied();
            crashes.clear();
            return first;
        }
        None
    }

    /// False for a one-off event already counted (replayed after a reconnect).
    fn first_time(&mut self, key: &str) -> bool {
        if !self.seen.insert(key.to_string()) {
            return false;
        }
        self.seen_order.push_back(key.to_string());
        if self.seen_order.len() > SEEN_CAP {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

fn event(name: &str, status: EventStatus, key: String, at: Timestamp) -> Event {
    Event {
        source: EventSource::Monitor,
        name: name.to_string(),
        status,
        key,
        labels: BTreeMap::new(),
        fields: BTreeMap::new(),
        text: None,
        at,
    }
}

/// The typed values rules match and fill arguments from: the service, its kind
/// (`platform` or `tenant`) and the container's name.
fn container_labels(service: &str, kind: &str, container: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("service".to_string(), service.to_string()),
        ("kind".to_string(), kind.to_string()),
        (
            "container".to_string(),
            container.trim_start_matches('/').to_string(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn message(
        action: &str,
        id: &str,
        service: &str,
        nanos: i64,
        extra: &[(&str, &str)],
    ) -> EventMessage {
        let mut attributes = HashMap::from([
            (labels::SERVICE.to_string(), service.to_string()),
            (labels::KIND.to_string(), "platform".to_string()),
            (labels::RELEASE.to_string(), "r2".to_string()),
            ("name".to_string(), format!("{service}-r2")),
        ]);
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.to_string());
        }
        EventMessage {
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(attributes),
            }),
            time: Some(nanos / 1_000_000_000),
            time_nano: Some(nanos),
            ..EventMessage::default()
        }
    }

    const NOW: Timestamp = Timestamp(1_796_090_400_000);
    const SEC: i64 = 1_000_000_000;
    fn at(s: i64) -> i64 {
        NOW.0 * 1_000_000 - 2000 * SEC + s * SEC
    }

    #[test]
    fn health_changes_fire_and_resolve_one_key_per_service() {
        let mut t = Tracker::new(MonitorSettings::default());
        let bad = t.observe(
            &message("health_status: unhealthy", "c1", "psra", at(0), &[]),
            NOW,
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].name, "unhealthy");
        assert_eq!(bad[0].status, EventStatus::Firing);
        assert_eq!(bad[0].key, "unhealthy/psra");
        assert_eq!(bad[0].labels["service"], "psra");
        assert_eq!(bad[0].labels["kind"], "platform");
        assert_eq!(bad[0].at, Timestamp(at(0) / 1_000_000));
        let good = t.observe(
            &message("health_status: healthy", "c2", "psra", at(5), &[]),
            NOW,
        );
        assert_eq!(good[0].status, EventStatus::Resolved);
        assert_eq!(good[0].key, "unhealthy/psra");
        assert!(t
            .observe(
                &message("health_status: starting", "c2", "psra", at(6), &[]),
                NOW
            )
            .is_empty());
    }

    #[test]
    fn a_stop_someone_asked_for_is_not_a_crash_but_a_crash_is() {
        let mut t = Tracker::new(MonitorSettings::default());
        assert!(t
            .observe(
                &message("kill", "c1", "psra", at(0), &[("signal", "15")]),
                NOW
            )
            .is_empty());
        assert!(t
            .observe(
                &message("die", "c1", "psra", at(1), &[("exitCode", "143")]),
                NOW
            )
            .is_empty());
        let died = t.observe(
            &message("die", "c2", "psra", at(2), &[("exitCode", "1")]),
            NOW,
        );
        assert_eq!(died.len(), 1);
        assert_eq!(died[0].name, "died");
        assert_eq!(died[0].labels["exit_code"], "1");
        // The same Docker event again (a reconnect replays from `since`) counts once.
        assert!(t
            .observe(
                &message("die", "c2", "psra", at(2), &[("exitCode", "1")]),
                NOW
            )
            .is_empty());
        let oom = t.observe(&message("oom", "c2", "psra", at(3), &[]), NOW);
        assert_eq!(oom[0].name, "oom");
    }

    #[test]
    fn crashes_within_the_window_make_a_restart_loop_once() {
        let mut t = Tracker::new(MonitorSettings::default());
        let die = |t: &mut Tracker, s: i64| {
            t.observe(
                &message("die", "c1", "psra", at(s), &[("exitCode", "2")]),
                NOW,
            )
        };
        assert_eq!(die(&mut t, 0).len(), 1);
        assert_eq!(die(&mut t, 10).len(), 1);
        let third = die(&mut t, 20);
        assert_eq!(third.len(), 2, "{third:?}");
        assert_eq!(third[1].name, "restart_loop");
        assert!(third[1].key.starts_with("restart_loop/psra/"));
        // Counting starts afresh; crashes further apart than the window never loop.
        assert_eq!(die(&mut t, 400).len(), 1);
        assert_eq!(die(&mut t, 800).len(), 1);
        assert_eq!(die(&mut t, 1200).len(), 1);
    }

    fn container(service: &str, state: &str, health: &str) -> ManagedContainer {
        ManagedContainer {
            id: format!("{service}-id"),
            name: format!("{service}-r1"),
            service: service.into(),
            kind: "platform".into(),
            release: "r1".into(),
            image: "steward-demo:v1".into(),
            state: state.into(),
            health: health.into(),
            ip: None,
        }
    }

    #[test]
    fn reconcile_reports_running_services_by_their_health() {
        let mut t = Tracker::new(MonitorSettings::default());
        let events = t.reconcile(
            &[
                container("a", "running", "unhealthy"),
                container("b", "running", "healthy"),
                container("c", "running", "starting"),
                container("d", "exited", "unhealthy"),
                container("e", "running", "none"),
            ],
            NOW,
        );
        let got: Vec<(&str, EventStatus)> =
            events.iter().map(|e| (e.key.as_str(), e.status)).collect();
        assert_eq!(
            got,
            [
                ("unhealthy/a", EventStatus::Firing),
                ("unhealthy/b", EventStatus::Resolved)
            ]
        );
        assert_eq!(events[0].fields["reconciled"], json!(true));
    }
}
