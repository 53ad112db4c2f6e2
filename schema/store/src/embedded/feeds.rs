//! Lists and marks (bookmarks, favourites, pins) on the embedded store.
//!
//! Tables (keys as in the parent module, big-endian ids):
//! - `lists`: owner ++ list → List
//! - `list_members`: list ++ member → ()
//! - `member_lists`: member ++ owner ++ list → ListRef (fan-out reads a follower page's
//!   range of owners)
//! - `marks`: kind ++ account ++ mark id → post id
//! - `mark_keys`: kind ++ account ++ post → mark id
//! - `tag_follows`: account ++ tag → (); `tag_followers`: tag ++ 0x00 ++ account → ()

use fjall::Readable;
use starling_schema::feeds::{
    List, ListDraft, ListRef, MAX_FOLLOWED_TAGS, MAX_LIST_MEMBERS, MAX_LISTS, Mark, MarkKind,
    check_tag, may_pin,
};
use starling_schema::model::{Page, Window};
use starling_schema::{Id, Invalid};

use super::{
    Ctx, EmbeddedStore, Inner, Tables, Tx, decode, exists, get, k1, k2, live_post, put,
    scan_prefixed, tag_prefix,
};
use crate::{Result, StoreError, check};

fn k3(a: Id, b: Id, c: Id) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&k2(a, b));
    key[16..].copy_from_slice(&c.to_be_bytes());
    key
}

fn mark_prefix(kind: MarkKind, account: Id) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = kind.byte();
    key[1..].copy_from_slice(&k1(account));
    key
}

fn mark_key(kind: MarkKind, account: Id, id: Id) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[..9].copy_from_slice(&mark_prefix(kind, account));
    key[9..].copy_from_slice(&k1(id));
    key
}

fn id_value(bytes: &[u8], context: &'static str) -> Result<Id> {
    Id::from_be_slice(bytes).ok_or_else(|| StoreError::backend(context, "short value"))
}

/// Whether `account` kept `post` as `kind`.
pub(super) fn marked(
    r: &impl Readable,
    t: &Tables,
    kind: MarkKind,
    account: Id,
    post: Id,
) -> Result<bool> {
    exists(r, &t.mark_keys, mark_key(kind, account, post))
}

/// Keep `post` as `kind` of `account`'s under a new mark id; false if kept already.
pub(super) fn put_mark(
    inner: &Inner,
    tx: &mut Tx<'_>,
    kind: MarkKind,
    account: Id,
    post: Id,
) -> Result<bool> {
    let t = &inner.t;
    if marked(tx, t, kind, account, post)? {
        return Ok(false);
    }
    let id = inner.mint()?;
    tx.insert(&t.marks, mark_key(kind, account, id), k1(post));
    tx.insert(&t.mark_keys, mark_key(kind, account, post), k1(id));
    Ok(true)
}

/// Forget `post` as `kind` of `account`'s; false if it was not kept.
pub(super) fn drop_mark(
    tx: &mut Tx<'_>,
    t: &Tables,
    kind: MarkKind,
    account: Id,
    post: Id,
) -> Result<bool> {
    let key = mark_key(kind, account, post);
    let Some(id) = tx.get(&t.mark_keys, key).ctx("reading a mark")? else {
        return Ok(false);
    };
    let id = id_value(&id, "reading a mark")?;
    tx.remove(&t.marks, mark_key(kind, account, id));
    tx.remove(&t.mark_keys, key);
    Ok(true)
}

/// `followee` out of every list of `follower`'s (an unfollow or a block).
pub(super) fn leave_lists(tx: &mut Tx<'_>, t: &Tables, follower: Id, followee: Id) -> Result<()> {
    let keys: Vec<Vec<u8>> = tx
        .prefix(&t.member_lists, k2(followee, follower))
        .map(|row| row.key().ctx("listing memberships").map(|k| k.to_vec()))
        .collect::<Result<_>>()?;
    for key in keys {
        let list = id_value(key.get(16..).unwrap_or_default(), "listing memberships")?;
        tx.remove(&t.list_members, k2(list, followee));
        tx.remove(&t.member_lists, key.as_slice());
    }
    Ok(())
}

fn tag_follow_key(account: Id, tag: &str) -> Vec<u8> {
    [k1(account).as_slice(), tag.as_bytes()].concat()
}

