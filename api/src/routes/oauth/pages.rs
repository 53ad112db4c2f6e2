//! The sign-in pages: askama templates (`api/templates/oauth/`), served with a strict
//! Content-Security-Policy and never cached.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder};
use askama::Template;

pub const STYLE: &str = include_str!("../../../templates/oauth/style.css");

#[derive(Template)]
#[template(path = "oauth/login.html")]
pub struct Login<'a> {
    pub instance: &'a str,
    pub app_name: Option<&'a str>,
    pub error: Option<&'a str>,
    pub csrf: &'a str,
    /// The authorization request to return to, as its query string.
    pub authorize: &'a str,
    pub username: &'a str,
}

pub struct ScopeLine {
    pub name: String,
    pub description: &'static str,
}

#[derive(Template)]
#[template(path = "oauth/consent.html")]
pub struct Consent<'a> {
    pub instance: &'a str,
    pub app_name: &'a str,
    pub app_website: Option<&'a str>,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine>,
    pub csrf: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub redirect_shown: &'a str,
    pub scope: &'a str,
    pub state: Option<&'a str>,
    pub code_challenge: Option<&'a str>,
    pub code_challenge_method: &'a str,
}

#[derive(Template)]
#[template(path = "oauth/code.html")]
pub struct Code<'a> {
    pub instance: &'a str,
    pub app_name: &'a str,
    pub code: &'a str,
}

#[derive(Template)]
#[template(path = "oauth/message.html")]
pub struct Message<'a> {
    pub instance: &'a str,
    pub title: &'a str,
    pub message: &'a str,
    pub is_error: bool,
    pub error_code: Option<&'a str>,
    pub sign_out_csrf: Option<&'a str>,
}

/// What a scope lets an app do, in the consent page's words.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope.split(':').next().unwrap_or(scope) {
        "read" => "read your account's data: timelines, posts, notifications, follows",
        "write" => "post, favourite, boost and change your account's data",
        "follow" => "follow, unfollow, block and mute accounts",
        "push" => "receive push notifications",
        "profile" => "see your profile's basic information",
        "admin" => "use the instance's administration interface",
        _ => "an unknown permission",
    }
}

/// The security headers of every page. `form_action` lists where forms may lead (the
/// consent page's form ends in a redirect to the app, which browsers check too).
fn secured(mut builder: HttpResponseBuilder, form_action: &str) -> HttpResponseBuilder {
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        builder.insert_header((header::CONTENT_SECURITY_POLICY, v));
    }
    builder
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8");
    builder
}

/// Render `page` with `status`; a template that cannot render is a 500 logged with its cause.
pub fn html(status: StatusCode, page: &impl Template) -> HttpResponseBuilderWithBody {
    html_with_form_action(status, page, "'self'")
}

pub fn html_with_form_action(
    status: StatusCode,
    page: &impl Template,
    form_action: &str,
) -> HttpResponseBuilderWithBody {
    match page.render() {
        Ok(body) => HttpResponseBuilderWithBody {
            builder: secured(HttpResponse::build(status), form_action),
            body,
        },
        Err(e) => {
            tracing::error!(error = %e, "a sign-in page did not render");
            HttpResponseBuilderWithBody {
                builder: secured(
                    HttpResponse::build(StatusCode::INTERNAL_SERVER_ERROR),
                    "'none'",
                ),
                body: "internal server error".to_owned(),
            }
        }
    }
}

/// A rendered page whose response may still take headers (a cookie) before it is sent.
pub struct HttpResponseBuilderWithBody {
    pub builder: HttpResponseBuilder,
    pub body: String,
}

impl HttpResponseBuilderWithBody {
    pub fn cookie(mut self, c: actix_web::cookie::Cookie<'static>) -> Self {
        self.builder.cookie(c);
        self
    }

    pub fn finish(mut self) -> HttpResponse {
        self.builder.body(self.body)
    }
}

/// The stylesheet the pages link to.
pub async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(STYLE)
}
