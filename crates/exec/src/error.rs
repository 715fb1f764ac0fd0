use steward_tools::{ErrorKind, ToolError};

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
    #[error("{path}: {source}")]
    Io {
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
    #[error(
        "{what} {name:?} not found; `steward call service_list '{{}}'` lists what steward manages"
    )]
    NotFound { what: &'static str, name: String },
    #[error("container {0:?} is not managed by steward (it has no steward.service label); steward never touches it")]
    NotOwned(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Timeout(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Builds an `Io` error for `path`.
    pub fn io(path: impl AsRef<std::path::Path>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.as_ref().display().to_string();
        move |source| Error::Io { path, source }
    }

    fn kind(&self) -> ErrorKind {
        use bollard::errors::Error as B;
        match self {
            Error::Docker(B::DockerResponseServerError {
                status_code: 404, ..
            }) => ErrorKind::NotFound,
            Error::Docker(B::DockerResponseServerError {
                status_code: 409, ..
            }) => ErrorKind::Conflict,
            Error::Docker(B::DockerResponseServerError { .. }) => ErrorKind::Failed,
            Error::Docker(_) | Error::Traefik { .. } => ErrorKind::Unavailable,
            Error::Postgres(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed,
            ) => ErrorKind::Unavailable,
            Error::Postgres(_) | Error::RouteFile { .. } | Error::Io { .. } => ErrorKind::Failed,
            Error::Invalid { .. } => ErrorKind::InvalidArgs,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::NotOwned(_) => ErrorKind::NotOwned,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Failed(_) => ErrorKind::Failed,
            Error::Timeout(_) => ErrorKind::Timeout,
        }
    }
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        let kind = e.kind();
        let message = match (&e, kind) {
            (Error::Docker(_), ErrorKind::Unavailable) => {
                format!("{e} (is the Docker Engine running? `steward doctor` checks)")
            }
            (Error::Postgres(_), ErrorKind::Unavailable) => {
                format!("{e} (is PostgreSQL running? scripts/setup starts it)")
            }
            _ => e.to_string(),
        };
        ToolError::new(kind, message)
    }
}
