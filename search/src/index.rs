//! The index: its schema, how posts and accounts become documents, and the queries.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use starling_schema::Id;
use starling_schema::model::{Account, Post};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Score, Searcher,
    SegmentReader, TantivyDocument, Term,
};

use crate::error::{Result, SearchError};
use crate::tokenizer::{self, TEXT_TOKENIZER};

/// Longest prefix of a name that account search matches on, in characters.
const MAX_PREFIX_CHARS: usize = 30;
/// How much a week of age takes off a status's relevance: its score is multiplied by
/// `1 + 2^(-age / RECENCY_HALF_LIFE)`, so a new post counts up to twice an old one.
const RECENCY_HALF_LIFE_MS: f64 = 7.0 * 24.0 * 3600.0 * 1000.0;
/// Largest `limit + offset` a query serves.
pub const MAX_WINDOW: usize = 10_000;

const KIND_POST: &str = "post";
const KIND_ACCOUNT: &str = "account";

#[derive(Clone, Copy)]
struct Fields {
    kind: Field,
    post_id: Field,
    account_id: Field,
    author: Field,
    text: Field,
    tags: Field,
    username: Field,
    prefix: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        kind: b.add_text_field("kind", STRING),
        post_id: b.add_u64_field("post_id", INDEXED | FAST),
        account_id: b.add_u64_field("account_id", INDEXED | FAST),
        author: b.add_u64_field("author", INDEXED),
        text: b.add_text_field("text", text),
        tags: b.add_text_field("tags", STRING),
        username: b.add_text_field("username", STRING),
        prefix: b.add_text_field("prefix", STRING),
    };
    (b.build(), fields)
}

/// Whether a post goes into the index: the visibility policy's answer
/// ([`starling_schema::policy::indexed`]: public and unlisted originals).
pub fn is_searchable(post: &Post) -> bool {
    starling_schema::policy::indexed(post)
}

/// One change to the index.
#[derive(Clone, Debug)]
pub enum Change {
    /// Index (or re-index) a post; a post that is not [`is_searchable`] is removed instead.
    Post(Box<Post>),
    DeletePost(Id),
    /// Index (or re-index) an account; a suspended one is removed instead.
    Account(Box<Account>),
    DeleteAccount(Id),
}

