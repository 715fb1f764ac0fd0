//! Checkpoints belong to a store (issue 15): a home pointed at another store keeps the two
//! stores' checkpoints apart, and a store with records but no checkpoint is reported, never
//! silently signed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[macro_use]
mod common;

use std::path::Path;

use common::{exec, fill, Place};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use steward_audit::{AuditLog, AuditOptions, Backend, Checkpoint, ProblemKind, Store};

both!(
    store_id_is_stable_and_unique,
    another_store_never_touches_this_stores_checkpoints,
    checkpoints_cannot_be_moved_between_stores,
    records_without_checkpoint_are_reported_not_trusted,
    empty_store_is_trusted_on_first_use,
    legacy_checkpoints_are_adopted_by_their_store,
    legacy_checkpoint_of_a_truncated_tail_is_not_hidden,
);

/// A second store of the same backend, its audit files in `home` (the first store's home).
async fn with_other_store(p: &Place, body: impl AsyncFnOnce(&Place)) {
    common::scoped(p.backend, body).await;
}

async fn store_id_is_stable_and_unique(p: &Place) {
    let a = Store::open(&p.url).await.unwrap().id().await.unwrap();
    let again = Store::open(&p.url).await.unwrap().id().await.unwrap();
    assert_eq!(a, again);
    assert!(a.len() >= 16, "{a}");
    with_other_store(p, async |o| {
        let b = Store::open(&o.url).await.unwrap().id().await.unwrap();
        assert_ne!(a, b);
    })
    .await;
}

async fn another_store_never_touches_this_stores_checkpoints(p: &Place) {
    // The live home's store...
    let live = p.open().await;
    fill(&live, 30).await;
    live.checkpoint().await.unwrap();
    assert!(live.verify().await.unwrap().ok);
    let live_files = common::read_tree(live.checkpoint_dir());
    // ...and `steward --state-url <other store>` run with the same home.
    with_other_store(p, async |o| {
        let other = AuditLog::open(&o.url, &p.dir).await.unwrap();
        fill(&other, 50).await; // a longer log, so its heads would look like a cut tail
        other.checkpoint().await.unwrap();
        other.close().await.unwrap();
        assert_ne!(other.store_id(), live.store_id());
        assert_ne!(other.checkpoint_dir(), live.checkpoint_dir());
        let report = other.verify().await.unwrap();
        assert!(report.ok, "{report:#?}");
        assert_eq!(report.checkpoint.as_ref().map(|c| c.seq), Some(50));

        // The live store's checkpoint files are exactly as they were, and it verifies.
        assert_eq!(common::read_tree(live.checkpoint_dir()), live_files);
        let report = live.verify().await.unwrap();
        assert!(report.ok, "{report:#?}");
        assert_eq!(report.store_id, live.store_id());
        let cp = report.checkpoint.as_ref().unwrap();
        assert_eq!((cp.seq, cp.store.as_str()), (30, live.store_id()));
        // The other store's checkpoints are named, not held against this one.
        assert!(
            report.notes.iter().any(|n| n.contains(other.store_id())),
            "{report:#?}"
        );
        // Reopening the live log after the other run changes nothing either.
        let reopened = p.open().await;
        assert!(reopened.verify().await.unwrap().ok);
    })
    .await;
}

async fn checkpoints_cannot_be_moved_between_stores(p: &Place) {
    let live = p.open().await;
    fill(&live, 10).await;
    live.checkpoint().await.unwrap();
    with_other_store(p, async |o| {
        let other = AuditLog::open(&o.url, &p.dir).await.unwrap();
        fill(&other, 10).await;
        other.checkpoint().await.unwrap();
        let theirs = other.checkpoint_dir().join("checkpoint.json");
        let mine = std::fs::read_to_string(live.checkpoint_dir().join("checkpoint.json")).unwrap();
        // Copied as is: it names the live store, so it is flagged as out of place.
        std::fs::write(&theirs, &mine).unwrap();
        let report = other.verify().await.unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::Checkpoint && p.detail.contains("names store")),
            "{report:#?}"
        );
        // Relabelled: the store id is inside the MAC, so the signature breaks.
        let mut cp: Checkpoint = serde_json::from_str(mine.trim()).unwrap();
        cp.store = other.store_id().to_string();
        std::fs::write(&theirs, serde_json::to_string(&cp).unwrap()).unwrap();
        let report = other.verify().await.unwrap();
        assert!(
            report.problems.iter().any(
                |p| p.kind == ProblemKind::Checkpoint && p.detail.contains("invalid signature")
            ),
            "{report:#?}"
        );
    })
    .await;
}