fn tag_follower_key(tag: &str, account: Id) -> Vec<u8> {
    [tag_prefix(tag), k1(account).to_vec()].concat()
}

/// Every hashtag `account` follows, unfollowed (the account is deleted).
pub(super) fn unfollow_all_tags(tx: &mut Tx<'_>, t: &Tables, account: Id) -> Result<()> {
    let keys: Vec<Vec<u8>> = tx
        .prefix(&t.tag_follows, k1(account))
        .map(|row| row.key().ctx("listing followed tags").map(|k| k.to_vec()))
        .collect::<Result<_>>()?;
    for key in keys {
        let tag = String::from_utf8_lossy(key.get(8..).unwrap_or_default()).into_owned();
        tx.remove(&t.tag_followers, tag_follower_key(&tag, account));
        tx.remove(&t.tag_follows, key.as_slice());
    }
    Ok(())
}

fn owned(r: &impl Readable, t: &Tables, owner: Id, id: Id) -> Result<List> {
    get(r, &t.lists, k2(owner, id))?.ok_or(StoreError::NotFound("list"))
}

fn members(r: &impl Readable, t: &Tables, list: Id) -> Result<Vec<Id>> {
    r.prefix(&t.list_members, k1(list))
        .map(|row| {
            let key = row.key().ctx("listing list members")?;
            id_value(key.get(8..).unwrap_or_default(), "listing list members")
        })
        .collect()
}

