//! [`AuditLog`]: the append-only, hash-chained log of every step of the request path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

use serde_json::Value;
use steward_protocol::{AuditEntry, AuditKind, AuditRecord, Timestamp};

use crate::chain::{canonical_json, record_hash, GENESIS};
use crate::checkpoint::{Checkpoint, Checkpointer};
use crate::db::{self, Conn, InsertError, Row};
use crate::index::SearchIndex;
use crate::liveness::{self, Executing};
use crate::redact::redact_entry;
use crate::store::Store;
use crate::verify::{self, VerifyReport};
use crate::{Error, Result};

/// What `reconcile` writes as the outcome of an execution nobody saw finish.
pub const INTERRUPTED: &str = "interrupted: outcome unknown; check the target";

/// Tuning of an [`AuditLog`]; the defaults suit the server and the CLI.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Sign a checkpoint after this many appends (0: only on time, explicit call and close).
    pub checkpoint_every: u64,
    /// Sign a checkpoint when the newest one is older than this and records were appended
    /// since. Bounds in time how much of the tail could be cut off unnoticed.
    pub checkpoint_interval: Duration,
    /// How often the background task adds queued records to the search index and commits.
    pub index_interval: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            checkpoint_every: 100,
            checkpoint_interval: Duration::from_secs(10),
            index_interval: Duration::from_secs(1),
        }
    }
}

/// The chain's head as this process last saw it. Held locked for the whole of an append,
/// which serializes appends in-process; the `seq` primary key serializes them across
/// processes (the loser appends again under the table's write lock, see `Conn::insert_locked`).
#[derive(Debug)]
struct Head {
    seq: u64,
    hash: String,
    /// The appender's own connection (taken at the first append).
    conn: Option<Conn>,
    /// Appends since the last checkpoint.
    unsigned: u64,
    last_checkpoint: Instant,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    dir: PathBuf,
    opts: AuditOptions,
    head: tokio::sync::Mutex<Head>,
    pending: Mutex<Vec<Pending>>,
    /// Tells the group writer which pending entry is its own.
    next_id: AtomicU64,
    /// Records this process appended (for metrics).
    appended: AtomicU64,
    index: SearchIndex,
    checkpoints: Arc<Checkpointer>,
}

