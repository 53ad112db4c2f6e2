//! The browser session behind the sign-in pages: one signed cookie, and CSRF tokens
//! derived from it.
//!
//! The cookie holds `account.expires.nonce.mac`: the signed-in account (0 for a visitor who
//! has not signed in yet), when the session ends (unix seconds), a random nonce, and an
//! HMAC-SHA256 of the rest under `api.session_secret`. Nothing else is kept on the server,
//! so any api node with the same secret reads it. A form's CSRF token is an HMAC of the
//! session's nonce, so only a page this server rendered for this browser can post a form;
//! signing in mints a new nonce (no session fixation), signing out drops the account.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use starling_schema::Id;
use starling_schema::ids::now_ms;

pub const COOKIE: &str = "starling_session";

/// The key that signs sessions, from `api.session_secret` or random for this process.
pub struct SessionKey {
    key: Vec<u8>,
    lifetime_secs: u64,
    secure: bool,
}

/// A verified session cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// `None` before signing in.
    pub account: Option<Id>,
    pub expires_secs: u64,
    nonce: String,
}

impl SessionKey {
    pub fn new(secret: Option<&str>, lifetime_hours: u64, public_url: &str) -> SessionKey {
        let key = match secret {
            Some(s) if !s.is_empty() => s.as_bytes().to_vec(),
            _ => {
                tracing::info!(
                    "api.session_secret is not set: sign-in sessions use a random key and end when this process stops"
                );
                let mut k = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                k
            }
        };
        SessionKey {
            key,
            lifetime_secs: lifetime_hours.saturating_mul(3600).max(60),
            secure: public_url.starts_with("https://"),
        }
    }

    fn mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        };
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    fn sign(&self, parts: &[&str]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(parts).finalize().into_bytes())
    }

    fn verify(&self, parts: &[&str], signature: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(signature) {
            Ok(sig) => self.mac(parts).verify_slice(&sig).is_ok(),
            Err(_) => false,
        }
    }

    /// A fresh session for `account` (`None`: a visitor), with a new nonce.
    pub fn start(&self, account: Option<Id>) -> Session {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        Session {
            account,
            expires_secs: now_ms() / 1000 + self.lifetime_secs,
            nonce: URL_SAFE_NO_PAD.encode(nonce),
        }
    }

    /// The request's session, if its cookie is present, signed by this key and current.
    pub fn read(&self, req: &HttpRequest) -> Option<Session> {
        let cookie = req.cookie(COOKIE)?;
        self.parse(cookie.value())
    }

    fn parse(&self, value: &str) -> Option<Session> {
        let mut parts = value.split('.');
        let (account, expires, nonce, mac) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !self.verify(&["session", account, expires, nonce], mac) {
            return None;
        }
        let expires_secs: u64 = expires.parse().ok()?;
        if expires_secs <= now_ms() / 1000 {
            return None;
        }
        let account: u64 = account.parse().ok()?;
        Some(Session {
            account: (account != 0).then_some(Id(account)),
            expires_secs,
            nonce: nonce.to_owned(),
        })
    }

    fn value(&self, s: &Session) -> String {
        let account = s.account.map_or(0, |a| a.0).to_string();
        let expires = s.expires_secs.to_string();
        let mac = self.sign(&["session", &account, &expires, &s.nonce]);
        format!("{account}.{expires}.{}.{mac}", s.nonce)
    }

    /// The cookie that carries `s`: HttpOnly, SameSite=Lax, Secure on https, for the
    /// session's lifetime.
    pub fn cookie(&self, s: &Session) -> Cookie<'static> {
        let left = s.expires_secs.saturating_sub(now_ms() / 1000);
        Cookie::build(COOKIE, self.value(s))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(CookieDuration::seconds(
                i64::try_from(left).unwrap_or(i64::MAX),
            ))
            .finish()
    }

    /// The CSRF token every form of session `s` carries.
    pub fn csrf(&self, s: &Session) -> String {
        self.sign(&["csrf", &s.nonce])
    }

    pub fn csrf_ok(&self, s: &Session, token: &str) -> bool {
        self.verify(&["csrf", &s.nonce], token)
    }
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` fails only for fixed-size-key MACs; HMAC accepts any length.
    panic!("HMAC-SHA256 refused a key")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::new(Some("a test secret of some length"), 1, "https://x.example")
    }

    #[test]
    fn a_signed_session_reads_back_and_a_tampered_one_does_not() {
        let k = key();
        let s = k.start(Some(Id(42)));
        let v = k.value(&s);
        assert_eq!(k.parse(&v), Some(s.clone()));
        let forged = v.replacen("42.", "43.", 1);
        assert_eq!(k.parse(&forged), None);
        let other = SessionKey::new(Some("another secret"), 1, "http://x");
        assert_eq!(other.parse(&v), None, "another key's cookie is not read");
        assert_eq!(k.parse("garbage"), None);
        assert_eq!(k.parse("1.2.3.4.5"), None);
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let k = key();
        let a = k.start(None);
        let b = k.start(None);
        assert!(k.csrf_ok(&a, &k.csrf(&a)));
        assert!(!k.csrf_ok(&b, &k.csrf(&a)));
        assert!(!k.csrf_ok(&a, "forged"));
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_on_https() {
        let k = key();
        let c = k.cookie(&k.start(None));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.secure(), Some(true));
        let plain = SessionKey::new(None, 1, "http://127.0.0.1:8080");
        assert_eq!(plain.cookie(&plain.start(None)).secure(), Some(false));
    }
}
