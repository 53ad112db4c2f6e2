//! Turning posts into Mastodon statuses: authors, reblogged originals, mentions, counts and
//! the viewer's flags, each fetched once per page in a batch, never once per status.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use starling_schema::Id;
use starling_schema::model::{Account, AccountCounts, Post, PostCounts, ViewerFlags, Visibility};
use starling_store::{Store, all_ids};

use crate::Api;
use crate::entities::{self, id_str, iso8601};
use crate::error::ApiResult;

/// Accounts with their counts, rendered once per page.
pub struct Accounts {
    pub by_id: HashMap<Id, (Arc<Account>, AccountCounts)>,
}

impl Accounts {
    pub async fn load(api: &Api, ids: &[Id]) -> ApiResult<Accounts> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let accounts = api.accounts_by_ids(&ids).await?;
        let present: Vec<Id> = accounts.iter().map(|a| a.id).collect();
        let counts = api.store.account_counts(&present).await?;
        Ok(Accounts {
            by_id: accounts
                .into_iter()
                .zip(counts)
                .map(|(a, c)| (a.id, (a, c)))
                .collect(),
        })
    }

    pub fn json(&self, api: &Api, id: Id) -> Option<Value> {
        let (a, c) = self.by_id.get(&id)?;
        serde_json::to_value(entities::account(a, c, api.base_url())).ok()
    }
}