/// The audit log: a [`Store`] for the records, a tantivy index for search under
/// `<dir>/index/`, and signed head checkpoints in `<dir>/checkpoints/<store id>/` (see
/// [`crate::checkpoint`]).
///
/// Cheap to clone; clones share one log. A background task (stopped when the last clone is
/// dropped) keeps the index and the checkpoints current; call [`AuditLog::close`] at
/// shutdown to commit and sign the final state.
#[derive(Debug, Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl AuditLog {
    /// Opens the state store at `state_url` and the audit files under `dir`
    /// (`<home>/audit`), with default options.
    pub async fn open(state_url: &str, dir: &Path) -> Result<AuditLog> {
        let store = Store::open(state_url).await?;
        AuditLog::with_store(store, dir, AuditOptions::default()).await
    }

    /// Opens the log on a store the caller already holds (the agent shares one store for
    /// audit and approvals).
    pub async fn with_store(store: Store, dir: &Path, opts: AuditOptions) -> Result<AuditLog> {
        let store_id = store.id().await?;
        let d = dir.to_path_buf();
        let checkpoints =
            tokio::task::spawn_blocking(move || Checkpointer::open(&d, &store_id)).await??;
        let checkpoints = Arc::new(checkpoints);
        let head = db::head(&store).await?;
        if !checkpoints.has_any() && checkpoints.has_legacy() {
            adopt_legacy(&store, &checkpoints).await?;
        }
        let (seq, hash) = head.unwrap_or_else(|| (0, GENESIS.to_string()));
        if seq == 0 && !checkpoints.has_any() {
            // Trust on first use, for an empty store only: see the checkpoint module.
            let cp = checkpoints.sign(seq, &hash, now());
            let c = checkpoints.clone();
            tokio::task::spawn_blocking(move || c.write(&cp)).await??;
        }
        let index = SearchIndex::open(dir.join("index"), &store).await?;
        let inner = Arc::new(Inner {
            store,
            dir: dir.to_path_buf(),
            opts,
            head: tokio::sync::Mutex::new(Head {
                seq,
                hash,
                conn: None,
                unsigned: 0,
                last_checkpoint: Instant::now(),
            }),
            pending: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            appended: AtomicU64::new(0),
            index,
            checkpoints,
        });
        tokio::spawn(background(Arc::downgrade(&inner)));
        Ok(AuditLog { inner })
    }

    /// The state store (shared with approvals and sessions).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The audit folder (`<home>/audit`).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The id of the store this log writes to ([`Store::id`]).
    pub fn store_id(&self) -> &str {
        self.inner.checkpoints.store()
    }

    /// This store's checkpoint folder, `<dir>/checkpoints/<store id>`.
    pub fn checkpoint_dir(&self) -> &Path {
        self.inner.checkpoints.dir()
    }

    /// Whether this store has a checkpoint on disk. Until it has, nothing is signed
    /// automatically (see [`crate::checkpoint`]).
    pub fn has_checkpoint(&self) -> bool {
        self.inner.checkpoints.has_any()
    }

    /// Redacts `entry`, chains it after the current head and stores it. The returned record
    /// is exactly what was stored (redacted).
    pub async fn append(&self, entry: AuditEntry) -> Result<AuditRecord> {
        let mut records = self.append_batch(vec![entry]).await?;
        records.pop().ok_or(Error::Contended { seq: 0 })
    }

    /// Appends several entries in one transaction: the way to write many records fast, as
    /// imports and the benchmark's setup do. All or nothing.
    ///
    /// Appends are group-committed: callers queue their entries, and whoever holds the
    /// head lock writes everything queued so far in one transaction and answers the
    /// others. Concurrent callers thus share one commit instead of waiting in line for one
    /// each; a lone caller pays nothing extra.
    pub async fn append_batch(&self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // Redaction and encoding happen before taking the lock: they are the costly part.
        let prepared = entries
            .into_iter()
            .map(|mut e| {
                redact_entry(&mut e);
                canonical_json(&e).map(|json| (e, json))
            })
            .collect::<Result<Vec<_>>>()?;
        let inner = &self.inner;
        let (done, mut answer) = oneshot::channel();
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let len = prepared.len();
        lock_pending(&inner.pending).push(Pending {
            id,
            len,
            count: 0,
            prepared,
            done,
        });
        let mut head = inner.head.lock().await;
        // A previous holder of the lock may have written ours already.
        if let Ok(res) = answer.try_recv() {
            return res;
        }
        let mut group = std::mem::take(&mut *lock_pending(&inner.pending));
        let mut all = Vec::new();
        for p in group.iter_mut() {
            all.append(&mut p.prepared);
            p.count = all.len();
        }
        match write_group(&inner.store, &mut head, &all).await {
            Ok(rows) => {
                head.unsigned += rows.len() as u64;
                inner
                    .appended
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
                let mut due =
                    inner.opts.checkpoint_every > 0 && head.unsigned >= inner.opts.checkpoint_every;
                if due && !inner.checkpoints.may_sign_automatically() {
                    due = false;
                    head.unsigned = 0;
                }
                let signed = due.then(|| {
                    head.unsigned = 0;
                    head.last_checkpoint = Instant::now();
                    inner.checkpoints.sign(head.seq, &head.hash, now())
                });
                let mut records: Vec<AuditRecord> = all
                    .into_iter()
                    .zip(&rows)
                    .map(|((entry, _), row)| AuditRecord {
                        seq: row.seq as u64,
                        prev_hash: row.prev_hash.clone(),
                        hash: row.hash.clone(),
                        entry,
                    })
                    .collect();
                // Queued under the head lock, so the index sees rows in seq order.
                inner.index.queue(rows);
                drop(head);
                if let Some(cp) = signed {
                    // The records are stored whatever happens here; a failed checkpoint is
                    // retried by the background task (the head stays unsigned).
                    if let Err(e) = write_checkpoint(&inner.checkpoints, cp).await {
                        tracing::warn!(error = %e, "audit checkpoint failed; retrying later");
                        inner.head.lock().await.unsigned += 1;
                    }
                }
                // `count` is where each caller's entries end in the group.
                for p in group.into_iter().rev() {
                    let mine = records.split_off(p.count - p.len);
                    let _ = p.done.send(Ok(mine)); // a caller that went away needs no answer
                }
            }
            Err(e) => {
                drop(head);
                let detail = e.to_string();
                let mut own = Some(e);
                for p in group {
                    // Ours gets the error itself; the others a description of it.
                    let err = if p.id == id {
                        own.take().unwrap_or(Error::GroupCommit {
                            detail: detail.clone(),
                        })
                    } else {
                        Error::GroupCommit {
                            detail: detail.clone(),
                        }
                    };
                    let _ = p.done.send(Err(err));
                }
            }
        }
        answer.await.unwrap_or(Err(Error::GroupCommit {
            detail: "the writer of this group stopped".into(),
        }))
    }

    /// How many records this process has appended since the log was opened.
    pub fn appended(&self) -> u64 {
        self.inner.appended.load(Ordering::Relaxed)
    }

    /// Walks the whole chain and checks it against the signed checkpoints; see
    /// [`crate::verify`] for what is detected and how it is pinpointed.
    pub async fn verify(&self) -> Result<VerifyReport> {
        verify::verify(&self.inner.store, &self.inner.checkpoints).await
    }

    /// Signs the current head now and writes it to `checkpoint.json` (and the history).
    ///
    /// The explicit, operator's checkpoint: it signs even a store that has records but no
    /// checkpoint yet, which the automatic ones refuse (see [`crate::checkpoint`]); check
    /// such a store with [`AuditLog::verify`] first.
    pub async fn checkpoint(&self) -> Result<Checkpoint> {
        let inner = &self.inner;
        let mut head = inner.head.lock().await;
        // The store's head, not the cached one: another process may have appended.
        let (seq, hash) = db::head(&inner.store)
            .await?
            .unwrap_or_else(|| (0, GENESIS.to_string()));
        head.seq = seq;
        head.hash = hash;
        head.unsigned = 0;
        head.last_checkpoint = Instant::now();
        let cp = inner.checkpoints.sign(seq, &head.hash, now());
        drop(head);
        write_checkpoint(&inner.checkpoints, cp.clone()).await?;
        Ok(cp)
    }

    /// `ExecBegin` records that no `ExecEnd` or `Reconciled` record refers to: executions
    /// that started but whose end was never written (a crash in between).
    pub async fn open_begins(&self) -> Result<Vec<AuditRecord>> {
        db::open_begins(&self.inner.store)
            .await?
            .into_iter()
            .map(Row::into_record)
            .collect()
    }

    /// Closes every open begin with a `Reconciled` record whose outcome says it was
    /// interrupted. Run at start-up, before new calls, so a crash stays visible in the log
    /// rather than leaving a begin open forever. While any process is executing (see
    /// [`AuditLog::executing`]) open begins may be live, so nothing is closed and the next
    /// start-up tries again.
    pub async fn reconcile(&self, now: Timestamp) -> Result<Vec<AuditRecord>> {
        let Some(_exclusive) = liveness::quiescent(&self.inner.dir)? else {
            tracing::debug!("an execution is running; reconcile deferred");
            return Ok(Vec::new());
        };
        let open = self.open_begins().await?;
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let entries = open
            .into_iter()
            .map(|begin| AuditEntry {
                at: now,
                kind: Some(AuditKind::Reconciled),
                intent_id: begin.entry.intent_id,
                actor: begin.entry.actor,
                origin: begin.entry.origin,
                tool: begin.entry.tool,
                args: begin.entry.args,
                outcome: Some(Value::String(INTERRUPTED.into())),
                refers_to: Some(begin.seq),
                ..Default::default()
            })
            .collect();
        self.append_batch(entries).await
    }

    /// The newest `limit` records matching `query` at or after `since`, newest first.
    ///
    /// `query` is tantivy's syntax over the fields `tool`, `kind`, `origin`, `intent` (exact
    /// names), `words` (tool and kind split into words), `actor`, `text` (the intent text),
    /// `args`, `decision` (verdict, policy ids, reason), `plan` (plan and approval) and
    /// `outcome`. Bare words search all of them and must all match; `tool:service_restart`,
    /// `"exact phrase"`, `a OR b` and `-word` work as usual. Empty or `*` matches everything.
    pub async fn search(
        &self,
        query: &str,
        since: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>> {
        let inner = self.inner.clone();
        inner.index.refresh(&inner.store).await?;
        let q = query.to_string();
        let i = inner.clone();
        let seqs = tokio::task::spawn_blocking(move || i.index.search(&q, since, limit)).await??;
        let mut rows = db::rows_by_seq(&inner.store, &seqs).await?;
        rows.reverse();
        rows.into_iter().map(Row::into_record).collect()
    }

    /// Empties the search index and re-adds every record from the store. Returns how many
    /// records were indexed.
    pub async fn rebuild_index(&self) -> Result<u64> {
        self.inner.index.rebuild(&self.inner.store).await
    }

    /// Marks an execution as running until the returned guard drops: take it before
    /// appending `exec_begin` and keep it past `exec_end`, so a concurrent start-up never
    /// reconciles a live execution.
    pub async fn executing(&self) -> Result<Executing> {
        liveness::begin(&self.inner.dir).await
    }

    /// `exec_begin` records after `since`, oldest first: the recent executions the guards'
    /// rate windows count, whichever process ran them.
    pub async fn begins_since(&self, since: Timestamp) -> Result<Vec<AuditRecord>> {
        db::begins_since(&self.inner.store, since.0)
            .await?
            .into_iter()
            .map(Row::into_record)
            .collect()
    }

    /// Up to `limit` records from `from_seq` on, oldest first.
    pub async fn records(&self, from_seq: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        db::rows_after(&self.inner.store, from_seq.saturating_sub(1), limit)
            .await?
            .into_iter()
            .map(Row::into_record)
            .collect()
    }

    /// The last record's seq (0 for an empty log), as of the last append in this process.
    pub async fn head_seq(&self) -> u64 {
        self.inner.head.lock().await.seq
    }

    /// The newest checkpoint this process signed or found at open.
    pub fn latest_checkpoint(&self) -> Option<Checkpoint> {
        self.inner.checkpoints.latest()
    }

    /// How many records the search index holds (as of its last commit), and whether this
    /// process owns the index writer (false: another process does; search is read-only).
    pub fn index_status(&self) -> (u64, bool) {
        (self.inner.index.num_docs(), self.inner.index.is_writable())
    }

    /// Commits the search index and signs a final checkpoint. The store stays open (it may
    /// be shared); dropping the log without closing loses nothing but the time the next
    /// open spends catching the index up.
    ///
    /// A store that has records but no checkpoint is not signed here (see
    /// [`crate::checkpoint`]); a warning says what to do instead.
    pub async fn close(&self) -> Result<()> {
        self.inner.index.refresh(&self.inner.store).await?;
        if self.inner.checkpoints.may_sign_automatically() {
            self.checkpoint().await?;
        }
        Ok(())
    }
}

