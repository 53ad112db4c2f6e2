//! The cryptography of Web Push, on RustCrypto's P-256, HKDF and AES-GCM:
//!
//! - message encryption for a subscription's public key and auth secret, in RFC 8291's
//!   `aes128gcm` and in the older `aesgcm` draft encoding that Mastodon has always sent
//!   (`Encryption: salt=` and `Crypto-Key: dh=` headers);
//! - VAPID (RFC 8292): the server's P-256 key and the ES256-signed JWT per push service;
//! - sealing an access token under a key derived from the VAPID key, so the token Mastodon
//!   puts in each payload is never stored in the clear.
//!
//! Nothing here logs, and no key is ever formatted with `Debug`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;

/// Record size announced in `aes128gcm` messages: one record holds the whole payload.
pub const RECORD_SIZE: u32 = 4096;
/// The largest plaintext one message carries (RFC 8291 §4: 4096-byte records, less the
/// 16-byte tag, the padding delimiter and the 86-byte header budget push services allow).
pub const MAX_PLAINTEXT: usize = 3993;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the subscription's public key is not a P-256 point")]
    BadPublicKey,
    #[error("the subscription's auth secret is not 16 bytes")]
    BadAuthSecret,
    #[error("the VAPID private key is not a P-256 scalar (32 bytes, base64url)")]
    BadVapidKey,
    #[error("the payload is {0} bytes, more than one push message carries")]
    TooLarge(usize),
    #[error("encryption failed")]
    Encrypt,
}

/// How a message body is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// RFC 8291 (`Content-Encoding: aes128gcm`): the salt and key travel in the body.
    Aes128Gcm,
    /// draft-ietf-webpush-encryption-04 (`Content-Encoding: aesgcm`): salt and key in
    /// the `Encryption` and `Crypto-Key` headers.
    AesGcm,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Aes128Gcm => "aes128gcm",
            Encoding::AesGcm => "aesgcm",
        }
    }
}

/// An encrypted message: the body, and for `aesgcm` the salt and sender key its headers
/// carry (base64url).
pub struct Encrypted {
    pub body: Vec<u8>,
    pub encoding: Encoding,
    pub salt: String,
    pub sender_key: String,
}

/// A subscription's keys, decoded and checked.
pub struct Receiver {
    public: PublicKey,
    /// The uncompressed point, as it enters the key derivation.
    public_bytes: Vec<u8>,
    auth: [u8; 16],
}

impl Receiver {
    pub fn new(p256dh: &[u8], auth: &[u8]) -> Result<Receiver, CryptoError> {
        let public = PublicKey::from_sec1_bytes(p256dh).map_err(|_| CryptoError::BadPublicKey)?;
        let auth: [u8; 16] = auth.try_into().map_err(|_| CryptoError::BadAuthSecret)?;
        Ok(Receiver {
            public_bytes: public.to_encoded_point(false).as_bytes().to_vec(),
            public,
            auth,
        })
    }
}

/// Whether `p256dh` is a point on P-256 (a key a user agent could have made).
pub fn is_p256_point(p256dh: &[u8]) -> bool {
    PublicKey::from_sec1_bytes(p256dh).is_ok()
}

/// Encrypt `plaintext` for `to` with a fresh sender key and salt.
pub fn encrypt(
    to: &Receiver,
    plaintext: &[u8],
    encoding: Encoding,
) -> Result<Encrypted, CryptoError> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let sender = SecretKey::random(&mut OsRng);
    encrypt_with(to, plaintext, encoding, &sender, salt)
}

