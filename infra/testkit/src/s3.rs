//! An S3-compatible server for the S3 media backend's tests: the one the environment names
//! (`S3_ENDPOINT`, as `bash infra/s3-server.sh start` writes it), never started here. Each
//! test gets its own prefix in the shared bucket, so tests running at once see only their
//! own objects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A prefix of its own in an S3-compatible bucket.
#[derive(Clone, Debug)]
pub struct S3Bucket {
    /// The server's URL, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// This test's prefix (no slashes at either end).
    pub prefix: String,
}

impl S3Bucket {
    /// The server `S3_ENDPOINT` names (with `S3_BUCKET`, `S3_REGION`, `S3_ACCESS_KEY_ID`,
    /// `S3_SECRET_ACCESS_KEY`), under a fresh prefix; `None`, after saying on stderr that
    /// `what` is skipped, when `S3_ENDPOINT` is not set.
    pub fn from_env(what: &str) -> Option<S3Bucket> {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let endpoint = var("S3_ENDPOINT", "");
        if endpoint.is_empty() {
            eprintln!(
                "skipped: S3_ENDPOINT is not set, so {what} did not run on S3 \
                 (`bash infra/s3-server.sh start && source target/s3-server/env` starts moto)"
            );
            return None;
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let prefix = format!(
            "test-{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(S3Bucket {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            bucket: var("S3_BUCKET", "starling-test"),
            region: var("S3_REGION", "us-east-1"),
            access_key_id: var("S3_ACCESS_KEY_ID", "starling"),
            secret_access_key: var("S3_SECRET_ACCESS_KEY", "starling-secret"),
            prefix,
        })
    }

    /// Where this prefix's objects are fetched from without signing (path style:
    /// `{endpoint}/{bucket}/{prefix}`), as a server that allows public reads serves them.
    pub fn public_url(&self) -> String {
        format!("{}/{}/{}", self.endpoint, self.bucket, self.prefix)
    }
}
