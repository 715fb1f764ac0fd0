use std::path::PathBuf;

/// Errors of the llm crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid model manifest: {source}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// The request cannot be planned as given (empty, too long, binary); says what to fix.
    #[error("{0}")]
    Input(String),
    /// A model file is missing, corrupt (sha256 mismatch) or cannot be loaded.
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    /// A backend cannot be reached or refused the request (no API key, network, HTTP error).
    #[error("{backend} unavailable: {message}")]
    Unavailable { backend: String, message: String },
    /// A backend answered, but not with a usable tool call.
    #[error("{backend} answered with no usable tool call: {message}")]
    Protocol { backend: String, message: String },
    /// Evaluation data (cases, tool lists) that cannot be used; names the file and entry.
    #[error("{0}")]
    Data(String),
}

pub type Result<T> = std::result::Result<T, Error>;