/// An open index: the reader every query uses, and what a writer needs. Cheap to clone.
#[derive(Clone)]
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl SearchIndex {
    /// Open the index in `dir`, creating the directory and an empty index if missing.
    pub fn open(dir: &Path) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir).map_err(|source| SearchError::Io {
            action: "creating the index directory",
            path: dir.to_owned(),
            source,
        })?;
        let directory = MmapDirectory::open(dir).map_err(|e| SearchError::Io {
            action: "opening the index directory",
            path: dir.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let (schema, fields) = schema();
        let index = Index::open_or_create(directory, schema)
            .map_err(|e| SearchError::index("opening the index", e))?;
        Self::from_index(index, fields)
    }

    /// A fresh index in memory, for tests and benchmarks.
    pub fn in_memory() -> Result<SearchIndex> {
        let (schema, fields) = schema();
        Self::from_index(Index::create_in_ram(schema), fields)
    }

    fn from_index(index: Index, fields: Fields) -> Result<SearchIndex> {
        index
            .tokenizers()
            .register(TEXT_TOKENIZER, tokenizer::text_analyzer());
        let reader = index
            .reader_builder()
            // Another process's commits are seen through a watch of the meta file; this
            // process's own indexer reloads at once after each commit.
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(|e| SearchError::index("opening the index reader", e))?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
        })
    }

    /// The index writer (one per index at a time; fails with a lock error while another holds it).
    pub fn writer(&self, memory_mib: usize) -> Result<IndexWriter> {
        let budget_mib = memory_mib.max(15);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.min(budget_mib / 15).clamp(1, 8);
        self.index
            .writer_with_num_threads(threads, budget_mib << 20)
            .map_err(|e| SearchError::index("opening the index writer", e))
    }

    /// Apply `change` to `writer`. Idempotent: a replayed change leaves one document.
    pub fn apply(&self, writer: &IndexWriter, change: &Change) -> Result<()> {
        let f = self.fields;
        match change {
            Change::Post(post) => {
                writer.delete_term(Term::from_field_u64(f.post_id, post.id.0));
                if is_searchable(post) {
                    writer
                        .add_document(self.post_doc(post))
                        .map_err(|e| SearchError::index("adding a post", e))?;
                }
            }
            Change::DeletePost(id) => {
                writer.delete_term(Term::from_field_u64(f.post_id, id.0));
            }
            Change::Account(account) => {
                writer.delete_term(Term::from_field_u64(f.account_id, account.id.0));
                if !account.suspended {
                    writer
                        .add_document(self.account_doc(account))
                        .map_err(|e| SearchError::index("adding an account", e))?;
                }
            }
            Change::DeleteAccount(id) => {
                writer.delete_term(Term::from_field_u64(f.account_id, id.0));
            }
        }
        Ok(())
    }

    /// Remove every post (`posts`) or every account (`!posts`) from the index, for a rebuild.
    pub fn clear(&self, writer: &IndexWriter, posts: bool) {
        let kind = if posts { KIND_POST } else { KIND_ACCOUNT };
        writer.delete_term(Term::from_field_text(self.fields.kind, kind));
    }

    /// Make what the writer holds durable and visible to this process's queries.
    pub fn commit(&self, writer: &mut IndexWriter) -> Result<()> {
        writer
            .commit()
            .map_err(|e| SearchError::index("committing the index", e))?;
        self.reload()
    }

    /// See the latest commit now (another process's commit is otherwise seen within ~1 s).
    pub fn reload(&self) -> Result<()> {
        self.reader
            .reload()
            .map_err(|e| SearchError::index("reloading the index reader", e))
    }

    fn post_doc(&self, post: &Post) -> TantivyDocument {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.kind, KIND_POST);
        doc.add_u64(f.post_id, post.id.0);
        doc.add_u64(f.author, post.author_id.0);
        doc.add_text(f.text, &post.text);
        if !post.spoiler_text.is_empty() {
            doc.add_text(f.text, &post.spoiler_text);
        }
        for tag in &post.hashtags {
            doc.add_text(f.tags, tag.to_lowercase());
        }
        doc
    }

    fn account_doc(&self, account: &Account) -> TantivyDocument {
        let f = self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.kind, KIND_ACCOUNT);
        doc.add_u64(f.account_id, account.id.0);
        doc.add_text(f.username, account.username.to_lowercase());
        let mut prefixes = Vec::new();
        let words = std::iter::once(account.username.as_str())
            .chain(account.username.split('_'))
            .chain(name_words(&account.display_name));
        for word in words {
            let word = word.to_lowercase();
            for (n, (i, c)) in word.char_indices().enumerate() {
                if n >= MAX_PREFIX_CHARS {
                    break;
                }
                prefixes.push(word[..i + c.len_utf8()].to_owned());
            }
        }
        prefixes.sort_unstable();
        prefixes.dedup();
        for p in prefixes {
            doc.add_text(f.prefix, p);
        }
        doc
    }

    fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Post ids matching `q`, best first: by relevance weighted toward recent posts when
    /// there are words, newest first when there are only operators.
    pub fn statuses(&self, q: &StatusQuery) -> Result<Vec<Id>> {
        let f = self.fields;
        let mut analyzer: TextAnalyzer = tokenizer::text_analyzer();
        let words = tokenizer::terms(&mut analyzer, &q.words);
        if words.is_empty() && q.tags.is_empty() && q.author.is_none() {
            return Ok(Vec::new());
        }
        let limit = q.limit.clamp(1, MAX_WINDOW);
        let offset = q.offset.min(MAX_WINDOW);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(f.kind, KIND_POST),
                IndexRecordOption::Basic,
            )),
        )];
        for w in &words {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.text, w),
                    IndexRecordOption::WithFreqs,
                )),
            ));
        }
        for tag in &q.tags {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.tags, &tag.to_lowercase()),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if let Some(author) = q.author {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.author, author.0),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        if q.min_id.is_some() || q.max_id.is_some() {
            let bound = |id: Option<Id>| match id {
                Some(id) => Bound::Excluded(Term::from_field_u64(f.post_id, id.0)),
                None => Bound::Unbounded,
            };
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(bound(q.min_id), bound(q.max_id))),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.searcher();
        let top = TopDocs::with_limit(limit).and_offset(offset);
        let addresses: Vec<DocAddress> = if words.is_empty() {
            searcher
                .search(&query, &top.order_by_u64_field("post_id", Order::Desc))
                .map_err(|e| SearchError::index("searching statuses", e))?
                .into_iter()
                .map(|(_, a)| a)
                .collect()
        } else {
            let now_ms = starling_schema::ids::now_ms();
            let collector = top.tweak_score(move |segment: &SegmentReader| {
                let ids = segment
                    .fast_fields()
                    .u64("post_id")
                    .ok()
                    .map(|c| c.first_or_default_col(0));
                move |doc: DocId, score: Score| {
                    let id = ids.as_ref().map_or(0, |c| c.get_val(doc));
                    score * recency_boost(now_ms, Id(id))
                }
            });
            searcher
                .search(&query, &collector)
                .map_err(|e| SearchError::index("searching statuses", e))?
                .into_iter()
                .map(|(_, a)| a)
                .collect()
        };
        ids_of(&searcher, &addresses, "post_id")
    }

    /// Account ids whose username or display-name words start with the words of `q`, exact
    /// usernames first.
    pub fn accounts(&self, q: &str, limit: usize, offset: usize) -> Result<Vec<Id>> {
        let f = self.fields;
        let q = q.trim().trim_start_matches('@');
        let q = q.split_once('@').map_or(q, |(name, _)| name).to_lowercase();
        let words: Vec<String> = name_words(&q)
            .map(|w| w.chars().take(MAX_PREFIX_CHARS).collect())
            .collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = words
            .iter()
            .map(|w| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(f.prefix, w),
                    IndexRecordOption::Basic,
                ));
                (Occur::Must, q)
            })
            .collect();
        clauses.push((
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(TermQuery::new(
                    Term::from_field_text(f.username, &q),
                    IndexRecordOption::Basic,
                )),
                10.0,
            )),
        ));
        let searcher = self.searcher();
        let top = TopDocs::with_limit(limit.clamp(1, MAX_WINDOW))
            .and_offset(offset.min(MAX_WINDOW))
            .order_by_score();
        let addresses: Vec<DocAddress> = searcher
            .search(&BooleanQuery::new(clauses), &top)
            .map_err(|e| SearchError::index("searching accounts", e))?
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        ids_of(&searcher, &addresses, "account_id")
    }

    /// Hashtags starting with `prefix` (without `#`), with the number of indexed posts using
    /// each, most used first. Counts include deleted posts until their segment is merged.
    pub fn hashtags(
        &self,
        prefix: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<(String, u64)>> {
        let prefix = prefix.trim().trim_start_matches('#').to_lowercase();
        if prefix.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.searcher();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let upper = prefix_upper_bound(prefix.as_bytes());
        for segment in searcher.segment_readers() {
            let inverted = segment
                .inverted_index(self.fields.tags)
                .map_err(|e| SearchError::index("reading hashtags", e))?;
            let mut range = inverted.terms().range().ge(prefix.as_bytes());
            if let Some(upper) = &upper {
                range = range.lt(upper);
            }
            let mut stream = range.into_stream().map_err(|e| SearchError::Io {
                action: "reading hashtags",
                path: Default::default(),
                source: e,
            })?;
            while stream.advance() {
                if let Ok(tag) = std::str::from_utf8(stream.key()) {
                    *counts.entry(tag.to_owned()).or_default() +=
                        u64::from(stream.value().doc_freq);
                }
            }
        }
        let mut tags: Vec<(String, u64)> = counts.into_iter().collect();
        // Most used first; among equals, the exact match and then the shorter name.
        tags.sort_by(|a, b| {
            (b.0 == prefix)
                .cmp(&(a.0 == prefix))
                .then(b.1.cmp(&a.1))
                .then(a.0.len().cmp(&b.0.len()))
                .then(a.0.cmp(&b.0))
        });
        Ok(tags.into_iter().skip(offset).take(limit).collect())
    }

    /// Number of live documents (posts and accounts) in the last reloaded commit.
    pub fn num_docs(&self) -> u64 {
        self.searcher().num_docs()
    }
}

