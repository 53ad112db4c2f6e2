//! The authorization endpoint and the pages a person sees on it.
//!
//! `GET /oauth/authorize` checks the request in Doorkeeper's order (client, redirect URI,
//! response type, scopes, PKCE). An unknown client or a redirect URI the client did not
//! register gets an error page and never a redirect, so the server cannot be made to send
//! a browser anywhere an app's owner did not register; other errors go back to the app as
//! `?error=...` (or on the page for the out-of-band URI). A valid request shows the login
//! page without a session (or with `force_login`), else the consent page. Its form posts
//! to `POST /oauth/authorize`, which checks the request again, then redirects with a code
//! or `error=access_denied`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use starling_schema::ids::now_ms;
use starling_schema::model::{App, AuthCode};
use starling_store::Store;

use super::pages::{self, Consent, Login, Message, ScopeLine};
use super::session::Session;
use super::{CODE_TTL_MS, parse_scopes, scopes_within};
use crate::Api;

pub const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";
/// Largest form the pages accept: far above any real one, far below the API's body limit.
const MAX_FORM_BYTES: usize = 16 * 1024;
const MAX_STATE: usize = 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/authorize", web::get().to(show))
        .route("/oauth/authorize", web::post().to(decide))
        .route("/auth/sign_in", web::post().to(sign_in))
        .route("/auth/sign_out", web::post().to(sign_out));
}

/// An authorization request, from the query string or the consent form.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Params {
    #[serde(skip_serializing_if = "Option::is_none")]
    response_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_challenge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_challenge_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    force_login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<String>,
}

/// A request that passed every check.
struct Checked {
    app: App,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    /// (challenge, method)
    challenge: Option<(String, String)>,
}

/// Why a request is refused, and where the refusal goes.
enum Refusal {
    /// Shown on an error page: the app cannot be trusted with a redirect.
    Page {
        status: StatusCode,
        error: &'static str,
        description: String,
    },
    /// Sent back to the app's (registered) redirect URI.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(str::to_ascii_lowercase).as_deref(),
        Some("true" | "1" | "on" | "yes")
    )
}

/// A PKCE challenge is 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 section 4.2).
fn valid_challenge(c: &str) -> bool {
    (43..=128).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn check(api: &Api, p: &Params) -> Result<Checked, Refusal> {
    let unknown_client = || Refusal::Page {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: "Client authentication failed due to unknown client, no client \
                      authentication included, or unsupported authentication method."
            .to_owned(),
    };
    let client_id = p
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 256);
    let Some(client_id) = client_id else {
        return Err(unknown_client());
    };
    let app = match api.store.app_by_client_id(client_id).await {
        Ok(Some(app)) => app,
        Ok(None) => return Err(unknown_client()),
        Err(e) => {
            let e = crate::error::ApiError::from(e);
            return Err(Refusal::Page {
                status: actix_web::ResponseError::status_code(&e),
                error: "temporarily_unavailable",
                description: e.message,
            });
        }
    };
    // The request must name one of the registered URIs exactly (compared as strings, so
    // custom schemes and Ivory's `com.tapbots.Ivory.NNNN:/request_token` work). Without
    // one, an app with a single registered URI means that one (RFC 6749 section 3.1.2.3).
    let redirect_uri = match p.redirect_uri.as_deref().filter(|u| !u.is_empty()) {
        Some(u) if app.redirect_uris.iter().any(|r| r == u) => u.to_owned(),
        None if app.redirect_uris.len() == 1 => app.redirect_uris[0].clone(),
        _ => {
            return Err(Refusal::Page {
                status: StatusCode::BAD_REQUEST,
                error: "invalid_redirect_uri",
                description: "The redirect uri included is not valid.".to_owned(),
            });
        }
    };
    let back = |error: &'static str, description: String| {
        if redirect_uri == OOB {
            Refusal::Page {
                status: StatusCode::BAD_REQUEST,
                error,
                description,
            }
        } else {
            Refusal::Redirect {
                redirect_uri: redirect_uri.clone(),
                error,
                description,
                state: p.state.clone(),
            }
        }
    };
    if p.state.as_deref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(back(
            "invalid_request",
            format!("state is longer than {MAX_STATE} characters"),
        ));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None | Some("") => {
            return Err(back(
                "invalid_request",
                "The request is missing a required parameter: response_type.".to_owned(),
            ));
        }
        Some(_) => {
            return Err(back(
                "unsupported_response_type",
                "The authorization server does not support this response type.".to_owned(),
            ));
        }
    }
    let default_scope = vec!["read".to_owned()];
    let scopes = match parse_scopes(p.scope.as_deref(), &default_scope) {
        Ok(s) if scopes_within(&s, &app.scopes) => s,
        Ok(_) => {
            return Err(back(
                "invalid_scope",
                "The requested scope is invalid, unknown, or malformed: the app was not \
                 registered for it."
                    .to_owned(),
            ));
        }
        Err(e) => return Err(back("invalid_scope", e.message)),
    };
    let challenge = match (
        p.code_challenge.as_deref().filter(|c| !c.is_empty()),
        p.code_challenge_method.as_deref().filter(|m| !m.is_empty()),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(back(
                "invalid_request",
                "code_challenge_method was given without code_challenge.".to_owned(),
            ));
        }
        (Some(c), method) => {
            let method = method.unwrap_or("plain");
            if method != "S256" && method != "plain" {
                return Err(back(
                    "invalid_request",
                    "code_challenge_method must be S256 or plain.".to_owned(),
                ));
            }
            if !valid_challenge(c) {
                return Err(back(
                    "invalid_request",
                    "code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, -, ., _ and ~."
                        .to_owned(),
                ));
            }
            Some((c.to_owned(), method.to_owned()))
        }
    };
    Ok(Checked {
        app,
        redirect_uri,
        scopes,
        state: p.state.clone(),
        challenge,
    })
}

