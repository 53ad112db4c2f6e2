//! The media worker role: any number of processes share one durable consumer
//! (`media.consumer`) through the shared consumer loop (`starling_bus::consume`).
//!
//! - `media.uploaded`: process the upload ([`crate::process`]) and store its files under
//!   the upload's token; the record turns `ready` (or `failed`, with the reason) only once
//!   every file is in place, and the raw upload is removed after that. The event is acked
//!   only then, so a worker killed mid-job leaves it to be redelivered, and the redelivery
//!   starts again from the raw upload, overwriting whatever the dead worker wrote.
//! - `post.deleted`: remove the post's attachments, files first, then records.
//! - every `SWEEP_EVERY`: remove uploads never attached after `media.unattached_hours`.

use std::time::Duration;

use starling_bus::{Bus, Delivery};
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::ids::now_ms;
use starling_schema::media::{MediaAttachment, MediaState};
use starling_schema::settings::MediaSettings;
use starling_store::{MAX_BATCH, Store};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::process::process;
use crate::storage::{AnyStorage, MediaStorage, key, token_of};
use crate::{MediaError, Result};

/// Redelivery delay after a failure that may pass (storage or store unavailable).
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// How often unattached uploads are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(3_600);

/// Applies media events. Cheap to clone.
#[derive(Clone)]
pub struct MediaWorker<S> {
    store: S,
    storage: AnyStorage,
    settings: MediaSettings,
}

impl<S: Store + Clone> MediaWorker<S> {
    pub fn new(store: S, storage: AnyStorage, settings: MediaSettings) -> Self {
        MediaWorker {
            store,
            storage,
            settings,
        }
    }

    /// Apply one event. Idempotent: applying it again changes nothing more.
    pub async fn apply(&self, event: &Event) -> Result<()> {
        match event {
            Event::MediaUploaded { media_id, .. } => self.process(*media_id).await,
            Event::PostDeleted { post_id, .. } => self.remove_post_media(*post_id).await,
            _ => Ok(()),
        }
    }

