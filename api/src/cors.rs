//! CORS as Mastodon's `config/initializers/cors.rb` sets it: any origin, without
//! credentials, may call the API (`/api/*`), the token endpoints (`/oauth/token`,
//! `/oauth/revoke`, `/oauth/userinfo`), `/.well-known/*` and `/nodeinfo/*`; preflights
//! are answered for any request headers (Authorization, Content-Type, Idempotency-Key...);
//! `Link` and the rate-limit headers are exposed. The sign-in pages (`/oauth/authorize`,
//! `/auth/*`) get none of it: they are pages for a person, not an API for scripts.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

const EXPOSE: &str =
    "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id";
const API_METHODS: &str = "POST, PUT, DELETE, GET, PATCH, OPTIONS";
/// How long a browser may cache a preflight answer (rack-cors's default).
const MAX_AGE: &str = "7200";

/// The methods a CORS request to `path` may use, or `None` where CORS does not apply.
pub fn methods_for(path: &str) -> Option<&'static str> {
    if path.starts_with("/api/") {
        Some(API_METHODS)
    } else if path == "/oauth/token" || path == "/oauth/revoke" {
        Some("POST, OPTIONS")
    } else if path == "/oauth/userinfo" {
        Some("GET, POST, OPTIONS")
    } else if path.starts_with("/.well-known/") || path.starts_with("/nodeinfo/") {
        Some("GET, OPTIONS")
    } else {
        None
    }
}

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    let Some(methods) = methods_for(req.path()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let has_origin = req.headers().contains_key(header::ORIGIN);
    let preflight = req.method() == Method::OPTIONS
        && has_origin
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut answer = HttpResponse::Ok();
        answer
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods))
            .insert_header((header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
            .insert_header((header::VARY, "Origin"));
        // `headers: :any`: whatever the page asks to send is allowed.
        if let Some(asked) = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
        {
            answer.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, asked));
        }
        return Ok(req.into_response(answer.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
    if has_origin {
        let h = res.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::HeaderValue::from_static("*"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            header::HeaderValue::from_static(EXPOSE),
        );
    }
    Ok(res.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::methods_for;

    #[test]
    fn cors_covers_the_api_and_token_endpoints_but_not_the_pages() {
        assert!(methods_for("/api/v1/timelines/home").is_some());
        assert!(methods_for("/oauth/token").is_some());
        assert!(methods_for("/oauth/revoke").is_some());
        assert!(methods_for("/.well-known/oauth-authorization-server").is_some());
        assert!(methods_for("/nodeinfo/2.0").is_some());
        assert_eq!(methods_for("/oauth/authorize"), None);
        assert_eq!(methods_for("/auth/sign_in"), None);
        assert_eq!(methods_for("/health"), None);
    }
}