fn recency_boost(now_ms: u64, id: Id) -> f32 {
    let age = now_ms.saturating_sub(id.unix_ms()) as f64;
    (1.0 + (-age / RECENCY_HALF_LIFE_MS).exp2()) as f32
}

/// The smallest byte string greater than every string starting with `prefix`.
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < u8::MAX {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

fn name_words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

fn ids_of(searcher: &Searcher, addresses: &[DocAddress], field: &str) -> Result<Vec<Id>> {
    let mut out = Vec::with_capacity(addresses.len());
    for a in addresses {
        let column = searcher
            .segment_reader(a.segment_ord)
            .fast_fields()
            .u64(field)
            .map_err(|e| SearchError::index("reading result ids", e))?;
        if let Some(id) = column.first(a.doc_id) {
            out.push(Id(id));
        }
    }
    Ok(out)
}

/// A status search: the words to match and the operators found among them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusQuery {
    /// Free text; every word (after stemming) must occur.
    pub words: String,
    /// `#tag` operators: each tag must be on the post.
    pub tags: Vec<String>,
    /// The username of a `from:` operator, for the caller to resolve into [`Self::author`].
    pub from: Option<String>,
    pub author: Option<Id>,
    pub min_id: Option<Id>,
    pub max_id: Option<Id>,
    pub limit: usize,
    pub offset: usize,
}

