//! What every media storage backend must do. Each case runs on the file-system backend
//! always, and on the S3 backend when `S3_ENDPOINT` names an S3-compatible server
//! (`bash infra/s3-server.sh start` starts moto; `infra/test.sh` does), each test under a
//! prefix of its own; without it the S3 cases say they were skipped and pass.

use starling_media::MediaError;
use starling_media::storage::{AnyStorage, MediaStorage, Staged, key, new_token};
use starling_schema::settings::{MediaBackend, MediaSettings, S3Settings};
use starling_testkit::S3Bucket;

/// A backend under test, with what keeps it alive.
struct Backend {
    storage: AnyStorage,
    _dir: tempfile::TempDir,
}

fn fs() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let settings = MediaSettings {
        path: dir.path().to_owned(),
        ..MediaSettings::default()
    };
    Backend {
        storage: AnyStorage::from_settings(&settings).unwrap(),
        _dir: dir,
    }
}

/// The media settings of an S3 test bucket (its staging under `dir`).
pub fn s3_settings(bucket: &S3Bucket, dir: &std::path::Path) -> MediaSettings {
    MediaSettings {
        backend: MediaBackend::S3,
        path: dir.to_owned(),
        public_url: bucket.public_url(),
        s3: S3Settings {
            bucket: bucket.bucket.clone(),
            endpoint: bucket.endpoint.clone(),
            region: bucket.region.clone(),
            prefix: bucket.prefix.clone(),
            access_key_id: Some(bucket.access_key_id.clone()),
            secret_access_key: Some(bucket.secret_access_key.clone()),
            ..S3Settings::default()
        },
        ..MediaSettings::default()
    }
}

fn s3(case: &str) -> Option<Backend> {
    let bucket = S3Bucket::from_env(&format!("the S3 storage conformance case {case}"))?;
    let dir = tempfile::tempdir().unwrap();
    let storage = AnyStorage::from_settings(&s3_settings(&bucket, dir.path())).unwrap();
    assert!(matches!(storage, AnyStorage::S3(_)));
    Some(Backend { storage, _dir: dir })
}

/// Each case as `storage::fs::{case}` and `storage::s3::{case}`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod fs {
            $(
                #[tokio::test]
                async fn $case() {
                    let b = super::fs();
                    super::$case(&b.storage).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(b) = super::s3(stringify!($case)) {
                        super::$case(&b.storage).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    round_trip_replace_delete,
    foreign_keys_name_nothing,
    staged_uploads_appear_whole_or_not_at_all,
    large_staged_uploads_arrive_whole,
    listing_is_in_key_order_with_sizes_and_times,
    doctor_check_passes,
);

async fn round_trip_replace_delete(s: &AnyStorage) {
    let k = key(&new_token(), "original.jpg");
    assert!(matches!(s.get(&k).await, Err(MediaError::NotFound)));
    s.put(&k, b"one".to_vec()).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), b"one");
    s.put(&k, b"two!".to_vec()).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), b"two!");
    let listed = s.list().await.unwrap();
    assert!(listed.iter().any(|f| f.key == k && f.size == 4));
    s.delete(&k).await.unwrap();
    s.delete(&k).await.unwrap();
    assert!(matches!(s.get(&k).await, Err(MediaError::NotFound)));
    assert!(!s.list().await.unwrap().iter().any(|f| f.key == k));
}

async fn foreign_keys_name_nothing(s: &AnyStorage) {
    for bad in ["../x", "/etc/passwd", "abc", "0123/x", "", "a/../../b"] {
        assert!(matches!(s.get(bad).await, Err(MediaError::BadKey)), "{bad}");
        assert!(
            matches!(s.put(bad, vec![1]).await, Err(MediaError::BadKey)),
            "{bad}"
        );
        assert!(
            matches!(s.delete(bad).await, Err(MediaError::BadKey)),
            "{bad}"
        );
    }
    assert!(s.list().await.unwrap().is_empty(), "nothing was written");
}

