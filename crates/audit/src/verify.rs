//! Walking the chain: what `AuditLog::verify` does.
//!
//! Pass 1 streams every row in seq order (the next page is fetched while the current one is
//! hashed on a blocking thread, so both cores work) and checks, per row:
//!
//! - *self*: the stored hash equals `sha256(seq, prev_hash, entry)`;
//! - *link*: `prev_hash` equals the previous row's stored hash (the genesis hash for seq 1);
//! - *gap*: the seq follows the previous one;
//! - *columns*: `at_ms`, `kind`, `refers_to` agree with the hashed entry.
//!
//! An intact log ends there. Otherwise pass 2 loads only the links `(seq, prev_hash, hash)`
//! and works out where each broken record really belongs: a record whose hash only verifies
//! under another seq was moved (reordered, or renumbered to close the hole left by a
//! deletion); one that verifies under none was edited; a record that still links correctly
//! but whose predecessor's hash changed points at a predecessor edited with its hash
//! recomputed. Checkpoints (see [`crate::checkpoint`]) then catch what a consistent chain
//! cannot show: a truncated tail, or a chain rewritten and re-hashed from some point on.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::chain::{hash_matches, record_digest, GENESIS};
use crate::checkpoint::{Checkpoint, Checkpointer};
use crate::db::{self, Page, PageRow};
use crate::store::Store;
use crate::Result;

/// Rows per page of the scan.
const PAGE: usize = 20_000;
/// Broken records examined one by one in pass 2; past this they are reported in bulk.
const MAX_EXAMINED: usize = 2_000;
/// Problems listed in a report; the rest are summarized in a last entry.
const MAX_PROBLEMS: usize = 1_000;
/// How far a renumbered record is searched for when its predecessor is gone.
const RENUMBER_WINDOW: u64 = 64;

/// What kind of tampering a problem shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The record's contents (or columns) no longer match its hash, or its hash was
    /// recomputed after an edit and no longer matches what the next record links to.
    Edited,
    /// Records are missing from the middle of the log.
    Deleted,
    /// The record is valid but stored at a different seq than it was written with.
    Reordered,
    /// Records are missing from the end: a checkpoint shows a longer log.
    Truncated,
    /// The chain verifies, but not against a signed checkpoint: it was rewritten and
    /// re-hashed from some record on.
    Rewritten,
    /// A checkpoint itself is missing, unreadable or wrongly signed.
    Checkpoint,
    /// The store has records but no checkpoint at all (the checkpoint files were never
    /// written, or were deleted): a truncated tail cannot be ruled out. Not evidence of
    /// tampering by itself; an operator who knows the log is good signs a first checkpoint.
    NoCheckpoint,
    /// Legacy checkpoints (from before checkpoints named their store) that match no record
    /// of this store: another store's heads mixed into this home's files by the old layout,
    /// or records this store lost. Reported plainly, not as tampering of this store.
    Unattributed,
}

impl ProblemKind {
    /// Whether this kind is evidence of tampering (as opposed to a missing or unattributable
    /// checkpoint, which an operator has to look into but which proves nothing by itself).
    pub fn is_tampering(self) -> bool {
        !matches!(self, ProblemKind::NoCheckpoint | ProblemKind::Unattributed)
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProblemKind::Edited => "edited",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Truncated => "truncated",
            ProblemKind::Rewritten => "rewritten",
            ProblemKind::Checkpoint => "checkpoint",
            ProblemKind::NoCheckpoint => "no_checkpoint",
            ProblemKind::Unattributed => "unattributed",
        })
    }
}

/// One finding, pinned to the seq where it shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub seq: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

