/// Errors of the executors. Messages name the component and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("traefik API at {url}: {message}")]
    Traefik { url: String, message: String },
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("route file {path}: {source}")]
    RouteFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {what} {value:?}: {rule}")]
    Invalid {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("{0}")]
    Timeout(String),
}

pub type Result<T> = std::result::Result<T, Error>;
