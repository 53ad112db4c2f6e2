//! Turning posts into Mastodon statuses: authors, reblogged originals, mentions, counts and
//! the viewer's flags, each fetched once per page in a batch, never once per status.
//!
//! Render once, serve many: a post's unchanging members (HTML content, mentions, tags) and
//! an account's (names, URLs, note) are rendered to JSON text once and kept in the api
//! node's caches ([`Api::status_members`], [`Api::account_members`]); a page joins those
//! fragments with the counts and viewer flags it reads in one batch per kind.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use starling_schema::Id;
use starling_schema::model::{AccountCounts, Post, PostCounts, ViewerFlags, Visibility};
use starling_schema::policy;
use starling_store::Store;

use crate::Api;
use crate::entities::{self, Json, StatusState};
use crate::error::ApiResult;

/// Accounts with their counts, rendered once per page; suspended accounts are left out.
pub struct Accounts {
    by_id: HashMap<Id, (Arc<str>, AccountCounts)>,
}

impl Accounts {
    pub async fn load(api: &Api, ids: &[Id]) -> ApiResult<Accounts> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        // A suspended account is hidden everywhere: its profile, its posts (and reblogs of
        // them), its notifications and its place in account lists.
        let mut accounts = api.accounts_by_ids(&ids).await?;
        accounts.retain(|a| !a.suspended);
        let present: Vec<Id> = accounts.iter().map(|a| a.id).collect();
        let counts = api.store.account_counts(&present).await?;
        let mut by_id = HashMap::with_capacity(accounts.len());
        for (a, c) in accounts.iter().zip(counts) {
            by_id.insert(a.id, (api.account_members(a).await, c));
        }
        Ok(Accounts { by_id })
    }

    /// Whether the account exists (was loaded).
    pub fn contains(&self, id: Id) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The account as JSON text, if it exists.
    pub fn json(&self, id: Id) -> Option<Json> {
        let mut out = String::new();
        self.write(&mut out, id).then_some(Json(out))
    }

    /// Append the account's JSON to `out`; false if it does not exist.
    fn write(&self, out: &mut String, id: Id) -> bool {
        match self.by_id.get(&id) {
            Some((members, counts)) => {
                entities::write_account(out, members, counts);
                true
            }
            None => false,
        }
    }
}