/// `uri` with `pairs` added to its query (before any fragment). Redirect URIs are compared
/// as strings, so this never parses them as URLs.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let (base, fragment) = match uri.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (uri, None),
    };
    let query = serde_html_form::to_string(pairs).unwrap_or_default();
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    let mut out = format!("{base}{sep}{query}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn message(
    api: &Api,
    status: StatusCode,
    title: &str,
    text: &str,
    error_code: Option<&str>,
) -> HttpResponse {
    pages::html(
        status,
        &Message {
            instance: &api.settings.api.title,
            title,
            message: text,
            is_error: status.is_client_error() || status.is_server_error(),
            error_code,
            sign_out_csrf: None,
        },
    )
    .finish()
}

fn refuse(api: &Api, r: Refusal) -> HttpResponse {
    match r {
        Refusal::Page {
            status,
            error,
            description,
        } => message(
            api,
            status,
            "The app's sign-in request is not valid",
            &description,
            Some(error),
        ),
        Refusal::Redirect {
            redirect_uri,
            error,
            description,
            state,
        } => {
            let mut pairs = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = state.as_deref() {
                pairs.push(("state", s));
            }
            redirect(&with_query(&redirect_uri, &pairs))
        }
    }
}

/// The browser's session, or a new visitor session (whose cookie the response must set).
fn session_of(api: &Api, req: &HttpRequest) -> (Session, bool) {
    match api.sessions.read(req) {
        Some(s) => (s, false),
        None => (api.sessions.start(None), true),
    }
}

/// The query string of `p` for returning to the authorize page after signing in, without
/// `force_login` (it was honoured by showing the login page).
fn return_query(p: &Params) -> String {
    let mut p = p.clone();
    p.force_login = None;
    serde_html_form::to_string(&p).unwrap_or_default()
}

/// What the login page shows besides its form.
struct LoginView<'a> {
    app_name: Option<&'a str>,
    /// The authorization request to return to, as a query string.
    authorize: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

fn login_page(
    api: &Api,
    status: StatusCode,
    session: &Session,
    set_cookie: bool,
    view: LoginView<'_>,
) -> HttpResponse {
    let csrf = api.sessions.csrf(session);
    let page = pages::html(
        status,
        &Login {
            instance: &api.settings.api.title,
            app_name: view.app_name,
            error: view.error,
            csrf: &csrf,
            authorize: view.authorize,
            username: view.username,
        },
    );
    if set_cookie {
        page.cookie(api.sessions.cookie(session)).finish()
    } else {
        page.finish()
    }
}

