//! The start-up state on ScyllaDB: read markers (versioned with a conditional update, so
//! concurrent updates each count), filters stored whole per owner, announcements in one
//! small partition, and who dismissed which (`schema/cql/004_startup.cql`).

use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::startup::{
    Announcement, Filter, FilterDraft, MAX_ANNOUNCEMENTS, MAX_FILTERS, Marker, MarkerTimeline,
    NewAnnouncement,
};

use super::ScyllaStore;
use super::exec::{corrupt, db, id, ms, unms};
use crate::embedded::build_filter;
use crate::{Result, StoreError};

/// The one partition announcements live in.
const BUCKET: i32 = 0;
/// Conditional marker updates lost to concurrent ones before giving up.
const MARKER_RETRIES: usize = 16;

type MarkerRow = (String, i64, i64, i64);

fn marker(context: &'static str, (timeline, last, version, at): MarkerRow) -> Result<Marker> {
    Ok(Marker {
        timeline: MarkerTimeline::parse(&timeline)
            .ok_or_else(|| corrupt(context)(format!("unknown marker timeline {timeline}")))?,
        last_read_id: id(last),
        version: u64::try_from(version).unwrap_or_default(),
        updated_at_ms: unms(at),
    })
}

fn to_doc<T: serde::Serialize>(context: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::backend(context, e))
}

fn from_doc<T: serde::de::DeserializeOwned>(context: &'static str, doc: &str) -> Result<T> {
    serde_json::from_str(doc).map_err(corrupt(context))
}

