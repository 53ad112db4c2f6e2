use starling_schema::{ErrorKind, Invalid};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed. Each variant knows its [`ErrorKind`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// The backend could not be reached or timed out; the operation may be retried.
    #[error("store unavailable while {context}")]
    Unavailable {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend failed in a way a retry will not fix, or stored data is corrupt.
    #[error("store failed while {context}")]
    Backend {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound(_) => ErrorKind::NotFound,
            StoreError::Invalid(_) => ErrorKind::Invalid,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Unauthorized(_) => ErrorKind::Unauthorized,
            StoreError::Forbidden(_) => ErrorKind::Forbidden,
            StoreError::Unavailable { .. } => ErrorKind::Unavailable,
            StoreError::Backend { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn backend(
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Backend {
            context,
            source: source.into(),
        }
    }

    pub(crate) fn unavailable(
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Unavailable {
            context,
            source: source.into(),
        }
    }
}
