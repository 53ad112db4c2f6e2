//! Mastodon's JSON entities. Every field clients read is present (they dereference many
//! without checks); ids are strings; times are ISO 8601.
//!
//! Statuses and accounts are rendered in two parts: what never changes (a post's HTML
//! content, mentions and tags; an account's names, URLs and note) as JSON object members
//! rendered once and cached by the api node, and what does (counts, the viewer's flags)
//! written around them on every read. [`Json`] is JSON text already rendered, so a page
//! joins fragments instead of building and serialising a tree.

use std::fmt::Write as _;

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::Serialize;
use starling_schema::Id;
use starling_schema::discovery::DayUse;
use starling_schema::model::{Account, AccountCounts, Post, PostCounts, Relationship, ViewerFlags};

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

/// JSON text, already rendered (an object, an array, a string...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Json(pub String);

impl Json {
    /// Any serialisable value. Plain data with string keys cannot fail to serialise; if a
    /// value ever did, it would render as `null` rather than as broken JSON.
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Json {
        Json(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
    }

    pub fn null() -> Json {
        Json("null".into())
    }

    /// `[a,b,...]`
    pub fn array<'a>(items: impl IntoIterator<Item = &'a Json>) -> Json {
        let mut out = String::from("[");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&item.0);
        }
        out.push(']');
        Json(out)
    }

    /// `{"key":value,...}`; keys are plain identifiers, written as they are.
    pub fn object<'a>(members: impl IntoIterator<Item = (&'a str, &'a Json)>) -> Json {
        let mut out = String::from("{");
        for (i, (key, value)) in members.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{key}\":{}", value.0);
        }
        out.push('}');
        Json(out)
    }

    /// This object with one more member (`key` is a plain identifier).
    pub fn with_member(mut self, key: &str, value: &Json) -> Json {
        if self.0.ends_with('}') {
            self.0.pop();
            let sep = if self.0.ends_with('{') { "" } else { "," };
            let _ = write!(self.0, "{sep}\"{key}\":{}}}", value.0);
        }
        self
    }

    /// The value parsed back into a tree (tests and rare paths only).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }

    /// A 200 answer with this body.
    pub fn response(self) -> HttpResponse {
        let mut res = HttpResponse::Ok();
        Self::respond(&mut res, self)
    }

    /// `res` answered with this body.
    pub fn respond(res: &mut actix_web::HttpResponseBuilder, body: Json) -> HttpResponse {
        res.insert_header((header::CONTENT_TYPE, "application/json"))
            .body(body.0)
    }
}

/// What never changes about an account, as JSON object members without the braces.
#[derive(Serialize)]
struct AccountStatic<'a> {
    id: String,
    username: &'a str,
    acct: &'a str,
    display_name: &'a str,
    locked: bool,
    bot: bool,
    discoverable: bool,
    group: bool,
    created_at: String,
    note: String,
    url: String,
    uri: String,
    avatar: &'a str,
    avatar_static: &'a str,
    header: &'a str,
    header_static: &'a str,
    emojis: [(); 0],
    fields: Vec<FieldJson>,
}

/// A profile field as shown (`value` is HTML); `verified_at` is always null here.
#[derive(Serialize)]
struct FieldJson {
    name: String,
    value: String,
    verified_at: Option<()>,
}

/// A profile field as its owner typed it (`source.fields`).
#[derive(Serialize)]
struct FieldSource<'a> {
    name: &'a str,
    value: &'a str,
    verified_at: Option<()>,
}

