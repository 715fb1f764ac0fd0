//! What a submitted event becomes, decided in memory so that a burst of repeats costs a
//! counter each: a new incident, a repeat of a firing key, a throttled event, a resolution,
//! or an unmatched event. The decisions of a batch are then written in one transaction.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use steward_policy::rules::Rulebook;
use steward_protocol::{Event, EventStatus, Timestamp};

use super::{Accepted, Submission};
use crate::incidents::{Batch, Incident, IncidentStatus, TimelineEntry, TimelineKind};

/// Firing keys older than this are forgotten once the map grows past [`MAX_FIRING`]: a
/// source that never reports "resolved" (a webhook delivery) must not grow it forever.
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;
const MAX_FIRING: usize = 100_000;

/// One incident a firing key counts toward.
#[derive(Debug, Clone)]
struct Firing {
    /// `None`: the key's unmatched incident.
    rule: Option<String>,
    incident: String,
    /// False when the key was throttled into another key's incident: its repeats count as
    /// throttled there and its resolution does not close that incident.
    owner: bool,
    opened_ms: i64,
}

/// A throttle window: the incident that holds it and when it ends.
#[derive(Debug, Clone)]
struct Window {
    incident: String,
    until_ms: i64,
}

/// The engine's memory of firing keys, throttle windows and active incidents. Rebuilt
/// from the store at start ([`Intake::restore`]).
#[derive(Debug, Default)]
pub(crate) struct Intake {
    firing: HashMap<String, Vec<Firing>>,
    windows: HashMap<String, Window>,
    active: HashSet<String>,
}

/// A new incident whose ladder must start once the batch is committed.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub incident: String,
    pub rule: String,
    pub event: Event,
}