/// Writes `prepared` after `head` on the appender's own connection, advances `head` and
/// returns the rows as stored.
async fn write_group(
    store: &Store,
    head: &mut Head,
    prepared: &[(AuditEntry, String)],
) -> Result<Vec<Row>> {
    let mut conn = match head.conn.take() {
        Some(c) => c,
        None => Conn::acquire(store).await?,
    };
    let rows = chain(head.seq, &head.hash, prepared);
    let res = if rows.len() == 1 {
        conn.insert_one(&rows[0]).await
    } else {
        conn.insert(&rows).await
    };
    let rows = match res {
        Ok(()) => rows,
        // Another process appended since this one last looked: chain after the real head,
        // under the table's write lock.
        Err(InsertError::Taken) => conn
            .insert_locked(|seq, hash| chain(seq, hash, prepared))
            .await
            .map_err(|e| match e {
                InsertError::Other(e) => e,
                InsertError::Taken => Error::Contended { seq: head.seq + 1 },
            })?,
        // The connection may be broken: leave it out, the next append takes a fresh one.
        Err(InsertError::Other(e)) => return Err(e),
    };
    head.conn = Some(conn);
    if let Some(last) = rows.last() {
        head.seq = last.seq as u64;
        head.hash = last.hash.clone();
    }
    Ok(rows)
}