/// The `form-action` sources that let the consent form end at `redirect_uri`.
fn form_action_for(redirect_uri: &str) -> String {
    let mut sources = vec!["'self'".to_owned()];
    if let Some((scheme, rest)) = redirect_uri.split_once(':')
        && !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        let scheme = scheme.to_ascii_lowercase();
        if scheme == "http" || scheme == "https" {
            // scheme://host[:port], up to the path.
            let authority = rest
                .trim_start_matches("//")
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("");
            if !authority.is_empty()
                && authority.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
            {
                sources.push(format!("{scheme}://{authority}"));
            }
        } else if scheme != "urn" {
            sources.push(format!("{scheme}:"));
        }
    }
    sources.join(" ")
}

async fn show(api: web::Data<Api>, req: HttpRequest) -> HttpResponse {
    let params: Params = match serde_html_form::from_str(req.query_string()) {
        Ok(p) => p,
        Err(e) => {
            return message(
                &api,
                StatusCode::BAD_REQUEST,
                "The app's sign-in request is not valid",
                &format!("The request could not be read: {e}"),
                Some("invalid_request"),
            );
        }
    };
    let checked = match check(&api, &params).await {
        Ok(c) => c,
        Err(r) => return refuse(&api, r),
    };
    let (session, fresh) = session_of(&api, &req);
    let signed_in = match session.account {
        Some(id) if !truthy(params.force_login.as_deref()) => match api.account(id).await {
            Ok(Some(a)) if !a.suspended => Some(a),
            Ok(_) => None,
            Err(e) => return actix_web::ResponseError::error_response(&e),
        },
        _ => None,
    };
    let Some(account) = signed_in else {
        // A signed-in browser asked to log in again starts over as a visitor.
        let (session, fresh) = if session.account.is_some() {
            (api.sessions.start(None), true)
        } else {
            (session, fresh)
        };
        return login_page(
            &api,
            StatusCode::OK,
            &session,
            fresh,
            LoginView {
                app_name: Some(&checked.app.name),
                authorize: &return_query(&params),
                username: "",
                error: None,
            },
        );
    };
    let csrf = api.sessions.csrf(&session);
    let scope = checked.scopes.join(" ");
    let (challenge, method) = match &checked.challenge {
        Some((c, m)) => (Some(c.as_str()), m.as_str()),
        None => (None, ""),
    };
    let redirect_shown = if checked.redirect_uri == OOB {
        "a page showing a code to copy into the app"
    } else {
        checked.redirect_uri.as_str()
    };
    let page = Consent {
        instance: &api.settings.api.title,
        app_name: &checked.app.name,
        app_website: checked.app.website.as_deref(),
        username: &account.username,
        scopes: checked
            .scopes
            .iter()
            .map(|s| ScopeLine {
                name: s.clone(),
                description: pages::describe_scope(s),
            })
            .collect(),
        csrf: &csrf,
        client_id: &checked.app.client_id,
        redirect_uri: &checked.redirect_uri,
        redirect_shown,
        scope: &scope,
        state: checked.state.as_deref(),
        code_challenge: challenge,
        code_challenge_method: method,
    };
    pages::html_with_form_action(
        StatusCode::OK,
        &page,
        &form_action_for(&checked.redirect_uri),
    )
    .finish()
}

