//! Request extractors: Mastodon bodies (form, JSON, `key[]=` arrays, loose booleans),
//! query strings with arrays, and bearer-token authentication.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use starling_schema::model::{Account, TokenInfo};

use crate::Api;
use crate::error::ApiError;
use crate::scopes::{self, Need};

/// A request body, parsed by its content type: JSON, or form-encoded (also when the type is
/// missing). `key[]=a&key[]=b` arrays work in forms.
pub struct Body<T>(pub T);

/// The request's `Content-Type`, as sent (empty when missing).
pub(crate) fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The whole body, within `max_body_bytes` (413 beyond it).
pub(crate) async fn body_bytes(
    bytes: impl Future<Output = Result<web::Bytes, actix_web::Error>>,
) -> Result<web::Bytes, ApiError> {
    bytes
        .await
        .map_err(|e| match e.as_error::<actix_web::error::PayloadError>() {
            Some(actix_web::error::PayloadError::Overflow) => ApiError::too_large(),
            _ => ApiError::invalid(format!("Could not read the request body: {e}")),
        })
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_raw = content_type(req);
        let content_type = content_type_raw.to_ascii_lowercase();
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = body_bytes(bytes).await?;
            let parsed = if content_type.starts_with("application/json") {
                let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
                    b"{}"
                } else {
                    &bytes
                };
                serde_json::from_slice(bytes).map_err(|e| e.to_string())
            } else if content_type.starts_with("multipart/") {
                let fields = multipart_fields(&content_type_raw, bytes).await?;
                serde_html_form::to_string(&fields)
                    .map_err(|e| e.to_string())
                    .and_then(|form| serde_html_form::from_str(&form).map_err(|e| e.to_string()))
            } else {
                serde_html_form::from_bytes(&bytes).map_err(|e| e.to_string())
            };
            parsed
                .map(Body)
                .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}")))
        })
    }
}

/// The text fields of a `multipart/form-data` body, in order (`key[]` repeats as in forms).
/// File parts are refused: nothing here takes uploads yet.
pub(crate) async fn multipart_fields(
    content_type: &str,
    bytes: web::Bytes,
) -> Result<Vec<(String, String)>, ApiError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| ApiError::invalid(format!("Invalid multipart body: {e}")))?;
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    loop {
        let field = parts
            .next_field()
            .await
            .map_err(|e| ApiError::invalid(format!("Invalid multipart body: {e}")))?;
        let Some(field) = field else {
            return Ok(fields);
        };
        if field.file_name().is_some() {
            return Err(ApiError::unsupported_media(
                "file uploads are not accepted here",
            ));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let value = field
            .text()
            .await
            .map_err(|e| ApiError::invalid(format!("Invalid multipart body: {e}")))?;
        fields.push((name, value));
    }
}

/// A query string, with `key[]=` arrays.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            serde_html_form::from_str(req.query_string())
                .map(Query)
                .map_err(|e| ApiError::invalid(format!("Invalid query: {e}"))),
        )
    }
}

/// Booleans as clients send them: `true`, `1`, `"True"`, `"on"`...
pub fn flex_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v != 0))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v != 0))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "on" | "yes" => Ok(Some(true)),
                "false" | "0" | "off" | "no" | "" => Ok(Some(false)),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
    }
    d.deserialize_any(V)
}

/// One value or a list of them (`id=1`, `id[]=1&id[]=2`, `"id": [1, 2]`).
pub fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Num(u64),
        Many(Vec<StringOrNum>),
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum StringOrNum {
        S(String),
        N(u64),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Num(n) => vec![n.to_string()],
        OneOrMany::Many(v) => v
            .into_iter()
            .map(|x| match x {
                StringOrNum::S(s) => s,
                StringOrNum::N(n) => n.to_string(),
            })
            .collect(),
    })
}

/// The bearer token of a request, from `Authorization: Bearer` or `?access_token=`.
pub fn bearer(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = value.splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
        {
            let token = token.trim();
            if !token.is_empty() {
                return Some(token.to_owned());
            }
        }
    }
    #[derive(Deserialize)]
    struct Q {
        access_token: Option<String>,
    }
    serde_html_form::from_str::<Q>(req.query_string())
        .ok()
        .and_then(|q| q.access_token)
}

fn api(req: &HttpRequest) -> Result<web::Data<Api>, ApiError> {
    req.app_data::<web::Data<Api>>().cloned().ok_or_else(|| {
        ApiError::new(
            starling_schema::ErrorKind::Internal,
            "internal server error",
        )
    })
}

/// A request made with a valid token of any kind (user or app-only).
pub struct AnyToken(pub Arc<TokenInfo>);

/// A request made by a signed-in user, with a token that grants the route's scope.
pub struct Auth {
    pub account: Arc<Account>,
    pub token: Arc<TokenInfo>,
}

/// A request that may be signed in.
pub struct MaybeAuth(pub Option<Auth>);

async fn token_info(api: &Api, req: &HttpRequest) -> Result<Option<Arc<TokenInfo>>, ApiError> {
    match bearer(req) {
        Some(token) => api.token(&token).await,
        None => Ok(None),
    }
}

/// What the route that `req` matched needs of a token.
fn need(req: &HttpRequest) -> Need {
    scopes::needed(req.method(), req.match_pattern().as_deref())
}

/// The presented token, if it is valid and grants `need`; `None` when none was presented.
async fn granting_token(
    api: &Api,
    presented: Option<&str>,
    need: Need,
) -> Result<Option<Arc<TokenInfo>>, ApiError> {
    let Some(presented) = presented else {
        return Ok(None);
    };
    let Some(token) = api.token(presented).await? else {
        return Err(ApiError::unauthorized("The access token is invalid"));
    };
    if !need.granted_by(&token.scopes) {
        return Err(ApiError::forbidden(
            "This action is outside the authorized scopes",
        ));
    }
    Ok(Some(token))
}

/// The signed-in user of a presented token that grants `need` (`None` when no token was
/// presented). An app-only token is refused: the caller needs a user.
pub async fn authenticate_token(
    api: &Api,
    presented: Option<&str>,
    need: Need,
) -> Result<Option<Auth>, ApiError> {
    match granting_token(api, presented, need).await? {
        Some(token) => user_of(api, token).await.map(Some),
        None => Ok(None),
    }
}

async fn user_of(api: &Api, token: Arc<TokenInfo>) -> Result<Auth, ApiError> {
    let Some(account_id) = token.account_id else {
        return Err(ApiError::forbidden(
            "This action requires a user token, not an app token",
        ));
    };
    let account = api
        .account(account_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("The access token is invalid"))?;
    if account.suspended {
        return Err(ApiError::forbidden("Your login is currently disabled"));
    }
    Ok(Auth { account, token })
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let api = api(&req)?;
            authenticate_token(&api, bearer(&req).as_deref(), need(&req))
                .await?
                .ok_or_else(|| ApiError::unauthorized("The access token is invalid"))
        })
    }
}

impl FromRequest for MaybeAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let api = api(&req)?;
            // An app-only token reads what anonymous readers may (Mastodon's
            // `authorize_if_got_token!`); a user token reads as its user.
            match granting_token(&api, bearer(&req).as_deref(), need(&req)).await? {
                Some(token) if token.account_id.is_some() => {
                    Ok(MaybeAuth(Some(user_of(&api, token).await?)))
                }
                _ => Ok(MaybeAuth(None)),
            }
        })
    }
}

impl FromRequest for AnyToken {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let api = api(&req)?;
            token_info(&api, &req)
                .await?
                .map(AnyToken)
                .ok_or_else(|| ApiError::unauthorized("The access token is invalid"))
        })
    }
}
