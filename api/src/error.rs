//! The one place where error kinds become HTTP statuses and `{"error": ...}` bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use starling_schema::{ErrorKind, Invalid};
use starling_store::StoreError;
use starling_timeline::TimelineError;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    /// A status more precise than the kind's (413, 415).
    pub status: Option<StatusCode>,
    /// An OAuth 2 error code (`invalid_grant`, ...): the body's `error` is this code and
    /// `error_description` the message, as RFC 6749 section 5.2 has it.
    pub oauth: Option<&'static str>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
            status: None,
            oauth: None,
        }
    }

    /// An OAuth 2 error (`/oauth/token`, `/oauth/revoke`) with the status Doorkeeper uses.
    pub fn oauth(
        status: StatusCode,
        code: &'static str,
        description: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status: Some(status),
            oauth: Some(code),
            ..ApiError::invalid(description)
        }
    }

    pub fn too_large() -> ApiError {
        ApiError {
            status: Some(StatusCode::PAYLOAD_TOO_LARGE),
            ..ApiError::invalid("Request body is too large")
        }
    }

    pub fn unsupported_media(message: &str) -> ApiError {
        ApiError {
            status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ..ApiError::invalid(message)
        }
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(ErrorKind::NotFound, format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Forbidden, message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::Invalid, message)
    }

    /// A failure the client cannot fix: logged with its cause chain, shown without detail.
    pub fn internal(context: &str, err: &(dyn std::error::Error + 'static)) -> ApiError {
        tracing::error!(error = %chain(err), "{context}");
        ApiError::new(ErrorKind::Internal, "internal server error")
    }
}

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        if let Some(status) = self.status {
            return status;
        }
        match self.kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Invalid | ErrorKind::Conflict => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({
            "error": self.oauth.unwrap_or(&self.message),
            "error_description": self.message,
        }))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e.kind() {
            ErrorKind::Internal => ApiError::internal("store failure", &e),
            ErrorKind::Unavailable => {
                tracing::warn!(error = %chain(&e), "store unavailable");
                ApiError::new(
                    ErrorKind::Unavailable,
                    "the store is unavailable, try again",
                )
            }
            kind => ApiError::new(kind, capitalise(&e.to_string())),
        }
    }
}

impl From<TimelineError> for ApiError {
    fn from(e: TimelineError) -> ApiError {
        match e.kind() {
            ErrorKind::Unavailable => {
                tracing::warn!(error = %chain(&e), "timeline shard unavailable");
                ApiError::new(
                    ErrorKind::Unavailable,
                    "timelines are unavailable, try again",
                )
            }
            ErrorKind::Internal => ApiError::internal("timeline failure", &e),
            kind => ApiError::new(kind, e.to_string()),
        }
    }
}

impl From<starling_media::MediaError> for ApiError {
    fn from(e: starling_media::MediaError) -> ApiError {
        use starling_media::MediaError;
        match e {
            MediaError::Rejected(reason) => {
                ApiError::invalid(format!("Validation failed: File {reason}"))
            }
            MediaError::BadKey | MediaError::NotFound => ApiError::not_found("Record"),
            MediaError::Store(e) => e.into(),
            MediaError::Storage { .. } => {
                tracing::error!(error = %chain(&e), "media storage failed");
                ApiError::new(
                    ErrorKind::Unavailable,
                    "media storage is unavailable, try again",
                )
            }
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> ApiError {
        ApiError::new(ErrorKind::Invalid, capitalise(&e.to_string()))
    }
}

/// Mastodon's messages read like sentences: "Validation failed: Text can't be blank".
fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