/// A form body of at most [`MAX_FORM_BYTES`], or the page that says why not.
async fn read_form<T: serde::de::DeserializeOwned>(
    api: &Api,
    mut payload: web::Payload,
) -> Result<T, HttpResponse> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            message(
                api,
                StatusCode::BAD_REQUEST,
                "The form could not be read",
                "The request body could not be read.",
                Some("invalid_request"),
            )
        })?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(message(
                api,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large",
                &format!("A form may be at most {MAX_FORM_BYTES} bytes."),
                Some("invalid_request"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    serde_html_form::from_bytes(&body).map_err(|e| {
        message(
            api,
            StatusCode::BAD_REQUEST,
            "The form could not be read",
            &format!("The form is not valid: {e}"),
            Some("invalid_request"),
        )
    })
}

/// The page for a form whose CSRF token is missing, forged or from another session.
fn forged(api: &Api) -> HttpResponse {
    message(
        api,
        StatusCode::UNPROCESSABLE_ENTITY,
        "This form has expired",
        "The form was not sent from this browser's current session (it may have expired). \
         Go back to the app and start signing in again.",
        Some("invalid_authenticity_token"),
    )
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    authorize: String,
}

async fn sign_in(api: web::Data<Api>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let form: SignInForm = match read_form(&api, payload).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let Some(session) = api.sessions.read(&req) else {
        return forged(&api);
    };
    if !api.sessions.csrf_ok(&session, &form.csrf_token) {
        return forged(&api);
    }
    // Only the parameters of an authorization request are carried back, and only to our
    // own authorize page.
    let params: Params = serde_html_form::from_str(&form.authorize).unwrap_or_default();
    let back = return_query(&params);
    let app_name = match params.client_id.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => api
            .store
            .app_by_client_id(c)
            .await
            .ok()
            .flatten()
            .map(|a| a.name),
        None => None,
    };
    // A username (`name`, `@name`, `name@domain`) or the account's email address.
    let username = match super::sign_in_name(&api, &form.username).await {
        Ok(name) => name,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    let username = username.as_str();
    let verified = if username.is_empty() || form.password.is_empty() {
        None
    } else {
        // Every attempt counts toward the sign-in limits, and waits for a hashing place.
        let _permit = match crate::ratelimit::sign_in_attempt(&api, &req, username).await {
            Ok(permit) => permit,
            Err(e) => {
                let status = actix_web::ResponseError::status_code(&e);
                return login_page(
                    &api,
                    status,
                    &session,
                    false,
                    LoginView {
                        app_name: app_name.as_deref(),
                        authorize: &back,
                        username: form.username.trim(),
                        error: Some(if status == StatusCode::TOO_MANY_REQUESTS {
                            "Too many sign-in attempts. Try again later."
                        } else {
                            "The server is busy. Try again in a moment."
                        }),
                    },
                );
            }
        };
        match api.store.verify_password(username, &form.password).await {
            Ok(account) if !account.suspended => Some(account),
            Ok(_) => None,
            Err(e) if e.kind() == starling_schema::ErrorKind::Unauthorized => None,
            Err(e) => {
                return actix_web::ResponseError::error_response(&crate::error::ApiError::from(e));
            }
        }
    };
    let Some(account) = verified else {
        // One message whatever was wrong: unknown name, wrong password, suspended account.
        return login_page(
            &api,
            StatusCode::UNAUTHORIZED,
            &session,
            false,
            LoginView {
                app_name: app_name.as_deref(),
                authorize: &back,
                username: form.username.trim(),
                error: Some("Invalid username or password."),
            },
        );
    };
    let signed_in = api.sessions.start(Some(account.id));
    if params.client_id.is_none() {
        let csrf = api.sessions.csrf(&signed_in);
        return pages::html(
            StatusCode::OK,
            &Message {
                instance: &api.settings.api.title,
                title: "Signed in",
                message: &format!("You are signed in as @{}.", account.username),
                is_error: false,
                error_code: None,
                sign_out_csrf: Some(&csrf),
            },
        )
        .cookie(api.sessions.cookie(&signed_in))
        .finish();
    }
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/oauth/authorize?{back}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(api.sessions.cookie(&signed_in))
        .finish()
}

#[derive(Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf_token: String,
}

async fn sign_out(api: web::Data<Api>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let form: SignOutForm = match read_form(&api, payload).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let Some(session) = api.sessions.read(&req) else {
        return forged(&api);
    };
    if !api.sessions.csrf_ok(&session, &form.csrf_token) {
        return forged(&api);
    }
    let visitor = api.sessions.start(None);
    pages::html(
        StatusCode::OK,
        &Message {
            instance: &api.settings.api.title,
            title: "Signed out",
            message: "You are signed out. Go back to the app to sign in again.",
            is_error: false,
            error_code: None,
            sign_out_csrf: None,
        },
    )
    .cookie(api.sessions.cookie(&visitor))
    .finish()
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    params: Params,
}

async fn decide(api: web::Data<Api>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let form: DecisionForm = match read_form(&api, payload).await {
        Ok(f) => f,
        Err(page) => return page,
    };
    let Some(session) = api.sessions.read(&req) else {
        return forged(&api);
    };
    if !api.sessions.csrf_ok(&session, &form.csrf_token) {
        return forged(&api);
    }
    let account = match session.account {
        Some(id) => match api.account(id).await {
            Ok(Some(a)) if !a.suspended => a,
            Ok(_) => return forged(&api),
            Err(e) => return actix_web::ResponseError::error_response(&e),
        },
        None => return forged(&api),
    };
    let checked = match check(&api, &form.params).await {
        Ok(c) => c,
        Err(r) => return refuse(&api, r),
    };
    match form.decision.as_str() {
        "approve" => {}
        "deny" => {
            if checked.redirect_uri == OOB {
                return message(
                    &api,
                    StatusCode::OK,
                    "Authorization denied",
                    &format!("{} was not given access to your account.", checked.app.name),
                    Some("access_denied"),
                );
            }
            return refuse(
                &api,
                Refusal::Redirect {
                    redirect_uri: checked.redirect_uri,
                    error: "access_denied",
                    description: "The resource owner or authorization server denied the request."
                        .to_owned(),
                    state: checked.state,
                },
            );
        }
        _ => {
            return message(
                &api,
                StatusCode::BAD_REQUEST,
                "The form could not be read",
                "Choose Authorize or Deny.",
                Some("invalid_request"),
            );
        }
    }
    let now = now_ms();
    let (code_challenge, code_challenge_method) = match checked.challenge {
        Some((c, m)) => (Some(c), Some(m)),
        None => (None, None),
    };
    let issued = api
        .store
        .create_auth_code(AuthCode {
            app_id: checked.app.id,
            client_id: checked.app.client_id.clone(),
            account_id: account.id,
            redirect_uri: checked.redirect_uri.clone(),
            scopes: checked.scopes,
            code_challenge,
            code_challenge_method,
            created_at_ms: now,
            expires_at_ms: now + CODE_TTL_MS,
        })
        .await;
    let code = match issued {
        Ok(code) => code,
        Err(e) => {
            return actix_web::ResponseError::error_response(&crate::error::ApiError::from(e));
        }
    };
    if checked.redirect_uri == OOB {
        return pages::html(
            StatusCode::OK,
            &pages::Code {
                instance: &api.settings.api.title,
                app_name: &checked.app.name,
                code: &code,
            },
        )
        .finish();
    }
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = checked.state.as_deref() {
        pairs.push(("state", s));
    }
    redirect(&with_query(&checked.redirect_uri, &pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_join_any_redirect_uri_as_a_string() {
        assert_eq!(
            with_query(
                "https://app.example/cb",
                &[("code", "a b"), ("state", "x&y")]
            ),
            "https://app.example/cb?code=a+b&state=x%26y"
        );
        assert_eq!(
            with_query("https://app.example/cb?k=v#frag", &[("code", "c")]),
            "https://app.example/cb?k=v&code=c#frag"
        );
        assert_eq!(
            with_query(
                "com.tapbots.Ivory.19300:/request_token/abc",
                &[("code", "c")]
            ),
            "com.tapbots.Ivory.19300:/request_token/abc?code=c"
        );
        assert_eq!(
            with_query("icecubesapp://", &[("code", "c")]),
            "icecubesapp://?code=c"
        );
    }

    #[test]
    fn form_action_allows_the_redirect_target_only() {
        assert_eq!(
            form_action_for("http://127.0.0.1:9000/cb?x=1"),
            "'self' http://127.0.0.1:9000"
        );
        assert_eq!(
            form_action_for("com.tapbots.Ivory.19300:/request_token"),
            "'self' com.tapbots.ivory.19300:"
        );
        assert_eq!(form_action_for(OOB), "'self'");
        assert_eq!(form_action_for("bad scheme:/x"), "'self'");
    }

    #[test]
    fn pkce_challenges_are_checked_for_shape() {
        assert!(valid_challenge(&"a".repeat(43)));
        assert!(!valid_challenge(&"a".repeat(42)));
        assert!(!valid_challenge(&"a".repeat(129)));
        assert!(!valid_challenge(&format!("{}+", "a".repeat(43))));
    }
}
