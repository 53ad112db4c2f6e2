//! What a user edits about their own account (`PATCH /api/v1/accounts/update_credentials`):
//! the profile's texts and switches, its metadata fields and the defaults for new posts.
//!
//! [`apply`] is the one rule both store backends call: it checks every bound and returns
//! the account as it will be stored, so a bad edit gets the same error on either backend.

use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::model::{Account, Visibility};
use crate::validate::DISPLAY_NAME_MAX_CHARS;

/// Characters in a profile's note (Mastodon: 500).
pub const NOTE_MAX_CHARS: usize = 500;
/// Metadata fields on a profile (Mastodon: 4).
pub const MAX_FIELDS: usize = 4;
/// Characters in a field's name and in its value (Mastodon: 255 each).
pub const FIELD_MAX_CHARS: usize = 255;

/// One name/value pair shown on a profile.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileField {
    pub name: String,
    pub value: String,
}

/// The parts of an account only its owner edits, beyond name, note and the switches kept
/// on [`Account`] itself. Stored with the account; accounts written before it existed
/// read as [`Profile::default`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// Whether the account may be featured (directory, suggestions).
    pub discoverable: bool,
    pub fields: Vec<ProfileField>,
    /// The visibility new posts get when the client names none.
    pub privacy: Visibility,
    /// Whether new posts are marked sensitive by default.
    pub sensitive: bool,
    /// The language new posts get when the client names none.
    pub language: Option<String>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            discoverable: true,
            fields: Vec::new(),
            privacy: Visibility::Public,
            sensitive: false,
            language: None,
        }
    }
}

/// An edit: `None` leaves a part as it is. `language: Some(None)` clears the default
/// language; `fields: Some(vec![])` removes every field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub note: Option<String>,
    pub locked: Option<bool>,
    pub bot: Option<bool>,
    pub discoverable: Option<bool>,
    pub fields: Option<Vec<ProfileField>>,
    pub privacy: Option<Visibility>,
    pub sensitive: Option<bool>,
    pub language: Option<Option<String>>,
}

impl ProfileUpdate {
    /// True if the edit changes nothing whatever it is applied to.
    pub fn is_empty(&self) -> bool {
        *self == ProfileUpdate::default()
    }
}

fn too_long(field: &'static str, max: usize) -> Invalid {
    Invalid::new(field, format!("is too long (at most {max} characters)"))
}

/// A language code as Mastodon takes it: ISO 639-1 or -3, two or three ASCII letters.
pub fn valid_language(code: &str) -> bool {
    (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase())
}