async fn staged_uploads_appear_whole_or_not_at_all(s: &AnyStorage) {
    let staging = s.staging_dir();
    let k = key(&new_token(), "upload");
    let mut staged = Staged::create(&staging).await.unwrap();
    staged.write(b"hello ").await.unwrap();
    // Not visible while it streams in.
    assert!(matches!(s.get(&k).await, Err(MediaError::NotFound)));
    staged.write(b"world").await.unwrap();
    s.put_staged(&k, staged).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), b"hello world");
    // A staged upload given up leaves nothing, in staging or in storage.
    let mut abandoned = Staged::create(&staging).await.unwrap();
    abandoned.write(b"half").await.unwrap();
    drop(abandoned);
    let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "staging emptied");
    assert_eq!(s.list().await.unwrap().len(), 1, "only the stored upload");
    s.delete(&k).await.unwrap();
}

/// An upload larger than one request's worth (a video): on S3 it goes up in parts.
async fn large_staged_uploads_arrive_whole(s: &AnyStorage) {
    let bytes: Vec<u8> = (0..(9 << 20) + 12_345_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let k = key(&new_token(), "upload");
    let mut staged = Staged::create(&s.staging_dir()).await.unwrap();
    for chunk in bytes.chunks(1 << 20) {
        staged.write(chunk).await.unwrap();
    }
    s.put_staged(&k, staged).await.unwrap();
    assert!(
        s.get(&k).await.unwrap() == bytes,
        "read back the same bytes"
    );
    let listed = s.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, bytes.len() as u64);
    let left = std::fs::read_dir(s.staging_dir())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "staging emptied");
    s.delete(&k).await.unwrap();
}

async fn listing_is_in_key_order_with_sizes_and_times(s: &AnyStorage) {
    let before = starling_schema::ids::now_ms();
    let tokens = [new_token(), new_token(), new_token()];
    let mut keys = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        for name in ["original.png", "small.jpg"] {
            let k = key(t, name);
            s.put(&k, vec![7; i + name.len()]).await.unwrap();
            keys.push(k);
        }
    }
    keys.sort();
    let listed = s.list().await.unwrap();
    assert_eq!(
        listed.iter().map(|f| f.key.clone()).collect::<Vec<_>>(),
        keys
    );
    for f in &listed {
        assert_eq!(f.size, s.get(&f.key).await.unwrap().len() as u64);
        // Clocks of a remote server may differ a little; a minute is plenty.
        assert!(f.modified_ms + 60_000 >= before, "{f:?}");
        assert!(
            f.modified_ms <= starling_schema::ids::now_ms() + 60_000,
            "{f:?}"
        );
    }
    for k in &keys {
        s.delete(k).await.unwrap();
    }
    assert!(s.list().await.unwrap().is_empty());
}

async fn doctor_check_passes(s: &AnyStorage) {
    s.check().await.unwrap();
    assert!(s.list().await.unwrap().is_empty(), "the probe is removed");
}

#[tokio::test]
async fn s3_settings_without_credentials_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let settings = MediaSettings {
        backend: MediaBackend::S3,
        path: dir.path().to_owned(),
        public_url: "http://127.0.0.1:1/bucket".into(),
        s3: S3Settings {
            bucket: "bucket".into(),
            endpoint: "http://127.0.0.1:1".into(),
            ..S3Settings::default()
        },
        ..MediaSettings::default()
    };
    // Only when the environment has no AWS credentials either.
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        let err = AnyStorage::from_settings(&settings).unwrap_err();
        assert!(format!("{err:?}").contains("credentials"), "{err:?}");
    }
}

#[tokio::test]
async fn an_unreachable_s3_server_is_an_unavailable_storage_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = MediaSettings {
        backend: MediaBackend::S3,
        path: dir.path().to_owned(),
        public_url: format!("http://127.0.0.1:{port}/bucket"),
        s3: S3Settings {
            bucket: "bucket".into(),
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            timeout_ms: 2_000,
            ..S3Settings::default()
        },
        ..MediaSettings::default()
    };
    let s = AnyStorage::from_settings(&settings).unwrap();
    let started = std::time::Instant::now();
    let err = s.check().await.unwrap_err();
    assert!(matches!(err, MediaError::Storage { .. }), "{err:?}");
    assert_eq!(err.kind(), starling_schema::ErrorKind::Unavailable);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
