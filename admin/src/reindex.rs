//! `starling search reindex` and `starling admin search reindex`: rebuild this node's
//! search index from the store.
//!
//! Walks every live post and account with the store's full scan, a page at a time, and
//! commits the index every few pages. After each commit the scan cursor is written to
//! `reindex-state.json` in the index directory, so an interrupted rebuild resumes where its
//! last commit ended; the file is removed when the rebuild completes. The indexer role must
//! not run on the same index meanwhile (the index lock says so); events it would have indexed
//! wait in its durable consumer and are applied when it starts again.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use starling_schema::Id;
use starling_schema::settings::Settings;
use starling_search::{Change, IndexWriter, SearchIndex};
use starling_store::{AnyStore, Store};

/// Rows asked of the store per page.
const PAGE: usize = 1_000;
/// Pages between two commits (and state saves).
const PAGES_PER_COMMIT: usize = 20;
pub(crate) const STATE_FILE: &str = "reindex-state.json";

/// What to rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    Statuses,
    Accounts,
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    /// Cursor and completion per part; absent: not started.
    statuses: Option<Part>,
    accounts: Option<Part>,
}

#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Part {
    after: Option<Id>,
    done: bool,
}

/// Progress as the rebuild goes: which part, and documents written so far in it.
pub trait Progress {
    fn start(&mut self, what: What, resumed: bool);
    fn advance(&mut self, docs: u64);
    fn finish(&mut self, what: What, docs: u64);
}

/// Rebuild `what` (both when empty) into the index at `settings.search.path`; with `restart`
/// an interrupted rebuild starts over instead of resuming. Returns documents written.
pub async fn run(
    settings: &Settings,
    store: &AnyStore,
    what: &[What],
    restart: bool,
    progress: &mut impl Progress,
) -> anyhow::Result<u64> {
    let dir = settings.search.path.clone();
    let index = SearchIndex::open(&dir)
        .with_context(|| format!("opening the search index at {}", dir.display()))?;
    let mut writer = index
        .writer(settings.search.writer_memory_mib)
        .context("taking the index writer (is an indexer running on this index? stop it first)")?;
    let state_path = dir.join(STATE_FILE);
    let mut state = if restart {
        State::default()
    } else {
        load_state(&state_path)?
    };
    let parts: Vec<What> = if what.is_empty() {
        vec![What::Accounts, What::Statuses]
    } else {
        what.to_vec()
    };
    let mut total = 0;
    for part in parts {
        let slot = match part {
            What::Statuses => &mut state.statuses,
            What::Accounts => &mut state.accounts,
        };
        let resumed = slot.is_some_and(|p| !p.done);
        let mut cursor = match slot {
            Some(p) if !p.done => *p,
            _ => {
                // A fresh rebuild of this part: what the store no longer has must go too.
                index.clear(&writer, part == What::Statuses);
                Part::default()
            }
        };
        progress.start(part, resumed);
        let mut docs = 0u64;
        let mut pages = 0;
        loop {
            let (changes, next) = match part {
                What::Statuses => {
                    let page = store
                        .scan_posts(cursor.after, PAGE)
                        .await
                        .context("scanning posts")?;
                    let changes: Vec<Change> = page
                        .items
                        .into_iter()
                        .filter(starling_search::is_searchable)
                        .map(|p| Change::Post(Box::new(p)))
                        .collect();
                    (changes, page.next)
                }
                What::Accounts => {
                    let page = store
                        .scan_accounts(cursor.after, PAGE)
                        .await
                        .context("scanning accounts")?;
                    let changes: Vec<Change> = page
                        .items
                        .into_iter()
                        .map(|a| Change::Account(Box::new(a)))
                        .collect();
                    (changes, page.next)
                }
            };
            for c in &changes {
                index.apply(&writer, c).context("indexing")?;
            }
            docs += changes.len() as u64;
            progress.advance(docs);
            cursor = Part {
                after: next,
                done: next.is_none(),
            };
            pages += 1;
            if cursor.done || pages % PAGES_PER_COMMIT == 0 {
                writer = commit(&index, writer).await?;
                *match part {
                    What::Statuses => &mut state.statuses,
                    What::Accounts => &mut state.accounts,
                } = Some(cursor);
                save_state(&state_path, &state)?;
            }
            if cursor.done {
                break;
            }
        }
        progress.finish(part, docs);
        total += docs;
    }
    if state.statuses.is_none_or(|p| p.done) && state.accounts.is_none_or(|p| p.done) {
        match std::fs::remove_file(&state_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).context("removing the reindex state file"),
        }
    }
    Ok(total)
}

async fn commit(index: &SearchIndex, writer: IndexWriter) -> anyhow::Result<IndexWriter> {
    let index = index.clone();
    tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        index.commit(&mut writer).map(|()| writer)
    })
    .await
    .context("the commit task failed")?
    .context("committing the index")
}

fn load_state(path: &Path) -> anyhow::Result<State> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading {} (use --restart to start over)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Write the state beside its final name and rename it there, so a crash leaves the old or
/// the new state, never half of one.
fn save_state(path: &Path, state: &State) -> anyhow::Result<()> {
    let tmp: PathBuf = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(state).context("encoding the reindex state")?;
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
