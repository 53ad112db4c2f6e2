//! `media usage`: uploads and files, by state and size. `media remove-orphans`: files in
//! storage that no upload or profile names, and uploads never attached, older than a cutoff.

use std::collections::HashSet;

use anyhow::Context;
use serde::Serialize;
use starling_media::storage::{AnyStorage, MediaStorage, token_of};
use starling_media::worker::MediaWorker;
use starling_schema::ids::now_ms;
use starling_schema::media::{MediaAttachment, MediaState};
use starling_store::{MAX_BATCH, Store};

use crate::command::MediaCommand;
use crate::{AccountPages, AdminContext, Outcome, Progress};

pub(crate) async fn run(
    ctx: &AdminContext,
    command: MediaCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        MediaCommand::Usage => usage(ctx, progress).await,
        MediaCommand::RemoveOrphans {
            older_than_hours,
            dry_run,
        } => remove_orphans(ctx, older_than_hours, dry_run, progress).await,
    }
}

/// Every upload record, a page at a time, with progress.
async fn all_media(
    ctx: &AdminContext,
    progress: &dyn Progress,
) -> anyhow::Result<Vec<MediaAttachment>> {
    progress.start("uploads read", None);
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = ctx
            .store
            .scan_media(after, MAX_BATCH)
            .await
            .context("scanning uploads")?;
        progress.advance(page.items.len() as u64);
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    progress.finish();
    Ok(out)
}

#[derive(Serialize, Default)]
struct Usage {
    uploads: u64,
    attached: u64,
    unattached: u64,
    processing: u64,
    failed: u64,
    uploaded_bytes: u64,
    files: u64,
    stored_bytes: u64,
}

async fn usage(ctx: &AdminContext, progress: &dyn Progress) -> anyhow::Result<Outcome> {
    let media = all_media(ctx, progress).await?;
    let mut u = Usage::default();
    for m in &media {
        u.uploads += 1;
        u.uploaded_bytes += m.size_bytes;
        if m.post_id.is_some() {
            u.attached += 1;
        } else {
            u.unattached += 1;
        }
        match m.state {
            MediaState::Processing => u.processing += 1,
            MediaState::Failed => u.failed += 1,
            MediaState::Ready => {}
        }
    }
    let storage = AnyStorage::from_settings(&ctx.settings.media).context("media storage")?;
    let files = storage.list().await.context("listing media files")?;
    u.files = files.len() as u64;
    u.stored_bytes = files.iter().map(|f| f.size).sum();
    let lines = vec![
        format!(
            "uploads: {} ({} attached, {} unattached, {} processing, {} failed), {} bytes uploaded",
            u.uploads, u.attached, u.unattached, u.processing, u.failed, u.uploaded_bytes
        ),
        format!("storage: {} files, {} bytes", u.files, u.stored_bytes),
    ];
    Ok(Outcome::new(
        format!("{} uploads, {} bytes stored", u.uploads, u.stored_bytes),
        &u,
    )?
    .with_lines(lines))
}

#[derive(Serialize)]
struct Removed {
    unattached_uploads: u64,
    orphan_files: u64,
    orphan_bytes: u64,
    dry_run: bool,
}

async fn remove_orphans(
    ctx: &AdminContext,
    older_than_hours: u64,
    dry_run: bool,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    let cutoff = now_ms().saturating_sub(older_than_hours.saturating_mul(3_600_000));
    let storage = AnyStorage::from_settings(&ctx.settings.media).context("media storage")?;
    let worker = MediaWorker::new(
        ctx.store.clone(),
        storage.clone(),
        ctx.settings.media.clone(),
    );
    // Uploads never attached.
    let media = all_media(ctx, progress).await?;
    let stale: Vec<&MediaAttachment> = media
        .iter()
        .filter(|m| m.post_id.is_none() && m.created_at_ms < cutoff)
        .collect();
    progress.start("unattached uploads removed", Some(stale.len() as u64));
    for m in &stale {
        if !dry_run {
            worker
                .remove(m)
                .await
                .context("removing an unattached upload")?;
        }
        progress.advance(1);
    }
    progress.finish();
    // Tokens still in use: uploads kept, and every account's avatar and header.
    let mut used: HashSet<String> = media
        .iter()
        .filter(|m| !(m.post_id.is_none() && m.created_at_ms < cutoff))
        .flat_map(|m| {
            m.keys()
                .into_iter()
                .filter_map(token_of)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    progress.start("accounts' profile images read", None);
    let mut pages = AccountPages::new(ctx);
    while let Some(page) = pages.next().await? {
        let ids: Vec<_> = page.iter().map(|a| a.id).collect();
        for images in ctx
            .store
            .profile_images(&ids)
            .await
            .context("reading profile images")?
        {
            for k in [images.avatar_key, images.header_key].into_iter().flatten() {
                if let Some(t) = token_of(&k) {
                    used.insert(t.to_owned());
                }
            }
        }
        progress.advance(ids.len() as u64);
    }
    progress.finish();
    // The stale uploads' own files went with them (or, in a dry run, are counted with them).
    let stale_tokens: HashSet<&str> = stale
        .iter()
        .flat_map(|m| m.keys().into_iter().filter_map(token_of))
        .collect();
    let files = storage.list().await.context("listing media files")?;
    let orphans: Vec<_> = files
        .iter()
        .filter(|f| {
            f.modified_ms < cutoff
                && token_of(&f.key).is_none_or(|t| !used.contains(t) && !stale_tokens.contains(t))
        })
        .collect();
    progress.start("orphan files removed", Some(orphans.len() as u64));
    for f in &orphans {
        if !dry_run {
            storage
                .delete(&f.key)
                .await
                .context("removing an orphan file")?;
        }
        progress.advance(1);
    }
    progress.finish();
    let removed = Removed {
        unattached_uploads: stale.len() as u64,
        orphan_files: orphans.len() as u64,
        orphan_bytes: orphans.iter().map(|f| f.size).sum(),
        dry_run,
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    Outcome::new(
        format!(
            "{verb} {} unattached uploads and {} orphan files ({} bytes)",
            removed.unattached_uploads, removed.orphan_files, removed.orphan_bytes
        ),
        &removed,
    )
}
