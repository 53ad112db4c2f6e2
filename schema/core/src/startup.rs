//! What the start-up endpoints keep per user or per instance: read markers, content
//! filters and announcements, with the input rules every backend applies before writing.

use serde::{Deserialize, Serialize};

use crate::Id;
use crate::error::Invalid;

/// Most filters one account may keep.
pub const MAX_FILTERS: usize = 100;
/// Most keywords (and, separately, most statuses) one filter may hold.
pub const MAX_FILTER_KEYWORDS: usize = 100;
pub const FILTER_TITLE_MAX_CHARS: usize = 256;
pub const FILTER_KEYWORD_MAX_CHARS: usize = 512;
pub const ANNOUNCEMENT_MAX_CHARS: usize = 5_000;
/// Most announcements kept at once.
pub const MAX_ANNOUNCEMENTS: usize = 1_000;

/// The timelines a read marker can be kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerTimeline {
    Home,
    Notifications,
}

impl MarkerTimeline {
    pub const ALL: [MarkerTimeline; 2] = [MarkerTimeline::Home, MarkerTimeline::Notifications];

    pub fn as_str(self) -> &'static str {
        match self {
            MarkerTimeline::Home => "home",
            MarkerTimeline::Notifications => "notifications",
        }
    }

    pub fn parse(s: &str) -> Option<MarkerTimeline> {
        Some(match s {
            "home" => MarkerTimeline::Home,
            "notifications" => MarkerTimeline::Notifications,
            _ => return None,
        })
    }
}

/// Where a user stopped reading a timeline. `version` counts the updates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub timeline: MarkerTimeline,
    pub last_read_id: Id,
    pub version: u64,
    pub updated_at_ms: u64,
}

/// Where a filter applies (Mastodon's filter contexts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterContext {
    Home,
    Notifications,
    Public,
    Thread,
    Account,
}

impl FilterContext {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterContext::Home => "home",
            FilterContext::Notifications => "notifications",
            FilterContext::Public => "public",
            FilterContext::Thread => "thread",
            FilterContext::Account => "account",
        }
    }

    pub fn parse(s: &str) -> Option<FilterContext> {
        Some(match s {
            "home" => FilterContext::Home,
            "notifications" => FilterContext::Notifications,
            "public" => FilterContext::Public,
            "thread" => FilterContext::Thread,
            "account" => FilterContext::Account,
            _ => return None,
        })
    }
}

/// What a matching filter does: show the status behind a warning, or hide it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterAction {
    #[default]
    Warn,
    Hide,
}

impl FilterAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterAction::Warn => "warn",
            FilterAction::Hide => "hide",
        }
    }

    pub fn parse(s: &str) -> Option<FilterAction> {
        Some(match s {
            "warn" => FilterAction::Warn,
            "hide" => FilterAction::Hide,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterKeyword {
    pub id: Id,
    pub keyword: String,
    pub whole_word: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterStatus {
    pub id: Id,
    pub status_id: Id,
}

/// A user's content filter with its keywords and statuses, stored whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub id: Id,
    pub account_id: Id,
    pub title: String,
    pub context: Vec<FilterContext>,
    pub action: FilterAction,
    pub expires_at_ms: Option<u64>,
    pub keywords: Vec<FilterKeyword>,
    pub statuses: Vec<FilterStatus>,
}

impl Filter {
    /// Whether the filter is in force at `now_ms` (an expired filter never applies).
    pub fn active_at(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| at > now_ms)
    }
}

/// A filter to create (`id: None`) or to replace whole. Keywords and statuses without an id
/// are new; the store mints their ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterDraft {
    pub id: Option<Id>,
    pub title: String,
    pub context: Vec<FilterContext>,
    pub action: FilterAction,
    pub expires_at_ms: Option<u64>,
    pub keywords: Vec<KeywordDraft>,
    pub statuses: Vec<StatusDraft>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeywordDraft {
    pub id: Option<Id>,
    pub keyword: String,
    pub whole_word: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusDraft {
    pub id: Option<Id>,
    pub status_id: Id,
}

impl FilterDraft {
    /// The rules every backend applies before writing a filter.
    pub fn validate(&self) -> Result<(), Invalid> {
        let title = self.title.trim();
        if title.is_empty() {
            return Err(Invalid::new("title", "can't be blank"));
        }
        if title.chars().count() > FILTER_TITLE_MAX_CHARS {
            return Err(Invalid::new(
                "title",
                format!("is too long (at most {FILTER_TITLE_MAX_CHARS} characters)"),
            ));
        }
        if self.context.is_empty() {
            return Err(Invalid::new("context", "can't be blank"));
        }
        if self.keywords.len() > MAX_FILTER_KEYWORDS {
            return Err(Invalid::new(
                "keywords",
                format!("at most {MAX_FILTER_KEYWORDS} per filter"),
            ));
        }
        if self.statuses.len() > MAX_FILTER_KEYWORDS {
            return Err(Invalid::new(
                "statuses",
                format!("at most {MAX_FILTER_KEYWORDS} per filter"),
            ));
        }
        for k in &self.keywords {
            let n = k.keyword.trim().chars().count();
            if n == 0 {
                return Err(Invalid::new("keyword", "can't be blank"));
            }
            if n > FILTER_KEYWORD_MAX_CHARS {
                return Err(Invalid::new(
                    "keyword",
                    format!("is too long (at most {FILTER_KEYWORD_MAX_CHARS} characters)"),
                ));
            }
        }
        Ok(())
    }
}

/// A message from the operators to every user, shown by apps at start-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub id: Id,
    /// Plain text; rendered as HTML when served.
    pub text: String,
    pub starts_at_ms: Option<u64>,
    pub ends_at_ms: Option<u64>,
    pub all_day: bool,
    pub published_at_ms: u64,
    pub updated_at_ms: u64,
}

impl Announcement {
    /// Whether it is shown at `now_ms`: published, not yet ended.
    pub fn current_at(&self, now_ms: u64) -> bool {
        self.ends_at_ms.is_none_or(|end| end > now_ms)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAnnouncement {
    pub text: String,
    pub starts_at_ms: Option<u64>,
    pub ends_at_ms: Option<u64>,
    pub all_day: bool,
}

impl NewAnnouncement {
    pub fn validate(&self) -> Result<(), Invalid> {
        let n = self.text.trim().chars().count();
        if n == 0 {
            return Err(Invalid::new("text", "can't be blank"));
        }
        if n > ANNOUNCEMENT_MAX_CHARS {
            return Err(Invalid::new(
                "text",
                format!("is too long (at most {ANNOUNCEMENT_MAX_CHARS} characters)"),
            ));
        }
        if let (Some(s), Some(e)) = (self.starts_at_ms, self.ends_at_ms)
            && e <= s
        {
            return Err(Invalid::new("ends_at", "must be after starts_at"));
        }
        Ok(())
    }
}
