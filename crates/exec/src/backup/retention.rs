//! Backup retention: which of a target's backups to keep (for example 7 daily and 4
//! weekly) and removing the rest, applied after a verified backup and never before.
//!
//! Only backups `db_backup` took and `db_verify_backup` proved restorable count: the newest
//! verified backup of each of the last `daily` days and of the last `weekly` ISO weeks is
//! kept, and older verified ones go. A backup never verified, or whose verification failed,
//! is never removed (it may be the only copy, or the evidence of a failure), and neither is
//! a safety backup a restore or a tenant's removal took. When the newest backup is not
//! verified, nothing is removed at all: a corrupted backup never costs a good one.

use std::collections::BTreeSet;

use chrono::Datelike;
use serde::Serialize;

use super::manifest::{self, Manifest};
use crate::env::Env;
use crate::{Error, Result};

/// How many verified backups to keep, per calendar day and per ISO week (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Keep {
    pub daily: usize,
    pub weekly: usize,
}

impl Default for Keep {
    fn default() -> Self {
        Keep {
            daily: 7,
            weekly: 4,
        }
    }
}

/// What retention decided for one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub keep: Vec<String>,
    pub remove: Vec<String>,
    /// Backups retention never touches (unverified, failed verification, safety copies).
    pub untouched: Vec<String>,
}

/// One backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub created_at_ms: i64,
    /// Taken by `db_backup` (not a safety copy).
    pub taken: bool,
    pub verified: bool,
}

/// Decides, reading the backup directory only. `Err` when the newest backup `db_backup`
/// took is not verified: retention waits for a verified one.
pub fn decide(env: &Env, target: &str, keep: Keep) -> Result<Decision> {
    let items: Vec<Item> = manifest::list(env, target)?
        .iter()
        .map(|m: &Manifest| Item {
            id: m.id.clone(),
            created_at_ms: m.created_at_ms,
            taken: m.reason == "db_backup",
            verified: manifest::read_verify(env, target, &m.id).is_some_and(|v| v.ok),
        })
        .collect();
    choose(&items, keep).map_err(|why| Error::Failed(format!("{target}: {why}")))
}

/// The decision over `items`, newest first.
pub fn choose(items: &[Item], keep: Keep) -> std::result::Result<Decision, String> {
    if let Some(newest) = items.iter().find(|i| i.taken) {
        if !newest.verified {
            return Err(format!(
                "the newest backup, {}, is not verified; retention removes nothing until a \
                 backup is",
                newest.id
            ));
        }
    }
    let mut d = Decision::default();
    let mut days = BTreeSet::new();
    let mut weeks = BTreeSet::new();
    for item in items {
        let at = chrono::DateTime::from_timestamp_millis(item.created_at_ms);
        let (true, true, Some(at)) = (item.taken, item.verified, at) else {
            d.untouched.push(item.id.clone());
            continue;
        };
        let day = at.date_naive();
        let week = (at.iso_week().year(), at.iso_week().week());
        // Newest first: the first backup of a day (or week) is its newest.
        let by_day = days.len() < keep.daily && days.insert(day);
        let by_week = weeks.len() < keep.weekly && weeks.insert(week);
        if by_day || by_week {
            d.keep.push(item.id.clone());
        } else {
            d.remove.push(item.id.clone());
        }
    }
    Ok(d)
}

/// Removes the backups `decision` lets go: the dump, its manifest and its verification
/// record. Returns the ids removed.
pub fn remove(env: &Env, target: &str, decision: &Decision) -> Result<Vec<String>> {
    let dir = manifest::target_dir(env, target);
    let mut removed = Vec::new();
    for id in &decision.remove {
        let (_, m) = manifest::read_manifest(env, id)?;
        // The manifest goes first: a backup without one is never listed, so a crash half-way
        // leaves a stray file, never a listed backup missing its dump.
        for path in [
            manifest::manifest_path(&dir, id),
            dir.join(&m.file),
            manifest::verify_path(env, target, id),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path)(e)),
            }
        }
        removed.push(id.clone());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600 * 1000;
    /// 2026-12-01T02:00:00Z, a Tuesday.
    const DEC_1: i64 = 1_796_090_400_000;

    fn nightly(days: i64) -> Vec<Item> {
        (0..days)
            .map(|d| Item {
                id: format!("acme-{d}"),
                created_at_ms: DEC_1 - d * DAY,
                taken: true,
                verified: true,
            })
            .collect()
    }

    #[test]
    fn keeps_seven_daily_and_four_weekly_and_removes_the_rest() {
        let d = choose(&nightly(60), Keep::default()).unwrap();
        // Days 0-6 (seven days, spanning this week and last), then the newest backup of
        // each older ISO week until four weeks are kept.
        assert_eq!(
            d.keep[..7],
            nightly(7).iter().map(|i| i.id.clone()).collect::<Vec<_>>()[..]
        );
        assert_eq!(d.keep.len(), 7 + 2, "{:?}", d.keep);
        assert_eq!(d.keep.len() + d.remove.len(), 60);
        assert!(d.untouched.is_empty());
    }

    #[test]
    fn an_unverified_newest_backup_removes_nothing() {
        let mut items = nightly(30);
        items[0].verified = false;
        let e = choose(&items, Keep::default()).unwrap_err();
        assert!(e.contains("acme-0") && e.contains("not verified"), "{e}");
    }

    #[test]
    fn unverified_and_safety_backups_are_never_removed() {
        let mut items = nightly(30);
        items[20].verified = false;
        items[25].taken = false;
        let d = choose(
            &items,
            Keep {
                daily: 1,
                weekly: 1,
            },
        )
        .unwrap();
        assert_eq!(d.keep, ["acme-0"]);
        assert_eq!(d.untouched, ["acme-20", "acme-25"]);
        assert_eq!(d.remove.len(), 27);
    }
}
