//! The tantivy search index over audit records.
//!
//! The store is the truth; the index is a cache that can always be rebuilt from it. Every
//! committed index state carries a payload `{seq, hash}`: the last record it holds. At open
//! that payload is compared with the store, and if the store no longer has that record with
//! that hash (a different or rewritten database) the index is emptied and rebuilt.
//! Otherwise indexing simply continues after `seq`.
//!
//! Appends only queue the record (a push under a short lock). Tantivy commits are expensive
//! (a new segment and an fsync each), so queued records are added and committed by the
//! background task about once a second, and by every search before it runs, so a search
//! always sees everything appended before it. The same refresh also pulls any records the
//! index has not seen from the store (appended by another process, or dropped from an
//! overflowing queue), so gaps heal by themselves.
//!
//! Only one process can hold an index's writer lock. A second process on the same data dir
//! (the CLI while the server runs) opens the index read-only and searches what the writer
//! last committed, at most about a second behind.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_protocol::{AuditRecord, Timestamp};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery};
use tantivy::schema::{Field, Schema, FAST, INDEXED, STORED, STRING, TEXT};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::OwnedMutexGuard;

use crate::chain::GENESIS;
use crate::db;
use crate::store::Store;
use crate::{Error, Result};

/// Records fetched from the store per catch-up page.
const PAGE: usize = 5_000;
/// Past this many queued records the queue is dropped and the records are re-read from the
/// store at the next refresh: memory stays bounded under bulk appends.
const MAX_QUEUE: usize = 20_000;
/// One indexing thread: the machine has two cores and appends matter more than indexing.
const WRITER_THREADS: usize = 1;
const WRITER_BUDGET: usize = 32_000_000;

#[derive(Debug, Clone, Copy)]
struct Fields {
    seq: Field,
    at: Field,
    kind: Field,
    tool: Field,
    origin: Field,
    intent_id: Field,
    words: Field,
    actor: Field,
    intent_text: Field,
    args: Field,
    decision: Field,
    plan: Field,
    outcome: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        seq: b.add_u64_field("seq", INDEXED | STORED | FAST),
        at: b.add_i64_field("at", INDEXED | FAST),
        // Exact names: `tool:service_restart`, `kind:exec_begin`, `origin:alert`.
        kind: b.add_text_field("kind", STRING),
        tool: b.add_text_field("tool", STRING),
        origin: b.add_text_field("origin", STRING),
        intent_id: b.add_text_field("intent", STRING),
        // The same names split into words, so `restart` finds `service_restart`.
        words: b.add_text_field("words", TEXT),
        actor: b.add_text_field("actor", TEXT),
        intent_text: b.add_text_field("text", TEXT),
        args: b.add_text_field("args", TEXT),
        decision: b.add_text_field("decision", TEXT),
        plan: b.add_text_field("plan", TEXT),
        outcome: b.add_text_field("outcome", TEXT),
    };
    (b.build(), f)
}

/// What the last commit holds.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    seq: u64,
    hash: String,
}

struct WriterState {
    writer: IndexWriter,
    /// The last record added (committed or not).
    seq: u64,
    hash: String,
    /// Added since the last commit.
    dirty: bool,
}

#[derive(Default)]
struct Queue {
    rows: Vec<db::Row>,
    overflowed: bool,
}

pub(crate) struct SearchIndex {
    reader: IndexReader,
    f: Fields,
    parser: QueryParser,
    queue: Mutex<Queue>,
    /// Unset while another process holds the writer lock.
    writer: OnceLock<Arc<tokio::sync::Mutex<WriterState>>>,
    acquiring: tokio::sync::Mutex<()>,
    index: Index,
    path: PathBuf,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("writable", &self.is_writable())
            .finish_non_exhaustive()
    }
}

impl SearchIndex {
    /// Opens (or creates) the index under `path` and, if this process can take the writer
    /// lock, reconciles it with `store`.
    pub async fn open(path: PathBuf, store: &Store) -> Result<SearchIndex> {
        let (schema, f) = schema();
        let p = path.clone();
        let index = tokio::task::spawn_blocking(move || open_index(&p, schema)).await??;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut parser = QueryParser::for_index(
            &index,
            vec![
                f.kind,
                f.tool,
                f.origin,
                f.intent_id,
                f.words,
                f.actor,
                f.intent_text,
                f.args,
                f.decision,
                f.plan,
                f.outcome,
            ],
        );
        // `restart rentguy` means both, as in every log search tool.
        parser.set_conjunction_by_default();
        let this = SearchIndex {
            index,
            path,
            reader,
            f,
            parser,
            queue: Mutex::new(Queue::default()),
            writer: OnceLock::new(),
            acquiring: tokio::sync::Mutex::new(()),
        };
        this.writer(store).await?;
        Ok(this)
    }