impl EmbeddedStore {
    pub(super) async fn new_list(&self, owner: Id, draft: ListDraft) -> Result<List> {
        draft.validate()?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            super::require_account(tx, t, owner)?;
            if tx.prefix(&t.lists, k1(owner)).count() >= MAX_LISTS {
                return Err(
                    Invalid::new("lists", format!("at most {MAX_LISTS} per account")).into(),
                );
            }
            let list = draft.build(inner.mint()?, owner);
            put(tx, &t.lists, k2(owner, list.id), &list)?;
            Ok(list)
        })
        .await
    }

    pub(super) async fn change_list(&self, owner: Id, id: Id, draft: ListDraft) -> Result<List> {
        draft.validate()?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            owned(tx, t, owner, id)?;
            let list = draft.build(id, owner);
            put(tx, &t.lists, k2(owner, id), &list)?;
            let entry = ListRef::from(&list);
            for member in members(tx, t, id)? {
                put(tx, &t.member_lists, k3(member, owner, id), &entry)?;
            }
            Ok(list)
        })
        .await
    }

    pub(super) async fn drop_list(&self, owner: Id, id: Id) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            if !exists(tx, &t.lists, k2(owner, id))? {
                return Ok(false);
            }
            for member in members(tx, t, id)? {
                tx.remove(&t.list_members, k2(id, member));
                tx.remove(&t.member_lists, k3(member, owner, id));
            }
            tx.remove(&t.lists, k2(owner, id));
            Ok(true)
        })
        .await
    }

    pub(super) fn owned_lists(&self, owner: Id) -> Result<Vec<List>> {
        self.snapshot()
            .prefix(&self.inner.t.lists, k1(owner))
            .map(|row| {
                let (_, value) = row.into_inner().ctx("listing lists")?;
                decode(&value)
            })
            .collect()
    }

    pub(super) async fn join_list(&self, owner: Id, id: Id, accounts: Vec<Id>) -> Result<()> {
        check::batch(accounts.len())?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            let list = owned(tx, t, owner, id)?;
            for account in &accounts {
                if !exists(tx, &t.following, k2(owner, *account))? {
                    return Err(Invalid::new(
                        "account_ids",
                        format!("account {account} is not followed by the list's owner"),
                    )
                    .into());
                }
            }
            let entry = ListRef::from(&list);
            let mut count = tx.prefix(&t.list_members, k1(id)).count();
            for account in accounts {
                if exists(tx, &t.list_members, k2(id, account))? {
                    continue;
                }
                count += 1;
                if count > MAX_LIST_MEMBERS {
                    return Err(Invalid::new(
                        "account_ids",
                        format!("a list holds at most {MAX_LIST_MEMBERS} accounts"),
                    )
                    .into());
                }
                tx.insert(&t.list_members, k2(id, account), []);
                put(tx, &t.member_lists, k3(account, owner, id), &entry)?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn leave_list(&self, owner: Id, id: Id, accounts: Vec<Id>) -> Result<()> {
        check::batch(accounts.len())?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            owned(tx, t, owner, id)?;
            for account in accounts {
                tx.remove(&t.list_members, k2(id, account));
                tx.remove(&t.member_lists, k3(account, owner, id));
            }
            Ok(())
        })
        .await
    }

    pub(super) fn member_of(
        &self,
        member: Id,
        after: Option<Id>,
        through: Option<Id>,
    ) -> Result<Vec<ListRef>> {
        let lo = match after {
            None => 0,
            Some(a) => match a.0.checked_add(1) {
                Some(lo) => lo,
                None => return Ok(Vec::new()),
            },
        };
        let hi = through.map_or(u64::MAX, |t| t.0);
        if lo > hi {
            return Ok(Vec::new());
        }
        let range =
            k3(member, Id(lo), Id::MIN).to_vec()..=k3(member, Id(hi), Id(u64::MAX)).to_vec();
        self.snapshot()
            .range(&self.inner.t.member_lists, range)
            .map(|row| {
                let (_, value) = row.into_inner().ctx("reading memberships")?;
                decode(&value)
            })
            .collect()
    }

    pub(super) async fn keep(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        if kind == MarkKind::Favourite {
            return Err(Invalid::new("kind", "favourites are kept by favouriting").into());
        }
        self.write(move |inner, tx| {
            let t = &inner.t;
            super::require_account(tx, t, account)?;
            let found = live_post(tx, t, post)?.ok_or(StoreError::NotFound("post"))?;
            if marked(tx, t, kind, account, post)? {
                return Ok(false);
            }
            if kind == MarkKind::Pin {
                let pinned = tx.prefix(&t.marks, mark_prefix(kind, account)).count();
                may_pin(&found, account, pinned)?;
            }
            put_mark(inner, tx, kind, account, post)
        })
        .await
    }

    pub(super) async fn unkeep(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        if kind == MarkKind::Favourite {
            return Err(Invalid::new("kind", "favourites are undone by unfavouriting").into());
        }
        self.write(move |inner, tx| drop_mark(tx, &inner.t, kind, account, post))
            .await
    }

    pub(super) fn kept(&self, kind: MarkKind, account: Id, window: &Window) -> Result<Page<Mark>> {
        scan_prefixed(
            &self.snapshot(),
            &self.inner.t.marks,
            &mark_prefix(kind, account),
            window,
            |id, value| {
                Ok(Some(Mark {
                    id,
                    post_id: id_value(value, "reading marks")?,
                }))
            },
        )
    }

    pub(super) async fn add_tag_follow(&self, account: Id, tag: String) -> Result<bool> {
        check_tag(&tag)?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            super::require_account(tx, t, account)?;
            if exists(tx, &t.tag_follows, tag_follow_key(account, &tag))? {
                return Ok(false);
            }
            if tx.prefix(&t.tag_follows, k1(account)).count() >= MAX_FOLLOWED_TAGS {
                return Err(Invalid::new(
                    "tag",
                    format!("at most {MAX_FOLLOWED_TAGS} followed hashtags"),
                )
                .into());
            }
            tx.insert(&t.tag_follows, tag_follow_key(account, &tag), []);
            tx.insert(&t.tag_followers, tag_follower_key(&tag, account), []);
            Ok(true)
        })
        .await
    }

    pub(super) async fn drop_tag_follow(&self, account: Id, tag: String) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            if !exists(tx, &t.tag_follows, tag_follow_key(account, &tag))? {
                return Ok(false);
            }
            tx.remove(&t.tag_follows, tag_follow_key(account, &tag));
            tx.remove(&t.tag_followers, tag_follower_key(&tag, account));
            Ok(true)
        })
        .await
    }

    pub(super) fn tags_of(&self, account: Id) -> Result<Vec<String>> {
        self.snapshot()
            .prefix(&self.inner.t.tag_follows, k1(account))
            .map(|row| {
                let key = row.key().ctx("listing followed tags")?;
                Ok(String::from_utf8_lossy(key.get(8..).unwrap_or_default()).into_owned())
            })
            .collect()
    }
}
