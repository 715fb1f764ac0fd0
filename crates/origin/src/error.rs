//! Errors of the origin engine. Input errors name the field that is wrong
//! (`materials[2].hs`), so a caller can fix exactly that.

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing, malformed or contradicts another one.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The agreement id is not one the engine knows.
    #[error("agreement: unknown agreement {0:?}; known: uk-eu-tca, uk-japan-cepa, uk-canada")]
    UnknownAgreement(String),
    /// The embedded rule data does not parse (a build problem, never user input).
    #[error("rule data of {agreement}: {message}")]
    Data { agreement: String, message: String },
    /// The overrides file is malformed.
    #[error("overrides: {0}")]
    Overrides(String),
    /// A declaration CSV row is malformed.
    #[error("line {line}, column {column}: {message}")]
    Csv {
        line: usize,
        column: String,
        message: String,
    },
}

impl Error {
    /// An input error on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field an input error names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            Error::UnknownAgreement(_) => Some("agreement"),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
