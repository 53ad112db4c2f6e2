//! Input rules shared by every backend and the HTTP layer, so a bad input gets the same
//! typed error wherever it enters.

use unicode_normalization::UnicodeNormalization;

use crate::error::Invalid;
use crate::model::{NewAccount, NewApp, NewPost};
use crate::settings::Limits;

pub const USERNAME_MAX_CHARS: usize = 30;
pub const DISPLAY_NAME_MAX_CHARS: usize = 30;
pub const PASSWORD_MIN_BYTES: usize = 8;
pub const PASSWORD_MAX_BYTES: usize = 256;
pub const EMAIL_MAX_BYTES: usize = 320;
pub const APP_NAME_MAX_CHARS: usize = 200;
pub const MAX_REDIRECT_URIS: usize = 10;
pub const URI_MAX_BYTES: usize = 2000;
pub const MAX_MENTIONS: usize = 50;
pub const MAX_HASHTAGS: usize = 50;
pub const HASHTAG_MAX_CHARS: usize = 100;
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 256;

/// The form a username is stored in: Unicode NFC, as typed otherwise.
///
/// Usernames are letters and digits of any script, `_`, and `.`/`-` between them; at most
/// [`USERNAME_MAX_CHARS`] characters.
pub fn normalize_username(raw: &str) -> Result<String, Invalid> {
    let name: String = raw.nfc().collect();
    let count = name.chars().count();
    if count == 0 {
        return Err(Invalid::new("username", "must not be empty"));
    }
    if count > USERNAME_MAX_CHARS {
        return Err(Invalid::new(
            "username",
            format!("is too long ({count} characters, at most {USERNAME_MAX_CHARS})"),
        ));
    }
    let edge_ok = |c: char| c.is_alphanumeric() || c == '_';
    let inner_ok = |c: char| edge_ok(c) || c == '.' || c == '-';
    let first = name.chars().next().is_some_and(edge_ok);
    let last = name.chars().last().is_some_and(edge_ok);
    if !first || !last || !name.chars().all(inner_ok) {
        return Err(Invalid::new(
            "username",
            "may only contain letters, digits and underscores, with dots or dashes between them",
        ));
    }
    Ok(name)
}

/// The key that makes usernames unique: compatibility-normalised and lower-cased, so
/// `Alice`, `ALICE` and full-width `Ａｌｉｃｅ` are one name.
pub fn username_key(username: &str) -> String {
    username.nfkc().flat_map(char::to_lowercase).collect()
}

/// The key an email address is indexed under: trimmed and lowercased, so `Alice@Example.ORG `
/// finds `alice@example.org`. `None` for an empty address, which is no address.
pub fn email_key(email: &str) -> Option<String> {
    let key = email.trim().to_lowercase();
    (!key.is_empty()).then_some(key)
}

/// The rule for names signed up through the API, as Mastodon's for local accounts: ASCII
/// letters, digits and underscores only (so `аdmin` with a Cyrillic `а` cannot pass for
/// `admin`), at most [`USERNAME_MAX_CHARS`], and none of `reserved` (in any case). Stored
/// names of other shapes (imported, older) still resolve through [`normalize_username`].
pub fn validate_local_username(raw: &str, reserved: &[String]) -> Result<(), Invalid> {
    if raw.is_empty() {
        return Err(Invalid::new("username", "must not be empty"));
    }
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Invalid::new(
            "username",
            "may only contain letters (a-z), digits and underscores",
        ));
    }
    if raw.len() > USERNAME_MAX_CHARS {
        return Err(Invalid::new(
            "username",
            format!("is too long (at most {USERNAME_MAX_CHARS} characters)"),
        ));
    }
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(raw)) {
        return Err(Invalid::new("username", "is reserved"));
    }
    Ok(())
}

pub fn validate_new_account(new: &NewAccount) -> Result<String, Invalid> {
    let username = normalize_username(&new.username)?;
    let pw = new.password.len();
    if pw < PASSWORD_MIN_BYTES {
        return Err(Invalid::new(
            "password",
            format!("is too short (at least {PASSWORD_MIN_BYTES} characters)"),
        ));
    }
    if pw > PASSWORD_MAX_BYTES {
        return Err(Invalid::new(
            "password",
            format!("is too long (at most {PASSWORD_MAX_BYTES} bytes)"),
        ));
    }
    if let Some(email) = &new.email
        && (email.len() > EMAIL_MAX_BYTES || !email.contains('@') || email.trim() != email)
    {
        return Err(Invalid::new("email", "is not an email address"));
    }
    if let Some(name) = &new.display_name
        && name.chars().count() > DISPLAY_NAME_MAX_CHARS
    {
        return Err(Invalid::new(
            "display_name",
            format!("is too long (at most {DISPLAY_NAME_MAX_CHARS} characters)"),
        ));
    }
    Ok(username)
}

