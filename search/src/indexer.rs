//! The indexer role: this search node's own durable consumer of the event stream, applied to
//! the index in batches. A batch is committed at most every `commit_interval_ms` (at once
//! when the indexer was idle), on a blocking thread, and its events are acked only after the
//! commit that holds them: an indexer that dies re-consumes from its last commit.

use std::time::Duration;

use starling_bus::{Backoff, Bus, Delivery, EventConsumer, Sink};
use starling_schema::ErrorKind;
use starling_schema::events::Event;
use starling_schema::settings::SearchSettings;
use tantivy::IndexWriter;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Result, SearchError};
use crate::index::{Change, SearchIndex};

/// Events pulled ahead of the writer.
const CHANNEL: usize = 4_096;
/// Most events in one commit.
const MAX_BATCH: usize = 50_000;

/// What an event changes in the index, if anything.
pub fn change_of(event: &Event) -> Option<Change> {
    match event {
        // An edit replaces the post's document (its text and hashtags) at once.
        Event::PostCreated { post } | Event::PostUpdated { post } => {
            Some(Change::Post(Box::new(post.clone())))
        }
        Event::PostDeleted { post_id, .. } => Some(Change::DeletePost(*post_id)),
        Event::AccountCreated { account } | Event::AccountUpdated { account } => {
            Some(Change::Account(Box::new(account.clone())))
        }
        Event::AccountDeleted { account_id } => Some(Change::DeleteAccount(*account_id)),
        _ => None,
    }
}

pub struct Indexer {
    index: SearchIndex,
    consumer: String,
    commit_interval: Duration,
    writer_memory_mib: usize,
}

impl Indexer {
    pub fn new(index: SearchIndex, settings: &SearchSettings, node_id: u32) -> Indexer {
        Indexer {
            index,
            consumer: settings.consumer_name(node_id),
            commit_interval: Duration::from_millis(settings.commit_interval_ms.max(1)),
            writer_memory_mib: settings.writer_memory_mib,
        }
    }

    /// Consume and index until `shutdown`; then index and ack what was already pulled, and
    /// return. Waits for NATS, and for the index lock while a previous writer still holds it.
    /// Dropping the future stops at once; uncommitted events are redelivered after `ack_wait`.
    pub async fn run(self, bus: Bus, shutdown: CancellationToken) -> Result<()> {
        let Some(mut writer) = self.open_writer(&shutdown).await? else {
            return Ok(());
        };
        let Some(consumer) = bus.wait_for_consumer(&self.consumer, &shutdown).await? else {
            return Ok(());
        };
        tracing::info!(consumer = %self.consumer, "indexer started");
        let (tx, mut rx) = mpsc::channel(CHANNEL);
        // Owned here, so dropping `run` stops the puller too.
        let mut puller = JoinSet::new();
        puller.spawn(pull(consumer, tx, shutdown.clone()));
        let mut last_commit: Option<Instant> = None;
        // Ends when the puller stops (after `shutdown`) and everything it pulled is indexed.
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let deadline = last_commit.map(|t| t + self.commit_interval);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(d) => batch.push(d),
                    Err(_) => match deadline {
                        Some(deadline) if Instant::now() < deadline => {
                            match tokio::time::timeout_at(deadline, rx.recv()).await {
                                Ok(Some(d)) => batch.push(d),
                                Ok(None) | Err(_) => break,
                            }
                        }
                        _ => break,
                    },
                }
            }
            let committed;
            (writer, committed) = self.commit_batch(writer, batch).await?;
            if committed {
                last_commit = Some(Instant::now());
            }
        }
        if let Err(e) = bus.flush().await {
            tracing::warn!(error = %e, "acks may not have reached NATS; those events will be indexed again");
        }
        tracing::info!(consumer = %self.consumer, "indexer stopped");
        Ok(())
    }

    async fn open_writer(&self, shutdown: &CancellationToken) -> Result<Option<IndexWriter>> {
        let mut backoff = Backoff::default();
        loop {
            match self.index.writer(self.writer_memory_mib) {
                Ok(w) => return Ok(Some(w)),
                // A writer that is going away (a killed indexer's last commit) holds the lock.
                Err(e) if e.kind() == ErrorKind::Unavailable => {
                    tracing::warn!(error = %e, "index is locked; waiting");
                }
                Err(e) => return Err(e),
            }
            if !backoff.wait(shutdown).await {
                return Ok(None);
            }
        }
    }

    /// Apply and commit `batch` off the runtime, then ack it (or nak it if the commit failed).
    /// Says whether a commit was made (a batch with nothing to index needs none).
    async fn commit_batch(
        &self,
        writer: IndexWriter,
        batch: Vec<Delivery>,
    ) -> Result<(IndexWriter, bool)> {
        let changes: Vec<Change> = batch
            .iter()
            .filter_map(|d| change_of(&d.envelope.event))
            .collect();
        if changes.is_empty() {
            // Nothing for the index (follows, favourites...): no commit needed to ack.
            for d in batch {
                if let Err(e) = d.ack().await {
                    tracing::warn!(error = %e, "ack failed; the event will be seen again");
                }
            }
            return Ok((writer, false));
        }
        let index = self.index.clone();
        let started = std::time::Instant::now();
        let (writer, outcome) = tokio::task::spawn_blocking(move || {
            let mut writer = writer;
            let outcome = changes
                .iter()
                .try_for_each(|c| index.apply(&writer, c))
                .and_then(|()| index.commit(&mut writer));
            if outcome.is_err() {
                // Back to the last commit, so what is acked and what is indexed agree.
                if let Err(e) = writer.rollback() {
                    tracing::error!(error = %e, "rolling the index writer back failed");
                }
            }
            (writer, outcome)
        })
        .await
        .map_err(|e| SearchError::Task(e.to_string()))?;
        match outcome {
            Ok(()) => {
                tracing::debug!(events = batch.len(), took = ?started.elapsed(), "index committed");
                for d in batch {
                    if let Err(e) = d.ack().await {
                        tracing::warn!(error = %e, "ack failed; the event will be indexed again");
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "index commit failed; events will be retried");
                for d in batch {
                    let _ = d.nak(Some(Duration::from_secs(1))).await;
                }
            }
        }
        Ok((writer, true))
    }
}

/// Pull events into `tx` as it has room, until `shutdown`; then hand over those the server
/// already sent for the open request, and close the channel (by dropping `tx`).
async fn pull(
    mut consumer: EventConsumer,
    tx: mpsc::Sender<Delivery>,
    shutdown: CancellationToken,
) {
    let mut sink = Channel(tx);
    starling_bus::consume(&mut consumer, &mut sink, &shutdown).await;
}

/// The indexer's room for events: the channel to the batching writer.
struct Channel(mpsc::Sender<Delivery>);

impl Sink for Channel {
    type Slot = mpsc::OwnedPermit<Delivery>;

    async fn reserve(&mut self) -> Option<(mpsc::OwnedPermit<Delivery>, usize)> {
        let permit = self.0.clone().reserve_owned().await.ok()?;
        Some((permit, self.0.capacity() + 1))
    }

    fn deliver(&mut self, permit: mpsc::OwnedPermit<Delivery>, delivery: Delivery) {
        permit.send(delivery);
    }
}