    /// Process upload `id` if it still waits for it.
    pub async fn process(&self, id: Id) -> Result<()> {
        let Some(mut m) = self.store.media_by_ids(&[id]).await?.into_iter().next() else {
            return Ok(()); // deleted meanwhile
        };
        if m.state != MediaState::Processing {
            // Done before; a redelivery after a crash may find the raw upload still there.
            return self.drop_upload(m).await;
        }
        let Some(upload_key) = m.upload_key.clone() else {
            return self.fail(m, "the upload is missing".into()).await;
        };
        let bytes = match self.storage.get(&upload_key).await {
            Ok(b) => b,
            Err(MediaError::NotFound) => {
                return self.fail(m, "the upload is missing".into()).await;
            }
            Err(e) => return Err(e),
        };
        let (kind, content_type) = (m.kind, m.content_type.clone());
        let processed = tokio::task::spawn_blocking(move || process(&bytes, kind, &content_type))
            .await
            .map_err(|e| MediaError::Storage {
                context: "processing an upload",
                source: std::io::Error::other(e),
            })?;
        let p = match processed {
            Ok(p) => p,
            Err(MediaError::Rejected(reason)) => return self.fail(m, reason).await,
            Err(e) => return Err(e),
        };
        let token = token_of(&upload_key).ok_or(MediaError::BadKey)?.to_owned();
        let file_key = key(&token, &format!("original.{}", p.extension));
        self.storage.put(&file_key, p.file).await?;
        let preview_key = match p.preview {
            Some(preview) => {
                let k = key(&token, "small.jpg");
                self.storage.put(&k, preview).await?;
                Some(k)
            }
            None => None,
        };
        m.state = MediaState::Ready;
        m.content_type = p.content_type.to_owned();
        m.file_key = Some(file_key);
        m.preview_key = preview_key;
        m.meta = p.meta;
        m.blurhash = p.blurhash;
        match self.store.update_media(m.clone()).await {
            Ok(()) => self.drop_upload(m).await,
            // Deleted while processing: what was written goes too.
            Err(starling_store::StoreError::NotFound(_)) => self.remove_files(&m).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Mark an upload failed, keeping the reason for the uploader, and remove its bytes.
    async fn fail(&self, mut m: MediaAttachment, reason: String) -> Result<()> {
        tracing::info!(media = %m.id, %reason, "upload refused by processing");
        m.state = MediaState::Failed;
        m.error = Some(reason);
        match self.store.update_media(m.clone()).await {
            Ok(()) => self.drop_upload(m).await,
            Err(starling_store::StoreError::NotFound(_)) => self.remove_files(&m).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Remove the raw upload of a processed record, then forget its key.
    async fn drop_upload(&self, mut m: MediaAttachment) -> Result<()> {
        let Some(upload) = m.upload_key.take() else {
            return Ok(());
        };
        self.storage.delete(&upload).await?;
        match self.store.update_media(m).await {
            Ok(()) | Err(starling_store::StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_files(&self, m: &MediaAttachment) -> Result<()> {
        for k in m.keys() {
            self.storage.delete(k).await?;
        }
        Ok(())
    }

    /// Remove an upload: its files first, then its record (so no record points at
    /// nothing, and a failure half way is finished by the next try).
    pub async fn remove(&self, m: &MediaAttachment) -> Result<()> {
        self.remove_files(m).await?;
        self.store.delete_media(m.id).await?;
        Ok(())
    }

    /// Remove the attachments of a deleted post.
    pub async fn remove_post_media(&self, post: Id) -> Result<()> {
        for m in self.store.media_of_posts(&[post]).await? {
            self.remove(&m).await?;
        }
        Ok(())
    }

    /// Remove uploads never attached to a post that were made before `cutoff_ms`.
    /// Returns how many were removed.
    pub async fn sweep_unattached(&self, cutoff_ms: u64) -> Result<u64> {
        let mut removed = 0;
        let mut after = None;
        loop {
            let page = self.store.scan_media(after, MAX_BATCH).await?;
            for m in &page.items {
                if m.post_id.is_none() && m.created_at_ms < cutoff_ms {
                    self.remove(m).await?;
                    removed += 1;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(removed),
            }
        }
    }

    /// Consume `media.consumer` with up to `media.concurrency` uploads in flight, and sweep
    /// unattached uploads every hour, until `shutdown`; then finish what is in flight.
    pub async fn run(
        &self,
        bus: Bus,
        shutdown: CancellationToken,
    ) -> Result<(), starling_bus::BusError> {
        let Some(mut consumer) = bus
            .wait_for_consumer(&self.settings.consumer, &shutdown)
            .await?
        else {
            return Ok(());
        };
        tracing::info!(consumer = consumer.name(), "media worker started");
        let ack_wait = Duration::from_millis(bus.settings().ack_wait_ms.max(1));
        let mut background: JoinSet<()> = JoinSet::new();
        let sweeper = self.clone();
        background.spawn(async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            loop {
                every.tick().await;
                let ttl = sweeper.settings.unattached_hours.saturating_mul(3_600_000);
                match sweeper.sweep_unattached(now_ms().saturating_sub(ttl)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "removed unattached uploads"),
                    Err(e) => tracing::warn!(error = %e, "sweeping unattached uploads failed"),
                }
            }
        });
        let mut workers = starling_bus::Slots::new(
            Job {
                worker: self.clone(),
                ack_wait,
            },
            self.settings.concurrency,
            || {},
        );
        starling_bus::consume(&mut consumer, &mut workers, &shutdown).await;
        workers.finish().await;
        background.shutdown().await;
        if let Err(e) = bus.flush().await {
            tracing::warn!(error = %e, "acks may not have reached NATS; those uploads will be processed again");
        }
        tracing::info!("media worker stopped");
        Ok(())
    }

    /// Apply one delivery and answer it, keeping its ack wait alive while it works.
    async fn handle(self, delivery: Delivery, ack_wait: Duration) {
        let event = &delivery.envelope.event;
        let result = starling_bus::extending_ack_wait(&delivery, ack_wait, self.apply(event)).await;
        let sequence = delivery.stream_sequence;
        match result {
            Ok(()) => {
                if let Err(e) = delivery.ack().await {
                    tracing::warn!(error = %e, sequence, "ack failed; the event will be applied again");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, sequence, event = event.type_name(), "media work failed; retrying");
                if let Err(e) = delivery.nak(Some(RETRY_DELAY)).await {
                    tracing::warn!(error = %e, sequence, "nak failed; the event comes back after its ack wait");
                }
            }
        }
    }
}

/// What each of the worker's slots runs: one event applied and answered.
#[derive(Clone)]
struct Job<S> {
    worker: MediaWorker<S>,
    ack_wait: Duration,
}

impl<S: Store + Clone> starling_bus::Handler for Job<S> {
    fn handle(self, delivery: Delivery) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.worker.handle(delivery, self.ack_wait)
    }
}