/// An account's members that change only when it is edited (render once, cache by id;
/// an edit drops the cached copy on every node). Without an avatar or header of its own
/// it points at the default images Starling serves.
pub fn account_members(
    a: &Account,
    base: &str,
    images: &starling_schema::media::ProfileImages,
    media_base: &str,
) -> String {
    let image = |key: &Option<String>, default: &str| match key {
        Some(k) => format!("{media_base}/{k}"),
        None => format!("{base}/{default}"),
    };
    let avatar = image(&images.avatar_key, "avatars/original/missing.png");
    let header = image(&images.header_key, "headers/original/missing.png");
    members(&AccountStatic {
        id: a.id.to_string(),
        username: &a.username,
        acct: &a.username,
        display_name: &a.display_name,
        locked: a.locked,
        bot: a.bot,
        discoverable: a.profile.discoverable,
        group: false,
        // Mastodon reports the day an account was made, at midnight.
        created_at: format!("{}T00:00:00.000Z", date(a.created_at_ms)),
        note: if a.note.is_empty() {
            String::new()
        } else {
            crate::text::to_html(&a.note, base, |_| None)
        },
        url: format!("{base}/@{}", a.username),
        uri: format!("{base}/users/{}", a.username),
        avatar: &avatar,
        avatar_static: &avatar,
        header: &header,
        header_static: &header,
        emojis: [],
        fields: a
            .profile
            .fields
            .iter()
            .map(|f| FieldJson {
                name: crate::text::escape(&f.name),
                value: field_html(&f.value),
                verified_at: None,
            })
            .collect(),
    })
}

/// A profile field's value as HTML: escaped text, its links as anchors.
fn field_html(value: &str) -> String {
    use crate::text::{Segment, escape, segments};
    segments(value)
        .into_iter()
        .map(|seg| match seg {
            Segment::Link(url) => format!(
                "<a href=\"{0}\" rel=\"nofollow noopener noreferrer me\" target=\"_blank\">{0}</a>",
                escape(url)
            ),
            Segment::Text(t) => escape(t),
            Segment::Mention(name) => format!("@{}", escape(name)),
            Segment::Hashtag(tag) => format!("#{}", escape(tag)),
        })
        .collect()
}

/// A value's JSON object members, without the braces.
fn members<T: Serialize>(value: &T) -> String {
    let mut s = Json::of(value).0;
    if s.starts_with('{') && s.ends_with('}') {
        s.pop();
        s.remove(0);
    }
    s
}

/// Append an Account: its cached members and its counts.
pub fn write_account(out: &mut String, members: &str, counts: &AccountCounts) {
    out.push('{');
    out.push_str(members);
    let _ = write!(
        out,
        ",\"followers_count\":{},\"following_count\":{},\"statuses_count\":{},\"last_status_at\":",
        counts.followers, counts.following, counts.statuses
    );
    match counts.last_status_at_ms {
        Some(ms) => {
            let _ = write!(out, "\"{}\"", date(ms));
        }
        None => out.push_str("null"),
    }
    out.push('}');
}

/// An Account from its rendered members (see `Api::account_members`) and counts.
pub fn account(members: &str, counts: &AccountCounts) -> Json {
    let mut out = String::new();
    write_account(&mut out, members, counts);
    Json(out)
}

#[derive(Serialize)]
struct Source<'a> {
    privacy: &'static str,
    sensitive: bool,
    language: Option<&'a str>,
    note: &'a str,
    fields: Vec<FieldSource<'a>>,
    follow_requests_count: u64,
}

/// `verify_credentials` adds the editable source of the profile and how many follow
/// requests wait.
pub fn credential_account(
    members: &str,
    a: &Account,
    counts: &AccountCounts,
    follow_requests: u64,
) -> Json {
    let p = &a.profile;
    account(members, counts).with_member(
        "source",
        &Json::of(&Source {
            privacy: p.privacy.as_str(),
            sensitive: p.sensitive,
            language: p.language.as_deref(),
            note: &a.note,
            fields: p
                .fields
                .iter()
                .map(|f| FieldSource {
                    name: &f.name,
                    value: &f.value,
                    verified_at: None,
                })
                .collect(),
            follow_requests_count: follow_requests,
        }),
    )
}

/// A status's mention of an account.
#[derive(Serialize)]
pub struct MentionJson<'a> {
    pub id: String,
    pub username: &'a str,
    pub acct: &'a str,
    pub url: String,
}

#[derive(Serialize)]
struct TagJson<'a> {
    name: &'a str,
    url: String,
}

/// What never changes about a status (everything but its account, counts, the viewer's
/// flags and the reblogged original).
#[derive(Serialize)]
struct StatusStatic<'a> {
    id: String,
    uri: String,
    url: String,
    created_at: String,
    edited_at: Option<String>,
    content: String,
    visibility: &'static str,
    sensitive: bool,
    spoiler_text: &'a str,
    media_attachments: Vec<AttachmentJson<'a>>,
    application: Option<()>,
    mentions: &'a [MentionJson<'a>],
    tags: Vec<TagJson<'a>>,
    emojis: [(); 0],
    in_reply_to_id: Option<String>,
    in_reply_to_account_id: Option<String>,
    card: Option<()>,
    language: Option<&'a str>,
}

