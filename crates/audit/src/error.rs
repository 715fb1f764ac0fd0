/// Errors of the audit crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported state store URL {0:?}: use sqlite://<path> or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the state store folder {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state store {backend}: {source}")]
    Database {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("state store {backend}: migration failed: {source}")]
    Migrate {
        backend: &'static str,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// An entry could not be encoded as JSON (it holds only plain data, so this means a bug).
    #[error("cannot encode an audit entry: {0}")]
    Encode(#[source] serde_json::Error),
    /// A stored row does not decode into a record: the store was edited by hand.
    /// `steward audit verify` says more.
    #[error("audit record {seq} is unreadable ({detail}); run `steward audit verify`")]
    Corrupt { seq: u64, detail: String },
    /// The next sequence number was taken even under the table lock: someone writes the
    /// table outside this crate.
    #[error("audit append lost the race for seq {seq} under the table lock; is something else writing audit_log?")]
    Contended { seq: u64 },
    /// Another process holds the index's writer lock (only the writer can rebuild it).
    #[error("the audit index is held by another steward process; rebuild it there")]
    IndexLocked,
    /// The group commit this append was part of failed; the error went to the caller that
    /// wrote the group, this is its description.
    #[error("audit append failed: {detail}")]
    GroupCommit { detail: String },
    #[error("audit search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("audit file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint key or file is unusable (not hex, wrong length, not JSON).
    #[error("audit checkpoint {path}: {detail}")]
    Checkpoint { path: String, detail: String },
    /// The store's identity (table `steward_store`) is missing or malformed.
    #[error("state store identity: {0}")]
    StoreId(String),
    /// A blocking task (hashing, index commit) panicked or was cancelled.
    #[error("audit background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an sqlx error with the backend it came from.
    pub(crate) fn db(backend: &'static str) -> impl Fn(sqlx::Error) -> Error {
        move |source| Error::Database { backend, source }
    }

    pub(crate) fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
