//! `announcements create|list|delete`: the operators' messages that apps show every user
//! (`GET /api/v1/announcements`).

use anyhow::Context;
use starling_schema::Id;
use starling_schema::startup::{Announcement, NewAnnouncement};
use starling_store::Store;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::command::AnnouncementsCommand;
use crate::{AdminContext, Outcome};

pub(crate) async fn run(
    ctx: &AdminContext,
    command: AnnouncementsCommand,
) -> anyhow::Result<Outcome> {
    match command {
        AnnouncementsCommand::Create {
            text,
            starts_at,
            ends_at,
            all_day,
        } => {
            let new = NewAnnouncement {
                text,
                starts_at_ms: starts_at.as_deref().map(parse_time).transpose()?,
                ends_at_ms: ends_at.as_deref().map(parse_time).transpose()?,
                all_day,
            };
            let a = ctx
                .store
                .create_announcement(new)
                .await
                .context("publishing the announcement")?;
            Outcome::new(format!("published announcement {}", a.id), &a)
        }
        AnnouncementsCommand::List => {
            let all = ctx
                .store
                .announcements()
                .await
                .context("reading announcements")?;
            let lines = all.iter().map(line).collect();
            Ok(Outcome::new(format!("{} announcements", all.len()), &all)?.with_lines(lines))
        }
        AnnouncementsCommand::Delete { id } => {
            let existed = ctx
                .store
                .delete_announcement(Id(id))
                .await
                .context("deleting the announcement")?;
            anyhow::ensure!(existed, "no announcement {id}");
            Outcome::new(
                format!("deleted announcement {id}"),
                serde_json::json!({ "id": id }),
            )
        }
    }
}

/// RFC 3339 to Unix milliseconds.
fn parse_time(raw: &str) -> anyhow::Result<u64> {
    let t = OffsetDateTime::parse(raw.trim(), &Rfc3339)
        .with_context(|| format!("{raw:?} is not an RFC 3339 time (2026-12-01T10:00:00Z)"))?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .with_context(|| format!("{raw:?} is before 1970"))
}

fn line(a: &Announcement) -> String {
    let text: String = a.text.chars().take(60).collect();
    let ends = a
        .ends_at_ms
        .map_or_else(|| "no end".to_owned(), |ms| format!("ends at {ms} ms"));
    format!("{}  {ends}  {text}", a.id)
}
