//! Media attachments: where uploaded files live, how they are recognised and processed,
//! and the media worker role.
//!
//! - [`storage`]: the [`storage::MediaStorage`] trait and its backends (the local file
//!   system by default, or an S3-compatible bucket, [`s3`]), chosen from settings as [`storage::AnyStorage`]. Keys hold a
//!   random token, so a file's URL cannot be guessed; files are written whole or not at all.
//! - [`sniff`]: the content type of an upload from its first bytes, never its name.
//! - [`process`]: images decoded (orientation applied, metadata dropped by re-encoding),
//!   resized to Mastodon's limits, with a preview, `meta` and a blurhash; GIF, video and
//!   audio kept as uploaded with what can be read without external tools.
//! - [`worker`]: the media worker role, on a durable JetStream consumer through the shared
//!   consumer loop: processes `media.uploaded`, removes the files of deleted posts, and
//!   sweeps uploads never attached.
//!
//! Depends on the schema, the store trait and the bus; never on the api crate.

pub mod process;
pub mod s3;
pub mod sniff;
pub mod storage;
pub mod worker;

use starling_schema::ErrorKind;

/// Why a media operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file is not acceptable (corrupt, an image bomb, a type we do not take). Said to
    /// the uploader; retrying will not help.
    #[error("{0}")]
    Rejected(String),
    /// A storage key that is not one of ours.
    #[error("invalid media key")]
    BadKey,
    #[error("media file not found")]
    NotFound,
    /// The storage backend failed (disk full, object store unreachable).
    #[error("media storage failed while {context}")]
    Storage {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] starling_store::StoreError),
}

impl MediaError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            MediaError::Rejected(_) => ErrorKind::Invalid,
            MediaError::BadKey | MediaError::NotFound => ErrorKind::NotFound,
            MediaError::Storage { .. } => ErrorKind::Unavailable,
            MediaError::Store(e) => e.kind(),
        }
    }

    pub(crate) fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> MediaError {
        move |source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                MediaError::NotFound
            } else {
                MediaError::Storage { context, source }
            }
        }
    }
}

pub type Result<T, E = MediaError> = std::result::Result<T, E>;
