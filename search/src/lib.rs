//! Full-text search (not built yet; arrives with the search issue).
//!
//! Will own: the indexer role (its own durable consumer per search node), the Tantivy
//! index of posts, accounts and hashtags with near-real-time commits, queries behind
//! `/api/v2/search`, and the rebuild from the store. Depends on the schema and store crates.
