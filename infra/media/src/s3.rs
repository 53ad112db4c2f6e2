//! The S3-compatible backend (AWS S3, MinIO, Ceph RGW, Garage, R2...), through the
//! `object_store` crate: objects under `{media.s3.prefix}/{token}/{name}` in
//! `media.s3.bucket`, served to apps from `media.public_url`, never by Starling.
//!
//! An S3 `PUT` is atomic (an object appears only once complete), and a large staged upload
//! goes up in parts that appear only when the upload is completed (and are aborted when it
//! fails), so the backend keeps the whole-or-nothing rule of [`MediaStorage`].
//!
//! HTTP goes through hyper with rustls on the ring provider (as Web Push does), not
//! `object_store`'s default reqwest client: that would build aws-lc and turn on rustls in
//! every reqwest client of the workspace.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector as HyperHttp;
use hyper_util::rt::TokioExecutor;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, ClientOptions, GetOptions, ObjectStore, PutMultipartOptions, PutOptions,
    PutPayload, RetryConfig, WriteMultipart,
};
use starling_schema::settings::S3Settings;
use tokio::io::AsyncReadExt;

use crate::sniff::served_type;
use crate::storage::{MediaStorage, Staged, StoredFile, valid_key};
use crate::{MediaError, Result};

/// Staged uploads larger than this go up in parts of this size.
const PART_BYTES: usize = 8 << 20;
/// Parts in flight at once for one upload.
const PARTS_IN_FLIGHT: usize = 2;

/// Media files in an S3-compatible bucket. Cheap to clone.
#[derive(Clone, Debug)]
pub struct S3Storage {
    store: Arc<AmazonS3>,
    /// `{prefix}/`, or empty.
    prefix: String,
    staging: PathBuf,
}

fn storage_error(context: &'static str) -> impl FnOnce(object_store::Error) -> MediaError {
    move |e| match e {
        object_store::Error::NotFound { .. } => MediaError::NotFound,
        other => MediaError::Storage {
            context,
            source: std::io::Error::other(other),
        },
    }
}

impl S3Storage {
    /// A client for the bucket of `settings`; uploads are staged under `staging` while they
    /// stream in. Fails when settings are incomplete (no bucket, no credentials); connects
    /// to nothing yet.
    pub fn new(settings: &S3Settings, staging: PathBuf) -> Result<S3Storage> {
        let invalid = |msg: String| MediaError::Storage {
            context: "configuring the S3 backend",
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, msg),
        };
        if settings.bucket.is_empty() {
            return Err(invalid("media.s3.bucket is empty".into()));
        }
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let key_id = settings
            .access_key_id
            .clone()
            .or_else(|| from_env("AWS_ACCESS_KEY_ID"));
        let secret = settings
            .secret_access_key
            .clone()
            .or_else(|| from_env("AWS_SECRET_ACCESS_KEY"));
        // Without both, object_store would ask the instance metadata service: refuse rather
        // than send requests nobody configured.
        let (Some(key_id), Some(secret)) = (key_id, secret) else {
            return Err(invalid(
                "no S3 credentials: set media.s3.access_key_id and media.s3.secret_access_key \
                 (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                    .into(),
            ));
        };
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(key_id)
            .with_secret_access_key(secret)
            .with_virtual_hosted_style_request(settings.virtual_hosted_style)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: timeout * 2,
                ..RetryConfig::default()
            })
            .with_http_connector(HyperConnector { timeout });
        if let Some(token) = from_env("AWS_SESSION_TOKEN") {
            builder = builder.with_token(token);
        }
        if !settings.endpoint.is_empty() {
            builder = builder
                .with_endpoint(settings.endpoint.trim_end_matches('/'))
                .with_allow_http(settings.endpoint.starts_with("http://"));
        }
        let store = builder.build().map_err(|e| invalid(e.to_string()))?;
        let prefix = settings.prefix.trim_matches('/');
        Ok(S3Storage {
            store: Arc::new(store),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            staging,
        })
    }

    /// Where uploads are staged while they stream in (local disk).
    pub fn staging_dir(&self) -> PathBuf {
        self.staging.clone()
    }

    fn location(&self, key: &str) -> Result<ObjectPath> {
        if !valid_key(key) {
            return Err(MediaError::BadKey);
        }
        ObjectPath::parse(format!("{}{key}", self.prefix)).map_err(|_| MediaError::BadKey)
    }

    async fn put_payload(&self, location: &ObjectPath, payload: PutPayload) -> Result<()> {
        let options = PutOptions {
            attributes: attributes(location),
            ..PutOptions::default()
        };
        self.store
            .put_opts(location, payload, options)
            .await
            .map(|_| ())
            .map_err(storage_error("writing an object"))
    }

    /// Send a large staged file in parts; the object appears only when all are in.
    async fn put_parts(&self, location: &ObjectPath, staged: &Staged) -> Result<()> {
        let upload = self
            .store
            .put_multipart_opts(
                location,
                PutMultipartOptions {
                    attributes: attributes(location),
                    ..PutMultipartOptions::default()
                },
            )
            .await
            .map_err(storage_error("starting a multipart upload"))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let sent: Result<()> = async {
            let mut file = tokio::fs::File::open(staged.path())
                .await
                .map_err(MediaError::io("reading a staging file"))?;
            let mut buf = vec![0; PART_BYTES];
            loop {
                let n = file
                    .read(&mut buf)
                    .await
                    .map_err(MediaError::io("reading a staging file"))?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(storage_error("sending a part"))?;
                writer.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            Ok(()) => writer
                .finish()
                .await
                .map(|_| ())
                .map_err(storage_error("completing a multipart upload")),
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "aborting a multipart upload failed; the bucket's lifecycle rule removes its parts");
                }
                Err(e)
            }
        }
    }
}