/// [`encrypt`] with a given sender key and salt (the RFC's test vectors use fixed ones).
pub fn encrypt_with(
    to: &Receiver,
    plaintext: &[u8],
    encoding: Encoding,
    sender: &SecretKey,
    salt: [u8; 16],
) -> Result<Encrypted, CryptoError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(CryptoError::TooLarge(plaintext.len()));
    }
    let sender_public = sender.public_key().to_encoded_point(false);
    let sender_public = sender_public.as_bytes();
    let shared = p256::ecdh::diffie_hellman(sender.to_nonzero_scalar(), to.public.as_affine());
    let ecdh = shared.raw_secret_bytes();
    let (key, nonce, record) = match encoding {
        Encoding::Aes128Gcm => {
            // RFC 8291 §3.3-3.4.
            let info = [
                b"WebPush: info\0".as_slice(),
                &to.public_bytes,
                sender_public,
            ]
            .concat();
            let ikm = expand::<32>(&to.auth, ecdh, &info)?;
            let key = expand::<16>(&salt, &ikm, b"Content-Encoding: aes128gcm\0")?;
            let nonce = expand::<12>(&salt, &ikm, b"Content-Encoding: nonce\0")?;
            // One record, the last: the data, then the delimiter 0x02.
            let record = [plaintext, &[2u8]].concat();
            (key, nonce, record)
        }
        Encoding::AesGcm => {
            // draft-ietf-webpush-encryption-04 with draft-ietf-httpbis-encryption-encoding-03.
            let ikm = expand::<32>(&to.auth, ecdh, b"Content-Encoding: auth\0")?;
            let mut context = b"P-256\0".to_vec();
            for point in [to.public_bytes.as_slice(), sender_public] {
                context.extend_from_slice(&(point.len() as u16).to_be_bytes());
                context.extend_from_slice(point);
            }
            let key_info = [b"Content-Encoding: aesgcm\0".as_slice(), &context].concat();
            let nonce_info = [b"Content-Encoding: nonce\0".as_slice(), &context].concat();
            let key = expand::<16>(&salt, &ikm, &key_info)?;
            let nonce = expand::<12>(&salt, &ikm, &nonce_info)?;
            // Two bytes of padding length (none), then the data.
            let record = [&[0u8, 0u8], plaintext].concat();
            (key, nonce, record)
        }
    };
    let cipher = Aes128Gcm::new_from_slice(&key).map_err(|_| CryptoError::Encrypt)?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| CryptoError::Encrypt)?;
    let body = match encoding {
        Encoding::Aes128Gcm => {
            let mut body = Vec::with_capacity(21 + sender_public.len() + sealed.len());
            body.extend_from_slice(&salt);
            body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
            body.push(sender_public.len() as u8);
            body.extend_from_slice(sender_public);
            body.extend_from_slice(&sealed);
            body
        }
        Encoding::AesGcm => sealed,
    };
    Ok(Encrypted {
        body,
        encoding,
        salt: URL_SAFE_NO_PAD.encode(salt),
        sender_key: URL_SAFE_NO_PAD.encode(sender_public),
    })
}

/// HKDF-SHA-256 extract with `salt` and expand to `N` bytes.
fn expand<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .map_err(|_| CryptoError::Encrypt)?;
    Ok(out)
}

