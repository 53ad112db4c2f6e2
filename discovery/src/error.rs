use starling_bus::BusError;
use starling_schema::ErrorKind;
use starling_store::StoreError;
use starling_timeline::TimelineError;

/// Why counting an event or computing suggestions failed. An `Unavailable` one is worth
/// retrying soon.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("reading the store for discovery")]
    Store(#[from] StoreError),
    #[error("keeping trends or suggestions in Redis")]
    Timeline(#[from] TimelineError),
    #[error("consuming events")]
    Bus(#[from] BusError),
}

impl DiscoveryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DiscoveryError::Store(e) => e.kind(),
            DiscoveryError::Timeline(e) => e.kind(),
            DiscoveryError::Bus(e) => e.kind(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Unavailable
    }
}