/// `account` with `update` applied, or why the update is refused (nothing applies then).
/// Texts are trimmed of surrounding blanks; fields with both name and value blank are
/// dropped, as Mastodon drops them.
pub fn apply(account: &Account, update: ProfileUpdate) -> Result<Account, Invalid> {
    let mut next = account.clone();
    if let Some(name) = update.display_name {
        let name = name.trim().to_owned();
        if name.chars().count() > DISPLAY_NAME_MAX_CHARS {
            return Err(too_long("display_name", DISPLAY_NAME_MAX_CHARS));
        }
        next.display_name = name;
    }
    if let Some(note) = update.note {
        let note = note.trim().to_owned();
        if note.chars().count() > NOTE_MAX_CHARS {
            return Err(too_long("note", NOTE_MAX_CHARS));
        }
        next.note = note;
    }
    if let Some(fields) = update.fields {
        let fields: Vec<ProfileField> = fields
            .into_iter()
            .map(|f| ProfileField {
                name: f.name.trim().to_owned(),
                value: f.value.trim().to_owned(),
            })
            .filter(|f| !(f.name.is_empty() && f.value.is_empty()))
            .collect();
        if fields.len() > MAX_FIELDS {
            return Err(Invalid::new(
                "fields_attributes",
                format!("has more than {MAX_FIELDS} fields"),
            ));
        }
        for f in &fields {
            if f.name.is_empty() {
                return Err(Invalid::new("fields_attributes", "a field needs a name"));
            }
            if f.name.chars().count() > FIELD_MAX_CHARS || f.value.chars().count() > FIELD_MAX_CHARS
            {
                return Err(too_long("fields_attributes", FIELD_MAX_CHARS));
            }
        }
        next.profile.fields = fields;
    }
    if let Some(privacy) = update.privacy {
        if privacy == Visibility::Direct {
            return Err(Invalid::new(
                "source[privacy]",
                "must be public, unlisted or private",
            ));
        }
        next.profile.privacy = privacy;
    }
    if let Some(language) = update.language {
        let language = language.map(|l| l.trim().to_ascii_lowercase());
        match language.as_deref() {
            None | Some("") => next.profile.language = None,
            Some(code) if valid_language(code) => next.profile.language = language,
            Some(_) => {
                return Err(Invalid::new(
                    "source[language]",
                    "is not an ISO 639 language code",
                ));
            }
        }
    }
    if let Some(locked) = update.locked {
        next.locked = locked;
    }
    if let Some(bot) = update.bot {
        next.bot = bot;
    }
    if let Some(discoverable) = update.discoverable {
        next.profile.discoverable = discoverable;
    }
    if let Some(sensitive) = update.sensitive {
        next.profile.sensitive = sensitive;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Id;
    use crate::model::Role;

    fn alice() -> Account {
        Account::local(
            Id(1 << 16),
            "alice".into(),
            String::new(),
            false,
            Role::User,
        )
    }

    fn field(name: &str, value: &str) -> ProfileField {
        ProfileField {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn an_empty_update_changes_nothing() {
        assert!(ProfileUpdate::default().is_empty());
        assert_eq!(apply(&alice(), ProfileUpdate::default()).unwrap(), alice());
    }

    #[test]
    fn bounds_are_checked_field_by_field() {
        let long = |n: usize| "é".repeat(n);
        let five: Vec<ProfileField> = (0..5).map(|i| field(&i.to_string(), "v")).collect();
        // (update, field refused, or None if accepted)
        let cases: Vec<(ProfileUpdate, Option<&str>)> = vec![
            (
                ProfileUpdate {
                    display_name: Some(long(30)),
                    ..Default::default()
                },
                None,
            ),
            (
                ProfileUpdate {
                    display_name: Some(long(31)),
                    ..Default::default()
                },
                Some("display_name"),
            ),
            (
                ProfileUpdate {
                    note: Some(long(500)),
                    ..Default::default()
                },
                None,
            ),
            (
                ProfileUpdate {
                    note: Some(long(501)),
                    ..Default::default()
                },
                Some("note"),
            ),
            (
                ProfileUpdate {
                    fields: Some(five[..4].to_vec()),
                    ..Default::default()
                },
                None,
            ),
            (
                ProfileUpdate {
                    fields: Some(five.clone()),
                    ..Default::default()
                },
                Some("fields_attributes"),
            ),
            (
                ProfileUpdate {
                    fields: Some(vec![field("", "value without a name")]),
                    ..Default::default()
                },
                Some("fields_attributes"),
            ),
            (
                ProfileUpdate {
                    fields: Some(vec![field("n", &long(256))]),
                    ..Default::default()
                },
                Some("fields_attributes"),
            ),
            (
                ProfileUpdate {
                    privacy: Some(Visibility::Direct),
                    ..Default::default()
                },
                Some("source[privacy]"),
            ),
            (
                ProfileUpdate {
                    privacy: Some(Visibility::Private),
                    ..Default::default()
                },
                None,
            ),
            (
                ProfileUpdate {
                    language: Some(Some("english".into())),
                    ..Default::default()
                },
                Some("source[language]"),
            ),
            (
                ProfileUpdate {
                    language: Some(Some("DE".into())),
                    ..Default::default()
                },
                None,
            ),
        ];
        for (update, refused) in cases {
            let got = apply(&alice(), update.clone());
            assert_eq!(got.err().map(|e| e.field), refused, "{update:?}");
        }
    }

    #[test]
    fn accepted_values_are_normalised() {
        let next = apply(
            &alice(),
            ProfileUpdate {
                display_name: Some("  Alice A.  ".into()),
                locked: Some(true),
                discoverable: Some(false),
                fields: Some(vec![field(" site ", " https://a.example "), field(" ", "")]),
                language: Some(Some("DE".into())),
                sensitive: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(next.display_name, "Alice A.");
        assert!(next.locked);
        assert!(!next.profile.discoverable);
        assert_eq!(
            next.profile.fields,
            vec![field("site", "https://a.example")]
        );
        assert_eq!(next.profile.language.as_deref(), Some("de"));
        assert!(next.profile.sensitive);
        // Clearing the language, emptying the fields.
        let cleared = apply(
            &next,
            ProfileUpdate {
                language: Some(None),
                fields: Some(Vec::new()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(cleared.profile.language, None);
        assert!(cleared.profile.fields.is_empty());
        assert!(cleared.locked, "untouched parts stay");
    }
}
