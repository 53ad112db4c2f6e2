//! What every media storage backend must do. Each case is generic over the backend; the
//! file-system backend always runs them.

use starling_media::MediaError;
use starling_media::storage::{FsStorage, MediaStorage, Staged, key, new_token};

async fn round_trip_replace_delete<S: MediaStorage>(s: &S) {
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

async fn foreign_keys_name_nothing<S: MediaStorage>(s: &S) {
    for bad in ["../x", "/etc/passwd", "abc", "0123/x", ""] {
        assert!(matches!(s.get(bad).await, Err(MediaError::BadKey)), "{bad}");
        assert!(
            matches!(s.put(bad, vec![1]).await, Err(MediaError::BadKey)),
            "{bad}"
        );
    }
}

async fn staged_uploads_appear_whole_or_not_at_all<S: MediaStorage>(
    s: &S,
    staging: &std::path::Path,
) {
    let k = key(&new_token(), "upload");
    let mut staged = Staged::create(staging).await.unwrap();
    staged.write(b"hello ").await.unwrap();
    // Not visible while it streams in.
    assert!(matches!(s.get(&k).await, Err(MediaError::NotFound)));
    staged.write(b"world").await.unwrap();
    s.put_staged(&k, staged).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap(), b"hello world");
    // A staged upload given up leaves nothing, in staging or in storage.
    let mut abandoned = Staged::create(staging).await.unwrap();
    abandoned.write(b"half").await.unwrap();
    drop(abandoned);
    let left = std::fs::read_dir(staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "staging emptied");
    s.delete(&k).await.unwrap();
}

async fn doctor_check_passes<S: MediaStorage>(s: &S) {
    s.check().await.unwrap();
    assert!(s.list().await.unwrap().is_empty(), "the probe is removed");
}

#[tokio::test]
async fn fs_round_trip_replace_delete() {
    let dir = tempfile::tempdir().unwrap();
    round_trip_replace_delete(&FsStorage::new(dir.path())).await;
}

#[tokio::test]
async fn fs_foreign_keys_name_nothing() {
    let dir = tempfile::tempdir().unwrap();
    foreign_keys_name_nothing(&FsStorage::new(dir.path())).await;
}

#[tokio::test]
async fn fs_staged_uploads_appear_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = FsStorage::new(dir.path());
    staged_uploads_appear_whole_or_not_at_all(&s, &s.staging_dir()).await;
}

#[tokio::test]
async fn fs_doctor_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    doctor_check_passes(&FsStorage::new(dir.path())).await;
}