/// Render posts as statuses for `viewer`, keeping their order and dropping any whose
/// author (or reblogged original) is gone.
pub async fn statuses(api: &Api, viewer: Option<Id>, posts: &[Arc<Post>]) -> ApiResult<Vec<Value>> {
    let original_ids: Vec<Id> = posts.iter().filter_map(|p| p.reblog_of).collect();
    let originals: HashMap<Id, Arc<Post>> = api
        .posts_by_ids(&original_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let all: Vec<&Arc<Post>> = posts.iter().chain(originals.values()).collect();
    let mut account_ids: Vec<Id> = Vec::new();
    for p in &all {
        account_ids.push(p.author_id);
        account_ids.extend(&p.mentions);
    }
    let accounts = Accounts::load(api, &account_ids).await?;
    let post_ids: Vec<Id> = all.iter().map(|p| p.id).collect();
    let counts: HashMap<Id, PostCounts> = post_ids
        .iter()
        .copied()
        .zip(api.store.post_counts(&post_ids).await?)
        .collect();
    let flags: HashMap<Id, ViewerFlags> = match viewer {
        Some(v) => post_ids
            .iter()
            .copied()
            .zip(api.store.viewer_flags(v, &post_ids).await?)
            .collect(),
        None => HashMap::new(),
    };
    let render = |p: &Post| -> Option<Value> {
        let author = accounts.json(api, p.author_id)?;
        let c = counts.get(&p.id).copied().unwrap_or_default();
        let f = flags.get(&p.id).copied().unwrap_or_default();
        Some(status_json(api, p, author, &accounts, c, f, viewer))
    };
    let mut out = Vec::with_capacity(posts.len());
    for p in posts {
        let Some(mut json) = render(p) else { continue };
        if let Some(original_id) = p.reblog_of {
            let Some(original) = originals.get(&original_id).and_then(|o| render(o)) else {
                continue;
            };
            if let Some(obj) = json.as_object_mut() {
                obj.insert("reblog".into(), original);
            }
        }
        out.push(json);
    }
    Ok(out)
}

fn status_json(
    api: &Api,
    p: &Post,
    author: Value,
    accounts: &Accounts,
    counts: PostCounts,
    flags: ViewerFlags,
    viewer: Option<Id>,
) -> Value {
    let base = api.base_url();
    let username = author["username"].as_str().unwrap_or_default().to_owned();
    let mentioned: Vec<(&Arc<Account>, Value)> = p
        .mentions
        .iter()
        .filter_map(|id| accounts.by_id.get(id).map(|(a, _)| a))
        .map(|a| {
            let url = format!("{base}/@{}", a.username);
            (a, json!({ "id": a.id.to_string(), "username": a.username, "acct": a.username, "url": url }))
        })
        .collect();
    let content = if p.reblog_of.is_some() {
        String::new()
    } else {
        crate::text::to_html(&p.text, base, |name| {
            let key = starling_schema::validate::username_key(name);
            mentioned
                .iter()
                .find(|(a, _)| starling_schema::validate::username_key(&a.username) == key)
                .map(|(a, _)| format!("{base}/@{}", a.username))
        })
    };
    let tags: Vec<Value> = p
        .hashtags
        .iter()
        .map(|t| json!({ "name": t, "url": format!("{base}/tags/{t}") }))
        .collect();
    let own = viewer == Some(p.author_id);
    json!({
        "id": p.id.to_string(),
        "uri": format!("{base}/users/{username}/statuses/{}", p.id),
        "url": format!("{base}/@{username}/{}", p.id),
        "created_at": iso8601(p.created_at_ms),
        "edited_at": null,
        "account": author,
        "content": content,
        "visibility": p.visibility.as_str(),
        "sensitive": p.sensitive,
        "spoiler_text": p.spoiler_text,
        "media_attachments": [],
        "application": null,
        "mentions": mentioned.into_iter().map(|(_, m)| m).collect::<Vec<_>>(),
        "tags": tags,
        "emojis": [],
        "reblogs_count": counts.reblogs,
        "favourites_count": counts.favourites,
        "replies_count": counts.replies,
        "in_reply_to_id": id_str(p.in_reply_to_id),
        "in_reply_to_account_id": id_str(p.in_reply_to_account_id),
        "reblog": null,
        "poll": null,
        "card": null,
        "language": p.language,
        "favourited": flags.favourited,
        "reblogged": flags.reblogged,
        "muted": false,
        "bookmarked": false,
        "pinned": if own { Value::Bool(false) } else { Value::Null },
        "filtered": [],
    })
}

/// Whether `viewer` may see `post`: public and unlisted posts to anyone, private ones to
/// the author, followers and mentioned accounts, direct ones to the author and mentioned.
/// `follows_author` is whether the viewer follows the post's author.
pub fn visible(post: &Post, viewer: Option<Id>, follows_author: bool) -> bool {
    let involved = viewer.is_some_and(|v| v == post.author_id || post.mentions.contains(&v));
    match post.visibility {
        Visibility::Public | Visibility::Unlisted => true,
        Visibility::Direct => involved,
        Visibility::Private => involved || follows_author,
    }
}

/// Whether `viewer` follows `author`, asked only when the answer matters.
pub async fn follows(api: &Api, viewer: Option<Id>, author: Id) -> ApiResult<bool> {
    Ok(match viewer {
        Some(v) if v != author => api
            .store
            .relationships(v, &[author])
            .await?
            .first()
            .is_some_and(|r| r.following),
        _ => false,
    })
}

/// [`visible`] for one post, looking the follow up only for a private post.
pub async fn can_see(api: &Api, viewer: Option<Id>, post: &Post) -> ApiResult<bool> {
    let follows_author =
        post.visibility == Visibility::Private && follows(api, viewer, post.author_id).await?;
    Ok(visible(post, viewer, follows_author))
}

/// The posts of a list (a timeline page, a thread) that `viewer` may see, in order: those
/// [`visible`] to them, by authors they neither block, are blocked by nor mute, and for a
/// reblog also an original that is live, visible and by such an author. One batch of
/// originals and one of relationships per page.
pub async fn filter_for(
    api: &Api,
    viewer: Option<Id>,
    posts: Vec<Arc<Post>>,
) -> ApiResult<Vec<Arc<Post>>> {
    let original_ids: Vec<Id> = posts.iter().filter_map(|p| p.reblog_of).collect();
    let originals: HashMap<Id, Arc<Post>> = api
        .posts_by_ids(&original_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    // The viewer's own lists (usually empty, three range reads) rather than a lookup per
    // author; follows are asked only for the authors of private posts.
    let mut shunned: HashSet<Id> = HashSet::new();
    let mut following: HashSet<Id> = HashSet::new();
    if let Some(v) = viewer {
        let (blocks, blockers, mutes) = futures::try_join!(
            all_ids(|w| api.store.blocks_of(v, w)),
            all_ids(|w| api.store.blocked_by(v, w)),
            all_ids(|w| api.store.mutes_of(v, w)),
        )?;
        shunned.extend(blocks.into_iter().chain(blockers).chain(mutes));
        let mut private: Vec<Id> = posts
            .iter()
            .map(|p| p.as_ref())
            .chain(originals.values().map(|o| o.as_ref()))
            .filter(|p| p.visibility == Visibility::Private && p.author_id != v)
            .map(|p| p.author_id)
            .collect();
        private.sort_unstable();
        private.dedup();
        for chunk in private.chunks(starling_store::MAX_BATCH) {
            let rels = api.store.relationships(v, chunk).await?;
            following.extend(rels.iter().filter(|r| r.following).map(|r| r.target));
        }
    }
    let sees = |p: &Post| {
        !shunned.contains(&p.author_id) && visible(p, viewer, following.contains(&p.author_id))
    };
    Ok(posts
        .into_iter()
        .filter(|p| {
            sees(p)
                && p.reblog_of
                    .is_none_or(|o| originals.get(&o).is_some_and(|o| sees(o)))
        })
        .collect())
}
