//! Lists and marks on ScyllaDB (`schema/cql/009_feeds.cql`): lists stored whole in their
//! owner's partition, members both ways (`list_members` by list, `member_lists` by member
//! and owner for fan-out), and marks with a claimed key per post so a post is kept once.

use std::ops::ControlFlow;

use starling_schema::feeds::{
    List, ListDraft, ListRef, MAX_FOLLOWED_TAGS, MAX_LIST_MEMBERS, MAX_LISTS, MAX_PINS, Mark,
    MarkKind, check_tag, may_pin,
};
use starling_schema::model::{Page, Window};
use starling_schema::{Id, Invalid};

use super::ScyllaStore;
use super::exec::{bounds, corrupt, db, each, empty_page, finish, id};
use crate::{Result, Store, StoreError, check};

fn to_doc<T: serde::Serialize>(context: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::backend(context, e))
}

fn from_doc<T: serde::de::DeserializeOwned>(context: &'static str, doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(corrupt(context))
}

impl ScyllaStore {
    async fn owned_list(&self, context: &'static str, owner: Id, list: Id) -> Result<List> {
        let row: Option<(String,)> = self
            .row(context, &self.st().list_get, (db(owner), db(list)))
            .await?;
        match row {
            Some((doc,)) => from_doc(context, &doc),
            None => Err(StoreError::NotFound("list")),
        }
    }

    async fn all_members(&self, context: &'static str, list: Id) -> Result<Vec<Id>> {
        let rows: Vec<(i64,)> = self
            .rows(context, &self.st().list_members_all, (db(list),))
            .await?;
        Ok(rows.into_iter().map(|(m,)| id(m)).collect())
    }

    async fn write_membership(
        &self,
        context: &'static str,
        member: Id,
        entry: &ListRef,
    ) -> Result<()> {
        let doc = to_doc(context, entry)?;
        let values = (db(member), db(entry.owner_id), db(entry.list_id), doc);
        self.write(context, &self.st().member_list_insert, values)
            .await
    }

    async fn drop_membership(
        &self,
        context: &'static str,
        member: Id,
        owner: Id,
        list: Id,
    ) -> Result<()> {
        let st = self.st();
        futures::try_join!(
            self.write(context, &st.list_member_delete, (db(list), db(member))),
            self.write(
                context,
                &st.member_list_delete,
                (db(member), db(owner), db(list))
            ),
        )?;
        Ok(())
    }