/// The outcome of [`crate::AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Rows examined.
    pub records: u64,
    pub ok: bool,
    pub problems: Vec<Problem>,
    /// The last record's seq, if any.
    pub head_seq: Option<u64>,
    /// The newest validly signed checkpoint, if any.
    pub checkpoint: Option<Checkpoint>,
    /// The id of the store verified ([`crate::Store::id`]); its checkpoints are the only
    /// ones held against it.
    #[serde(default)]
    pub store_id: String,
    /// Things worth knowing that are not problems (other stores' checkpoints in this home,
    /// an empty store without a checkpoint).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// Whether any problem is evidence of tampering (see [`ProblemKind::is_tampering`]).
    pub fn tampered(&self) -> bool {
        self.problems.iter().any(|p| p.kind.is_tampering())
    }

    /// Whether the only thing wrong is that this store has no checkpoint yet.
    pub fn only_missing_checkpoint(&self) -> bool {
        !self.problems.is_empty()
            && self
                .problems
                .iter()
                .all(|p| p.kind == ProblemKind::NoCheckpoint)
    }
}

/// Pass 1 state, moved between the async fetch and the blocking hasher.
#[derive(Default)]
struct Scan {
    records: u64,
    last: Option<(u64, String)>,
    self_fail: Vec<u64>,
    link_fail: Vec<u64>,
    problems: Vec<Problem>,
    /// Checkpointed seqs in ascending order, filled with the hash found there.
    wanted: Vec<(u64, Option<String>)>,
    /// The first entry of `wanted` not passed yet (rows come in ascending seq order).
    wanted_at: usize,
}

/// What can be checked of a row by itself: its hash and its copied columns.
fn check_row(page: &Page, r: &PageRow) -> (bool, Option<String>) {
    let entry = page.str(r.entry);
    let self_ok = hash_matches(
        page.str(r.hash),
        &record_digest(r.seq as u64, page.str(r.prev_hash), entry),
    );
    // Columns are only worth comparing when the entry is authentic.
    let columns = if self_ok {
        column_mismatch(
            entry,
            page.opt(r.at_ms),
            page.opt(r.kind),
            page.opt(r.refers_to),
        )
    } else {
        None
    };
    (self_ok, columns)
}

impl Scan {
    fn check(&mut self, page: &Page) {
        let rows = &page.rows;
        // The per-row work (hashing, column scan) is independent: split it over two
        // threads; the links between rows are checked in order afterwards.
        let half = rows.len() / 2;
        let (first, second) = rows.split_at(half);
        let check = |r: &PageRow| check_row(page, r);
        let (mut own, other) = std::thread::scope(|scope| {
            let other = scope.spawn(|| second.iter().map(check).collect::<Vec<_>>());
            let own: Vec<_> = first.iter().map(check).collect();
            (own, other.join())
        });
        match other {
            Ok(v) => own.extend(v),
            // The helper thread panicked (it cannot, short of a bug): redo its half here.
            Err(_) => own.extend(second.iter().map(check)),
        }
        for (i, (r, (self_ok, columns))) in rows.iter().zip(own).enumerate() {
            let seq = r.seq as u64;
            let hash = page.str(r.hash);
            self.records += 1;
            let (expected, prev_hash) = match (i.checked_sub(1), &self.last) {
                (Some(p), _) => (rows[p].seq as u64 + 1, page.str(rows[p].hash)),
                (None, Some((s, h))) => (s + 1, h.as_str()),
                (None, None) => (1, GENESIS),
            };
            let gap = seq != expected;
            if gap {
                self.problems.push(Problem {
                    seq: expected,
                    kind: ProblemKind::Deleted,
                    detail: if seq == expected + 1 {
                        format!(
                            "record {expected} is missing (seq {seq} follows {})",
                            expected - 1
                        )
                    } else {
                        format!(
                            "records {expected}..{} are missing (seq {seq} follows {})",
                            seq - 1,
                            expected.saturating_sub(1)
                        )
                    },
                });
            }
            if !self_ok {
                self.self_fail.push(seq);
            } else {
                if !gap && page.str(r.prev_hash) != prev_hash {
                    self.link_fail.push(seq);
                }
                if let Some(detail) = columns {
                    self.problems.push(Problem {
                        seq,
                        kind: ProblemKind::Edited,
                        detail,
                    });
                }
            }
            while let Some((want, slot)) = self.wanted.get_mut(self.wanted_at) {
                if *want > seq {
                    break;
                }
                if *want == seq {
                    *slot = Some(hash.to_string());
                }
                self.wanted_at += 1;
            }
        }
        if let Some(r) = rows.last() {
            self.last = Some((r.seq as u64, page.str(r.hash).to_string()));
        }
    }

