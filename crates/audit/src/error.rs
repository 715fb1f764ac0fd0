/// Errors of the audit crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unsupported state store URL {0:?}: use sqlite://<path> or postgres://...")]
    UnsupportedUrl(String),
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
}

pub type Result<T> = std::result::Result<T, Error>;