/// Where media files are served from: `media.public_url`, or Starling itself.
pub fn media_base(settings: &starling_schema::settings::Settings) -> String {
    let public = settings.media.public_url.trim_end_matches('/');
    if public.is_empty() {
        format!(
            "{}/system/media",
            settings.api.public_url.trim_end_matches('/')
        )
    } else {
        public.to_owned()
    }
}

#[derive(Serialize)]
struct SizeJson {
    width: u32,
    height: u32,
    size: String,
    aspect: f64,
}

impl SizeJson {
    fn of(d: Option<starling_schema::media::Dimensions>) -> Option<SizeJson> {
        d.map(|d| SizeJson {
            width: d.width,
            height: d.height,
            size: format!("{}x{}", d.width, d.height),
            aspect: starling_schema::media::aspect(d),
        })
    }
}

#[derive(Serialize)]
struct MetaJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    original: Option<SizeJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    small: Option<SizeJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    focus: Option<starling_schema::media::Focus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
}

/// Mastodon's MediaAttachment entity.
#[derive(Serialize)]
pub struct AttachmentJson<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    url: Option<String>,
    preview_url: Option<String>,
    remote_url: Option<()>,
    preview_remote_url: Option<()>,
    text_url: Option<()>,
    meta: MetaJson,
    description: Option<&'a str>,
    blurhash: Option<&'a str>,
}

/// An upload as the Attachment entity; `url` is null until it is processed.
pub fn attachment<'a>(
    m: &'a starling_schema::media::MediaAttachment,
    media_base: &str,
) -> AttachmentJson<'a> {
    let url = |k: &Option<String>| k.as_ref().map(|k| format!("{media_base}/{k}"));
    AttachmentJson {
        id: m.id.to_string(),
        kind: m.kind.as_str(),
        url: url(&m.file_key),
        preview_url: url(&m.preview_key).or_else(|| url(&m.file_key)),
        remote_url: None,
        preview_remote_url: None,
        text_url: None,
        meta: MetaJson {
            original: SizeJson::of(m.meta.original),
            small: SizeJson::of(m.meta.small),
            focus: m.focus,
            duration: m.meta.duration_secs,
        },
        description: m.description.as_deref(),
        blurhash: m.blurhash.as_deref(),
    }
}

/// A post's members that never change (render once, cache by id). `author` is its
/// author's username; `mentioned` the accounts it mentions that still exist, in order;
/// `media` its attachments in order (they cannot change once attached).
pub fn status_members(
    p: &Post,
    author: &str,
    mentioned: &[&Account],
    media: &[starling_schema::media::MediaAttachment],
    base: &str,
    media_base: &str,
) -> String {
    let mentions: Vec<MentionJson> = mentioned
        .iter()
        .map(|a| MentionJson {
            id: a.id.to_string(),
            username: &a.username,
            acct: &a.username,
            url: format!("{base}/@{}", a.username),
        })
        .collect();
    let content = if p.reblog_of.is_some() {
        String::new()
    } else {
        content_html(&p.text, mentioned, base)
    };
    members(&StatusStatic {
        id: p.id.to_string(),
        uri: format!("{base}/users/{author}/statuses/{}", p.id),
        url: format!("{base}/@{author}/{}", p.id),
        created_at: iso8601(p.created_at_ms),
        edited_at: p.edited_at_ms.map(iso8601),
        content,
        visibility: p.visibility.as_str(),
        sensitive: p.sensitive,
        spoiler_text: &p.spoiler_text,
        media_attachments: media.iter().map(|m| attachment(m, media_base)).collect(),
        application: None,
        mentions: &mentions,
        tags: p
            .hashtags
            .iter()
            .map(|t| TagJson {
                name: t,
                url: format!("{base}/tags/{t}"),
            })
            .collect(),
        emojis: [],
        in_reply_to_id: id_str(p.in_reply_to_id),
        in_reply_to_account_id: id_str(p.in_reply_to_account_id),
        card: None,
        language: p.language.as_deref(),
    })
}