/// Entries waiting for the next group commit, and where to send their records.
struct Pending {
    id: u64,
    /// How many entries this caller appends.
    len: usize,
    /// Set by the group writer: how many entries of the group end with this caller's.
    count: usize,
    prepared: Vec<(AuditEntry, String)>,
    done: oneshot::Sender<Result<Vec<AuditRecord>>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pending({} entries)", self.prepared.len())
    }
}

fn lock_pending(m: &Mutex<Vec<Pending>>) -> std::sync::MutexGuard<'_, Vec<Pending>> {
    // Nothing panics while holding this lock (push and take only); recover if it ever did.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The rows for prepared entries chained after the record `seq` with hash `prev`.
fn chain(seq: u64, prev: &str, prepared: &[(AuditEntry, String)]) -> Vec<Row> {
    let mut seq = seq;
    let mut prev = prev.to_string();
    let mut rows = Vec::with_capacity(prepared.len());
    for (entry, json) in prepared {
        seq += 1;
        let hash = record_hash(seq, &prev, json);
        let prev_hash = std::mem::replace(&mut prev, hash.clone());
        rows.push(Row::new(seq, json.clone(), prev_hash, hash, entry));
    }
    rows
}

/// Takes over the legacy checkpoints (from before store ids, see [`crate::checkpoint`]) that
/// match this store's chain, for a store with no checkpoint of its own yet. Those that match
/// nothing stay where they are; `verify` reports them.
async fn adopt_legacy(store: &Store, checkpoints: &Arc<Checkpointer>) -> Result<()> {
    let c = checkpoints.clone();
    let (legacy, _bad) = tokio::task::spawn_blocking(move || c.load_legacy()).await?;
    // Seq 0 (the empty log) matches every store and proves nothing.
    let seqs: Vec<u64> = legacy.iter().map(|c| c.seq).filter(|s| *s > 0).collect();
    let found: std::collections::HashMap<u64, String> =
        db::hashes_at(store, &seqs).await?.into_iter().collect();
    let mine: Vec<Checkpoint> = legacy
        .into_iter()
        .filter(|c| c.seq > 0 && found.get(&c.seq) == Some(&c.hash))
        .collect();
    if mine.is_empty() {
        return Ok(());
    }
    tracing::info!(
        store = checkpoints.store(),
        count = mine.len(),
        "adopted legacy audit checkpoints that match this store's chain"
    );
    let c = checkpoints.clone();
    tokio::task::spawn_blocking(move || c.adopt(mine)).await?
}

