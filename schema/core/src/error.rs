//! The kinds of failure every library crate maps its errors onto. Only the HTTP crate turns a
//! kind into a status code and an `{"error": ...}` body.

/// What went wrong, in the terms a caller can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    /// The input is malformed, empty, too long or otherwise unacceptable.
    Invalid,
    /// The input is fine but clashes with existing state (a taken username).
    Conflict,
    Unauthorized,
    Forbidden,
    TooManyRequests,
    /// A dependency is down or timed out; retrying later may work.
    Unavailable,
    /// A bug or corrupted state.
    Internal,
}

/// A rejected input: which field and why. The reason is written for the person who sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Invalid {
        Invalid {
            field,
            reason: reason.into(),
        }
    }
}
