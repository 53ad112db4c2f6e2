use std::path::PathBuf;

use starling_schema::ErrorKind;

pub type Result<T, E = SearchError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{action} at {path:?}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{action}: {source}")]
    Index {
        action: &'static str,
        #[source]
        source: Box<tantivy::TantivyError>,
    },
    /// The blocking task that applied a batch died.
    #[error("the index writer task failed: {0}")]
    Task(String),
    #[error("event bus: {0}")]
    Bus(#[from] starling_bus::BusError),
}

impl SearchError {
    pub(crate) fn index(action: &'static str, source: tantivy::TantivyError) -> SearchError {
        SearchError::Index {
            action,
            source: Box::new(source),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            SearchError::Index { source, .. }
                if matches!(**source, tantivy::TantivyError::LockFailure(..)) =>
            {
                ErrorKind::Unavailable
            }
            SearchError::Bus(_) => ErrorKind::Unavailable,
            SearchError::Io { .. } | SearchError::Index { .. } | SearchError::Task(_) => {
                ErrorKind::Internal
            }
        }
    }
}
