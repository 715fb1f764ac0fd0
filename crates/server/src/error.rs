//! The server crate's errors: what `serve`, the token store and the hook files can fail with.

/// Why a server operation failed. Handlers never show these to clients: they log them and
/// answer with a generic [`crate::api::ApiError`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state store ({backend}): {source}")]
    Database {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(transparent)]
    Audit(#[from] steward_audit::Error),
    #[error("{path}: {message}")]
    Hooks { path: String, message: String },
    #[error("hook secret {path}: {source}")]
    Secret {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("hook name {0:?}: use 1 to 64 of a-z, 0-9, '_' and '-'")]
    HookName(String),
    #[error("invalid principal {input:?}: {message}")]
    Principal { input: String, message: String },
    #[error("no token with id {0:?} (`steward token list` shows them)")]
    NoSuchToken(String),
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn db(store: &steward_audit::Store) -> impl FnOnce(sqlx::Error) -> Error + '_ {
        move |source| Error::Database {
            backend: store.backend().name(),
            source,
        }
    }
}