    /// The writer, taking the lock if no other process holds it. A read-only index retries
    /// on every refresh, so it takes over once the other process exits.
    async fn writer(&self, store: &Store) -> Result<Option<Arc<tokio::sync::Mutex<WriterState>>>> {
        if let Some(w) = self.writer.get() {
            return Ok(Some(w.clone()));
        }
        let _one_at_a_time = self.acquiring.lock().await;
        if let Some(w) = self.writer.get() {
            return Ok(Some(w.clone()));
        }
        let writer: IndexWriter = match self
            .index
            .writer_with_num_threads(WRITER_THREADS, WRITER_BUDGET)
        {
            Ok(w) => w,
            Err(tantivy::TantivyError::LockFailure(..)) => {
                tracing::debug!(path = %self.path.display(), "audit index is held by another process; searching read-only");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let payload = self
            .index
            .load_metas()?
            .payload
            .and_then(|p| serde_json::from_str::<Payload>(&p).ok());
        let (seq, hash) = match payload {
            Some(p) if p.seq > 0 => {
                if db::hash_at(store, p.seq).await?.as_deref() == Some(p.hash.as_str()) {
                    (p.seq, p.hash)
                } else {
                    tracing::info!(
                        seq = p.seq,
                        "audit index does not match the store; rebuilding"
                    );
                    writer.delete_all_documents()?;
                    (0, GENESIS.to_string())
                }
            }
            _ => (0, GENESIS.to_string()),
        };
        let w = Arc::new(tokio::sync::Mutex::new(WriterState {
            writer,
            seq,
            hash,
            dirty: seq == 0, // commit the emptied state even if the store is empty
        }));
        let _ = self.writer.set(w.clone());
        Ok(Some(w))
    }

    /// Queues appended rows for the next refresh. Rows, not records: parsing them back
    /// into entries happens on the indexing thread, off the append path.
    pub fn queue(&self, rows: Vec<db::Row>) {
        if !self.is_writable() {
            return; // whoever holds the writer reads these from the store
        }
        if let Ok(mut q) = self.queue.lock() {
            if q.overflowed || q.rows.len() + rows.len() > MAX_QUEUE {
                q.rows.clear();
                q.overflowed = true;
            } else {
                q.rows.extend(rows);
            }
        }
    }

    /// Adds everything queued, catches up from the store, commits if anything changed and
    /// reloads the reader. Returns how many records were added.
    pub async fn refresh(&self, store: &Store) -> Result<u64> {
        let Some(w) = self.writer(store).await? else {
            self.reader.reload()?;
            return Ok(0);
        };
        let g = w.clone().lock_owned().await;
        self.refresh_locked(g, store, false).await
    }

    /// Empties the index and re-adds every record from the store.
    pub async fn rebuild(&self, store: &Store) -> Result<u64> {
        let Some(w) = self.writer(store).await? else {
            return Err(Error::IndexLocked);
        };
        let g = w.clone().lock_owned().await;
        self.refresh_locked(g, store, true).await
    }

    async fn refresh_locked(
        &self,
        mut g: OwnedMutexGuard<WriterState>,
        store: &Store,
        from_scratch: bool,
    ) -> Result<u64> {
        let queued = match self.queue.lock() {
            Ok(mut q) => {
                q.overflowed = false;
                std::mem::take(&mut q.rows)
            }
            Err(_) => Vec::new(),
        };
        if from_scratch {
            g.writer.delete_all_documents()?;
            g.seq = 0;
            g.hash = GENESIS.to_string();
            g.dirty = true;
        }
        let mut added = 0;
        // Queued records continue the index directly when contiguous; anything else is
        // read back from the store below.
        let mut queued = queued;
        queued.sort_by_key(|r| r.seq);
        let mut batch = Vec::new();
        let mut next = g.seq + 1;
        for r in queued {
            if r.seq as u64 == next {
                next += 1;
                batch.push(r);
            } else if r.seq as u64 > next {
                break;
            }
        }
        if !batch.is_empty() {
            let (g2, n) = self.add_blocking(g, batch).await?;
            g = g2;
            added += n;
        }
        loop {
            let rows = db::rows_after(store, g.seq, PAGE).await?;
            if rows.is_empty() {
                break;
            }
            let full = rows.len() == PAGE;
            let (g2, n) = self.add_blocking(g, rows).await?;
            g = g2;
            added += n;
            if !full {
                break;
            }
        }
        if g.dirty {
            g = tokio::task::spawn_blocking(move || -> Result<OwnedMutexGuard<WriterState>> {
                let payload = serde_json::to_string(&Payload {
                    seq: g.seq,
                    hash: g.hash.clone(),
                })
                .map_err(Error::Encode)?;
                let mut prepared = g.writer.prepare_commit()?;
                prepared.set_payload(&payload);
                prepared.commit()?;
                g.dirty = false;
                Ok(g)
            })
            .await??;
            self.reader.reload()?;
        }
        drop(g);
        Ok(added)
    }

    async fn add_blocking(
        &self,
        mut g: OwnedMutexGuard<WriterState>,
        rows: Vec<db::Row>,
    ) -> Result<(OwnedMutexGuard<WriterState>, u64)> {
        let f = self.f;
        tokio::task::spawn_blocking(move || -> Result<(OwnedMutexGuard<WriterState>, u64)> {
            let mut n = 0;
            for row in rows {
                let r = row.into_record_lossy();
                if r.seq != g.seq + 1 {
                    continue;
                }
                g.writer.add_document(document(&f, &r))?;
                g.seq = r.seq;
                g.hash = r.hash;
                g.dirty = true;
                n += 1;
            }
            Ok((g, n))
        })
        .await?
    }

    /// Seqs of the newest `limit` records matching `query` (tantivy query syntax over the
    /// text fields; empty or `*` matches everything) at or after `since`.
    pub fn search(&self, query: &str, since: Option<Timestamp>, limit: usize) -> Result<Vec<u64>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let q = query.trim();
        let mut query: Box<dyn Query> = if q.is_empty() || q == "*" {
            Box::new(AllQuery)
        } else {
            match self.parser.parse_query(q) {
                Ok(parsed) => parsed,
                // Model-written or hand-typed queries with a stray quote or colon still search.
                Err(_) => self.parser.parse_query_lenient(q).0,
            }
        };
        if let Some(since) = since {
            let range = RangeQuery::new(
                Bound::Included(Term::from_field_i64(self.f.at, since.0)),
                Bound::Unbounded,
            );
            query = Box::new(BooleanQuery::new(vec![
                (Occur::Must, query),
                (Occur::Must, Box::new(range)),
            ]));
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(limit).order_by_fast_field::<u64>("seq", Order::Desc),
        )?;
        Ok(top.into_iter().filter_map(|(seq, _)| seq).collect())
    }

    /// How many records the searchable (committed) index holds.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_writable(&self) -> bool {
        self.writer.get().is_some()
    }
}

