//! Apps and tokens: `POST /api/v1/apps`, `GET /api/v1/apps/verify_credentials`,
//! `POST /oauth/token` (authorization code with PKCE, password and client credentials
//! grants), `POST /oauth/revoke`, `GET /oauth/userinfo`.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use starling_schema::model::{App, NewApp, NewToken};
use starling_schema::{ErrorKind, ids::now_ms};
use starling_store::Store;

use super::{parse_scopes, scopes_within};
use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AnyToken, Auth, Body, one_or_many};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/apps", web::post().to(create_app))
        .route("/oauth/token", web::post().to(token))
        .route("/oauth/revoke", web::post().to(revoke))
        .route("/api/v1/apps/verify_credentials", web::get().to(verify_app))
        .route("/oauth/userinfo", web::get().to(userinfo))
        .route("/oauth/userinfo", web::post().to(userinfo));
}

fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> ApiError {
    ApiError::oauth(status, error, description)
}

#[derive(Deserialize)]
struct AppForm {
    client_name: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    redirect_uris: Vec<String>,
    scopes: Option<String>,
    website: Option<String>,
}

fn app_json(app: &App, client_secret: Option<&str>) -> serde_json::Value {
    let redirect = app.redirect_uris.join("\n");
    json!({
        "id": app.id.to_string(),
        "name": app.name,
        "website": app.website,
        "scopes": app.scopes,
        "redirect_uri": redirect,
        "redirect_uris": app.redirect_uris,
        "client_id": app.client_id,
        "client_secret": client_secret,
        "vapid_key": "",
    })
}

async fn create_app(api: web::Data<Api>, Body(form): Body<AppForm>) -> ApiResult<HttpResponse> {
    let scopes = parse_scopes(form.scopes.as_deref(), &["read".to_owned()])?;
    let redirect_uris = form
        .redirect_uris
        .iter()
        .flat_map(|u| u.split_whitespace())
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let redirect_uris = if redirect_uris.is_empty() {
        vec!["urn:ietf:wg:oauth:2.0:oob".to_owned()]
    } else {
        redirect_uris
    };
    let issued = api
        .store
        .create_app(NewApp {
            name: form.client_name.unwrap_or_default(),
            website: form.website.filter(|w| !w.is_empty()),
            redirect_uris,
            scopes,
        })
        .await?;
    Ok(HttpResponse::Ok().json(app_json(&issued.app, Some(&issued.client_secret))))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    username: Option<String>,
    password: Option<String>,
    scope: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

/// Client credentials from `Authorization: Basic` (RFC 6749 section 2.3.1: each part
/// form-encoded, then base64), if the request carries them.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        let pairs: Vec<(String, String)> = serde_html_form::from_str(&format!("v={s}")).ok()?;
        pairs.into_iter().next().map(|(_, v)| v)
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// The app presenting the request: HTTP Basic first, else `client_id` and `client_secret`
/// in the body.
async fn authenticate_client(
    api: &Api,
    req: &HttpRequest,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> ApiResult<App> {
    let (id, secret) = match basic_credentials(req) {
        Some(pair) => pair,
        None => match (form_id, form_secret) {
            (Some(i), Some(s)) if !i.is_empty() && !s.is_empty() => (i.to_owned(), s.to_owned()),
            _ => {
                return Err(oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Client authentication failed due to unknown client, no client \
                     authentication included, or unsupported authentication method.",
                ));
            }
        },
    };
    api.store
        .verify_app(&id, &secret)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::Unauthorized => oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed due to unknown client, no client \
                 authentication included, or unsupported authentication method.",
            ),
            _ => ApiError::from(e),
        })
}

fn invalid_grant() -> ApiError {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_grant",
        "The provided authorization grant is invalid, expired, revoked, does not match the \
         redirection URI used in the authorization request, or was issued to another client.",
    )
}

/// RFC 7636 section 4.6: does `verifier` answer `challenge` by `method`?
fn pkce_matches(method: &str, challenge: &str, verifier: &str) -> bool {
    let shaped = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !shaped {
        return false;
    }
    let computed = match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        "plain" => verifier.to_owned(),
        _ => return false,
    };
    computed.as_bytes().ct_eq(challenge.as_bytes())
}

/// Constant-time equality for secrets compared with what the client sent.
trait CtEq {
    fn ct_eq(&self, other: &[u8]) -> bool;
}