    /// `followee` out of every list of `follower`'s (an unfollow or a block).
    pub(super) async fn leave_lists(&self, follower: Id, followee: Id) -> Result<()> {
        const CTX: &str = "leaving lists";
        let lists = self.member_of(
            followee,
            Some(Id(follower.0.saturating_sub(1))),
            Some(follower),
        );
        for entry in lists.await? {
            if entry.owner_id == follower {
                self.drop_membership(CTX, followee, follower, entry.list_id)
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn new_list(&self, owner: Id, draft: ListDraft) -> Result<List> {
        const CTX: &str = "creating a list";
        draft.validate()?;
        self.require_accounts([owner]).await?;
        if self.owned_lists(owner).await?.len() >= MAX_LISTS {
            return Err(Invalid::new("lists", format!("at most {MAX_LISTS} per account")).into());
        }
        let list = draft.build(self.mint().await?, owner);
        let doc = to_doc(CTX, &list)?;
        self.write(CTX, &self.st().list_insert, (db(owner), db(list.id), doc))
            .await?;
        Ok(list)
    }

    pub(super) async fn change_list(&self, owner: Id, id: Id, draft: ListDraft) -> Result<List> {
        const CTX: &str = "changing a list";
        draft.validate()?;
        self.owned_list(CTX, owner, id).await?;
        let list = draft.build(id, owner);
        let doc = to_doc(CTX, &list)?;
        self.write(CTX, &self.st().list_insert, (db(owner), db(id), doc))
            .await?;
        let entry = ListRef::from(&list);
        let entry = &entry;
        each(self.all_members(CTX, id).await?, |member| {
            self.write_membership(CTX, member, entry)
        })
        .await?;
        Ok(list)
    }

    pub(super) async fn drop_list(&self, owner: Id, id: Id) -> Result<bool> {
        const CTX: &str = "deleting a list";
        match self.owned_list(CTX, owner, id).await {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        // Members first: a crash part-way leaves a list that a retried delete finishes.
        each(self.all_members(CTX, id).await?, |member| {
            self.drop_membership(CTX, member, owner, id)
        })
        .await?;
        self.write(CTX, &self.st().list_delete, (db(owner), db(id)))
            .await?;
        Ok(true)
    }

    pub(super) async fn owned_lists(&self, owner: Id) -> Result<Vec<List>> {
        const CTX: &str = "listing lists";
        let rows: Vec<(String,)> = self.rows(CTX, &self.st().lists_get, (db(owner),)).await?;
        rows.iter().map(|(doc,)| from_doc(CTX, doc)).collect()
    }

    pub(super) async fn members_page(&self, list: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page(
            "reading list members",
            &self.st().list_members_page,
            list,
            window,
        )
        .await
    }

    pub(super) async fn join_list(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()> {
        const CTX: &str = "adding list members";
        check::batch(accounts.len())?;
        let found = self.owned_list(CTX, owner, list).await?;
        let rels = self.relationships(owner, accounts).await?;
        if let Some(r) = rels.iter().find(|r| !r.following) {
            return Err(Invalid::new(
                "account_ids",
                format!("account {} is not followed by the list's owner", r.target),
            )
            .into());
        }
        let members = self.all_members(CTX, list).await?;
        let mut new: Vec<Id> = accounts
            .iter()
            .copied()
            .filter(|a| !members.contains(a))
            .collect();
        new.sort_unstable();
        new.dedup();
        if members.len() + new.len() > MAX_LIST_MEMBERS {
            return Err(Invalid::new(
                "account_ids",
                format!("a list holds at most {MAX_LIST_MEMBERS} accounts"),
            )
            .into());
        }
        let entry = ListRef::from(&found);
        let entry = &entry;
        each(new, |member| async move {
            // The fan-out index first: a member listed is a member fan-out feeds.
            self.write_membership(CTX, member, entry).await?;
            self.write(CTX, &self.st().list_member_insert, (db(list), db(member)))
                .await
        })
        .await?;
        Ok(())
    }

    pub(super) async fn leave_list(&self, owner: Id, list: Id, accounts: &[Id]) -> Result<()> {
        const CTX: &str = "removing list members";
        check::batch(accounts.len())?;
        self.owned_list(CTX, owner, list).await?;
        each(accounts.iter().copied(), |member| {
            self.drop_membership(CTX, member, owner, list)
        })
        .await?;
        Ok(())
    }

    pub(super) async fn member_of(
        &self,
        member: Id,
        after: Option<Id>,
        through: Option<Id>,
    ) -> Result<Vec<ListRef>> {
        const CTX: &str = "reading memberships";
        let window = Window {
            above: after,
            below: through.and_then(|t| t.0.checked_add(1)).map(Id),
            ..Window::oldest(1)
        };
        let Some((lo, hi)) = bounds(&window) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        self.scan(
            CTX,
            &self.st().member_lists_range,
            (db(member), lo, hi),
            |(doc,): (String,)| {
                out.push(from_doc(CTX, &doc)?);
                Ok(ControlFlow::Continue(()))
            },
        )
        .await?;
        Ok(out)
    }

    pub(super) async fn is_marked(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        self.exists(
            "reading a mark",
            &self.st().mark_key_get,
            (db(account), kind.as_str(), db(post)),
        )
        .await
    }

    /// Keep `post` as `kind` of `account`'s; false if kept already.
    pub(super) async fn put_mark(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        const CTX: &str = "keeping a post";
        let st = self.st();
        let mark = self.mint().await?;
        let claim = (db(account), kind.as_str(), db(post), db(mark));
        if !self.lwt(CTX, &st.mark_key_claim, claim).await?.applied {
            return Ok(false);
        }
        let values = (db(account), kind.as_str(), db(mark), db(post));
        self.write(CTX, &st.mark_insert, values).await?;
        Ok(true)
    }

    /// Forget `post` as `kind` of `account`'s; false if it was not kept.
    pub(super) async fn drop_mark(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        const CTX: &str = "forgetting a kept post";
        let st = self.st();
        let key = (db(account), kind.as_str(), db(post));
        let Some((mark,)) = self.row::<(i64,)>(CTX, &st.mark_key_get, key).await? else {
            return Ok(false);
        };
        // The listing first: a crash between leaves a key a retry releases.
        self.write(CTX, &st.mark_delete, (db(account), kind.as_str(), mark))
            .await?;
        let release = (db(account), kind.as_str(), db(post), mark);
        Ok(self.lwt(CTX, &st.mark_key_release, release).await?.applied)
    }

    pub(super) async fn keep(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        const CTX: &str = "keeping a post";
        if kind == MarkKind::Favourite {
            return Err(Invalid::new("kind", "favourites are kept by favouriting").into());
        }
        let (_, found) =
            futures::try_join!(self.require_accounts([account]), self.live_post(post))?;
        let found = found.ok_or(StoreError::NotFound("post"))?;
        if self.is_marked(kind, account, post).await? {
            return Ok(false);
        }
        if kind == MarkKind::Pin {
            let limit = i32::try_from(MAX_PINS + 1).unwrap_or(i32::MAX);
            let pinned: Vec<(i64,)> = self
                .rows(
                    CTX,
                    &self.st().marks_head,
                    (db(account), kind.as_str(), limit),
                )
                .await?;
            may_pin(&found, account, pinned.len())?;
        }
        self.put_mark(kind, account, post).await
    }

    pub(super) async fn unkeep(&self, kind: MarkKind, account: Id, post: Id) -> Result<bool> {
        if kind == MarkKind::Favourite {
            return Err(Invalid::new("kind", "favourites are undone by unfavouriting").into());
        }
        self.drop_mark(kind, account, post).await
    }

    pub(super) async fn kept(&self, kind: MarkKind, account: Id, w: Window) -> Result<Page<Mark>> {
        const CTX: &str = "reading kept posts";
        check::window(&w)?;
        let Some((lo, hi)) = bounds(&w) else {
            return Ok(empty_page());
        };
        let want = w.limit + 1;
        let limit = i32::try_from(want).unwrap_or(i32::MAX);
        let mut items = Vec::with_capacity(want.min(1024));
        let st = self.st().marks_page.pick(w.order);
        let values = (db(account), kind.as_str(), lo, hi, limit);
        self.scan(CTX, st, values, |(mark, post): (i64, i64)| {
            items.push(Mark {
                id: id(mark),
                post_id: id(post),
            });
            Ok(if items.len() >= want {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok(finish(items, w, |m| m.id))
    }

    pub(super) async fn add_tag_follow(&self, account: Id, tag: &str) -> Result<bool> {
        const CTX: &str = "following a hashtag";
        check_tag(tag)?;
        let st = self.st();
        let (_, followed) = futures::try_join!(
            self.require_accounts([account]),
            self.exists(CTX, &st.followed_tag_get, (db(account), tag)),
        )?;
        if followed {
            return Ok(false);
        }
        if self.tags_of(account).await?.len() >= MAX_FOLLOWED_TAGS {
            return Err(Invalid::new(
                "tag",
                format!("at most {MAX_FOLLOWED_TAGS} followed hashtags"),
            )
            .into());
        }
        // The fan-out side first: a tag listed as followed is always fed.
        self.write(CTX, &st.tag_follower_insert, (tag, db(account)))
            .await?;
        self.write(CTX, &st.followed_tag_insert, (db(account), tag))
            .await?;
        Ok(true)
    }

    pub(super) async fn drop_tag_follow(&self, account: Id, tag: &str) -> Result<bool> {
        const CTX: &str = "unfollowing a hashtag";
        let st = self.st();
        if !self
            .exists(CTX, &st.followed_tag_get, (db(account), tag))
            .await?
        {
            return Ok(false);
        }
        self.write(CTX, &st.followed_tag_delete, (db(account), tag))
            .await?;
        self.write(CTX, &st.tag_follower_delete, (tag, db(account)))
            .await?;
        Ok(true)
    }

    pub(super) async fn tags_of(&self, account: Id) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self
            .rows(
                "listing followed hashtags",
                &self.st().followed_tags_get,
                (db(account),),
            )
            .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    pub(super) async fn followers_of_tag(&self, tag: &str, w: Window) -> Result<Page<Id>> {
        const CTX: &str = "reading a hashtag's followers";
        check_tag(tag)?;
        check::window(&w)?;
        let Some((lo, hi)) = bounds(&w) else {
            return Ok(empty_page());
        };
        let want = w.limit + 1;
        let limit = i32::try_from(want).unwrap_or(i32::MAX);
        let mut items = Vec::with_capacity(want.min(1024));
        let st = self.st().tag_followers_page.pick(w.order);
        self.scan(CTX, st, (tag, lo, hi, limit), |(account,): (i64,)| {
            items.push(id(account));
            Ok(if items.len() >= want {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok(finish(items, w, |a| *a))
    }
}
