//! Request bodies with nested parameters, as Rails reads them: `home[last_read_id]=1`,
//! `context[]=home`, `keywords_attributes[][keyword]=a&keywords_attributes[][whole_word]=1`,
//! `keywords_attributes[0][keyword]=a`, or the same as JSON. Both arrive as one JSON value.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A body (JSON or form-encoded, also the query string when the body is empty) as a JSON
/// object with nested parameters unfolded.
pub struct Fields(pub Value);

impl FromRequest for Fields {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let query = req.query_string().to_owned();
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes =
                bytes
                    .await
                    .map_err(|e| match e.as_error::<actix_web::error::PayloadError>() {
                        Some(actix_web::error::PayloadError::Overflow) => ApiError::too_large(),
                        _ => ApiError::invalid(format!("Could not read the request body: {e}")),
                    })?;
            let blank = bytes.iter().all(u8::is_ascii_whitespace);
            if content_type.starts_with("application/json") && !blank {
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}")))?;
                if !v.is_object() {
                    return Err(ApiError::invalid(
                        "Invalid request body: expected an object",
                    ));
                }
                return Ok(Fields(v));
            }
            if content_type.starts_with("multipart/") {
                return Err(ApiError::unsupported_media(
                    "multipart bodies are not accepted here; send form-encoded or JSON",
                ));
            }
            let text = if blank {
                query
            } else {
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| ApiError::invalid("Invalid request body: not UTF-8"))?
            };
            parse_form(&text).map(Fields)
        })
    }
}

/// Most pairs one form may carry.
const MAX_PAIRS: usize = 2_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 4;

/// Unfold a form-encoded string into a JSON object.
pub fn parse_form(text: &str) -> Result<Value, ApiError> {
    let pairs: Vec<(String, String)> = serde_html_form::from_str(text)
        .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}")))?;
    if pairs.len() > MAX_PAIRS {
        return Err(ApiError::invalid(format!(
            "Invalid request body: more than {MAX_PAIRS} parameters"
        )));
    }
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let segments = split_key(&key)?;
        insert(&mut root, &segments, value);
    }
    Ok(root)
}

/// `a[b][][c]` → `["a", "b", "", "c"]`.
fn split_key(key: &str) -> Result<Vec<String>, ApiError> {
    let bad = || ApiError::invalid(format!("Invalid parameter name {key:?}"));
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return Err(bad());
    }
    let mut out = vec![head.to_owned()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(bad)?;
        let close = inner.find(']').ok_or_else(bad)?;
        out.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
        if out.len() > MAX_DEPTH {
            return Err(bad());
        }
    }
    Ok(out)
}

fn insert(node: &mut Value, segments: &[String], value: String) {
    let Some((seg, rest)) = segments.split_first() else {
        *node = Value::String(value);
        return;
    };
    if seg.is_empty() {
        if !node.is_array() {
            *node = Value::Array(Vec::new());
        }
        let Value::Array(items) = node else { return };
        match rest.first() {
            None => items.push(Value::String(value)),
            Some(next) => {
                // `list[][a]=1&list[][b]=2&list[][a]=3`: a repeated key starts a new item.
                let reuse = items
                    .last()
                    .and_then(Value::as_object)
                    .is_some_and(|o| !o.contains_key(next.as_str()));
                if !reuse {
                    items.push(Value::Object(Map::new()));
                }
                if let Some(last) = items.last_mut() {
                    insert(last, rest, value);
                }
            }
        }
        return;
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Value::Object(map) = node {
        let child = map.entry(seg.clone()).or_insert(Value::Null);
        insert(child, rest, value);
    }
}

/// A list parameter as JSON or a form gives it: an array, an object keyed by index
/// (`list[0][a]`), or one value.
pub fn list(v: Option<&Value>) -> Vec<Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Object(map)) if map.keys().all(|k| k.parse::<usize>().is_ok()) => {
            let mut entries: Vec<(usize, Value)> = map
                .iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
                .collect();
            entries.sort_by_key(|(i, _)| *i);
            entries.into_iter().map(|(_, v)| v).collect()
        }
        Some(other) => vec![other.clone()],
    }
}

/// A string parameter (numbers and booleans as their text).
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A boolean parameter as clients send it (`true`, `1`, `"True"`, `"on"`...).
pub fn boolean(name: &str, v: Option<&Value>) -> Result<Option<bool>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => Ok(Some(n.as_f64() != Some(0.0))),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" | "t" => Ok(Some(true)),
            "false" | "0" | "off" | "no" | "f" | "" => Ok(Some(false)),
            _ => Err(ApiError::invalid(format!("{name} must be a boolean"))),
        },
        Some(_) => Err(ApiError::invalid(format!("{name} must be a boolean"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rails_style_forms_unfold() {
        let v = parse_form(
            "title=t&context[]=home&context[]=public&keywords_attributes[][keyword]=a\
             &keywords_attributes[][whole_word]=1&keywords_attributes[][keyword]=b\
             &home[last_read_id]=5",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "title": "t",
                "context": ["home", "public"],
                "keywords_attributes": [{"keyword": "a", "whole_word": "1"}, {"keyword": "b"}],
                "home": {"last_read_id": "5"},
            })
        );
        let indexed = parse_form("k[1][keyword]=b&k[0][keyword]=a").unwrap();
        let items = list(indexed.get("k"));
        assert_eq!(
            items,
            vec![json!({"keyword": "a"}), json!({"keyword": "b"})]
        );
        assert!(parse_form("a[b=1").is_err());
        assert!(parse_form("[x]=1").is_err());
        assert!(parse_form("a[1][2][3][4][5]=1").is_err());
    }
}