impl CtEq for [u8] {
    fn ct_eq(&self, other: &[u8]) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

async fn token(
    api: web::Data<Api>,
    req: HttpRequest,
    Body(form): Body<TokenForm>,
) -> ApiResult<HttpResponse> {
    let grant = match form.grant_type.as_deref() {
        Some(g @ ("authorization_code" | "password" | "client_credentials")) => g,
        Some(other) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!(
                    "The authorization grant type {other} is not supported by the authorization server."
                ),
            ));
        }
        None => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is missing a required parameter: grant_type.",
            ));
        }
    };
    let app = authenticate_client(
        &api,
        &req,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    let (account_id, scopes) = match grant {
        "authorization_code" => {
            let code = form
                .code
                .as_deref()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "The request is missing a required parameter: code.",
                    )
                })?;
            // Taken before any other check: a code is spent by its first exchange, right or
            // wrong, so a stolen code cannot be tried against guessed verifiers.
            let grant = api
                .store
                .take_auth_code(code)
                .await?
                .ok_or_else(invalid_grant)?;
            if grant.client_id != app.client_id
                || form
                    .redirect_uri
                    .as_deref()
                    .is_some_and(|u| u != grant.redirect_uri)
                || (form.redirect_uri.is_none() && app.redirect_uris.len() != 1)
            {
                return Err(invalid_grant());
            }
            match (&grant.code_challenge, form.code_verifier.as_deref()) {
                (Some(challenge), Some(verifier)) => {
                    let method = grant.code_challenge_method.as_deref().unwrap_or("plain");
                    if !pkce_matches(method, challenge, verifier) {
                        return Err(invalid_grant());
                    }
                }
                (Some(_), None) => {
                    return Err(oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "The request is missing a required parameter: code_verifier.",
                    ));
                }
                (None, Some(_)) => return Err(invalid_grant()),
                (None, None) => {}
            }
            (Some(grant.account_id), grant.scopes)
        }
        _ => {
            let scopes = parse_scopes(form.scope.as_deref(), &app.scopes)?;
            if !scopes_within(&scopes, &app.scopes) {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "The requested scope is invalid, unknown, or malformed: the app was not \
                     registered for it.",
                ));
            }
            if grant == "client_credentials" {
                (None, scopes)
            } else {
                (Some(password_grant(&api, &req, &form).await?), scopes)
            }
        }
    };
    if let Some(id) = account_id {
        match api.account(id).await? {
            Some(a) if !a.suspended => {}
            Some(_) => return Err(ApiError::forbidden("Your login is currently disabled")),
            None => return Err(invalid_grant()),
        }
    }
    let issued = api
        .store
        .issue_token(NewToken {
            account_id,
            app_id: Some(app.id),
            scopes: scopes.clone(),
            expires_at_ms: None,
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "access_token": issued.token,
            "token_type": "Bearer",
            "scope": scopes.join(" "),
            "created_at": now_ms() / 1000,
        })))
}

async fn password_grant(
    api: &Api,
    req: &HttpRequest,
    form: &TokenForm,
) -> ApiResult<starling_schema::Id> {
    let (Some(username), Some(password)) = (form.username.as_deref(), form.password.as_deref())
    else {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing a required parameter: username and password.",
        ));
    };
    // Clients may send `@name`, `name@domain` or, as to Mastodon, the email address.
    let username = super::sign_in_name(api, username).await?;
    let _permit = crate::ratelimit::sign_in_attempt(api, req, &username).await?;
    let account = api
        .store
        .verify_password(&username, password)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::Unauthorized => invalid_grant(),
            _ => ApiError::from(e),
        })?;
    Ok(account.id)
}

#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn revoke(
    api: web::Data<Api>,
    req: HttpRequest,
    Body(form): Body<RevokeForm>,
) -> ApiResult<HttpResponse> {
    if basic_credentials(&req).is_some() || form.client_id.is_some() || form.client_secret.is_some()
    {
        authenticate_client(
            &api,
            &req,
            form.client_id.as_deref(),
            form.client_secret.as_deref(),
        )
        .await?;
    }
    let token = form.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is missing a required parameter: token.",
        )
    })?;
    let hash = starling_store::token_digest(&token);
    // RFC 7009: revoking an unknown token is not an error.
    if api.store.revoke_token(&hash).await? {
        api.revoked(hash).await;
    }
    Ok(HttpResponse::Ok().json(json!({})))
}

/// `GET /api/v1/apps/verify_credentials`: the app a token belongs to (no secrets).
async fn verify_app(api: web::Data<Api>, AnyToken(token): AnyToken) -> ApiResult<HttpResponse> {
    let app = match token.app_id {
        Some(id) => api.store.app_by_id(id).await?,
        None => None,
    };
    let app = app.ok_or_else(|| ApiError::unauthorized("The access token is invalid"))?;
    Ok(HttpResponse::Ok().json(json!({
        "id": app.id.to_string(),
        "name": app.name,
        "website": app.website,
        "scopes": token.scopes,
        "redirect_uri": app.redirect_uris.join("\n"),
        "redirect_uris": app.redirect_uris,
        "vapid_key": "",
    })))
}

/// `GET /oauth/userinfo`: who the token's user is, in OpenID Connect's claims as
/// Mastodon 4.4 answers them.
async fn userinfo(api: web::Data<Api>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let presented = crate::extract::bearer(&req);
    let auth: Auth =
        crate::extract::authenticate_token(&api, presented.as_deref(), crate::scopes::PROFILE)
            .await?
            .ok_or_else(|| ApiError::unauthorized("The access token is invalid"))?;
    let account = &auth.account;
    let base = api.base_url();
    let url = format!("{base}/@{}", account.username);
    Ok(HttpResponse::Ok().json(json!({
        "iss": format!("{base}/"),
        "sub": format!("{base}/users/{}", account.username),
        "name": account.display_name,
        "preferred_username": account.username,
        "profile": url,
        "picture": format!("{base}/avatars/original/missing.png"),
    })))
}
