//! Full-text search: the Tantivy index of posts, accounts and hashtags, the indexer role that
//! keeps it near real time from the event stream (its own durable consumer per search node),
//! and the queries behind `/api/v2/search`, which return ids for the caller to hydrate.
//!
//! Depends on the schema crate (events, domain types, settings) and the bus; never on the
//! store, the API or fan-out. Only public and unlisted posts are ever indexed, so nothing a
//! query returns can leak a private or direct post.

mod error;
mod index;
mod indexer;
pub mod tokenizer;

pub use error::{Result, SearchError};
pub use index::{Change, MAX_WINDOW, SearchIndex, StatusQuery, is_searchable};
pub use indexer::{Indexer, change_of};
/// The index writer [`SearchIndex::writer`] hands out.
pub use tantivy::IndexWriter;
