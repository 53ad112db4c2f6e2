//! The start-up state on the embedded store: read markers, filters and announcements.
//!
//! Tables (keys as in the parent module, big-endian ids):
//! - `markers`: account ++ timeline byte → Marker
//! - `filters`: account ++ filter id → Filter (keywords and statuses inside)
//! - `announcements`: id → Announcement
//! - `announcement_dismissals`: account ++ announcement id → ()

use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::startup::{
    Announcement, Filter, FilterDraft, FilterKeyword, FilterStatus, MAX_ANNOUNCEMENTS, MAX_FILTERS,
    Marker, MarkerTimeline, NewAnnouncement,
};

use fjall::Readable;

use super::{Ctx, EmbeddedStore, Inner, decode, exists, get, k1, k2, put};
use crate::{Result, StoreError};

fn marker_key(account: Id, timeline: MarkerTimeline) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&k1(account));
    key[8] = match timeline {
        MarkerTimeline::Home => 1,
        MarkerTimeline::Notifications => 2,
    };
    key
}

/// Turn a draft into the filter to store, minting the ids it lacks; `old` is the filter it
/// replaces, whose keyword and status ids alone may be named.
pub(crate) fn build_filter(
    account: Id,
    id: Id,
    draft: FilterDraft,
    old: Option<&Filter>,
    mut mint: impl FnMut() -> Result<Id>,
) -> Result<Filter> {
    let known_keyword = |k: Id| old.is_some_and(|f| f.keywords.iter().any(|x| x.id == k));
    let known_status = |s: Id| old.is_some_and(|f| f.statuses.iter().any(|x| x.id == s));
    let mut keywords = Vec::with_capacity(draft.keywords.len());
    for k in draft.keywords {
        let id = match k.id {
            Some(kid) if known_keyword(kid) => kid,
            Some(_) => return Err(StoreError::NotFound("filter keyword")),
            None => mint()?,
        };
        keywords.push(FilterKeyword {
            id,
            keyword: k.keyword.trim().to_owned(),
            whole_word: k.whole_word,
        });
    }
    let mut statuses: Vec<FilterStatus> = Vec::with_capacity(draft.statuses.len());
    for s in draft.statuses {
        let id = match s.id {
            Some(sid) if known_status(sid) => sid,
            Some(_) => return Err(StoreError::NotFound("filter status")),
            None => mint()?,
        };
        statuses.push(FilterStatus {
            id,
            status_id: s.status_id,
        });
    }
    let mut context = draft.context;
    context.sort_unstable();
    context.dedup();
    Ok(Filter {
        id,
        account_id: account,
        title: draft.title.trim().to_owned(),
        context,
        action: draft.action,
        expires_at_ms: draft.expires_at_ms,
        keywords,
        statuses,
    })
}

