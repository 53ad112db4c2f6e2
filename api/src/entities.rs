//! Mastodon's JSON entities. Every field clients read is present (they dereference many
//! without checks); ids are strings; times are ISO 8601.

use serde::Serialize;
use serde_json::Value;
use starling_schema::Id;
use starling_schema::model::{Account, AccountCounts, Relationship};

/// `2026-11-22T05:48:27.123Z`
pub fn iso8601(unix_ms: u64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
}

/// `2026-11-22`
pub fn date(unix_ms: u64) -> String {
    iso8601(unix_ms)[..10].to_owned()
}

#[derive(Serialize)]
pub struct AccountJson {
    pub id: String,
    pub username: String,
    pub acct: String,
    pub display_name: String,
    pub locked: bool,
    pub bot: bool,
    pub discoverable: bool,
    pub group: bool,
    pub created_at: String,
    pub note: String,
    pub url: String,
    pub uri: String,
    pub avatar: String,
    pub avatar_static: String,
    pub header: String,
    pub header_static: String,
    pub followers_count: u64,
    pub following_count: u64,
    pub statuses_count: u64,
    pub last_status_at: Option<String>,
    pub emojis: Vec<Value>,
    pub fields: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
}

pub fn account(a: &Account, counts: &AccountCounts, base: &str) -> AccountJson {
    let url = format!("{base}/@{}", a.username);
    let avatar = format!("{base}/avatars/original/missing.png");
    let header = format!("{base}/headers/original/missing.png");
    AccountJson {
        id: a.id.to_string(),
        username: a.username.clone(),
        acct: a.username.clone(),
        display_name: a.display_name.clone(),
        locked: a.locked,
        bot: a.bot,
        discoverable: true,
        group: false,
        // Mastodon reports the day an account was made, at midnight.
        created_at: format!("{}T00:00:00.000Z", date(a.created_at_ms)),
        note: if a.note.is_empty() {
            String::new()
        } else {
            crate::text::to_html(&a.note, base, |_| None)
        },
        uri: format!("{base}/users/{}", a.username),
        url,
        avatar_static: avatar.clone(),
        avatar,
        header_static: header.clone(),
        header,
        followers_count: counts.followers,
        following_count: counts.following,
        statuses_count: counts.statuses,
        last_status_at: counts.last_status_at_ms.map(date),
        emojis: Vec::new(),
        fields: Vec::new(),
        source: None,
    }
}

/// `verify_credentials` adds the editable source of the profile.
pub fn credential_account(a: &Account, counts: &AccountCounts, base: &str) -> AccountJson {
    let mut json = account(a, counts, base);
    json.source = Some(serde_json::json!({
        "privacy": "public",
        "sensitive": false,
        "language": null,
        "note": a.note,
        "fields": [],
        "follow_requests_count": 0,
    }));
    json
}

pub fn relationship(r: &Relationship) -> Value {
    serde_json::json!({
        "id": r.target.to_string(),
        "following": r.following,
        "showing_reblogs": r.following,
        "notifying": false,
        "languages": null,
        "followed_by": r.followed_by,
        "blocking": r.blocking,
        "blocked_by": r.blocked_by,
        "muting": r.muting,
        "muting_notifications": r.muting_notifications,
        "requested": false,
        "requested_by": false,
        "domain_blocking": false,
        "endorsed": false,
        "note": "",
    })
}

pub fn id_str(id: Option<Id>) -> Option<String> {
    id.map(|i| i.to_string())
}
