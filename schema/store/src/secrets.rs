//! Secrets at rest: passwords as argon2id hashes, tokens and client secrets as SHA-256
//! digests (they are long random values, so a fast hash is enough). Nothing here logs.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

/// A fresh random secret: 32 bytes from the OS, as 64 hex characters.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The at-rest form of a token or client secret.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Password hashing runs on a few long-lived threads of its own, one per core: argon2 needs
/// 19 MiB per hash, and on short-lived, shared blocking threads those blocks fragmented the
/// allocator's per-thread arenas until a server that had signed up a thousand users held
/// gigabytes. On its own threads each hash reuses the block the previous one freed; the
/// queue in front of them also bounds how much hashing runs at once.
struct HashPool {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>>,
}

fn hash_pool() -> Option<&'static HashPool> {
    static POOL: std::sync::OnceLock<Option<HashPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut started = 0;
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        (started > 0).then(|| HashPool {
            jobs: std::sync::Mutex::new(tx),
        })
    })
    .as_ref()
}

/// Run `f` on the hashing threads (or, if they could not be started, a blocking thread).
async fn on_hash_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let failed = || StoreError::backend("hashing a password", "the hashing threads are gone");
    let Some(pool) = hash_pool() else {
        return tokio::task::spawn_blocking(f).await.map_err(|_| failed());
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let _ = tx.send(f());
    });
    pool.jobs
        .lock()
        .map_err(|_| failed())?
        .send(job)
        .map_err(|_| failed())?;
    rx.await.map_err(|_| failed())
}

/// Hash a password with argon2id (OWASP's default parameters), on the hashing threads.
pub async fn hash_password(password: String) -> Result<String> {
    on_hash_pool(move || hash_password_now(&password)).await?
}

fn hash_password_now(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::backend("hashing a password", e.to_string()))
}

/// Check a password against a stored hash, on the hashing threads. `None` (no such user)
/// still spends the time of a real check, so response time does not tell which usernames
/// exist.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool> {
    on_hash_pool(move || verify_password_now(&password, stored.as_deref())).await
}

fn verify_password_now(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password_now("not a real password").unwrap_or_default());
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_hash_is_argon2id_and_verifies() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        let check = |pw: &str, stored: Option<&str>| {
            verify_password(pw.to_owned(), stored.map(str::to_owned))
        };
        assert!(check("correct horse", Some(&h)).await.unwrap());
        assert!(!check("wrong horse", Some(&h)).await.unwrap());
        assert!(!check("correct horse", None).await.unwrap());
    }

    #[test]
    fn secrets_are_random_and_digests_stable() {
        let a = random_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_secret());
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), a);
    }
}