/// The server's VAPID key pair. Cheap to clone; its `Debug` shows only the public key.
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
    /// The uncompressed public point, base64url: `server_key` and the `k=` parameter.
    public: String,
    /// Derived from the private key: seals access tokens at rest.
    token_key: [u8; 16],
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// A new random key, as base64url of its 32-byte scalar.
    pub fn generate() -> String {
        URL_SAFE_NO_PAD.encode(SecretKey::random(&mut OsRng).to_bytes())
    }

    /// From the base64url (or base64) private scalar.
    pub fn from_private(encoded: &str) -> Result<VapidKey, CryptoError> {
        let bytes = starling_schema::push::decode_key("push.vapid_private_key", encoded, 32)
            .map_err(|_| CryptoError::BadVapidKey)?;
        let secret = SecretKey::from_slice(&bytes).map_err(|_| CryptoError::BadVapidKey)?;
        let public = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false));
        let token_key = expand::<16>(b"starling push token", &bytes, b"seal")?;
        Ok(VapidKey {
            signing: SigningKey::from(&secret),
            public,
            token_key,
        })
    }

    /// The public key, uncompressed, base64url without padding.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// A signed VAPID JWT for the push service at `audience` (scheme, host and port of the
    /// endpoint), valid until `expires_at` (seconds since the epoch; at most 24 h ahead).
    pub fn jwt(&self, audience: &str, subject: &str, expires_at: u64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": expires_at, "sub": subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let signature: Signature = self.signing.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// Encrypt an access token for storage (random nonce, base64url of nonce and ciphertext).
    pub fn seal(&self, token: &str) -> Result<String, CryptoError> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let cipher =
            Aes128Gcm::new_from_slice(&self.token_key).map_err(|_| CryptoError::Encrypt)?;
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.as_bytes(),
                    aad: b"starling push token",
                },
            )
            .map_err(|_| CryptoError::Encrypt)?;
        Ok(URL_SAFE_NO_PAD.encode([nonce.as_slice(), &sealed].concat()))
    }

    /// The token [`seal`](Self::seal) sealed, or `None` if it was sealed under another key.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let (nonce, sealed) = bytes.split_at_checked(12)?;
        let cipher = Aes128Gcm::new_from_slice(&self.token_key).ok()?;
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: b"starling push token",
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Decrypt a message as a user agent does: the other half of [`encrypt`], used by tests and
/// `starling admin push test` checks. `private` is the subscription's P-256 scalar; for
/// `aesgcm`, `salt` and `sender_key` come from the headers (base64url).
pub fn decrypt(
    private: &[u8],
    auth: &[u8],
    body: &[u8],
    encoding: Encoding,
    headers: Option<(&str, &str)>,
) -> Option<Vec<u8>> {
    let secret = SecretKey::from_slice(private).ok()?;
    let own = secret.public_key().to_encoded_point(false);
    let own = own.as_bytes();
    let (salt, sender, sealed) = match encoding {
        Encoding::Aes128Gcm => {
            let salt = body.get(..16)?.to_vec();
            let idlen = usize::from(*body.get(20)?);
            let sender = body.get(21..21 + idlen)?.to_vec();
            (salt, sender, body.get(21 + idlen..)?)
        }
        Encoding::AesGcm => {
            let (salt, sender) = headers?;
            let salt = URL_SAFE_NO_PAD.decode(salt).ok()?;
            let sender = URL_SAFE_NO_PAD.decode(sender).ok()?;
            (salt, sender, body)
        }
    };
    let sender_key = PublicKey::from_sec1_bytes(&sender).ok()?;
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), sender_key.as_affine());
    let ecdh = shared.raw_secret_bytes();
    let (key, nonce) = match encoding {
        Encoding::Aes128Gcm => {
            let info = [b"WebPush: info\0".as_slice(), own, &sender].concat();
            let ikm = expand::<32>(auth, ecdh, &info).ok()?;
            (
                expand::<16>(&salt, &ikm, b"Content-Encoding: aes128gcm\0").ok()?,
                expand::<12>(&salt, &ikm, b"Content-Encoding: nonce\0").ok()?,
            )
        }
        Encoding::AesGcm => {
            let ikm = expand::<32>(auth, ecdh, b"Content-Encoding: auth\0").ok()?;
            let mut context = b"P-256\0".to_vec();
            for point in [own, sender.as_slice()] {
                context.extend_from_slice(&(point.len() as u16).to_be_bytes());
                context.extend_from_slice(point);
            }
            (
                expand::<16>(
                    &salt,
                    &ikm,
                    &[b"Content-Encoding: aesgcm\0".as_slice(), &context].concat(),
                )
                .ok()?,
                expand::<12>(
                    &salt,
                    &ikm,
                    &[b"Content-Encoding: nonce\0".as_slice(), &context].concat(),
                )
                .ok()?,
            )
        }
    };
    let cipher = Aes128Gcm::new_from_slice(&key).ok()?;
    let mut plain = cipher.decrypt(Nonce::from_slice(&nonce), sealed).ok()?;
    match encoding {
        Encoding::Aes128Gcm => {
            // Strip the padding, then the delimiter.
            while plain.last() == Some(&0) {
                plain.pop();
            }
            (plain.pop()? == 2).then_some(plain)
        }
        Encoding::AesGcm => {
            let pad = usize::from(u16::from_be_bytes([*plain.first()?, *plain.get(1)?]));
            plain.get(2 + pad..).map(<[u8]>::to_vec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).expect("base64url")
    }

    /// RFC 8291 Appendix A: the example's keys, salt and message, byte for byte.
    #[test]
    fn aes128gcm_matches_the_rfc_8291_example() {
        let ua_private = b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94");
        let ua_public = b64(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        );
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let as_private = b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw");
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().expect("16 bytes");
        let sender = SecretKey::from_slice(&as_private).expect("scalar");
        let to = Receiver::new(&ua_public, &auth).expect("keys");
        let message = encrypt_with(
            &to,
            b"When I grow up, I want to be a watermelon",
            Encoding::Aes128Gcm,
            &sender,
            salt,
        )
        .expect("encrypt");
        let expected = b64(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
        );
        assert_eq!(message.body, expected);
        let plain = decrypt(&ua_private, &auth, &message.body, Encoding::Aes128Gcm, None);
        assert_eq!(
            plain.as_deref(),
            Some(b"When I grow up, I want to be a watermelon".as_slice())
        );
    }

    #[test]
    fn aesgcm_round_trips_and_refuses_the_wrong_secret() {
        let ua = SecretKey::random(&mut OsRng);
        let ua_public = ua.public_key().to_encoded_point(false);
        let auth = [7u8; 16];
        let to = Receiver::new(ua_public.as_bytes(), &auth).expect("keys");
        let message = encrypt(&to, br#"{"title":"hi"}"#, Encoding::AesGcm).expect("encrypt");
        let headers = Some((message.salt.as_str(), message.sender_key.as_str()));
        let plain = decrypt(
            &ua.to_bytes(),
            &auth,
            &message.body,
            Encoding::AesGcm,
            headers,
        );
        assert_eq!(plain.as_deref(), Some(br#"{"title":"hi"}"#.as_slice()));
        let wrong = decrypt(
            &ua.to_bytes(),
            &[8u8; 16],
            &message.body,
            Encoding::AesGcm,
            headers,
        );
        assert!(wrong.is_none());
    }

    #[test]
    fn bad_keys_and_oversized_payloads_are_refused() {
        assert!(matches!(
            Receiver::new(&[4u8; 65], &[0u8; 16]),
            Err(CryptoError::BadPublicKey)
        ));
        let ua = SecretKey::random(&mut OsRng)
            .public_key()
            .to_encoded_point(false);
        assert!(matches!(
            Receiver::new(ua.as_bytes(), &[0u8; 15]),
            Err(CryptoError::BadAuthSecret)
        ));
        let to = Receiver::new(ua.as_bytes(), &[0u8; 16]).expect("keys");
        let big = vec![b'x'; MAX_PLAINTEXT + 1];
        assert!(matches!(
            encrypt(&to, &big, Encoding::Aes128Gcm),
            Err(CryptoError::TooLarge(_))
        ));
        assert!(VapidKey::from_private("short").is_err());
    }

    #[test]
    fn vapid_jwts_verify_under_the_public_key_and_tokens_seal() {
        use p256::ecdsa::VerifyingKey;
        use p256::ecdsa::signature::Verifier;
        let key = VapidKey::from_private(&VapidKey::generate()).expect("key");
        let jwt = key.jwt(
            "https://push.example.net",
            "mailto:ops@example.org",
            1_900_000_000,
        );
        let (signed, signature) = jwt.rsplit_once('.').expect("three parts");
        let verifying = VerifyingKey::from_sec1_bytes(&b64(key.public_key())).expect("point");
        let signature = Signature::from_slice(&b64(signature)).expect("64 bytes");
        assert!(verifying.verify(signed.as_bytes(), &signature).is_ok());
        let claims = b64(signed.split('.').nth(1).expect("claims"));
        let claims: serde_json::Value = serde_json::from_slice(&claims).expect("json");
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["sub"], "mailto:ops@example.org");

        let sealed = key.seal("the-access-token").expect("seal");
        assert!(!sealed.contains("the-access-token"));
        assert_eq!(key.open(&sealed).as_deref(), Some("the-access-token"));
        let other = VapidKey::from_private(&VapidKey::generate()).expect("key");
        assert_eq!(
            other.open(&sealed),
            None,
            "another server key opens nothing"
        );
    }
}