/// A post's text as HTML, its mentions of `mentioned` linked.
pub fn content_html(text: &str, mentioned: &[&Account], base: &str) -> String {
    crate::text::to_html(text, base, |name| {
        let key = starling_schema::validate::username_key(name);
        mentioned
            .iter()
            .find(|a| starling_schema::validate::username_key(&a.username) == key)
            .map(|a| format!("{base}/@{}", a.username))
    })
}

#[derive(Serialize)]
struct PollOptionJson<'a> {
    title: &'a str,
    votes_count: Option<u64>,
}

/// Mastodon's `Poll`, for one viewer.
#[derive(Serialize)]
struct PollJson<'a> {
    id: String,
    expires_at: String,
    expired: bool,
    multiple: bool,
    votes_count: u64,
    voters_count: u64,
    voted: bool,
    own_votes: &'a [u32],
    options: Vec<PollOptionJson<'a>>,
    emojis: [(); 0],
}

/// A poll as `viewer` sees it at `now_ms`: `own_votes` are the viewer's choices (`None`
/// if they did not vote); with `hide_totals`, per-option counts stay null until it ends,
/// except to its author.
pub fn poll(
    p: &starling_schema::polls::Poll,
    own_votes: Option<&[u32]>,
    is_author: bool,
    now_ms: u64,
) -> Json {
    let expired = p.expired(now_ms);
    let show = !p.hide_totals || expired || is_author;
    let votes = p.votes_per_option();
    Json::of(&PollJson {
        id: p.id.to_string(),
        expires_at: iso8601(p.expires_at_ms),
        expired,
        multiple: p.multiple,
        votes_count: p.votes_count(),
        voters_count: p.voters,
        voted: own_votes.is_some() || is_author,
        own_votes: own_votes.unwrap_or(&[]),
        options: p
            .options
            .iter()
            .zip(votes)
            .map(|(title, n)| PollOptionJson {
                title,
                votes_count: show.then_some(n),
            })
            .collect(),
        emojis: [],
    })
}

#[derive(Serialize)]
struct EditPollOption<'a> {
    title: &'a str,
}

#[derive(Serialize)]
struct EditPoll<'a> {
    options: Vec<EditPollOption<'a>>,
}

/// What a version of a post said (Mastodon's `StatusEdit`), without its account.
#[derive(Serialize)]
struct StatusEditJson<'a> {
    content: String,
    spoiler_text: &'a str,
    sensitive: bool,
    created_at: String,
    poll: Option<EditPoll<'a>>,
    media_attachments: Vec<AttachmentJson<'a>>,
    emojis: [(); 0],
}

/// One version of a post's history (Mastodon's `StatusEdit`), with its author rendered.
pub fn status_edit(
    v: &starling_schema::polls::PostVersion,
    account: &Json,
    mentioned: &[&Account],
    media: &[&starling_schema::media::MediaAttachment],
    base: &str,
    media_base: &str,
) -> Json {
    Json::of(&StatusEditJson {
        content: content_html(&v.text, mentioned, base),
        spoiler_text: &v.spoiler_text,
        sensitive: v.sensitive,
        created_at: iso8601(v.created_at_ms),
        poll: v.poll_options.as_ref().map(|options| EditPoll {
            options: options
                .iter()
                .map(|title| EditPollOption { title })
                .collect(),
        }),
        media_attachments: media.iter().map(|m| attachment(m, media_base)).collect(),
        emojis: [],
    })
    .with_member("account", account)
}

/// The text of a post as its author wrote it (Mastodon's `StatusSource`).
pub fn status_source(p: &Post) -> Json {
    #[derive(Serialize)]
    struct Source<'a> {
        id: String,
        text: &'a str,
        spoiler_text: &'a str,
    }
    Json::of(&Source {
        id: p.id.to_string(),
        text: &p.text,
        spoiler_text: &p.spoiler_text,
    })
}

/// A list (Mastodon's `List`).
#[derive(Serialize)]
pub struct ListJson<'a> {
    pub id: String,
    pub title: &'a str,
    pub replies_policy: &'static str,
    pub exclusive: bool,
}

pub fn list(l: &starling_schema::feeds::List) -> Json {
    Json::of(&ListJson {
        id: l.id.to_string(),
        title: &l.title,
        replies_policy: l.replies_policy.as_str(),
        exclusive: l.exclusive,
    })
}