pub fn validate_new_post(post: &NewPost, limits: &Limits) -> Result<(), Invalid> {
    let chars = post.text.chars().count() + post.spoiler_text.chars().count();
    if post.reblog_of.is_some() {
        if !post.text.is_empty() {
            return Err(Invalid::new("status", "must be empty on a reblog"));
        }
    } else if post.text.trim().is_empty() && post.media_ids.is_empty() {
        return Err(Invalid::new("status", "can't be blank"));
    }
    if chars > limits.max_post_chars {
        return Err(Invalid::new(
            "status",
            format!(
                "is too long ({chars} characters, at most {})",
                limits.max_post_chars
            ),
        ));
    }
    if let Some(poll) = &post.poll {
        if !post.media_ids.is_empty() {
            return Err(Invalid::new(
                "poll",
                "cannot be attached to a post with media",
            ));
        }
        crate::polls::validate_new_poll(poll, limits)?;
    }
    if post.mentions.len() > MAX_MENTIONS {
        return Err(Invalid::new(
            "status",
            format!("mentions more than {MAX_MENTIONS} accounts"),
        ));
    }
    if post.hashtags.len() > MAX_HASHTAGS {
        return Err(Invalid::new(
            "status",
            format!("has more than {MAX_HASHTAGS} hashtags"),
        ));
    }
    if let Some(tag) = post
        .hashtags
        .iter()
        .find(|t| t.is_empty() || t.chars().count() > HASHTAG_MAX_CHARS)
    {
        return Err(Invalid::new(
            "status",
            format!("has an invalid hashtag {tag:?}"),
        ));
    }
    if let Some(lang) = &post.language {
        let ok = (2..=8).contains(&lang.len())
            && lang.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(Invalid::new("language", "is not a language code"));
        }
    }
    Ok(())
}

pub fn validate_new_app(app: &NewApp) -> Result<(), Invalid> {
    let n = app.name.trim().chars().count();
    if n == 0 {
        return Err(Invalid::new("client_name", "can't be blank"));
    }
    if n > APP_NAME_MAX_CHARS {
        return Err(Invalid::new(
            "client_name",
            format!("is too long (at most {APP_NAME_MAX_CHARS} characters)"),
        ));
    }
    if app.redirect_uris.len() > MAX_REDIRECT_URIS
        || app
            .redirect_uris
            .iter()
            .any(|u| u.is_empty() || u.len() > URI_MAX_BYTES)
    {
        return Err(Invalid::new("redirect_uris", "are not valid URIs"));
    }
    if app
        .website
        .as_ref()
        .is_some_and(|w| w.len() > URI_MAX_BYTES)
    {
        return Err(Invalid::new("website", "is too long"));
    }
    Ok(())
}

pub fn validate_idempotency_key(key: &str) -> Result<(), Invalid> {
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX_BYTES {
        return Err(Invalid::new(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_usernames_are_ascii_and_not_reserved() {
        let reserved = vec!["admin".to_string(), "root".to_string()];
        assert!(validate_local_username("alice_1", &reserved).is_ok());
        for bad in [
            "\u{430}dmin",
            "ærø",
            "a.b",
            "a-b",
            "",
            "Admin",
            "ROOT",
            &"a".repeat(31),
        ] {
            assert!(
                validate_local_username(bad, &reserved).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn usernames_of_any_script_with_inner_punctuation() {
        assert_eq!(normalize_username("alice_1").unwrap(), "alice_1");
        assert_eq!(normalize_username("Ærøskøbing").unwrap(), "Ærøskøbing");
        assert_eq!(normalize_username("山田").unwrap(), "山田");
        assert_eq!(normalize_username("a.b-c").unwrap(), "a.b-c");
        for bad in [
            "",
            ".alice",
            "alice-",
            "al ice",
            "al@ice",
            "a/b",
            &"x".repeat(31),
        ] {
            assert!(normalize_username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn decomposed_input_is_stored_composed() {
        // "é" typed as e + combining acute.
        assert_eq!(normalize_username("re\u{301}my").unwrap(), "r\u{e9}my");
    }

    #[test]
    fn key_folds_case_and_width() {
        assert_eq!(username_key("Alice"), username_key("aLICE"));
        assert_eq!(username_key("Ａｌｉｃｅ"), "alice");
        assert_eq!(username_key("ÆRØ"), username_key("ærø"));
        assert_ne!(username_key("alice"), username_key("alicia"));
    }

    #[test]
    fn post_text_rules() {
        let limits = Limits::default();
        let mut post = NewPost {
            text: "hello".into(),
            ..NewPost::default()
        };
        assert!(validate_new_post(&post, &limits).is_ok());
        post.text = "   ".into();
        assert_eq!(
            validate_new_post(&post, &limits).unwrap_err().field,
            "status"
        );
        post.text = "é".repeat(limits.max_post_chars);
        assert!(validate_new_post(&post, &limits).is_ok());
        post.text.push('x');
        assert!(validate_new_post(&post, &limits).is_err());
        post.text = String::new();
        post.reblog_of = Some(crate::Id(1));
        assert!(validate_new_post(&post, &limits).is_ok());
        post.language = Some("en<script>".into());
        assert_eq!(
            validate_new_post(&post, &limits).unwrap_err().field,
            "language"
        );
    }
}