/// Render posts as statuses for `viewer`, keeping their order and dropping any whose
/// author (or reblogged original) is gone.
pub async fn statuses(api: &Api, viewer: Option<Id>, posts: &[Arc<Post>]) -> ApiResult<Vec<Json>> {
    Ok(statuses_by_id(api, viewer, posts)
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

/// [`statuses`] with the id of each status rendered.
pub async fn statuses_by_id(
    api: &Api,
    viewer: Option<Id>,
    posts: &[Arc<Post>],
) -> ApiResult<Vec<(Id, Json)>> {
    let original_ids: Vec<Id> = posts.iter().filter_map(|p| p.reblog_of).collect();
    let originals: HashMap<Id, Arc<Post>> = if original_ids.is_empty() {
        HashMap::new()
    } else {
        api.posts_by_ids(&original_ids)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect()
    };
    let all: Vec<&Arc<Post>> = posts.iter().chain(originals.values()).collect();
    let mut author_ids: Vec<Id> = all.iter().map(|p| p.author_id).collect();
    author_ids.sort_unstable();
    author_ids.dedup();
    let post_ids: Vec<Id> = all.iter().map(|p| p.id).collect();
    let poll_ids: Vec<Id> = all.iter().filter_map(|p| p.poll_id).collect();
    let (authors, members, counts, flags, muted, polls) = futures::try_join!(
        Accounts::load(api, &author_ids),
        api.status_members_of(&all),
        async { Ok(api.store.post_counts(&post_ids).await?) },
        async {
            Ok(match viewer {
                Some(v) => api.store.viewer_flags(v, &post_ids).await?,
                None => Vec::new(),
            })
        },
        muted_threads(api, viewer, &all),
        polls_for(api, viewer, &poll_ids),
    )?;
    let counts: HashMap<Id, PostCounts> = post_ids.iter().copied().zip(counts).collect();
    let flags: HashMap<Id, ViewerFlags> = post_ids.iter().copied().zip(flags).collect();
    let render = |p: &Post, reblog: Option<&str>| -> Option<Json> {
        let mut account = String::new();
        if !authors.write(&mut account, p.author_id) {
            return None;
        }
        let members = members.get(&p.id)?;
        let mut out = String::with_capacity(members.len() + account.len() + 256);
        entities::write_status(
            &mut out,
            members,
            &account,
            &StatusState {
                counts: counts.get(&p.id).copied().unwrap_or_default(),
                flags: flags.get(&p.id).copied().unwrap_or_default(),
                own: viewer == Some(p.author_id),
                muted: muted.contains(&p.id),
                reblog,
                poll: p
                    .poll_id
                    .and_then(|id| polls.get(&id))
                    .map(|j| j.0.as_str()),
            },
        );
        Some(Json(out))
    };
    let mut out = Vec::with_capacity(posts.len());
    for p in posts {
        let json = match p.reblog_of {
            None => render(p, None),
            Some(original_id) => {
                let Some(original) = originals.get(&original_id).and_then(|o| render(o, None))
                else {
                    continue;
                };
                render(p, Some(&original.0))
            }
        };
        if let Some(json) = json {
            out.push((p.id, json));
        }
    }
    Ok(out)
}

/// The polls `ids` as `viewer` sees them (their results and the viewer's own votes), by
/// poll id: one batch of polls and one of votes per page.
pub async fn polls_for(api: &Api, viewer: Option<Id>, ids: &[Id]) -> ApiResult<HashMap<Id, Json>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let (polls, votes) = futures::try_join!(
        async { Ok::<_, crate::error::ApiError>(api.store.polls_by_ids(&ids).await?) },
        async {
            Ok(match viewer {
                Some(v) => api.store.poll_votes(v, &ids).await?,
                None => Vec::new(),
            })
        },
    )?;
    let votes: HashMap<Id, Vec<u32>> = ids
        .iter()
        .copied()
        .zip(votes)
        .filter_map(|(id, v)| v.map(|v| (id, v)))
        .collect();
    let now = starling_schema::ids::now_ms();
    Ok(polls
        .iter()
        .map(|p| {
            let own = votes.get(&p.id).map(Vec::as_slice);
            let json = entities::poll(p, own, viewer == Some(p.author_id), now);
            (p.id, json)
        })
        .collect())
}

/// The root of the thread `post` belongs to, walking up through the post cache.
pub async fn thread_root(api: &Api, post: &Post) -> ApiResult<Id> {
    starling_schema::thread::root_of(post.id, post.in_reply_to_id, |id| async move {
        Ok(api
            .posts_by_ids(&[id])
            .await?
            .first()
            .and_then(|p| p.in_reply_to_id))
    })
    .await
}

/// Which of `posts` belong to a thread `viewer` muted (one store read for the page).
async fn muted_threads(
    api: &Api,
    viewer: Option<Id>,
    posts: &[&Arc<Post>],
) -> ApiResult<HashSet<Id>> {
    let Some(viewer) = viewer else {
        return Ok(HashSet::new());
    };
    let mut roots = Vec::with_capacity(posts.len());
    for p in posts {
        roots.push(thread_root(api, p).await?);
    }
    let muted = api.store.muted_conversations(viewer, &roots).await?;
    Ok(posts
        .iter()
        .zip(muted)
        .filter_map(|(p, m)| m.then_some(p.id))
        .collect())
}

/// Whether `viewer` may see `post`: public and unlisted posts to anyone, private ones to
/// the author, followers and mentioned accounts, direct ones to the author and mentioned.
/// `follows_author` is whether the viewer follows the post's author.
pub fn visible(post: &Post, viewer: Option<Id>, follows_author: bool) -> bool {
    policy::audience_includes(post, viewer, follows_author)
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

/// [`visible`] for one post read or acted on directly (shown, replied to, favourited,
/// reblogged): never when its author blocks the viewer (Mastodon's `StatusPolicy`), who gets
/// a 404 as if it did not exist. One relationship lookup, for a signed-in viewer only.
pub async fn can_see(api: &Api, viewer: Option<Id>, post: &Post) -> ApiResult<bool> {
    let relationship = match viewer {
        Some(v) if v != post.author_id => api
            .store
            .relationships(v, &[post.author_id])
            .await?
            .into_iter()
            .next(),
        _ => None,
    };
    let relation = policy::Relation {
        follows_author: relationship.as_ref().is_some_and(|r| r.following),
        author_blocks_viewer: relationship.as_ref().is_some_and(|r| r.blocked_by),
        viewer_blocks_author: relationship.as_ref().is_some_and(|r| r.blocking),
        viewer_mutes_author: relationship.as_ref().is_some_and(|r| r.muting),
        author_suspended: false,
    };
    Ok(policy::may_see(
        post,
        viewer,
        &relation,
        policy::Surface::Direct,
    ))
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
    // The viewer's own lists, kept warm by the api node (blocks and mutes change them);
    // follows are asked only for the authors of private posts.
    let mut shunned: Arc<HashSet<Id>> = Arc::default();
    let mut following: HashSet<Id> = HashSet::new();
    if let Some(v) = viewer {
        shunned = api.shunned(v).await?;
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
        let rel = policy::Relation::in_feed(
            following.contains(&p.author_id),
            shunned.contains(&p.author_id),
        );
        policy::may_see(p, viewer, &rel, policy::Surface::Feed)
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

/// The posts of a list that carry media (`only_media`), in order.
pub async fn only_media(api: &Api, posts: Vec<Arc<Post>>) -> ApiResult<Vec<Arc<Post>>> {
    let ids: Vec<Id> = posts
        .iter()
        .filter(|p| p.reblog_of.is_none())
        .map(|p| p.id)
        .collect();
    let with_media = api.media_of_posts(&ids).await?;
    Ok(posts
        .into_iter()
        .filter(|p| with_media.contains_key(&p.id))
        .collect())
}
