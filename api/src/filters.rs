//! Content filters as Mastodon applies them: the pure matching rule ([`matches`]), a short
//! cache of each viewer's filters, and the one hook the read paths call per page
//! ([`judge`]): which statuses a `hide` filter drops, and the `filtered` results a `warn`
//! (or a surviving `hide` elsewhere) puts on the others.
//!
//! Matching follows Mastodon's `CustomFilterKeyword#to_regex`: case-insensitive; a
//! whole-word keyword must sit between word boundaries (a boundary is only required on a
//! side where the keyword starts or ends with a word character), any other keyword may
//! match inside a word. The text matched is the spoiler text, the text and the media
//! descriptions of the post (of the original, for a reblog). A filter's statuses match the
//! post or the original it reblogs. Expired filters never apply.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use serde_json::{Value, json};
use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::model::Post;
use starling_schema::startup::{Filter, FilterAction, FilterContext, FilterKeyword};
use starling_store::Store;

use crate::Api;
use crate::entities::{Json, iso8601};
use crate::error::ApiResult;

/// Each viewer's filters, kept briefly: a change made on this node is seen at once (the
/// routes forget the entry), one made on another node within the time to live.
pub struct FilterCache {
    by_account: Cache<Id, Arc<Vec<Filter>>>,
}

impl Default for FilterCache {
    fn default() -> Self {
        FilterCache {
            by_account: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
        }
    }
}

impl FilterCache {
    pub async fn get(&self, api: &Api, account: Id) -> ApiResult<Arc<Vec<Filter>>> {
        if let Some(hit) = self.by_account.get(&account).await {
            return Ok(hit);
        }
        let filters = Arc::new(api.store.filters_of(account).await?);
        self.by_account.insert(account, filters.clone()).await;
        Ok(filters)
    }