impl ScyllaStore {
    pub(super) async fn markers_of(&self, account: Id) -> Result<Vec<Marker>> {
        const CTX: &str = "reading markers";
        let rows: Vec<MarkerRow> = self
            .rows(CTX, &self.st().markers_get, (db(account),))
            .await?;
        let mut out = rows
            .into_iter()
            .map(|r| marker(CTX, r))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|m| m.timeline);
        Ok(out)
    }

    pub(super) async fn put_marker(
        &self,
        account: Id,
        timeline: MarkerTimeline,
        last_read_id: Id,
    ) -> Result<Marker> {
        const CTX: &str = "saving a marker";
        let st = self.st();
        let name = timeline.as_str();
        for _ in 0..MARKER_RETRIES {
            let current: Option<MarkerRow> =
                self.row(CTX, &st.marker_get, (db(account), name)).await?;
            let at = now_ms();
            let (version, applied) = match current {
                None => {
                    let values = (db(account), name, db(last_read_id), 1i64, ms(at));
                    (1, self.lwt(CTX, &st.marker_create, values).await?.applied)
                }
                Some((_, _, old, _)) => {
                    let values = (db(last_read_id), old + 1, ms(at), db(account), name, old);
                    (
                        old + 1,
                        self.lwt(CTX, &st.marker_update, values).await?.applied,
                    )
                }
            };
            if applied {
                return Ok(Marker {
                    timeline,
                    last_read_id,
                    version: u64::try_from(version).unwrap_or_default(),
                    updated_at_ms: at,
                });
            }
        }
        Err(StoreError::Conflict(
            "the marker is being updated concurrently; try again".into(),
        ))
    }

    pub(super) async fn filters_for(&self, account: Id) -> Result<Vec<Filter>> {
        const CTX: &str = "reading filters";
        let rows: Vec<(String,)> = self
            .rows(CTX, &self.st().filters_get, (db(account),))
            .await?;
        rows.iter().map(|(doc,)| from_doc(CTX, doc)).collect()
    }

    pub(super) async fn put_filter(&self, account: Id, draft: FilterDraft) -> Result<Filter> {
        const CTX: &str = "saving a filter";
        draft.validate()?;
        let st = self.st();
        let (fid, old) = match draft.id {
            Some(fid) => {
                let row: Option<(String,)> = self
                    .row(CTX, &st.filter_get, (db(account), db(fid)))
                    .await?;
                let (doc,) = row.ok_or(StoreError::NotFound("filter"))?;
                (fid, Some(from_doc::<Filter>(CTX, &doc)?))
            }
            None => {
                if self.filters_for(account).await?.len() >= MAX_FILTERS {
                    return Err(starling_schema::Invalid::new(
                        "filters",
                        format!("at most {MAX_FILTERS} per account"),
                    )
                    .into());
                }
                (self.mint().await?, None)
            }
        };
        let wanted = draft.keywords.iter().filter(|k| k.id.is_none()).count()
            + draft.statuses.iter().filter(|s| s.id.is_none()).count();
        let mut fresh = Vec::with_capacity(wanted);
        for _ in 0..wanted {
            fresh.push(self.mint().await?);
        }
        fresh.reverse();
        let filter = build_filter(account, fid, draft, old.as_ref(), || {
            fresh
                .pop()
                .ok_or_else(|| StoreError::backend(CTX, "ran out of minted ids"))
        })?;
        let doc = to_doc(CTX, &filter)?;
        self.write(CTX, &st.filter_insert, (db(account), db(fid), doc))
            .await?;
        Ok(filter)
    }

    pub(super) async fn remove_filter(&self, account: Id, fid: Id) -> Result<bool> {
        const CTX: &str = "deleting a filter";
        let st = self.st();
        let key = (db(account), db(fid));
        let existed = self.exists(CTX, &st.filter_get, key).await?;
        if existed {
            self.write(CTX, &st.filter_delete, key).await?;
        }
        Ok(existed)
    }

    pub(super) async fn add_announcement(&self, new: NewAnnouncement) -> Result<Announcement> {
        const CTX: &str = "publishing an announcement";
        new.validate()?;
        if self.all_announcements().await?.len() >= MAX_ANNOUNCEMENTS {
            return Err(starling_schema::Invalid::new(
                "announcements",
                format!("at most {MAX_ANNOUNCEMENTS}; delete old ones first"),
            )
            .into());
        }
        let aid = self.mint().await?;
        let at = aid.unix_ms();
        let a = Announcement {
            id: aid,
            text: new.text.trim().to_owned(),
            starts_at_ms: new.starts_at_ms,
            ends_at_ms: new.ends_at_ms,
            all_day: new.all_day,
            published_at_ms: at,
            updated_at_ms: at,
        };
        let doc = to_doc(CTX, &a)?;
        self.write(CTX, &self.st().announcement_insert, (BUCKET, db(aid), doc))
            .await?;
        Ok(a)
    }

    pub(super) async fn all_announcements(&self) -> Result<Vec<Announcement>> {
        const CTX: &str = "reading announcements";
        let rows: Vec<(String,)> = self
            .rows(CTX, &self.st().announcements_get, (BUCKET,))
            .await?;
        rows.iter().map(|(doc,)| from_doc(CTX, doc)).collect()
    }

    pub(super) async fn remove_announcement(&self, aid: Id) -> Result<bool> {
        const CTX: &str = "deleting an announcement";
        let st = self.st();
        let existed = self
            .exists(CTX, &st.announcement_get, (BUCKET, db(aid)))
            .await?;
        if existed {
            self.write(CTX, &st.announcement_delete, (BUCKET, db(aid)))
                .await?;
        }
        Ok(existed)
    }

    pub(super) async fn dismiss(&self, account: Id, aid: Id) -> Result<bool> {
        const CTX: &str = "dismissing an announcement";
        let st = self.st();
        let (exists, dismissed) = futures::try_join!(
            self.exists(CTX, &st.announcement_get, (BUCKET, db(aid))),
            self.exists(CTX, &st.dismissal_get, (db(account), db(aid))),
        )?;
        if !exists {
            return Err(StoreError::NotFound("announcement"));
        }
        self.write(CTX, &st.dismissal_insert, (db(account), db(aid)))
            .await?;
        Ok(!dismissed)
    }

    pub(super) async fn dismissed(&self, account: Id) -> Result<Vec<Id>> {
        const CTX: &str = "reading dismissed announcements";
        let rows: Vec<(i64,)> = self
            .rows(CTX, &self.st().dismissals_get, (db(account),))
            .await?;
        Ok(rows.into_iter().map(|(a,)| id(a)).collect())
    }
}