    /// The hash found at a checkpointed seq, if the scan met that record.
    fn found(&self, seq: u64) -> Option<&str> {
        let i = self.wanted.binary_search_by_key(&seq, |(s, _)| *s).ok()?;
        self.wanted[i].1.as_deref()
    }
}

/// Whether the copied columns (as text) disagree with the hashed entry; they steer
/// `open_begins`. Compared as text: canonical JSON writes integers as the databases print
/// them, so a column holding anything else (`5.0`, `abc`) is reported too.
/// A member's raw JSON, `None` when absent or `null`.
fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|v| *v != "null")
}

fn column_mismatch(
    entry: &str,
    at_col: Option<&str>,
    kind_col: Option<&str>,
    refers_to_col: Option<&str>,
) -> Option<String> {
    let Some(top) = top_level(entry) else {
        return Some("the hashed entry is not a JSON object".into());
    };
    if present(top.at) != at_col {
        return Some(format!(
            "column at_ms is {at_col:?} but the hashed entry says {:?}",
            top.at
        ));
    }
    let kind = present(top.kind).map(|k| k.trim_matches('"'));
    if kind != kind_col {
        return Some(format!(
            "column kind is {kind_col:?} but the hashed entry says {kind:?}"
        ));
    }
    if present(top.refers_to) != refers_to_col {
        return Some(format!(
            "column refers_to is {refers_to_col:?} but the hashed entry says {:?}",
            top.refers_to
        ));
    }
    None
}

/// Raw JSON text of the top-level members the columns copy.
#[derive(Debug, Default, PartialEq)]
struct TopLevel<'a> {
    at: Option<&'a str>,
    kind: Option<&'a str>,
    refers_to: Option<&'a str>,
}

