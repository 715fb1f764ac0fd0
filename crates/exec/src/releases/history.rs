//! Release history of one service, persisted as JSON under `<state_dir>/releases/<service>.json`.
//!
//! Docker only knows which containers exist now; "which release was live at 14:00 yesterday"
//! needs the switches over time. Each release records when it was created and every interval
//! in which it served, so a time resolves to exactly one release (or to none, before the
//! history begins).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use steward_protocol::Timestamp;

use crate::inventory::release_number;
use crate::{Error, Result};

/// Every release steward has seen for one service, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    pub service: String,
    #[serde(default)]
    pub releases: Vec<ReleaseRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// `r<N>`; the container is `<service>-r<N>`.
    pub release: String,
    pub image: String,
    pub created_at: Timestamp,
    /// When the release went live and, once retired, when it stopped serving. Empty for a
    /// release seen only while bootstrapping, whose past is unknown.
    #[serde(default)]
    pub live: Vec<Interval>,
}

/// `[from, until)`; `until` is absent while the release is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub from: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

impl Interval {
    fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && self.until.is_none_or(|u| t < u)
    }
}

impl History {
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_string(),
            releases: Vec::new(),
        }
    }

    /// Where the history of `service` lives.
    pub fn path(state_dir: &Path, service: &str) -> PathBuf {
        state_dir.join("releases").join(format!("{service}.json"))
    }

    /// The stored history, or `None` when steward has not written one yet.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path)(e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Failed(format!(
                "release history {} is unreadable ({e}); move it aside and steward rebuilds it \
                 from the containers (times before that are then unknown)",
                path.display()
            ))
        })
    }

    /// Writes through a temp file and a rename, so a crash never leaves half a history.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let body = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Failed(format!("cannot encode release history: {e}")))?;
        let tmp = dir.join(format!(".{}.json.tmp", self.service));
        std::fs::write(&tmp, body + "\n").map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io(path))
    }

    pub fn record(&self, release: &str) -> Option<&ReleaseRecord> {
        self.releases.iter().find(|r| r.release == release)
    }

    /// Adds a release that is not recorded yet; an existing record is left as it is.
    pub fn ensure(&mut self, release: &str, image: &str, created_at: Timestamp) {
        if self.record(release).is_none() {
            self.releases.push(ReleaseRecord {
                release: release.to_string(),
                image: image.to_string(),
                created_at,
                live: Vec::new(),
            });
            self.releases.sort_by_key(|r| release_number(&r.release));
        }
    }

    /// The release serving now according to the history.
    pub fn current(&self) -> Option<&ReleaseRecord> {
        self.releases
            .iter()
            .find(|r| r.live.iter().any(|i| i.until.is_none()))
    }

    /// The release that was serving at `t`.
    pub fn live_at(&self, t: Timestamp) -> Option<&ReleaseRecord> {
        self.releases
            .iter()
            .find(|r| r.live.iter().any(|i| i.contains(t)))
    }

    /// When the history begins: the first recorded go-live.
    pub fn first_live(&self) -> Option<(Timestamp, &str)> {
        self.releases
            .iter()
            .flat_map(|r| r.live.iter().map(move |i| (i.from, r.release.as_str())))
            .min()
    }

    /// The release that served right before the current one: the one retired last.
    pub fn previous(&self) -> Option<&ReleaseRecord> {
        let current = self.current().map(|r| r.release.as_str());
        self.releases
            .iter()
            .filter(|r| Some(r.release.as_str()) != current)
            .filter_map(|r| r.live.iter().filter_map(|i| i.until).max().map(|u| (u, r)))
            .max_by_key(|(u, r)| (*u, release_number(&r.release)))
            .map(|(_, r)| r)
    }

    /// Records that `release` went live at `at`: every other open interval closes then.
    /// Already live: nothing changes.
    pub fn went_live(&mut self, release: &str, at: Timestamp) {
        if self.current().is_some_and(|r| r.release == release) {
            return;
        }
        for r in &mut self.releases {
            for i in &mut r.live {
                if i.until.is_none() {
                    // A clock set back (tests, NTP) must not produce a negative interval.
                    i.until = Some(at.max(i.from));
                }
            }
        }
        if let Some(r) = self.releases.iter_mut().find(|r| r.release == release) {
            r.live.push(Interval {
                from: at,
                until: None,
            });
        }
    }

    /// Highest release number ever used, so a new release never reuses a recorded id.
    pub fn max_number(&self) -> u64 {
        self.releases
            .iter()
            .map(|r| release_number(&r.release))
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const H: i64 = 3_600_000;

    fn history() -> History {
        let mut h = History::new("web");
        h.ensure("r1", "demo:v1", Timestamp(0));
        h.went_live("r1", Timestamp(0));
        h.ensure("r2", "demo:v2", Timestamp(H));
        h.went_live("r2", Timestamp(H));
        h.ensure("r3", "demo:v3", Timestamp(2 * H));
        h.went_live("r3", Timestamp(2 * H));
        h
    }

    #[test]
    fn answers_which_release_was_live_when() {
        let h = history();
        let at = |ms| h.live_at(Timestamp(ms)).map(|r| r.release.as_str());
        assert_eq!(at(-1), None);
        assert_eq!(at(0), Some("r1"));
        assert_eq!(at(H - 1), Some("r1"));
        assert_eq!(at(H), Some("r2"));
        assert_eq!(at(H + H / 2), Some("r2"));
        assert_eq!(at(5 * H), Some("r3"));
        assert_eq!(h.current().unwrap().release, "r3");
        assert_eq!(h.previous().unwrap().release, "r2");
        assert_eq!(h.first_live(), Some((Timestamp(0), "r1")));
    }

    #[test]
    fn a_rollback_is_recorded_as_a_new_interval() {
        let mut h = history();
        h.went_live("r1", Timestamp(3 * H));
        assert_eq!(h.current().unwrap().release, "r1");
        assert_eq!(h.previous().unwrap().release, "r3");
        assert_eq!(h.live_at(Timestamp(H / 2)).unwrap().release, "r1");
        assert_eq!(h.live_at(Timestamp(2 * H + 1)).unwrap().release, "r3");
        assert_eq!(h.live_at(Timestamp(4 * H)).unwrap().release, "r1");
        assert_eq!(h.record("r1").unwrap().live.len(), 2);
        // Going live again while live changes nothing.
        let before = h.clone();
        h.went_live("r1", Timestamp(5 * H));
        assert_eq!(h, before);
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = std::env::temp_dir().join(format!("steward-history-{}", std::process::id()));
        let path = History::path(&dir, "web");
        assert_eq!(History::load(&path).unwrap(), None);
        let h = history();
        h.save(&path).unwrap();
        assert_eq!(History::load(&path).unwrap(), Some(h));
        std::fs::write(&path, "{").unwrap();
        let err = History::load(&path).unwrap_err().to_string();
        assert!(err.contains("unreadable"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
