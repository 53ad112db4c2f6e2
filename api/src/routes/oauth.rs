//! Apps and tokens: `POST /api/v1/apps`, `POST /oauth/token` (password and
//! client_credentials grants), `POST /oauth/revoke`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use starling_schema::model::{App, NewApp, NewToken};
use starling_schema::{ErrorKind, ids::now_ms};
use starling_store::Store;

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, one_or_many};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/apps", web::post().to(create_app))
        .route("/oauth/token", web::post().to(token))
        .route("/oauth/revoke", web::post().to(revoke));
}

const KNOWN_SCOPES: &[&str] = &["read", "write", "follow", "push", "admin", "profile"];

/// Scopes from a space-separated string; each must be a known scope or `family:detail`.
fn parse_scopes(raw: Option<&str>) -> ApiResult<Vec<String>> {
    let raw = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("read");
    let scopes: Vec<String> = raw.split_whitespace().map(str::to_owned).collect();
    for s in &scopes {
        let family = s.split(':').next().unwrap_or(s);
        if !KNOWN_SCOPES.contains(&family) {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                &format!("unknown scope {s}"),
            ));
        }
    }
    Ok(scopes)
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> ApiError {
    ApiError {
        kind: ErrorKind::Invalid,
        message: format!("{error}: {description}"),
        status: Some(status),
    }
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
    let scopes = parse_scopes(form.scopes.as_deref())?;
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
}

async fn token(
    req: actix_web::HttpRequest,
    api: web::Data<Api>,
    Body(form): Body<TokenForm>,
) -> ApiResult<HttpResponse> {
    let (Some(client_id), Some(client_secret)) =
        (form.client_id.as_deref(), form.client_secret.as_deref())
    else {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id and client_secret are required",
        ));
    };
    let app = api
        .store
        .verify_app(client_id, client_secret)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::Unauthorized => oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client or wrong secret",
            ),
            _ => ApiError::from(e),
        })?;
    let scopes = match form.scope.as_deref() {
        Some(s) if !s.trim().is_empty() => parse_scopes(Some(s))?,
        _ => app.scopes.clone(),
    };
    let allowed = |s: &String| {
        let family = s.split(':').next().unwrap_or(s);
        app.scopes.iter().any(|a| a == s || a == family)
    };
    if !scopes.iter().all(allowed) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "the app was not registered for these scopes",
        ));
    }
    let account_id = match form.grant_type.as_deref() {
        Some("password") => {
            let (Some(username), Some(password)) =
                (form.username.as_deref(), form.password.as_deref())
            else {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                ));
            };
            // Clients may send `@name` or `name@domain`.
            let username = username.trim_start_matches('@');
            let username = username.split('@').next().unwrap_or(username);
            let _permit = crate::ratelimit::sign_in_attempt(&api, &req, username).await?;
            let account = api
                .store
                .verify_password(username, password)
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::Unauthorized => oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the username or password is wrong",
                    ),
                    _ => ApiError::from(e),
                })?;
            if account.suspended {
                return Err(ApiError::forbidden("Your login is currently disabled"));
            }
            Some(account.id)
        }
        Some("client_credentials") => None,
        Some(other) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant type {other} is not supported"),
            ));
        }
        None => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            ));
        }
    };
    let issued = api
        .store
        .issue_token(NewToken {
            account_id,
            app_id: Some(app.id),
            scopes: scopes.clone(),
            expires_at_ms: None,
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "access_token": issued.token,
        "token_type": "Bearer",
        "scope": scopes.join(" "),
        "created_at": now_ms() / 1000,
    })))
}

#[derive(Deserialize)]
struct RevokeForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

async fn revoke(api: web::Data<Api>, Body(form): Body<RevokeForm>) -> ApiResult<HttpResponse> {
    if let (Some(id), Some(secret)) = (form.client_id.as_deref(), form.client_secret.as_deref()) {
        api.store
            .verify_app(id, secret)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::Unauthorized => oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client or wrong secret",
                ),
                _ => ApiError::from(e),
            })?;
    }
    let token = form
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid("token is required"))?;
    let hash = starling_store::token_digest(&token);
    // RFC 7009: revoking an unknown token is not an error.
    if api.store.revoke_token(&hash).await? {
        api.revoked(hash).await;
    }
    Ok(HttpResponse::Ok().json(json!({})))
}
