//! `search reindex | stats`: this node's search index (`search.path`).

use serde::Serialize;

use crate::command::{SearchCommand, SearchPart};
use crate::reindex::{self, What};
use crate::{AdminContext, Outcome, Progress};

pub(crate) async fn run(
    ctx: &AdminContext,
    command: SearchCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        SearchCommand::Reindex { only, restart } => {
            let what = match only {
                None => vec![],
                Some(SearchPart::Statuses) => vec![What::Statuses],
                Some(SearchPart::Accounts) => vec![What::Accounts],
            };
            let mut relay = Relay {
                to: progress,
                seen: 0,
            };
            let docs = reindex::run(&ctx.settings, &ctx.store, &what, restart, &mut relay).await?;
            Outcome::new(
                format!(
                    "search index at {} rebuilt: {docs} documents",
                    ctx.settings.search.path.display()
                ),
                serde_json::json!({ "documents": docs }),
            )
        }
        SearchCommand::Stats => stats(ctx).await,
    }
}

/// The rebuild's progress as admin progress.
struct Relay<'a> {
    to: &'a dyn Progress,
    /// Documents reported so far in the current part.
    seen: u64,
}

impl reindex::Progress for Relay<'_> {
    fn start(&mut self, what: What, resumed: bool) {
        let name = match what {
            What::Statuses => "statuses indexed",
            What::Accounts => "accounts indexed",
        };
        let task = if resumed {
            format!("{name} (resumed)")
        } else {
            name.to_owned()
        };
        self.seen = 0;
        self.to.start(&task, None);
    }

    fn advance(&mut self, docs: u64) {
        // The rebuild reports its running total; progress counts increments.
        self.to.advance(docs.saturating_sub(self.seen));
        self.seen = self.seen.max(docs);
    }

    fn finish(&mut self, _what: What, docs: u64) {
        self.advance(docs);
        self.to.finish();
    }
}

#[derive(Serialize)]
struct Stats {
    path: String,
    documents: u64,
    interrupted_rebuild: bool,
}

async fn stats(ctx: &AdminContext) -> anyhow::Result<Outcome> {
    let path = ctx.settings.search.path.clone();
    let dir = path.clone();
    let index =
        tokio::task::spawn_blocking(move || starling_search::SearchIndex::open(&dir)).await??;
    let stats = Stats {
        path: path.display().to_string(),
        documents: index.num_docs(),
        interrupted_rebuild: path.join(reindex::STATE_FILE).exists(),
    };
    let summary = format!(
        "search index at {}: {} documents{}",
        stats.path,
        stats.documents,
        if stats.interrupted_rebuild {
            " (a rebuild was interrupted: run `search reindex` to finish it)"
        } else {
            ""
        }
    );
    Outcome::new(summary, stats)
}