/// Finds the top-level members `at`, `kind` and `refers_to` of a JSON object, skipping
/// nested values by bracket depth (strings and their escapes respected), so a nested
/// `"kind"` (an actor's, an argument's) is never taken for the entry's own.
///
/// A small scanner rather than serde: this runs for every record of `verify`, in an
/// unoptimized build, where it is twice as fast as deserializing. `None` if the text is
/// not a well-formed object as the canonical writer produces it.
fn top_level(s: &str) -> Option<TopLevel<'_>> {
    let b = s.as_bytes();
    let n = b.len();
    if n < 2 || b[0] != b'{' || b[n - 1] != b'}' {
        return None;
    }
    let mut out = TopLevel::default();
    let mut i = 1;
    if b[i] == b'}' {
        return (n == 2).then_some(out);
    }
    loop {
        if b[i] != b'"' {
            return None;
        }
        let key_end = string_end(s, i)?;
        if b.get(key_end + 1) != Some(&b':') {
            return None;
        }
        let key = &b[i + 1..key_end];
        i = key_end + 2;
        // The value: up to the `,` or `}` at depth 0.
        let value_start = i;
        let mut depth = 0usize;
        while i < n {
            match b[i] {
                b'"' => i = string_end(s, i)?,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b',' | b'}' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        if i >= n {
            return None;
        }
        let value = s.get(value_start..i)?;
        match key {
            b"at" => out.at = Some(value),
            b"kind" => out.kind = Some(value),
            b"refers_to" => out.refers_to = Some(value),
            _ => {}
        }
        if b[i] == b'}' {
            return (i == n - 1).then_some(out);
        }
        i += 1;
    }
}

/// The index of the quote closing the JSON string that opens at `open`, skipping escaped
/// characters. (A plain loop: canonical strings are short, and in an unoptimized build
/// setting up a `str::find` costs more than walking them.)
fn string_end(s: &str, open: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut j = open + 1;
    while j < b.len() {
        match b[j] {
            b'"' => return Some(j),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    None
}

pub(crate) async fn verify(store: &Store, checkpoints: &Checkpointer) -> Result<VerifyReport> {
    let loaded = checkpoints.load();
    let mut all_cps: Vec<Checkpoint> = loaded.history.clone();
    all_cps.extend(loaded.latest.clone());
    all_cps.sort_by_key(|c| c.seq);
    all_cps.dedup_by(|a, b| a.seq == b.seq && a.hash == b.hash);

    // Legacy checkpoints are matched against this chain like this store's own (seq 0, the
    // empty log, matches every store and proves nothing).
    let mut wanted: Vec<(u64, Option<String>)> = all_cps
        .iter()
        .chain(&loaded.legacy)
        .filter(|c| c.seq > 0)
        .map(|c| (c.seq, None))
        .collect();
    wanted.sort_by_key(|(s, _)| *s);
    wanted.dedup_by_key(|(s, _)| *s);
    let mut scan = Scan {
        wanted,
        ..Default::default()
    };
    let mut page = fetch_page(store, 0).await?;
    while !page.rows.is_empty() {
        let full = page.rows.len() == PAGE;
        let last = page.rows.last().map_or(0, |r| r.seq as u64);
        let hashing = tokio::task::spawn_blocking(move || {
            scan.check(&page);
            scan
        });
        let fetching = async {
            if full {
                fetch_page(store, last).await
            } else {
                Ok(Page::default())
            }
        };
        let (scanned, next) = tokio::join!(hashing, fetching);
        scan = scanned?;
        page = next?;
    }

    let mut problems = std::mem::take(&mut scan.problems);
    if !scan.self_fail.is_empty() || !scan.link_fail.is_empty() {
        problems.extend(classify(store, &scan).await?);
    }
    let head_seq = scan.last.as_ref().map(|(s, _)| *s);
    problems.extend(checkpoint_problems(
        checkpoints,
        &loaded,
        &all_cps,
        &scan,
        head_seq,
    ));
    let mut notes = Vec::new();
    problems.extend(store_problems(
        checkpoints,
        &loaded,
        &scan,
        head_seq,
        &mut notes,
    ));
    problems.sort_by_key(|p| p.seq);
    let problems = consolidate(problems);
    Ok(VerifyReport {
        records: scan.records,
        ok: problems.is_empty(),
        problems,
        head_seq,
        checkpoint: loaded.latest,
        store_id: checkpoints.store().to_string(),
        notes,
    })
}

/// The next page of rows: aggregated by the database when it can be, one by one otherwise.
async fn fetch_page(store: &Store, after: u64) -> Result<Page> {
    match db::page_after(store, after, PAGE).await? {
        None => Ok(Page::default()),
        Some((count, text)) => match db::parse_page(count, text) {
            Some(page) => Ok(page),
            None => db::text_rows_after(store, after, PAGE).await,
        },
    }
}

fn digest_of_hex(h: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if hex::decode_to_slice(h, &mut out).is_err() {
        // Not a hash we wrote; a stand-in that cannot collide with a real one in practice.
        out = record_digest(0, "invalid", h);
    }
    out
}

/// Pass 2: where does each broken record belong?
async fn classify(store: &Store, scan: &Scan) -> Result<Vec<Problem>> {
    let mut seqs = Vec::new();
    let mut prevs = Vec::new();
    let mut hashes = Vec::new();
    let mut after = 0;
    loop {
        let page = db::links_after(store, after, PAGE * 5).await?;
        let Some(last) = page.last() else { break };
        after = last.seq as u64;
        let full = page.len() == PAGE * 5;
        for l in page {
            seqs.push(l.seq as u64);
            prevs.push(digest_of_hex(l.prev_hash.as_deref().unwrap_or("")));
            hashes.push(digest_of_hex(l.hash.as_deref().unwrap_or("")));
        }
        if !full {
            break;
        }
    }
    let index_of: HashMap<u64, usize> = seqs.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let by_hash: HashMap<[u8; 32], usize> =
        hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
    let failed: HashSet<u64> = scan.self_fail.iter().copied().collect();
    let self_ok: Vec<bool> = seqs.iter().map(|s| !failed.contains(s)).collect();
    let genesis = digest_of_hex(GENESIS);

    // Original seq of each row, worked out along prev_hash links: a row that verifies is
    // where it was written; one that doesn't sits one after its predecessor.
    let mut memo: Vec<Option<Option<u64>>> = vec![None; seqs.len()];
    let resolve = |i: usize, memo: &mut Vec<Option<Option<u64>>>| -> Option<u64> {
        let mut stack = Vec::new();
        let mut on_stack = HashSet::new();
        let mut cur = i;
        let base = loop {
            if let Some(m) = memo[cur] {
                break m;
            }
            if self_ok[cur] {
                memo[cur] = Some(Some(seqs[cur]));
                break Some(seqs[cur]);
            }
            if !on_stack.insert(cur) {
                break None; // a cycle of links: cannot place these
            }
            stack.push(cur);
            if prevs[cur] == genesis {
                break Some(0);
            }
            match by_hash.get(&prevs[cur]) {
                Some(&p) => cur = p,
                None => break None,
            }
        };
        let mut v = base;
        for idx in stack.into_iter().rev() {
            v = v.map(|x| x + 1);
            memo[idx] = Some(v);
        }
        memo[i].flatten()
    };

    let mut out = Vec::new();
    let examined: Vec<u64> = scan.self_fail.iter().take(MAX_EXAMINED).copied().collect();
    let entries = db::text_rows_by_seq(store, &examined).await?;
    let by_seq: HashMap<u64, &PageRow> = entries.rows.iter().map(|r| (r.seq as u64, r)).collect();
    for &seq in &examined {
        let (Some(&i), Some(row)) = (index_of.get(&seq), by_seq.get(&seq)) else {
            continue;
        };
        let verifies_as = |m: u64| {
            hash_matches(
                entries.str(row.hash),
                &record_digest(m, entries.str(row.prev_hash), entries.str(row.entry)),
            )
        };
        match resolve(i, &mut memo) {
            Some(m) if m != seq && verifies_as(m) => out.push(Problem {
                seq,
                kind: ProblemKind::Reordered,
                detail: format!("holds the record written as seq {m}"),
            }),
            Some(_) => out.push(edited(seq)),
            None => {
                // Its predecessor is gone. Renumbered to close a deletion's hole?
                let lo = seq.saturating_sub(RENUMBER_WINDOW).max(1);
                let found = (seq + 1..=seq + RENUMBER_WINDOW)
                    .chain(lo..seq)
                    .find(|m| verifies_as(*m));
                match found {
                    Some(m) => {
                        memo[i] = Some(Some(m));
                        out.push(Problem {
                            seq,
                            kind: ProblemKind::Deleted,
                            detail: format!(
                                "holds the record written as seq {m}, whose predecessor is no \
                                 longer in the log: records were deleted before it and the \
                                 rest renumbered"
                            ),
                        });
                    }
                    None => out.push(edited(seq)),
                }
            }
        }
    }
    if scan.self_fail.len() > MAX_EXAMINED {
        let rest = &scan.self_fail[MAX_EXAMINED..];
        out.push(Problem {
            seq: rest[0],
            kind: ProblemKind::Edited,
            detail: format!(
                "{} more records from here on do not match their hashes",
                rest.len()
            ),
        });
    }

    for &seq in &scan.link_fail {
        let Some(&i) = index_of.get(&seq) else {
            continue;
        };
        if i == 0 {
            out.push(Problem {
                seq,
                kind: ProblemKind::Edited,
                detail: "the first record does not link to the genesis hash".into(),
            });
            continue;
        }
        let p = i - 1;
        // Explained already: the predecessor is itself broken, or the record this one
        // links to sits elsewhere (a move, reported there).
        if !self_ok[p] || by_hash.get(&prevs[i]).is_some_and(|&q| q != p) {
            continue;
        }
        out.push(Problem {
            seq: seqs[p],
            kind: ProblemKind::Edited,
            detail: format!(
                "rewritten with a recomputed hash: record {seq} still links to its original hash"
            ),
        });
    }
    Ok(out)
}

fn edited(seq: u64) -> Problem {
    Problem {
        seq,
        kind: ProblemKind::Edited,
        detail: "contents do not match the stored hash".into(),
    }
}

fn checkpoint_problems(
    checkpoints: &Checkpointer,
    loaded: &crate::checkpoint::Loaded,
    all: &[Checkpoint],
    scan: &Scan,
    head_seq: Option<u64>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    for (seq, detail) in &loaded.bad {
        out.push(Problem {
            seq: *seq,
            kind: ProblemKind::Checkpoint,
            detail: detail.clone(),
        });
    }
    // Only when the store has checkpoints at all; none at all is `store_problems`' case.
    if !loaded.latest_file && checkpoints.has_any() {
        out.push(Problem {
            seq: head_seq.unwrap_or(0),
            kind: ProblemKind::Checkpoint,
            detail: format!(
                "{} is missing although this store's checkpoint history exists: a truncated \
                 tail cannot be ruled out (run `steward audit checkpoint` once the log is \
                 known to be good)",
                checkpoints
                    .dir()
                    .join(crate::checkpoint::LATEST_FILE)
                    .display()
            ),
        });
    }
    let last = head_seq.unwrap_or(0);
    if let Some(cp) = all.iter().filter(|c| c.seq > last).max_by_key(|c| c.seq) {
        out.push(Problem {
            seq: last + 1,
            kind: ProblemKind::Truncated,
            detail: format!(
                "the log ends at seq {last} but a checkpoint signed at {} ms shows seq {}: \
                 records {}..{} are missing from the end",
                cp.at.0,
                cp.seq,
                last + 1,
                cp.seq
            ),
        });
    }
    // The earliest checkpoint the chain no longer matches; the one before it still did.
    let mut last_good = None;
    for cp in all.iter().filter(|c| c.seq > 0 && c.seq <= last) {
        match scan.found(cp.seq) {
            Some(h) if h == cp.hash => last_good = Some(cp.seq),
            Some(h) => {
                out.push(Problem {
                    seq: cp.seq,
                    kind: ProblemKind::Rewritten,
                    detail: format!(
                        "a checkpoint signed at {} ms says record {} has hash {}, the log has {}: \
                         the log was rewritten {}",
                        cp.at.0,
                        cp.seq,
                        cp.hash,
                        h,
                        match last_good {
                            Some(g) => format!("after record {g} (the last checkpoint that still matches)"),
                            None => "at or before this record".into(),
                        }
                    ),
                });
                break;
            }
            // The checkpointed record is missing: reported as a deletion already.
            _ => {}
        }
    }
    out
}

/// Whether this store has a checkpoint at all, legacy checkpoints that belong to no known
/// store, and notes about other stores' checkpoints in this home.
fn store_problems(
    checkpoints: &Checkpointer,
    loaded: &crate::checkpoint::Loaded,
    scan: &Scan,
    head_seq: Option<u64>,
    notes: &mut Vec<String>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let store = checkpoints.store();
    if !checkpoints.has_any() {
        match head_seq {
            Some(head) => out.push(Problem {
                seq: head,
                kind: ProblemKind::NoCheckpoint,
                detail: format!(
                    "store {store} has {} records but no checkpoint (expected in {}): nothing \
                     shows whether records were cut off its end. If the log is known to be \
                     good, sign its head with `steward audit verify --first-checkpoint`",
                    scan.records,
                    checkpoints.dir().display()
                ),
            }),
            None => notes.push(format!(
                "store {store} is empty and has no checkpoint yet; the first one is signed \
                 when the log is next opened for writing"
            )),
        }
    }
    let unmatched: Vec<&Checkpoint> = loaded
        .legacy
        .iter()
        .filter(|c| c.seq > 0 && scan.found(c.seq) != Some(c.hash.as_str()))
        .collect();
    if let (Some(lo), Some(hi)) = (
        unmatched.iter().map(|c| c.seq).min(),
        unmatched.iter().map(|c| c.seq).max(),
    ) {
        let last = head_seq.unwrap_or(0);
        let beyond = unmatched.iter().filter(|c| c.seq > last).count();
        out.push(Problem {
            seq: lo,
            kind: ProblemKind::Unattributed,
            detail: format!(
                "{} legacy checkpoint(s) without a store id (seqs {lo}..{hi}, {beyond} of them \
                 beyond this log's end at {last}) in {} match no record of store {store}. \
                 Homes from before store ids signed every store they were pointed at into \
                 those files, so they may be another store's heads (check it with `steward \
                 --state-url <that store> audit verify`, which adopts its own), or records \
                 this store lost. Once accounted for, move {} and {} out of the way",
                unmatched.len(),
                checkpoints.home().display(),
                crate::checkpoint::LATEST_FILE,
                crate::checkpoint::HISTORY_FILE,
            ),
        });
    }
    if !loaded.other_stores.is_empty() {
        notes.push(format!(
            "this home also holds checkpoints of other store(s), not checked here: {}",
            loaded.other_stores.join(", ")
        ));
    }
    out
}

/// Merges runs of moved records with the same offset ("renumbered 6..9 as 7..10") and caps
/// the list.
fn consolidate(problems: Vec<Problem>) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    let mut run: Option<(u64, u64, i64)> = None; // first seq, last seq, offset
    let offset = |p: &Problem| -> Option<i64> {
        if p.kind != ProblemKind::Reordered {
            return None;
        }
        let m: u64 = p.detail.rsplit(' ').next()?.parse().ok()?;
        Some(m as i64 - p.seq as i64)
    };
    let flush = |run: &mut Option<(u64, u64, i64)>, out: &mut Vec<Problem>| {
        if let Some((a, b, d)) = run.take() {
            if b > a {
                out.push(Problem {
                    seq: a,
                    kind: ProblemKind::Reordered,
                    detail: format!(
                        "records {a}..{b} hold the records written as seq {}..{} (renumbered)",
                        a as i64 + d,
                        b as i64 + d
                    ),
                });
            } else {
                out.push(Problem {
                    seq: a,
                    kind: ProblemKind::Reordered,
                    detail: format!("holds the record written as seq {}", a as i64 + d),
                });
            }
        }
    };
    for p in problems {
        match (offset(&p), run) {
            (Some(d), Some((a, b, rd))) if d == rd && p.seq == b + 1 => run = Some((a, p.seq, d)),
            (Some(d), _) => {
                flush(&mut run, &mut out);
                run = Some((p.seq, p.seq, d));
            }
            (None, _) => {
                flush(&mut run, &mut out);
                out.push(p);
            }
        }
    }
    flush(&mut run, &mut out);
    if out.len() > MAX_PROBLEMS {
        let more = out.len() - MAX_PROBLEMS;
        out.truncate(MAX_PROBLEMS);
        let seq = out.last().map_or(0, |p| p.seq);
        out.push(Problem {
            seq,
            kind: ProblemKind::Edited,
            detail: format!("{more} more problems not listed"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_skips_nested_members() {
        let s = r#"{"actor":{"kind":"user","name":"a\"}"},"args":{"x":[{"kind":"exec_end","refers_to":9}],"y":"}]"},"at":5,"kind":"exec_begin","refers_to":3,"tool":"t"}"#;
        assert_eq!(
            top_level(s),
            Some(TopLevel {
                at: Some("5"),
                kind: Some("\"exec_begin\""),
                refers_to: Some("3"),
            })
        );
        assert_eq!(top_level("{}"), Some(TopLevel::default()));
        // Escaped quotes and backslash runs inside strings.
        let tricky = r#"{"a":"x\\","at":7,"b":"q\"\\","c":"\\\"}"}"#;
        assert!(serde_json::from_str::<serde_json::Value>(tricky).is_ok());
        assert_eq!(
            top_level(tricky),
            Some(TopLevel {
                at: Some("7"),
                ..Default::default()
            })
        );
        assert_eq!(top_level(r#"{"at":1"#), None);
        assert_eq!(top_level(r#"{"at":1}x"#), None);
        assert_eq!(top_level("not json"), None);
    }
}