impl StatusQuery {
    /// Split `q` into words and operators: `from:name` (also `from:@name@domain`) and `#tag`.
    pub fn parse(q: &str) -> StatusQuery {
        let mut out = StatusQuery {
            limit: 20,
            ..StatusQuery::default()
        };
        let mut words = Vec::new();
        for part in q.split_whitespace() {
            if let Some(name) = part.strip_prefix("from:") {
                let name = name.trim_start_matches('@');
                let name = name.split_once('@').map_or(name, |(n, _)| n);
                if !name.is_empty() {
                    out.from = Some(name.to_owned());
                }
            } else if let Some(tag) = part.strip_prefix('#') {
                let tag: String = tag
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !tag.is_empty() {
                    out.tags.push(tag.to_lowercase());
                }
            } else {
                words.push(part);
            }
        }
        out.words = words.join(" ");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_schema::model::Visibility;

    fn post(id: u64, text: &str, visibility: Visibility, tags: &[&str]) -> Post {
        Post {
            id: Id(Id::floor_of_ms(starling_schema::ids::now_ms()).0 + id),
            author_id: Id(7),
            text: text.into(),
            spoiler_text: String::new(),
            sensitive: false,
            visibility,
            in_reply_to_id: None,
            in_reply_to_account_id: None,
            reblog_of: None,
            mentions: vec![],
            hashtags: tags.iter().map(|t| t.to_string()).collect(),
            language: None,
            created_at_ms: 0,
            edited_at_ms: None,
            poll_id: None,
        }
    }

    #[test]
    fn operators_are_split_from_words() {
        let q = StatusQuery::parse("rust from:@alice@example.com #Async  tokio");
        assert_eq!(q.words, "rust tokio");
        assert_eq!(q.from.as_deref(), Some("alice"));
        assert_eq!(q.tags, ["async"]);
    }

    #[test]
    fn prefix_bound_covers_exactly_the_prefix() {
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(&[0x61, 0xff]), Some(vec![0x62]));
        assert_eq!(prefix_upper_bound(&[0xff]), None);
    }

    #[test]
    fn newer_posts_weigh_more() {
        let now = 10 * 24 * 3600 * 1000;
        assert!(recency_boost(now, Id::floor_of_ms(now)) > recency_boost(now, Id::floor_of_ms(0)));
    }

    #[test]
    fn index_and_query_in_memory() -> Result<()> {
        let index = SearchIndex::in_memory()?;
        let mut writer = index.writer(30)?;
        let a = post(
            1,
            "Running with the dogs #Rust",
            Visibility::Public,
            &["rust"],
        );
        let b = post(2, "a secret about dogs", Visibility::Private, &[]);
        let c = post(3, "東京タワーに行った", Visibility::Unlisted, &["rustconf"]);
        for p in [&a, &b, &c] {
            index.apply(&writer, &Change::Post(Box::new(p.clone())))?;
        }
        index.commit(&mut writer)?;
        let search = |s: &str| index.statuses(&StatusQuery::parse(s));
        assert_eq!(search("dog")?, [a.id]);
        assert_eq!(search("runs")?, [a.id]);
        assert_eq!(search("東京")?, [c.id]);
        assert_eq!(search("#rust")?, [a.id]);
        assert!(search("secret")?.is_empty());
        assert_eq!(
            index.hashtags("ru", 10, 0)?,
            [("rust".into(), 1), ("rustconf".into(), 1)]
        );
        index.apply(&writer, &Change::DeletePost(a.id))?;
        index.commit(&mut writer)?;
        assert!(search("dog")?.is_empty());
        Ok(())
    }
}