/// Opens the index, recreating it when it is unreadable or from an older schema (it is only
/// a cache of the store).
fn open_index(path: &Path, schema: Schema) -> Result<Index> {
    std::fs::create_dir_all(path).map_err(Error::io(path))?;
    let attempt = |schema: Schema| -> Result<Index> {
        let dir = MmapDirectory::open(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Index::open_or_create(dir, schema)?)
    };
    match attempt(schema.clone()) {
        Ok(index) => Ok(index),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "audit index unusable; recreating it from the store");
            std::fs::remove_dir_all(path).map_err(Error::io(path))?;
            std::fs::create_dir_all(path).map_err(Error::io(path))?;
            attempt(schema)
        }
    }
}

fn document(f: &Fields, r: &AuditRecord) -> TantivyDocument {
    let e = &r.entry;
    let mut d = TantivyDocument::new();
    d.add_u64(f.seq, r.seq);
    d.add_i64(f.at, e.at.0);
    let mut words = String::new();
    if let Some(kind) = e.kind.and_then(|k| name_of(&k)) {
        d.add_text(f.kind, &kind);
        words.push_str(&kind);
        words.push(' ');
    }
    if let Some(tool) = &e.tool {
        d.add_text(f.tool, tool);
        words.push_str(tool);
    }
    if !words.is_empty() {
        d.add_text(f.words, &words);
    }
    if let Some(origin) = e.origin.and_then(|o| name_of(&o)) {
        d.add_text(f.origin, &origin);
    }
    if let Some(id) = &e.intent_id {
        d.add_text(f.intent_id, &id.0);
    }
    if let Some(actor) = &e.actor {
        add_flat(&mut d, f.actor, serde_json::to_value(actor).ok().as_ref());
    }
    if let Some(text) = &e.intent_text {
        d.add_text(f.intent_text, text);
    }
    add_flat(&mut d, f.args, e.args.as_ref());
    if let Some(decision) = &e.decision {
        add_flat(
            &mut d,
            f.decision,
            serde_json::to_value(decision).ok().as_ref(),
        );
    }
    add_flat(&mut d, f.plan, e.plan.as_ref());
    add_flat(&mut d, f.plan, e.approval.as_ref());
    add_flat(&mut d, f.outcome, e.outcome.as_ref());
    d
}

/// The serde name of a unit enum variant (`exec_begin`, `alert`).
fn name_of<T: Serialize>(v: &T) -> Option<String> {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// Indexes a JSON value as its keys and scalar values, space-separated.
fn add_flat(d: &mut TantivyDocument, field: Field, v: Option<&Value>) {
    if let Some(v) = v {
        let mut out = String::new();
        flatten(v, &mut out);
        if !out.is_empty() {
            d.add_text(field, out);
        }
    }
}

fn flatten(v: &Value, out: &mut String) {
    match v {
        Value::Null => {}
        Value::String(s) => {
            out.push_str(s);
            out.push(' ');
        }
        Value::Bool(b) => {
            out.push_str(if *b { "true " } else { "false " });
        }
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push(' ');
        }
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push_str(k);
                out.push(' ');
                flatten(v, out);
            }
        }
    }
}