async fn write_checkpoint(checkpoints: &Arc<Checkpointer>, cp: Checkpoint) -> Result<()> {
    let c = checkpoints.clone();
    tokio::task::spawn_blocking(move || c.write(&cp)).await?
}

fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp(ms)
}

/// Keeps the index and the checkpoints current until the log is dropped. The first tick runs
/// at once, which catches a lagging index up right after open.
async fn background(weak: Weak<Inner>) {
    let period = match weak.upgrade() {
        Some(inner) => inner.opts.index_interval,
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        // Every tick, not only when something was queued here: other processes append too,
        // and the refresh reads their records from the store (one indexed range query).
        if let Err(e) = inner.index.refresh(&inner.store).await {
            tracing::warn!(error = %e, "audit index refresh failed; retrying next tick");
        }
        let due = {
            let mut head = inner.head.lock().await;
            let mut due = head.unsigned > 0
                && head.last_checkpoint.elapsed() >= inner.opts.checkpoint_interval;
            if due && !inner.checkpoints.may_sign_automatically() {
                due = false;
                head.unsigned = 0;
            }
            if due {
                head.unsigned = 0;
                head.last_checkpoint = Instant::now();
                Some(inner.checkpoints.sign(head.seq, &head.hash, now()))
            } else {
                None
            }
        };
        if let Some(cp) = due {
            if let Err(e) = write_checkpoint(&inner.checkpoints, cp).await {
                tracing::warn!(error = %e, "audit checkpoint failed; retrying next tick");
            }
        }
    }
}