pub(crate) fn new_id() -> String {
    format!("in-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl Intake {
    /// Rebuilds the memory from stored incidents (those still firing or recently opened).
    pub fn restore(rulebook: &Rulebook, incidents: &[Incident], now: Timestamp) -> Intake {
        let mut intake = Intake::default();
        for i in incidents {
            if i.status.is_active() {
                intake.active.insert(i.id.clone());
            }
            if i.firing {
                intake
                    .firing
                    .entry(i.event_key.clone())
                    .or_default()
                    .push(Firing {
                        rule: i.rule.clone(),
                        incident: i.id.clone(),
                        owner: true,
                        opened_ms: i.opened_at.0,
                    });
            }
            let throttle = i
                .rule
                .as_deref()
                .and_then(|r| rulebook.get(r))
                .and_then(|r| r.throttle.as_ref());
            if let (Some(t), Some(group)) = (throttle, &i.group) {
                let until_ms = i.opened_at.0 + t.once_within_ms;
                if until_ms > now.0 {
                    intake.windows.insert(
                        group.clone(),
                        Window {
                            incident: i.id.clone(),
                            until_ms,
                        },
                    );
                }
            }
        }
        intake
    }

    pub fn deactivate(&mut self, incident: &str) {
        self.active.remove(incident);
    }

    /// Decides what each event of a submission becomes, adding the writes to `batch` and
    /// the ladders to start to `opened`.
    pub fn accept(
        &mut self,
        rulebook: &Rulebook,
        sub: &Submission,
        now: Timestamp,
        batch: &mut Batch,
        opened: &mut Vec<Opened>,
    ) -> Accepted {
        let mut acc = Accepted {
            request_id: sub.request_id.clone(),
            events: sub.events.len(),
            incidents: Vec::new(),
            repeats: 0,
            resolved: 0,
            unmatched: 0,
        };
        for event in &sub.events {
            match event.status {
                EventStatus::Resolved => self.resolve(event, batch, &mut acc),
                EventStatus::Firing => {
                    self.fire(rulebook, event, sub, now, batch, opened, &mut acc)
                }
            }
        }
        batch.requests.push((
            sub.request_id.clone(),
            serde_json::to_value(&acc).unwrap_or_default(),
        ));
        self.forget_old(now);
        acc
    }

    fn resolve(&mut self, event: &Event, batch: &mut Batch, acc: &mut Accepted) {
        acc.resolved += 1;
        for f in self.firing.remove(&event.key).unwrap_or_default() {
            if !f.owner {
                continue;
            }
            batch.unfired.push(f.incident.clone());
            if self.active.remove(&f.incident) {
                batch.resolve.push(f.incident.clone());
            }
            touch(acc, &f.incident);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        rulebook: &Rulebook,
        event: &Event,
        sub: &Submission,
        now: Timestamp,
        batch: &mut Batch,
        opened: &mut Vec<Opened>,
        acc: &mut Accepted,
    ) {
        let rules = rulebook.matching(event);
        if rules.is_empty() {
            acc.unmatched += 1;
            if let Some(f) = self.find(&event.key, None) {
                *batch.repeats.entry(f.incident.clone()).or_default() += 1;
                touch(acc, &f.incident);
                return;
            }
            let reason = format!(
                "no rule answers {} event {:?}",
                json!(event.source).as_str().unwrap_or("an"),
                event.name
            );
            let mut i = incident(event, sub, now, IncidentStatus::Unmatched, None);
            i.closed_at = Some(now);
            i.close_reason = Some(reason.clone());
            i.timeline
                .push(TimelineEntry::new(now, TimelineKind::Closed).message(reason));
            self.remember(&event.key, None, &i.id, true, now);
            touch(acc, &i.id);
            batch.opened.push(i);
            return;
        }
        let mut started = false;
        for rule in rules {
            if let Some(f) = self.find(&event.key, Some(&rule.id)) {
                let counter = if f.owner {
                    &mut batch.repeats
                } else {
                    &mut batch.throttled
                };
                *counter.entry(f.incident.clone()).or_default() += 1;
                touch(acc, &f.incident);
                continue;
            }
            let group = rule.group_key(event);
            let window = rule
                .throttle
                .as_ref()
                .and_then(|_| self.windows.get(&group))
                .filter(|w| w.until_ms > now.0);
            if let Some(w) = window {
                let held = w.incident.clone();
                *batch.throttled.entry(held.clone()).or_default() += 1;
                self.remember(&event.key, Some(&rule.id), &held, false, now);
                touch(acc, &held);
                continue;
            }
            let mut i = incident(event, sub, now, IncidentStatus::Open, Some(rule));
            i.group = Some(group.clone());
            let mut e = TimelineEntry::new(now, TimelineKind::Rule).message(format!(
                "rule {} matched; acting as {} with {} step(s)",
                rule.id,
                rule.principal(),
                rule.steps.len()
            ));
            e.outcome = Some(json!({"for_ms": rule.for_ms, "group": group}));
            i.timeline.push(e);
            if let Some(t) = &rule.throttle {
                self.windows.insert(
                    group,
                    Window {
                        incident: i.id.clone(),
                        until_ms: now.0 + t.once_within_ms,
                    },
                );
            }
            self.remember(&event.key, Some(&rule.id), &i.id, true, now);
            self.active.insert(i.id.clone());
            touch(acc, &i.id);
            opened.push(Opened {
                incident: i.id.clone(),
                rule: rule.id.clone(),
                event: event.clone(),
            });
            batch.opened.push(i);
            started = true;
        }
        if !started {
            acc.repeats += 1;
        }
    }

    fn find(&self, key: &str, rule: Option<&str>) -> Option<&Firing> {
        self.firing
            .get(key)?
            .iter()
            .find(|f| f.rule.as_deref() == rule)
    }

    fn remember(
        &mut self,
        key: &str,
        rule: Option<&str>,
        incident: &str,
        owner: bool,
        now: Timestamp,
    ) {
        self.firing
            .entry(key.to_string())
            .or_default()
            .push(Firing {
                rule: rule.map(str::to_string),
                incident: incident.to_string(),
                owner,
                opened_ms: now.0,
            });
    }

    fn forget_old(&mut self, now: Timestamp) {
        if self.firing.len() > MAX_FIRING {
            let cutoff = now.0 - FORGET_AFTER_MS;
            self.firing
                .retain(|_, fs| fs.iter().any(|f| f.opened_ms >= cutoff));
        }
        if self.windows.len() > MAX_FIRING {
            self.windows.retain(|_, w| w.until_ms > now.0);
        }
    }
}

fn touch(acc: &mut Accepted, incident: &str) {
    if !acc.incidents.iter().any(|i| i == incident) {
        acc.incidents.push(incident.to_string());
    }
}

/// A new incident row for `event` (the event itself is kept as data, text included).
fn incident(
    event: &Event,
    sub: &Submission,
    now: Timestamp,
    status: IncidentStatus,
    rule: Option<&steward_policy::rules::Rule>,
) -> Incident {
    let mut e = TimelineEntry::new(now, TimelineKind::Event).message(format!(
        "{} {:?} firing (key {})",
        event.source.as_str(),
        event.name,
        event.key
    ));
    e.outcome = Some(json!({"labels": event.labels, "fields": event.fields}));
    Incident {
        id: new_id(),
        rule: rule.map(|r| r.id.clone()),
        principal: rule.map(|r| r.principal().to_string()),
        event_key: event.key.clone(),
        group: None,
        status,
        firing: true,
        opened_at: now,
        closed_at: None,
        close_reason: None,
        repeats: 0,
        throttled: 0,
        request_id: sub.request_id.clone(),
        event: event.clone(),
        timeline: vec![e],
    }
}
