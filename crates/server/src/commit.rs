//! Group commit: every accepted request goes through one writer task, which takes all the
//! requests queued meanwhile as one batch, hands them to [`Triggers::submit`] in one call
//! (one durable transaction) and records their deliveries and makers in one more. Each
//! request awaits its batch's commit before it is answered, so a 202 means "durably
//! accepted", and a thousand concurrent requests cost two transactions instead of two
//! thousand.
//!
//! Deduplication of signed-webhook deliveries lives here too: the writer is the only place
//! deliveries are written, so a check-then-insert cannot race with itself. A delivery seen
//! in the last 24 h (in the store, or earlier in the same batch) gets the first answer and
//! is not submitted again.
//!
//! Order: submit first, then record. A crash between the two loses the delivery record,
//! not the request, so a sender's retry may run it again (at least once); recording first
//! would risk answering a retry with an outcome whose request never ran.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use steward_audit::Store;
use tokio::sync::{mpsc, oneshot};

use crate::db::now_ms;
use crate::triggers::{Submission, Triggers};
use steward_audit::{on_pool, sql_for, value_rows};

/// How long a delivery id is remembered.
pub const DELIVERY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Most requests in one batch (bounds statement sizes and one commit's latency).
const MAX_BATCH: usize = 1024;

/// Queue length before requests wait for room (back-pressure instead of memory growth).
const QUEUE: usize = 16_384;

/// Rows per multi-row INSERT statement.
const ROWS_PER_INSERT: usize = 200;

/// How the writer answered one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Submitted now; the body to answer with (`{request_id, status}`).
    Accepted(Value),
    /// A delivery already seen: the first answer, and nothing was submitted.
    Replayed(Value),
}

/// Why a request could not be committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    #[error("the server is shutting down")]
    Closed,
    #[error("the trigger engine did not accept the batch: {0}")]
    Unavailable(String),
}

/// A request for the writer.
#[derive(Debug)]
pub struct Job {
    pub submission: Submission,
    /// `endpoint` for the requests table: `alertmanager` or `hook:<name>`.
    pub source: String,
    /// `<hook>\n<delivery id>` for signed webhooks.
    pub delivery: Option<String>,
}

#[derive(Debug)]
enum Msg {
    Job(Job, oneshot::Sender<Result<Answer, CommitError>>),
    Close(oneshot::Sender<()>),
}

/// The handle requests enqueue through.
#[derive(Debug, Clone)]
pub struct Committer {
    tx: mpsc::Sender<Msg>,
}

impl Committer {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Store, triggers: Arc<dyn Triggers>) -> Committer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, triggers, rx));
        Committer { tx }
    }

    /// Queues a request and waits for its batch's commit.
    pub async fn submit(&self, job: Job) -> Result<Answer, CommitError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Msg::Job(job, done))
            .await
            .map_err(|_| CommitError::Closed)?;
        answer.await.map_err(|_| CommitError::Closed)?
    }

    /// Stops taking requests, commits every queued one and returns when the writer is done.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Whether the writer still runs (for `/readyz`).
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }
}

type Reply = oneshot::Sender<Result<Answer, CommitError>>;

async fn writer(store: Store, triggers: Arc<dyn Triggers>, mut rx: mpsc::Receiver<Msg>) {
    let mut last_prune = Instant::now() - Duration::from_secs(3600);
    let mut closing: Option<oneshot::Sender<()>> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut take = |m: Msg, batch: &mut Vec<(Job, Reply)>| match m {
            Msg::Job(j, r) => batch.push((j, r)),
            Msg::Close(done) => {
                closing = Some(done);
            }
        };
        take(first, &mut batch);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => take(m, &mut batch),
                Err(_) => break,
            }
        }
        if closing.is_some() {
            // No new requests from here on; the ones already queued are still committed.
            rx.close();
            while let Some(m) = rx.recv().await {
                if let Msg::Job(j, r) = m {
                    batch.push((j, r));
                }
            }
        }
        if last_prune.elapsed() > Duration::from_secs(60) {
            last_prune = Instant::now();
            if let Err(e) = prune(&store).await {
                tracing::warn!(error = %e, "pruning old webhook deliveries failed");
            }
        }
        for chunk in chunks(batch, MAX_BATCH) {
            commit(&store, triggers.as_ref(), chunk).await;
        }
        if let Some(done) = closing.take() {
            let _ = done.send(());
            return;
        }
    }
}

fn chunks<T>(mut v: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    while v.len() > n {
        let rest = v.split_off(n);
        out.push(v);
        v = rest;
    }
    out.push(v);
    out
}