/// What the bucket answers with when it serves an object: its type from its name (the
/// same as Starling's own file serving), cached for a year (a key never changes content),
/// and as an attachment when it is nothing an app shows inline (a raw upload).
fn attributes(location: &ObjectPath) -> Attributes {
    let content_type = served_type(location.as_ref());
    let mut a = Attributes::new();
    a.insert(Attribute::ContentType, content_type.into());
    a.insert(
        Attribute::CacheControl,
        "public, max-age=31536000, immutable".into(),
    );
    if content_type == "application/octet-stream" {
        a.insert(Attribute::ContentDisposition, "attachment".into());
    }
    a
}

impl MediaStorage for S3Storage {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let location = self.location(key)?;
        self.put_payload(&location, PutPayload::from(bytes)).await
    }

    async fn put_staged(&self, key: &str, mut staged: Staged) -> Result<()> {
        let location = self.location(key)?;
        staged.finish().await?;
        // `staged` is dropped at the end either way, removing the local file.
        if staged.len() > PART_BYTES as u64 {
            self.put_parts(&location, &staged).await
        } else {
            let bytes = tokio::fs::read(staged.path())
                .await
                .map_err(MediaError::io("reading a staging file"))?;
            self.put_payload(&location, PutPayload::from(bytes)).await
        }
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let location = self.location(key)?;
        let got = self
            .store
            .get_opts(&location, GetOptions::default())
            .await
            .map_err(storage_error("reading an object"))?;
        let bytes = got
            .bytes()
            .await
            .map_err(storage_error("reading an object"))?;
        Ok(bytes.to_vec())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let location = self.location(key)?;
        let mut results = self
            .store
            .delete_stream(futures::stream::once(async move { Ok(location) }).boxed());
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error("removing an object")(e)),
            }
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<StoredFile>> {
        let prefix = if self.prefix.is_empty() {
            None
        } else {
            Some(ObjectPath::from(self.prefix.trim_end_matches('/')))
        };
        let metas: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .map_err(storage_error("listing objects"))?;
        let mut out: Vec<StoredFile> = metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref().strip_prefix(&self.prefix)?.to_owned();
                valid_key(&key).then(|| StoredFile {
                    key,
                    size: m.size,
                    modified_ms: u64::try_from(m.last_modified.timestamp_millis()).unwrap_or(0),
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// `object_store`'s HTTP client: hyper, rustls on ring with the OS's roots, a timeout per
/// request.
#[derive(Debug)]
struct HyperConnector {
    timeout: Duration,
}

impl HttpConnector for HyperConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let generic = |e: std::io::Error| object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        };
        let mut http = HyperHttp::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(generic)?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(HttpClient::new(HyperService {
            client,
            timeout: self.timeout,
        }))
    }
}

type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HyperHttp>, HttpRequestBody>;

#[derive(Debug)]
struct HyperService {
    client: Client,
    timeout: Duration,
}

#[async_trait::async_trait]
impl HttpService for HyperService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let sent = tokio::time::timeout(self.timeout, self.client.request(req)).await;
        let res = match sent {
            Err(_) => {
                return Err(HttpError::new(
                    HttpErrorKind::Timeout,
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "S3 request timed out"),
                ));
            }
            Ok(Err(e)) => {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                return Err(HttpError::new(kind, e));
            }
            Ok(Ok(res)) => res,
        };
        let (parts, body) = res.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}
