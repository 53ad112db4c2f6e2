//! Mastodon's cursors: `max_id`, `since_id`, `min_id`, `limit`, and the Link header that
//! points at the next (older) and previous (newer) pages, next first.

use actix_web::HttpRequest;
use serde::Deserialize;
use starling_schema::Id;
use starling_schema::model::{Order, Window};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 40;

#[derive(Deserialize, Default)]
pub struct PageParams {
    pub max_id: Option<String>,
    pub since_id: Option<String>,
    pub min_id: Option<String>,
    pub limit: Option<String>,
}

fn parse_id(name: &str, v: &Option<String>) -> Result<Option<Id>, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{name} must be an id"))),
    }
}

/// How to read a page and whether to reverse it before answering (min_id reads oldest
/// first, but the page is still shown newest first).
pub struct Cursor {
    pub window: Window,
    pub reverse: bool,
}

impl PageParams {
    pub fn cursor(&self) -> Result<Cursor, ApiError> {
        self.cursor_with(DEFAULT_LIMIT, MAX_LIMIT)
    }

    pub fn cursor_with(&self, default: usize, max: usize) -> Result<Cursor, ApiError> {
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => default,
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("limit must be a number"))?
                .clamp(1, max),
        };
        let below = parse_id("max_id", &self.max_id)?;
        let since = parse_id("since_id", &self.since_id)?;
        let min = parse_id("min_id", &self.min_id)?;
        let (above, order) = match (min, since) {
            (Some(min), _) => (Some(min), Order::OldestFirst),
            (None, since) => (since, Order::NewestFirst),
        };
        Ok(Cursor {
            window: Window {
                above,
                below,
                order,
                limit,
            },
            reverse: order == Order::OldestFirst,
        })
    }
}

/// `Link: <...max_id=OLDEST>; rel="next", <...min_id=NEWEST>; rel="prev"` for a page whose
/// ids run from `newest` to `oldest`, keeping the request's other query parameters.
pub fn link_header(req: &HttpRequest, newest: Id, oldest: Id) -> String {
    let info = req.connection_info();
    let base = format!("{}://{}{}", info.scheme(), info.host(), req.path());
    let keep: Vec<(String, String)> =
        serde_html_form::from_str::<Vec<(String, String)>>(req.query_string())
            .unwrap_or_default()
            .into_iter()
            // The token may come as `?access_token=`: never echo it into a header that
            // proxies and clients log.
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "max_id" | "since_id" | "min_id" | "access_token"
                )
            })
            .collect();
    let url = |key: &str, id: Id| {
        let mut params = keep.clone();
        params.push((key.to_owned(), id.to_string()));
        let query = serde_html_form::to_string(&params).unwrap_or_default();
        format!("{base}?{query}")
    };
    format!(
        "<{}>; rel=\"next\", <{}>; rel=\"prev\"",
        url("max_id", oldest),
        url("min_id", newest)
    )
}