/// One batch: dedupe, submit, record, answer.
async fn commit(store: &Store, triggers: &dyn Triggers, batch: Vec<(Job, Reply)>) {
    if batch.is_empty() {
        return;
    }
    let started = Instant::now();
    let now = now_ms();
    let keys: Vec<&str> = batch
        .iter()
        .filter_map(|(j, _)| j.delivery.as_deref())
        .collect();
    let seen = match seen_deliveries(store, &keys, now - DELIVERY_WINDOW_MS).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "looking up webhook deliveries failed");
            return fail(batch, "the state store is unavailable");
        }
    };
    // Split into fresh requests, replays of stored deliveries, and repeats within the batch.
    let mut fresh: Vec<(Job, Reply)> = Vec::new();
    let mut first_in_batch: HashMap<String, usize> = HashMap::new();
    let mut followers: Vec<(usize, Reply)> = Vec::new();
    for (job, reply) in batch {
        if let Some(key) = &job.delivery {
            if let Some(answer) = seen.get(key) {
                let _ = reply.send(Ok(Answer::Replayed(answer.clone())));
                continue;
            }
            if let Some(&i) = first_in_batch.get(key) {
                followers.push((i, reply));
                continue;
            }
            first_in_batch.insert(key.clone(), fresh.len());
        }
        fresh.push((job, reply));
    }
    if fresh.is_empty() {
        return;
    }
    let looked_up = started.elapsed();
    let subs: Vec<Submission> = fresh.iter().map(|(j, _)| j.submission.clone()).collect();
    let n = subs.len();
    let values = match triggers.submit(subs).await {
        Ok(v) if v.len() == n => v,
        Ok(v) => {
            tracing::error!(
                sent = n,
                answered = v.len(),
                "trigger engine answered a batch short"
            );
            return fail_all(
                fresh,
                followers,
                "the trigger engine answered a batch short",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, batch = n, "trigger engine refused a batch");
            return fail_all(fresh, followers, &e);
        }
    };
    let answers: Vec<Value> = fresh
        .iter()
        .zip(values)
        .map(|((j, _), v)| {
            let status = v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("accepted")
                .to_string();
            json!({"request_id": j.submission.request_id, "status": status})
        })
        .collect();
    let submitted = started.elapsed();
    if let Err(e) = record(store, &fresh, &answers, now).await {
        // The engine has the requests durably; only deduplication of these deliveries and
        // the maker lookup are lost, so they are still answered as accepted.
        tracing::error!(error = %e, batch = n, "recording accepted requests failed");
    }
    tracing::debug!(
        batch = n,
        lookup_us = looked_up.as_micros() as u64,
        submit_us = (submitted - looked_up).as_micros() as u64,
        record_us = (started.elapsed() - submitted).as_micros() as u64,
        "group commit"
    );
    for (i, reply) in followers {
        let _ = reply.send(Ok(Answer::Replayed(answers[i].clone())));
    }
    for ((_, reply), answer) in fresh.into_iter().zip(answers) {
        let _ = reply.send(Ok(Answer::Accepted(answer)));
    }
}

fn fail(batch: Vec<(Job, Reply)>, why: &str) {
    for (_, reply) in batch {
        let _ = reply.send(Err(CommitError::Unavailable(why.to_string())));
    }
}

fn fail_all(fresh: Vec<(Job, Reply)>, followers: Vec<(usize, Reply)>, why: &str) {
    for reply in followers.into_iter().map(|(_, r)| r) {
        let _ = reply.send(Err(CommitError::Unavailable(why.to_string())));
    }
    fail(fresh, why);
}

async fn seen_deliveries(
    store: &Store,
    keys: &[&str],
    since: i64,
) -> Result<HashMap<String, Value>, sqlx::Error> {
    let mut seen = HashMap::new();
    for chunk in keys.chunks(ROWS_PER_INSERT) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = sql_for(
            store,
            &format!(
                "SELECT key, response FROM server_deliveries \
                 WHERE received_at_ms >= $1 AND key IN ({})",
                list.join(",")
            ),
        );
        let rows: Vec<(String, String)> = on_pool!(store, pool => {
            let mut q = sqlx::query_as(&sql).bind(since);
            for k in chunk {
                q = q.bind(*k);
            }
            q.fetch_all(pool).await?
        });
        for (key, response) in rows {
            let v = serde_json::from_str(&response).unwrap_or(Value::Null);
            seen.insert(key, v);
        }
    }
    Ok(seen)
}

/// Deliveries and makers of a batch in one transaction.
async fn record(
    store: &Store,
    fresh: &[(Job, Reply)],
    answers: &[Value],
    now: i64,
) -> Result<(), sqlx::Error> {
    let deliveries: Vec<(&str, &str, String)> = fresh
        .iter()
        .zip(answers)
        .filter_map(|((j, _), a)| {
            j.delivery
                .as_deref()
                .map(|k| (k, j.submission.request_id.as_str(), a.to_string()))
        })
        .collect();
    let requests: Vec<(&str, &str, &str)> = fresh
        .iter()
        .map(|(j, _)| {
            (
                j.submission.request_id.as_str(),
                j.submission.principal.as_str(),
                j.source.as_str(),
            )
        })
        .collect();
    on_pool!(store, pool => {
        let mut tx = pool.begin().await?;
        for chunk in deliveries.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO server_deliveries (key, request_id, response, received_at_ms) \
                 VALUES {} ON CONFLICT (key) DO UPDATE SET request_id = excluded.request_id, \
                 response = excluded.response, received_at_ms = excluded.received_at_ms",
                value_rows(store, chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for (key, id, answer) in chunk {
                q = q.bind(*key).bind(*id).bind(answer.as_str()).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in requests.chunks(ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO server_requests (request_id, principal, source, received_at_ms) \
                 VALUES {} ON CONFLICT (request_id) DO NOTHING",
                value_rows(store, chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for (id, principal, source) in chunk {
                q = q.bind(*id).bind(*principal).bind(*source).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

async fn prune(store: &Store) -> Result<(), sqlx::Error> {
    let sql = sql_for(
        store,
        "DELETE FROM server_deliveries WHERE received_at_ms < $1",
    );
    on_pool!(store, pool => {
        sqlx::query(&sql).bind(now_ms() - DELIVERY_WINDOW_MS).execute(pool).await?;
    });
    Ok(())
}

/// Who made request `id` (from the requests table), if it is known.
pub async fn maker(store: &Store, id: &str) -> Result<Option<String>, sqlx::Error> {
    let sql = sql_for(
        store,
        "SELECT principal FROM server_requests WHERE request_id = $1",
    );
    Ok(on_pool!(store, pool => {
        sqlx::query_scalar(&sql).bind(id).fetch_optional(pool).await?
    }))
}