    pub async fn forget(&self, account: Id) {
        self.by_account.invalidate(&account).await;
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `keyword` occurs in `text` as Mastodon matches it (see the module docs).
pub fn matches(text: &str, keyword: &str, whole_word: bool) -> bool {
    let needle = keyword.trim().to_lowercase();
    if needle.is_empty() {
        return false;
    }
    let hay = text.to_lowercase();
    if !whole_word {
        return hay.contains(&needle);
    }
    let need_start = needle.chars().next().is_some_and(is_word);
    let need_end = needle.chars().next_back().is_some_and(is_word);
    let mut from = 0;
    while let Some(pos) = hay.get(from..).and_then(|rest| rest.find(&needle)) {
        let start = from + pos;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        let start_ok = !need_start || !before.is_some_and(is_word);
        let end_ok = !need_end || !after.is_some_and(is_word);
        if start_ok && end_ok {
            return true;
        }
        // Step one character on, to find overlapping occurrences.
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// What one filter found in one post: the keywords and the filter's statuses that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub filter: usize,
    pub keywords: Vec<String>,
    pub statuses: Vec<Id>,
}

/// The active filters of `context` at `now` that match a post whose searchable text is
/// `text` and whose own and reblogged ids are `ids`.
pub fn hits(
    filters: &[Filter],
    context: FilterContext,
    now: u64,
    text: &str,
    ids: &[Id],
) -> Vec<Hit> {
    filters
        .iter()
        .enumerate()
        .filter(|(_, f)| f.active_at(now) && f.context.contains(&context))
        .filter_map(|(i, f)| {
            let keywords: Vec<String> = f
                .keywords
                .iter()
                .filter(|k: &&FilterKeyword| matches(text, &k.keyword, k.whole_word))
                .map(|k| k.keyword.clone())
                .collect();
            let statuses: Vec<Id> = f
                .statuses
                .iter()
                .filter(|s| ids.contains(&s.status_id))
                .map(|s| s.id)
                .collect();
            (!keywords.is_empty() || !statuses.is_empty()).then_some(Hit {
                filter: i,
                keywords,
                statuses,
            })
        })
        .collect()
}

/// The text filters look at: spoiler text, text, media descriptions (posts have no media
/// yet).
pub fn searchable_text(post: &Post) -> String {
    format!("{}\n\n{}", post.spoiler_text, post.text)
}

/// Mastodon's v2 `Filter` entity; `rules` adds its keywords and statuses.
pub fn filter_json(f: &Filter, rules: bool) -> Value {
    let mut v = json!({
        "id": f.id.to_string(),
        "title": f.title,
        "context": f.context.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "expires_at": f.expires_at_ms.map(iso8601),
        "filter_action": f.action.as_str(),
    });
    if rules && let Some(obj) = v.as_object_mut() {
        obj.insert(
            "keywords".into(),
            f.keywords
                .iter()
                .map(keyword_json)
                .collect::<Vec<_>>()
                .into(),
        );
        obj.insert(
            "statuses".into(),
            f.statuses
                .iter()
                .map(|s| json!({ "id": s.id.to_string(), "status_id": s.status_id.to_string() }))
                .collect::<Vec<_>>()
                .into(),
        );
    }
    v
}

pub fn keyword_json(k: &FilterKeyword) -> Value {
    json!({ "id": k.id.to_string(), "keyword": k.keyword, "whole_word": k.whole_word })
}

/// What a page's filters decided: posts to drop, and `filtered` values by status id.
#[derive(Default)]
pub struct Verdicts {
    hidden: HashSet<Id>,
    results: HashMap<Id, Value>,
}

impl Verdicts {
    /// Whether a `hide` filter drops this post.
    pub fn hides(&self, post_id: Id) -> bool {
        self.hidden.contains(&post_id)
    }

    /// The posts no `hide` filter drops, in order.
    pub fn keep(&self, posts: Vec<Arc<Post>>) -> Vec<Arc<Post>> {
        if self.hidden.is_empty() {
            return posts;
        }
        posts.into_iter().filter(|p| !self.hides(p.id)).collect()
    }

    /// Fill `filtered` on rendered statuses (and on the status a reblog carries). Only a
    /// status that a filter matched is parsed and written again; the rest stay as rendered.
    pub fn mark(&self, statuses: &mut [Json]) {
        if self.results.is_empty() {
            return;
        }
        for s in statuses {
            self.mark_one(s);
        }
    }

    /// [`Verdicts::mark`] over statuses rendered with their ids.
    pub fn mark_by_id(&self, statuses: &mut [(Id, Json)]) {
        if self.results.is_empty() {
            return;
        }
        for (_, s) in statuses {
            self.mark_one(s);
        }
    }

    pub fn mark_one(&self, status: &mut Json) {
        if self.results.is_empty() {
            return;
        }
        let mut value = status.value();
        if self.mark_value(&mut value) {
            *status = Json::of(&value);
        }
    }

    /// Fill `filtered` on one status tree; true if anything was written.
    fn mark_value(&self, status: &mut Value) -> bool {
        let lookup = |s: &Value| -> Option<Value> {
            let id: Id = s.get("id")?.as_str()?.parse().ok()?;
            self.results.get(&id).cloned()
        };
        let mut marked = false;
        if let Some(r) = lookup(status) {
            status["filtered"] = r;
            marked = true;
        }
        if let Some(inner) = status.get_mut("reblog").filter(|r| r.is_object())
            && let Some(r) = lookup(inner)
        {
            inner["filtered"] = r;
            marked = true;
        }
        marked
    }
}

/// The filter hook: judge a page of posts for `viewer` in `context`. Reblogs are judged by
/// their original's text. Without a viewer, or with no active filter, nothing is decided.
pub async fn judge(
    api: &Api,
    viewer: Option<Id>,
    context: FilterContext,
    posts: &[Arc<Post>],
) -> ApiResult<Verdicts> {
    let Some(viewer) = viewer else {
        return Ok(Verdicts::default());
    };
    let filters = api.filters.get(api, viewer).await?;
    let now = now_ms();
    if !filters
        .iter()
        .any(|f| f.active_at(now) && f.context.contains(&context))
    {
        return Ok(Verdicts::default());
    }
    let original_ids: Vec<Id> = posts.iter().filter_map(|p| p.reblog_of).collect();
    let originals: HashMap<Id, Arc<Post>> = api
        .posts_by_ids(&original_ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut verdicts = Verdicts::default();
    for p in posts {
        let proper = p.reblog_of.and_then(|o| originals.get(&o)).unwrap_or(p);
        let ids: Vec<Id> = std::iter::once(p.id).chain(p.reblog_of).collect();
        let found = hits(&filters, context, now, &searchable_text(proper), &ids);
        if found.is_empty() {
            continue;
        }
        if found
            .iter()
            .any(|h| filters[h.filter].action == FilterAction::Hide)
        {
            verdicts.hidden.insert(p.id);
            continue;
        }
        let results: Value = found
            .iter()
            .map(|h| {
                json!({
                    "filter": filter_json(&filters[h.filter], false),
                    "keyword_matches": (!h.keywords.is_empty()).then_some(&h.keywords),
                    "status_matches": (!h.statuses.is_empty()).then(|| {
                        h.statuses.iter().map(Id::to_string).collect::<Vec<_>>()
                    }),
                })
            })
            .collect::<Vec<_>>()
            .into();
        verdicts.results.insert(p.id, results.clone());
        if let Some(o) = p.reblog_of {
            verdicts.results.insert(o, results);
        }
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use starling_schema::startup::FilterStatus;

    #[test]
    fn keywords_match_as_mastodon_matches_them() {
        // (text, keyword, whole_word, expected)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("The Finale was great", "finale", true, true),
            ("the finales were great", "finale", true, false),
            ("the finales were great", "finale", false, true),
            ("semifinale", "finale", true, false),
            ("semifinale", "finale", false, true),
            ("FINALE!", "finale", true, true),
            ("finale_cut", "finale", true, false),
            ("spoiler: finale.", "finale", true, true),
            ("#finale tonight", "#finale", true, true),
            ("a#finale tonight", "#finale", true, true),
            ("#finaleX", "#finale", true, false),
            ("Ünïcode ÉTÉ here", "été", true, true),
            ("beété", "été", true, false),
            ("日本語のテキスト", "テキスト", false, true),
            ("nothing here", "finale", false, false),
            ("anything", "  ", false, false),
            ("fin fin finale", "finale", true, true),
            ("finalefinale finale", "finale", true, true),
        ];
        for (text, keyword, whole, want) in cases {
            assert_eq!(
                matches(text, keyword, *whole),
                *want,
                "{keyword:?} in {text:?} (whole word: {whole})"
            );
        }
    }

    fn filter(action: FilterAction, context: Vec<FilterContext>, expires: Option<u64>) -> Filter {
        Filter {
            id: Id(1),
            account_id: Id(2),
            title: "t".into(),
            context,
            action,
            expires_at_ms: expires,
            keywords: vec![FilterKeyword {
                id: Id(3),
                keyword: "spoiler".into(),
                whole_word: true,
            }],
            statuses: vec![FilterStatus {
                id: Id(4),
                status_id: Id(99),
            }],
        }
    }

    #[test]
    fn only_active_filters_of_the_context_hit() {
        let home = vec![FilterContext::Home];
        let live = filter(FilterAction::Warn, home.clone(), None);
        let expired = filter(FilterAction::Hide, home.clone(), Some(1_000));
        let later = filter(FilterAction::Hide, home.clone(), Some(3_000));
        let all = [live, expired, later];
        let found = hits(&all, FilterContext::Home, 2_000, "a spoiler", &[Id(5)]);
        assert_eq!(
            found.iter().map(|h| h.filter).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert_eq!(found[0].keywords, vec!["spoiler".to_owned()]);
        assert!(hits(&all, FilterContext::Public, 2_000, "a spoiler", &[Id(5)]).is_empty());
        assert!(hits(&all, FilterContext::Home, 2_000, "spoilers", &[Id(5)]).is_empty());
        // A filtered status matches itself or what reblogs it.
        let by_status = hits(&all, FilterContext::Home, 2_000, "plain", &[Id(7), Id(99)]);
        assert_eq!(by_status[0].statuses, vec![Id(4)]);
        assert!(by_status[0].keywords.is_empty());
    }
}