/// Opens with checkpoints due after every 5 appends and every 10 ms, so any automatic
/// signing would happen within the test.
async fn eager(p: &Place) -> AuditLog {
    p.open_with(AuditOptions {
        checkpoint_every: 5,
        checkpoint_interval: std::time::Duration::from_millis(10),
        index_interval: std::time::Duration::from_millis(10),
    })
    .await
}

async fn records_without_checkpoint_are_reported_not_trusted(p: &Place) {
    let log = p.open().await;
    fill(&log, 20).await;
    log.checkpoint().await.unwrap();
    drop(log);
    // Cut the tail and delete every checkpoint file and the key.
    let store = Store::open(&p.url).await.unwrap();
    exec(&store, "DELETE FROM audit_log WHERE seq > 15").await;
    remove_dir(&p.dir).await;

    let log = eager(p).await;
    assert!(
        !log.has_checkpoint(),
        "open must not sign a store with records"
    );
    let report = log.verify().await.unwrap();
    assert!(!report.ok, "{report:#?}");
    assert!(!report.tampered());
    assert!(report.only_missing_checkpoint(), "{report:#?}");
    assert_eq!(report.problems[0].kind, ProblemKind::NoCheckpoint);
    assert!(report.problems[0].detail.contains("--first-checkpoint"));

    // Appends, the periodic and background checkpoints and close do not paper over it.
    fill(&log, 12).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    log.close().await.unwrap();
    assert!(!log.has_checkpoint());
    assert!(!log.checkpoint_dir().join("checkpoint.json").exists());
    let report = log.verify().await.unwrap();
    assert!(report.only_missing_checkpoint(), "{report:#?}");
    drop(log);
    let report = p.open().await.verify().await.unwrap();
    assert!(report.only_missing_checkpoint(), "{report:#?}");

    // An operator's explicit checkpoint anchors it; from then on it is automatic again.
    let log = eager(p).await;
    let cp = log.checkpoint().await.unwrap();
    assert_eq!(cp.seq, 27);
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:#?}");
    fill(&log, 5).await;
    // The fifth append signs 32, unless the 10 ms timer signed an earlier head first (a
    // loaded machine); then the timer signs the rest on a later tick. Either way, unasked.
    let mut latest = None;
    for _ in 0..500 {
        latest = log.latest_checkpoint().map(|c| c.seq);
        if latest == Some(32) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(latest, Some(32));
}

async fn empty_store_is_trusted_on_first_use(p: &Place) {
    let log = p.open().await;
    assert!(log.has_checkpoint());
    assert_eq!(log.latest_checkpoint().map(|c| c.seq), Some(0));
    let report = log.verify().await.unwrap();
    assert!(report.ok, "{report:#?}");
    fill(&log, 7).await;
    log.close().await.unwrap();
    assert_eq!(log.latest_checkpoint().map(|c| c.seq), Some(7));
    assert!(log.verify().await.unwrap().ok);
}

/// Signs `(seq, hash)` the way homes from before store ids did.
fn legacy(key: &[u8], seq: u64, hash: &str, at: i64) -> Checkpoint {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(format!("steward-audit-checkpoint/1\n{seq}\n{hash}\n{at}").as_bytes());
    Checkpoint {
        store: String::new(),
        seq,
        hash: hash.into(),
        at: steward_protocol::Timestamp(at),
        mac: hex::encode(m.finalize().into_bytes()),
    }
}

/// Removes `dir`, retrying while a dropped log's index threads finish writing into it.
async fn remove_dir(dir: &Path) {
    for _ in 0..100 {
        if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("cannot remove {}", dir.display());
}

/// Replaces the home's checkpoints with legacy files holding `history`.
async fn write_legacy(dir: &Path, history: &[Checkpoint]) {
    remove_dir(&dir.join("checkpoints")).await;
    let line = |c: &Checkpoint| {
        // The old format had no `store` member at all.
        let text = serde_json::to_string(c).unwrap();
        assert!(!text.contains("store"), "{text}");
        text
    };
    let lines: String = history.iter().map(|c| line(c) + "\n").collect();
    std::fs::write(dir.join("checkpoints.jsonl"), lines).unwrap();
    let last = history.last().unwrap();
    std::fs::write(dir.join("checkpoint.json"), line(last) + "\n").unwrap();
}

fn key_of(dir: &Path) -> Vec<u8> {
    hex::decode(
        std::fs::read_to_string(dir.join("checkpoint.key"))
            .unwrap()
            .trim(),
    )
    .unwrap()
}

async fn hash_at(log: &AuditLog, seq: u64) -> String {
    log.records(seq, 1).await.unwrap().remove(0).hash
}

async fn legacy_checkpoints_are_adopted_by_their_store(p: &Place) {
    let live = p.open().await;
    fill(&live, 30).await;
    let (live10, live30) = (hash_at(&live, 10).await, hash_at(&live, 30).await);
    drop(live);
    with_other_store(p, async |o| {
        let other = AuditLog::open(&o.url, &p.dir).await.unwrap();
        // A different first record, so the two chains differ from seq 1 on.
        other.append(common::entry(1000)).await.unwrap();
        fill(&other, 49).await;
        let (other20, other50) = (hash_at(&other, 20).await, hash_at(&other, 50).await);
        drop(other);
        let key = key_of(&p.dir);
        // The old layout: both stores' heads interleaved in one history, the other store's
        // last, as the bug left them.
        let mixed = vec![
            legacy(&key, 10, &live10, 1),
            legacy(&key, 20, &other20, 2),
            legacy(&key, 30, &live30, 3),
            legacy(&key, 50, &other50, 4),
        ];
        write_legacy(&p.dir, &mixed).await;

        // The live store takes its own two, and the other store's are not called tampering.
        let live = p.open().await;
        assert!(live.has_checkpoint());
        let report = live.verify().await.unwrap();
        assert!(!report.tampered(), "{report:#?}");
        assert_eq!(report.checkpoint.as_ref().map(|c| c.seq), Some(30));
        let kinds: Vec<_> = report.problems.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, vec![ProblemKind::Unattributed], "{report:#?}");
        assert!(report.problems[0].detail.contains("20..50"), "{report:#?}");

        // So does the other store.
        let other = AuditLog::open(&o.url, &p.dir).await.unwrap();
        let report = other.verify().await.unwrap();
        assert!(!report.tampered(), "{report:#?}");
        assert_eq!(report.checkpoint.as_ref().map(|c| c.seq), Some(50));

        // With the legacy files moved away, both verify clean on their adopted checkpoints.
        std::fs::remove_file(p.dir.join("checkpoint.json")).unwrap();
        std::fs::remove_file(p.dir.join("checkpoints.jsonl")).unwrap();
        let report = live.verify().await.unwrap();
        assert!(report.ok, "{report:#?}");
        let report = other.verify().await.unwrap();
        assert!(report.ok, "{report:#?}");
        // And the adopted checkpoints still catch a cut tail.
        exec(live.store(), "DELETE FROM audit_log WHERE seq > 25").await;
        let report = live.verify().await.unwrap();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::Truncated),
            "{report:#?}"
        );
    })
    .await;
}

async fn legacy_checkpoint_of_a_truncated_tail_is_not_hidden(p: &Place) {
    // An old single-store home whose tail was cut before the upgrade: the earlier legacy
    // checkpoint still matches and is adopted, the later one is reported, not dropped.
    let log = p.open().await;
    fill(&log, 40).await;
    let key = key_of(&p.dir);
    let history = vec![
        legacy(&key, 20, &hash_at(&log, 20).await, 1),
        legacy(&key, 40, &hash_at(&log, 40).await, 2),
    ];
    drop(log);
    write_legacy(&p.dir, &history).await;
    let store = Store::open(&p.url).await.unwrap();
    exec(&store, "DELETE FROM audit_log WHERE seq > 33").await;

    let log = p.open().await;
    let report = log.verify().await.unwrap();
    assert!(!report.ok, "{report:#?}");
    let unattributed: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Unattributed)
        .collect();
    assert_eq!(unattributed.len(), 1, "{report:#?}");
    assert!(unattributed[0]
        .detail
        .contains("beyond this log's end at 33"));
    assert_eq!(report.checkpoint.as_ref().map(|c| c.seq), Some(20));
}
