use starling_bus::BusError;
use starling_schema::ErrorKind;
use starling_store::StoreError;
use starling_timeline::TimelineError;

/// Why applying or consuming events failed. Each variant knows its [`ErrorKind`]; an
/// `Unavailable` one is worth retrying soon.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error("reading the store for fan-out")]
    Store(#[from] StoreError),
    #[error("writing home timelines")]
    Timeline(#[from] TimelineError),
    #[error("consuming events")]
    Bus(#[from] BusError),
    #[error("announcing a notification")]
    Publish(#[from] starling_bus::PublishError),
}

impl FanoutError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            FanoutError::Store(e) => e.kind(),
            FanoutError::Timeline(e) => e.kind(),
            FanoutError::Bus(e) => e.kind(),
            FanoutError::Publish(e) => e.kind(),
        }
    }

    /// Whether trying again soon may succeed (a dependency was down or slow).
    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }
}