/// One day of a hashtag's or link's use (Mastodon's `history` entries: strings).
#[derive(Serialize)]
pub struct HistoryJson {
    pub day: String,
    pub accounts: String,
    pub uses: String,
}

pub fn history(days: &[DayUse]) -> Vec<HistoryJson> {
    days.iter()
        .map(|d| HistoryJson {
            day: d.day.to_string(),
            accounts: d.accounts.to_string(),
            uses: d.uses.to_string(),
        })
        .collect()
}

/// A hashtag on its own (Mastodon's `Tag`), with its last 7 days of use, today first.
#[derive(Serialize)]
pub struct FollowedTagJson<'a> {
    pub name: &'a str,
    pub url: String,
    pub history: Vec<HistoryJson>,
    pub following: bool,
}

pub fn tag(base_url: &str, name: &str, following: bool, days: &[DayUse]) -> Json {
    Json::of(&FollowedTagJson {
        name,
        url: format!("{base_url}/tags/{name}"),
        history: history(days),
        following,
    })
}

/// What a status says for one viewer at one moment.
pub struct StatusState<'a> {
    pub counts: PostCounts,
    pub flags: ViewerFlags,
    /// Whether the viewer wrote it (`pinned` is `false` then, `null` otherwise).
    pub own: bool,
    /// Whether the viewer muted its thread.
    pub muted: bool,
    /// The reblogged original, rendered.
    pub reblog: Option<&'a str>,
    /// Its poll as the viewer sees it, rendered.
    pub poll: Option<&'a str>,
}

/// Append a Status: its cached members, its author (already rendered), counts and flags.
pub fn write_status(out: &mut String, members: &str, account: &str, s: &StatusState<'_>) {
    out.push('{');
    out.push_str(members);
    out.push_str(",\"account\":");
    out.push_str(account);
    let _ = write!(
        out,
        ",\"reblogs_count\":{},\"favourites_count\":{},\"replies_count\":{},\"favourited\":{},\"reblogged\":{},\"muted\":{},\"bookmarked\":{},\"pinned\":{},\"filtered\":[],\"poll\":{},\"reblog\":{}}}",
        s.counts.reblogs,
        s.counts.favourites,
        s.counts.replies,
        s.flags.favourited,
        s.flags.reblogged,
        s.muted,
        s.flags.bookmarked,
        match (s.own, s.flags.pinned) {
            (true, true) => "true",
            (true, false) => "false",
            (false, _) => "null",
        },
        s.poll.unwrap_or("null"),
        s.reblog.unwrap_or("null"),
    );
}

#[derive(Serialize)]
struct RelationshipJson {
    id: String,
    following: bool,
    showing_reblogs: bool,
    notifying: bool,
    languages: Option<()>,
    followed_by: bool,
    blocking: bool,
    blocked_by: bool,
    muting: bool,
    muting_notifications: bool,
    requested: bool,
    requested_by: bool,
    domain_blocking: bool,
    endorsed: bool,
    note: &'static str,
}

pub fn relationship(r: &Relationship) -> Json {
    Json::of(&RelationshipJson {
        id: r.target.to_string(),
        following: r.following,
        showing_reblogs: r.following,
        notifying: false,
        languages: None,
        followed_by: r.followed_by,
        blocking: r.blocking,
        blocked_by: r.blocked_by,
        muting: r.muting,
        muting_notifications: r.muting_notifications,
        requested: r.requested,
        requested_by: false,
        domain_blocking: false,
        endorsed: false,
        note: "",
    })
}

pub fn id_str(id: Option<Id>) -> Option<String> {
    id.map(|i| i.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_join_into_valid_json() {
        let obj = Json::object([("a", &Json::of(&1)), ("b", &Json::array([&Json::null()]))]);
        assert_eq!(obj.0, r#"{"a":1,"b":[null]}"#);
        assert_eq!(
            obj.with_member("c", &Json::of("x")).0,
            r#"{"a":1,"b":[null],"c":"x"}"#
        );
        assert_eq!(
            Json("{}".into()).with_member("c", &Json::of(&true)).0,
            r#"{"c":true}"#
        );
        assert_eq!(Json::array([]).0, "[]");
    }
}