impl EmbeddedStore {
    pub(super) async fn markers_of(&self, account: Id) -> Result<Vec<Marker>> {
        let snap = self.snapshot();
        let mut out = Vec::new();
        for timeline in MarkerTimeline::ALL {
            if let Some(m) = get(&snap, &self.inner.t.markers, marker_key(account, timeline))? {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub(super) async fn put_marker(
        &self,
        account: Id,
        timeline: MarkerTimeline,
        last_read_id: Id,
    ) -> Result<Marker> {
        self.write(move |inner: &Inner, tx| {
            let t = &inner.t;
            let key = marker_key(account, timeline);
            let version = get::<Marker>(tx, &t.markers, key)?.map_or(0, |m| m.version) + 1;
            let marker = Marker {
                timeline,
                last_read_id,
                version,
                updated_at_ms: now_ms(),
            };
            put(tx, &t.markers, key, &marker)?;
            Ok(marker)
        })
        .await
    }

    pub(super) async fn filters_for(&self, account: Id) -> Result<Vec<Filter>> {
        let snap = self.snapshot();
        snap.prefix(&self.inner.t.filters, k1(account))
            .map(|row| {
                let (_, value) = row.into_inner().ctx("listing filters")?;
                decode(&value)
            })
            .collect()
    }

    pub(super) async fn put_filter(&self, account: Id, draft: FilterDraft) -> Result<Filter> {
        draft.validate()?;
        self.write(move |inner: &Inner, tx| {
            let t = &inner.t;
            let (id, old) = match draft.id {
                Some(id) => {
                    let old: Filter = get(tx, &t.filters, k2(account, id))?
                        .ok_or(StoreError::NotFound("filter"))?;
                    (id, Some(old))
                }
                None => {
                    let count = tx.prefix(&t.filters, k1(account)).count();
                    if count >= MAX_FILTERS {
                        return Err(starling_schema::Invalid::new(
                            "filters",
                            format!("at most {MAX_FILTERS} per account"),
                        )
                        .into());
                    }
                    (inner.mint()?, None)
                }
            };
            let filter = build_filter(account, id, draft, old.as_ref(), || inner.mint())?;
            put(tx, &t.filters, k2(account, id), &filter)?;
            Ok(filter)
        })
        .await
    }

    pub(super) async fn remove_filter(&self, account: Id, id: Id) -> Result<bool> {
        self.write(move |inner: &Inner, tx| {
            let t = &inner.t;
            let existed = exists(tx, &t.filters, k2(account, id))?;
            tx.remove(&t.filters, k2(account, id));
            Ok(existed)
        })
        .await
    }

    pub(super) async fn add_announcement(&self, new: NewAnnouncement) -> Result<Announcement> {
        new.validate()?;
        self.write(move |inner: &Inner, tx| {
            let t = &inner.t;
            if tx.iter(&t.announcements).count() >= MAX_ANNOUNCEMENTS {
                return Err(starling_schema::Invalid::new(
                    "announcements",
                    format!("at most {MAX_ANNOUNCEMENTS}; delete old ones first"),
                )
                .into());
            }
            let id = inner.mint()?;
            let at = id.unix_ms();
            let a = Announcement {
                id,
                text: new.text.trim().to_owned(),
                starts_at_ms: new.starts_at_ms,
                ends_at_ms: new.ends_at_ms,
                all_day: new.all_day,
                published_at_ms: at,
                updated_at_ms: at,
            };
            put(tx, &t.announcements, k1(id), &a)?;
            Ok(a)
        })
        .await
    }

    pub(super) async fn all_announcements(&self) -> Result<Vec<Announcement>> {
        let snap = self.snapshot();
        snap.iter(&self.inner.t.announcements)
            .rev()
            .map(|row| {
                let (_, value) = row.into_inner().ctx("listing announcements")?;
                decode(&value)
            })
            .collect()
    }

    pub(super) async fn remove_announcement(&self, id: Id) -> Result<bool> {
        self.write(move |inner: &Inner, tx| {
            let t = &inner.t;
            let existed = exists(tx, &t.announcements, k1(id))?;
            tx.remove(&t.announcements, k1(id));
            Ok(existed)
        })
        .await
    }

    pub(super) async fn dismiss(&self, account: Id, id: Id) -> Result<bool> {
        self.write(move |inner: &Inner, tx| {
            let t = &inner.t;
            if !exists(tx, &t.announcements, k1(id))? {
                return Err(StoreError::NotFound("announcement"));
            }
            let new = !exists(tx, &t.announcement_dismissals, k2(account, id))?;
            tx.insert(&t.announcement_dismissals, k2(account, id), []);
            Ok(new)
        })
        .await
    }

    pub(super) async fn dismissed(&self, account: Id) -> Result<Vec<Id>> {
        let snap = self.snapshot();
        snap.prefix(&self.inner.t.announcement_dismissals, k1(account))
            .map(|row| {
                let key = row.key().ctx("listing dismissed announcements")?;
                Id::from_be_slice(key.get(8..16).unwrap_or_default()).ok_or_else(|| {
                    StoreError::backend("listing dismissed announcements", "short key")
                })
            })
            .collect()
    }
}
