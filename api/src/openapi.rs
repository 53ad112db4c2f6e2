//! The API described as an OpenAPI 3.1 document, served at `/api/openapi.json`.
//!
//! Every route the server registers is listed once in [`ROUTES`] with who may call it, its
//! query and form parameters and what a success answers; its scope comes from
//! [`crate::scopes`] (the same table the server enforces), and every error is Mastodon's
//! `{"error": ...}`. A unit test reads the route registrations in the source and fails when
//! one is missing here, so the document cannot fall behind the server. The schemathesis stage
//! of the client tests fuzzes every operation against a running server from this document.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Ref, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, Paths,
    RefOr, Required, ResponseBuilder, ResponsesBuilder,
};

use crate::scopes;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(serve));
}

async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}

/// The document as JSON text (built once per process).
pub fn document_json() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| serde_json::to_string(&document()).unwrap_or_default())
}

/// Who may call a route.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    /// Anyone; no token is read.
    Anyone,
    /// Anyone; a presented token is checked for the route's scope.
    Public,
    /// A user's token.
    User,
    /// A token with the route's scope, an app's included.
    Token,
    /// Any valid token, whatever its scopes.
    AnyToken,
}

/// What a success answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ok {
    Status,
    Statuses,
    Account,
    Accounts,
    Relationship,
    Relationships,
    Notification,
    Notifications,
    Object,
    Objects,
    Html,
    Text,
    /// An uploaded file, of whatever type it was stored as.
    File,
    Png,
    Stream,
}

/// One route: method, path, summary, who may call it, query and form parameters
/// (`name:type`, `!` when required; types `s` string, `i` integer, `b` boolean, `s[]` list),
/// and what a success answers.
struct Route(
    &'static str,
    &'static str,
    &'static str,
    Who,
    &'static str,
    &'static str,
    Ok,
);

const PAGE: &str = "max_id:s since_id:s min_id:s limit:i";

#[rustfmt::skip]
const ROUTES: &[Route] = &[
    // Instance, discovery, operations.
    Route("GET", "/api/v1/instance", "The server's description (v1)", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/api/v1/instance/", "The server's description (v1)", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/api/v2/instance", "The server's description (v2)", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/api/v2/instance/", "The server's description (v2)", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/.well-known/oauth-authorization-server", "OAuth server metadata (RFC 8414)", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/.well-known/nodeinfo", "Where NodeInfo is", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/nodeinfo/2.0", "NodeInfo 2.0", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/nodeinfo/2.0.json", "NodeInfo 2.0", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/api/openapi.json", "This document", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/health", "Liveness", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/ready", "Readiness: the store, Redis and NATS answer", Who::Anyone, "", "", Ok::Object),
    Route("GET", "/metrics", "Prometheus metrics", Who::Anyone, "", "", Ok::Text),
    // Apps and OAuth.
    Route("POST", "/api/v1/apps", "Register an app", Who::Anyone, "", "client_name:s! redirect_uris:s! scopes:s website:s", Ok::Object),
    Route("GET", "/api/v1/apps/verify_credentials", "The app of the token", Who::AnyToken, "", "", Ok::Object),
    Route("GET", "/oauth/authorize", "The sign-in and consent page", Who::Anyone, "response_type:s! client_id:s! redirect_uri:s! scope:s state:s code_challenge:s code_challenge_method:s force_login:b", "", Ok::Html),
    Route("POST", "/oauth/authorize", "Authorize or deny an app (the consent form)", Who::Anyone, "", "authenticity_token:s! client_id:s! redirect_uri:s! decision:s", Ok::Html),
    Route("POST", "/auth/sign_in", "Sign in (the login form)", Who::Anyone, "", "authenticity_token:s! username:s! password:s!", Ok::Html),
    Route("POST", "/auth/sign_out", "Sign out", Who::Anyone, "", "authenticity_token:s!", Ok::Html),
    Route("GET", "/oauth/style.css", "The sign-in pages' style sheet", Who::Anyone, "", "", Ok::Text),
    Route("POST", "/oauth/token", "Obtain a token", Who::Anyone, "", "grant_type:s! client_id:s client_secret:s code:s redirect_uri:s code_verifier:s username:s password:s scope:s", Ok::Object),
    Route("POST", "/oauth/revoke", "Revoke a token", Who::Anyone, "", "token:s! client_id:s client_secret:s", Ok::Object),
    Route("GET", "/oauth/userinfo", "Who the token's user is (OpenID Connect)", Who::User, "", "", Ok::Object),
    Route("POST", "/oauth/userinfo", "Who the token's user is (OpenID Connect)", Who::User, "", "", Ok::Object),
    // Accounts.
    Route("POST", "/api/v1/accounts", "Register an account (app token)", Who::Token, "", "username:s! email:s! password:s! agreement:b! locale:s reason:s", Ok::Object),
    Route("GET", "/api/v1/accounts/verify_credentials", "The signed-in account", Who::User, "", "", Ok::Account),
    Route("PATCH", "/api/v1/accounts/update_credentials", "Edit your profile (form, JSON or multipart with avatar and header pictures; fields_attributes[N][name|value] up to 4)", Who::User, "", "display_name:s note:s locked:b bot:b discoverable:b source[privacy]:s source[sensitive]:b source[language]:s avatar:s header:s", Ok::Account),
    Route("GET", "/api/v1/follow_requests", "Who asks to follow you", Who::User, PAGE, "", Ok::Accounts),
    Route("POST", "/api/v1/follow_requests/{id}/authorize", "Accept a follow request", Who::User, "", "", Ok::Relationship),
    Route("POST", "/api/v1/follow_requests/{id}/reject", "Turn a follow request down", Who::User, "", "", Ok::Relationship),
    Route("GET", "/api/v1/accounts/lookup", "An account by its name", Who::Public, "acct:s!", "", Ok::Account),
    Route("GET", "/api/v1/accounts/relationships", "Relationships with accounts", Who::User, "id[]:s[] with_suspended:b", "", Ok::Relationships),
    Route("GET", "/api/v1/accounts/{id}", "An account", Who::Public, "", "", Ok::Account),
    Route("GET", "/api/v1/accounts/{id}/statuses", "An account's statuses", Who::Public, "max_id:s since_id:s min_id:s limit:i only_media:b exclude_replies:b exclude_reblogs:b pinned:b tagged:s", "", Ok::Statuses),
    Route("GET", "/api/v1/accounts/{id}/followers", "An account's followers", Who::Public, PAGE, "", Ok::Accounts),
    Route("GET", "/api/v1/accounts/{id}/following", "Whom an account follows", Who::Public, PAGE, "", Ok::Accounts),
    Route("POST", "/api/v1/accounts/{id}/follow", "Follow an account", Who::User, "", "reblogs:b notify:b", Ok::Relationship),
    Route("POST", "/api/v1/accounts/{id}/unfollow", "Unfollow an account", Who::User, "", "", Ok::Relationship),
    Route("POST", "/api/v1/accounts/{id}/block", "Block an account", Who::User, "", "", Ok::Relationship),
    Route("POST", "/api/v1/accounts/{id}/unblock", "Unblock an account", Who::User, "", "", Ok::Relationship),
    Route("POST", "/api/v1/accounts/{id}/mute", "Mute an account", Who::User, "", "notifications:b duration:i", Ok::Relationship),
    Route("POST", "/api/v1/accounts/{id}/unmute", "Unmute an account", Who::User, "", "", Ok::Relationship),
    Route("GET", "/api/v1/blocks", "Accounts you block", Who::User, PAGE, "", Ok::Accounts),
    Route("GET", "/api/v1/mutes", "Accounts you mute", Who::User, PAGE, "", Ok::Accounts),
    // Media (multipart/form-data uploads; files served by Starling).
    Route("POST", "/api/v2/media", "Upload a file (multipart/form-data; 202 while processing)", Who::User, "", "file:s! description:s focus:s", Ok::Object),
    Route("POST", "/api/v1/media", "Upload a file (multipart/form-data; waits for processing)", Who::User, "", "file:s! description:s focus:s", Ok::Object),
    Route("GET", "/api/v1/media/{id}", "An upload (206 while processing)", Who::User, "", "", Ok::Object),
    Route("PUT", "/api/v1/media/{id}", "Change an upload not yet attached", Who::User, "", "description:s focus:s", Ok::Object),
    Route("DELETE", "/api/v1/media/{id}", "Delete an upload not yet attached", Who::User, "", "", Ok::Object),
    Route("GET", "/system/media/{token}/{name}", "A processed file (ranges, ETag)", Who::Anyone, "", "", Ok::File),
    Route("HEAD", "/system/media/{token}/{name}", "A processed file's headers", Who::Anyone, "", "", Ok::File),
    Route("GET", "/avatars/original/missing.png", "The default avatar", Who::Anyone, "", "", Ok::Png),
    Route("GET", "/headers/original/missing.png", "The default header", Who::Anyone, "", "", Ok::Png),
    Route("DELETE", "/api/v1/profile/avatar", "Back to the default avatar", Who::User, "", "", Ok::Account),
    Route("DELETE", "/api/v1/profile/header", "Back to the default header", Who::User, "", "", Ok::Account),
    // Statuses.
    Route("POST", "/api/v1/statuses", "Post a status (with a poll: poll[options][], poll[expires_in], poll[multiple], poll[hide_totals], or a JSON poll object)", Who::User, "", "status:s in_reply_to_id:s sensitive:b spoiler_text:s visibility:s language:s media_ids:s[] poll[options][]:s[] poll[expires_in]:i poll[multiple]:b poll[hide_totals]:b", Ok::Status),
    Route("GET", "/api/v1/statuses/{id}", "A status", Who::Public, "", "", Ok::Status),
    Route("PUT", "/api/v1/statuses/{id}", "Edit your status (text, content warning, sensitivity, language, media, poll)", Who::User, "", "status:s sensitive:b spoiler_text:s language:s media_ids:s[] poll[options][]:s[] poll[expires_in]:i poll[multiple]:b poll[hide_totals]:b", Ok::Status),
    Route("GET", "/api/v1/statuses/{id}/history", "A status's versions, oldest first (StatusEdit)", Who::Public, "", "", Ok::Objects),
    Route("GET", "/api/v1/statuses/{id}/source", "A status's text as written (StatusSource)", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v1/polls/{id}", "A poll", Who::Public, "", "", Ok::Object),
    Route("POST", "/api/v1/polls/{id}/votes", "Vote in a poll, once", Who::User, "", "choices[]:s[]!", Ok::Object),
    Route("DELETE", "/api/v1/statuses/{id}", "Delete your status", Who::User, "", "", Ok::Status),
    Route("GET", "/api/v1/statuses/{id}/context", "A status's ancestors and descendants", Who::Public, "", "", Ok::Object),
    Route("POST", "/api/v1/statuses/{id}/favourite", "Favourite a status", Who::User, "", "", Ok::Status),
    Route("POST", "/api/v1/statuses/{id}/unfavourite", "Undo a favourite", Who::User, "", "", Ok::Status),
    Route("POST", "/api/v1/statuses/{id}/reblog", "Reblog a status", Who::User, "", "visibility:s", Ok::Status),
    Route("POST", "/api/v1/statuses/{id}/unreblog", "Undo a reblog", Who::User, "", "", Ok::Status),
    Route("POST", "/api/v1/statuses/{id}/mute", "Mute the status's thread (no more notifications from it)", Who::User, "", "", Ok::Status),
    Route("POST", "/api/v1/statuses/{id}/unmute", "Unmute the status's thread", Who::User, "", "", Ok::Status),
    Route("GET", "/api/v1/statuses/{id}/favourited_by", "Who favourited a status", Who::Public, PAGE, "", Ok::Accounts),
    Route("GET", "/api/v1/statuses/{id}/reblogged_by", "Who reblogged a status", Who::Public, PAGE, "", Ok::Accounts),
    // Timelines and search.
    Route("GET", "/api/v1/timelines/home", "Your home timeline", Who::User, PAGE, "", Ok::Statuses),
    Route("GET", "/api/v1/timelines/public", "The public timeline", Who::Public, "max_id:s since_id:s min_id:s limit:i local:b remote:b only_media:b", "", Ok::Statuses),
    Route("GET", "/api/v1/timelines/tag/{hashtag}", "A hashtag's timeline", Who::Public, "max_id:s since_id:s min_id:s limit:i local:b only_media:b", "", Ok::Statuses),
    Route("GET", "/api/v2/search", "Search accounts, statuses and hashtags", Who::Public, "q:s! type:s resolve:b following:b account_id:s limit:i offset:i", "", Ok::Object),
    // Feeds (issue 13): lists, followed hashtags, bookmarks, favourites, pins, account search.
    Route("GET", "/api/v1/lists", "Your lists", Who::User, "", "", Ok::Objects),
    Route("POST", "/api/v1/lists", "Create a list", Who::User, "", "title:s! replies_policy:s exclusive:b", Ok::Object),
    Route("GET", "/api/v1/lists/{id}", "One of your lists", Who::User, "", "", Ok::Object),
    Route("PUT", "/api/v1/lists/{id}", "Change one of your lists", Who::User, "", "title:s replies_policy:s exclusive:b", Ok::Object),
    Route("DELETE", "/api/v1/lists/{id}", "Delete one of your lists", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v1/lists/{id}/accounts", "A list's members", Who::User, PAGE, "", Ok::Accounts),
    Route("POST", "/api/v1/lists/{id}/accounts", "Add accounts you follow to a list", Who::User, "", "account_ids[]:s[]!", Ok::Object),
    Route("DELETE", "/api/v1/lists/{id}/accounts", "Remove accounts from a list", Who::User, "account_ids[]:s[]", "account_ids[]:s[]", Ok::Object),
    Route("GET", "/api/v1/accounts/{id}/lists", "Your lists that hold an account", Who::User, "", "", Ok::Objects),
    Route("GET", "/api/v1/timelines/list/{id}", "A list's timeline", Who::User, PAGE, "", Ok::Statuses),
    Route("GET", "/api/v1/conversations", "Your direct conversations, newest post first", Who::User, PAGE, "", Ok::Objects),
    Route("GET", "/api/v1/conversations/", "Your direct conversations, newest post first", Who::User, PAGE, "", Ok::Objects),
    Route("POST", "/api/v1/conversations/{id}/read", "Mark one of your conversations read", Who::User, "", "", Ok::Object),
    Route("DELETE", "/api/v1/conversations/{id}", "Remove a conversation from your list (a new post brings it back)", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v1/followed_tags", "Hashtags you follow", Who::User, "limit:i", "", Ok::Objects),
    Route("GET", "/api/v1/tags/{name}", "A hashtag", Who::Public, "", "", Ok::Object),
    Route("POST", "/api/v1/tags/{name}/follow", "Follow a hashtag", Who::User, "", "", Ok::Object),
    Route("POST", "/api/v1/tags/{name}/unfollow", "Unfollow a hashtag", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v1/trends", "Trending hashtags (the tags list's older path)", Who::Public, "limit:i offset:i", "", Ok::Objects),
    Route("GET", "/api/v1/trends/tags", "Trending hashtags, with 7 days of history", Who::Public, "limit:i offset:i", "", Ok::Objects),
    Route("GET", "/api/v1/trends/statuses", "Trending statuses", Who::Public, "limit:i offset:i", "", Ok::Statuses),
    Route("GET", "/api/v1/trends/links", "Trending links, as preview cards with history", Who::Public, "limit:i offset:i", "", Ok::Objects),
    Route("GET", "/api/v2/suggestions", "Accounts suggested to follow, with why", Who::User, "limit:i", "", Ok::Objects),
    Route("GET", "/api/v1/suggestions", "Accounts suggested to follow", Who::User, "limit:i", "", Ok::Accounts),
    Route("DELETE", "/api/v1/suggestions/{id}", "Never suggest this account again", Who::User, "", "", Ok::Object),
    Route("POST", "/api/v1/statuses/{id}/bookmark", "Bookmark a status", Who::User, "", "", Ok::Status),
    Route("POST", "/api/v1/statuses/{id}/unbookmark", "Undo a bookmark", Who::User, "", "", Ok::Status),
    Route("POST", "/api/v1/statuses/{id}/pin", "Pin your status to your profile", Who::User, "", "", Ok::Status),
    Route("POST", "/api/v1/statuses/{id}/unpin", "Unpin your status", Who::User, "", "", Ok::Status),
    Route("GET", "/api/v1/bookmarks", "Your bookmarks, newest first", Who::User, PAGE, "", Ok::Statuses),
    Route("GET", "/api/v1/favourites", "Your favourites, newest first", Who::User, PAGE, "", Ok::Statuses),
    Route("GET", "/api/v1/accounts/search", "Accounts by name prefix, followed ones first", Who::User, "q:s! limit:i offset:i resolve:b following:b", "", Ok::Accounts),
    // Notifications.
    Route("GET", "/api/v1/notifications", "Your notifications", Who::User, "max_id:s since_id:s min_id:s limit:i types[]:s[] exclude_types[]:s[] account_id:s", "", Ok::Notifications),
    Route("GET", "/api/v1/notifications/{id}", "A notification", Who::User, "", "", Ok::Notification),
    Route("POST", "/api/v1/notifications/{id}/dismiss", "Dismiss a notification", Who::User, "", "", Ok::Object),
    Route("POST", "/api/v1/notifications/clear", "Dismiss every notification", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v1/notifications/unread_count", "How many notifications are unread", Who::User, "limit:i types[]:s[] exclude_types[]:s[]", "", Ok::Object),
    Route("GET", "/api/v2/notifications", "Your notifications, grouped", Who::User, "max_id:s since_id:s min_id:s limit:i types[]:s[] exclude_types[]:s[] grouped_types[]:s[] expand_accounts:s", "", Ok::Object),
    Route("GET", "/api/v2/notifications/unread_count", "How many notification groups are unread", Who::User, "limit:i types[]:s[] exclude_types[]:s[] grouped_types[]:s[]", "", Ok::Object),
    Route("GET", "/api/v2/notifications/{group_key}", "A notification group", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v2/notifications/{group_key}/accounts", "The accounts of a notification group", Who::User, "", "", Ok::Accounts),
    Route("POST", "/api/v2/notifications/{group_key}/dismiss", "Dismiss a notification group", Who::User, "", "", Ok::Object),
    // Start-up: preferences, emojis, announcements, markers.
    Route("GET", "/api/v1/preferences", "Your preferences", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v1/custom_emojis", "Custom emojis", Who::Anyone, "", "", Ok::Objects),
    Route("GET", "/api/v1/announcements", "The server's announcements", Who::User, "with_dismissed:b", "", Ok::Objects),
    Route("POST", "/api/v1/announcements/{id}/dismiss", "Dismiss an announcement", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v1/markers", "Your read positions", Who::User, "timeline[]:s[]", "", Ok::Object),
    Route("POST", "/api/v1/markers", "Save your read positions", Who::User, "", "home[last_read_id]:s notifications[last_read_id]:s", Ok::Object),
    // Web Push.
    Route("POST", "/api/v1/push/subscription", "Subscribe this token to Web Push", Who::User, "", "subscription[endpoint]:s! subscription[keys][p256dh]:s! subscription[keys][auth]:s! subscription[standard]:b data[alerts][mention]:b data[alerts][status]:b data[alerts][reblog]:b data[alerts][follow]:b data[alerts][follow_request]:b data[alerts][favourite]:b data[alerts][poll]:b data[alerts][update]:b data[policy]:s", Ok::Object),
    Route("GET", "/api/v1/push/subscription", "This token's Web Push subscription", Who::User, "", "", Ok::Object),
    Route("PUT", "/api/v1/push/subscription", "Change this token's Web Push alerts and policy", Who::User, "", "data[alerts][mention]:b data[alerts][status]:b data[alerts][reblog]:b data[alerts][follow]:b data[alerts][follow_request]:b data[alerts][favourite]:b data[alerts][poll]:b data[alerts][update]:b data[policy]:s", Ok::Object),
    Route("DELETE", "/api/v1/push/subscription", "Remove this token's Web Push subscription", Who::User, "", "", Ok::Object),
    // Filters.
    Route("GET", "/api/v2/filters", "Your filters", Who::User, "", "", Ok::Objects),
    Route("POST", "/api/v2/filters", "Create a filter", Who::User, "", "title:s! context[]:s[] filter_action:s expires_in:i", Ok::Object),
    Route("GET", "/api/v2/filters/{id}", "A filter", Who::User, "", "", Ok::Object),
    Route("PUT", "/api/v2/filters/{id}", "Change a filter", Who::User, "", "title:s context[]:s[] filter_action:s expires_in:i", Ok::Object),
    Route("DELETE", "/api/v2/filters/{id}", "Delete a filter", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v2/filters/{id}/keywords", "A filter's keywords", Who::User, "", "", Ok::Objects),
    Route("POST", "/api/v2/filters/{id}/keywords", "Add a keyword to a filter", Who::User, "", "keyword:s! whole_word:b", Ok::Object),
    Route("GET", "/api/v2/filters/{id}/statuses", "A filter's statuses", Who::User, "", "", Ok::Objects),
    Route("POST", "/api/v2/filters/{id}/statuses", "Add a status to a filter", Who::User, "", "status_id:s!", Ok::Object),
    Route("GET", "/api/v2/filters/keywords/{id}", "A filter keyword", Who::User, "", "", Ok::Object),
    Route("PUT", "/api/v2/filters/keywords/{id}", "Change a filter keyword", Who::User, "", "keyword:s whole_word:b", Ok::Object),
    Route("DELETE", "/api/v2/filters/keywords/{id}", "Delete a filter keyword", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v2/filters/statuses/{id}", "A filtered status", Who::User, "", "", Ok::Object),
    Route("DELETE", "/api/v2/filters/statuses/{id}", "Stop filtering a status", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v2/filter_keywords/{id}", "A filter keyword (older path)", Who::User, "", "", Ok::Object),
    Route("PUT", "/api/v2/filter_keywords/{id}", "Change a filter keyword (older path)", Who::User, "", "keyword:s whole_word:b", Ok::Object),
    Route("DELETE", "/api/v2/filter_keywords/{id}", "Delete a filter keyword (older path)", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v2/filter_statuses/{id}", "A filtered status (older path)", Who::User, "", "", Ok::Object),
    Route("DELETE", "/api/v2/filter_statuses/{id}", "Stop filtering a status (older path)", Who::User, "", "", Ok::Object),
    Route("GET", "/api/v1/filters", "Your filters (v1)", Who::User, "", "", Ok::Objects),
    Route("POST", "/api/v1/filters", "Create a filter (v1)", Who::User, "", "phrase:s! context[]:s[] irreversible:b whole_word:b expires_in:i", Ok::Object),
    Route("GET", "/api/v1/filters/{id}", "A filter (v1)", Who::User, "", "", Ok::Object),
    Route("PUT", "/api/v1/filters/{id}", "Change a filter (v1)", Who::User, "", "phrase:s context[]:s[] irreversible:b whole_word:b expires_in:i", Ok::Object),
    Route("DELETE", "/api/v1/filters/{id}", "Delete a filter (v1)", Who::User, "", "", Ok::Object),
    // Streaming.
    Route("GET", "/api/v1/streaming/health", "Whether streaming works", Who::Anyone, "", "", Ok::Text),
    Route("GET", "/api/v1/streaming", "Live events over WebSocket (or SSE without an upgrade)", Who::Public, "stream:s tag:s list:s access_token:s", "", Ok::Stream),
    Route("GET", "/api/v1/streaming/", "Live events over WebSocket (or SSE without an upgrade)", Who::Public, "stream:s tag:s list:s access_token:s", "", Ok::Stream),
    Route("GET", "/api/v1/streaming/{stream}", "Live events over SSE", Who::Public, "tag:s list:s", "", Ok::Stream),
];

/// The whole document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for route in ROUTES {
        let (method, path) = (route.0, route.1);
        let Some(http) = http_method(method) else {
            continue;
        };
        let item = PathItem::new(http, operation(route));
        match paths.paths.get_mut(path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                paths.paths.insert(path.to_owned(), item);
            }
        }
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Starling")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The Mastodon client API as Starling serves it. Errors are JSON \
                     `{\"error\": ...}`; every response carries X-RateLimit-* headers.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components()))
        .build()
}

fn http_method(method: &str) -> Option<HttpMethod> {
    Some(match method {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        "HEAD" => HttpMethod::Head,
        _ => return None,
    })
}

fn operation(route: &Route) -> utoipa::openapi::path::Operation {
    let Route(method, path, summary, who, query, form, ok) = *route;
    let id = format!(
        "{}{}",
        method.to_lowercase(),
        path.replace(['/', '{', '}', '.', '-'], "_")
    );
    let mut op = OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .tag(path.split('/').nth(3).unwrap_or("server"));
    for name in path_params(path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(string())),
        );
    }
    for (name, schema, required) in fields(query) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(if required {
                    Required::True
                } else {
                    Required::False
                })
                .schema(Some(schema)),
        );
    }
    if !form.is_empty() {
        let mut body = ObjectBuilder::new().schema_type(Type::Object);
        for (name, schema, required) in fields(form) {
            body = body.property(name, schema);
            if required {
                body = body.required(name);
            }
        }
        let body: RefOr<Schema> = body.into();
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/x-www-form-urlencoded",
                    ContentBuilder::new().schema(Some(body.clone())).build(),
                )
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(body)).build(),
                )
                .build(),
        ));
    }
    let need = scopes::needed(
        &Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET),
        Some(path),
    );
    match who {
        Who::Anyone => {}
        Who::Public => {
            // A token is optional: none, or one granting the scope.
            op = op
                .security(SecurityRequirement::default())
                .security(SecurityRequirement::new("bearer", [need.scope]));
        }
        Who::User | Who::Token => {
            op = op.security(SecurityRequirement::new("bearer", [need.scope]));
        }
        Who::AnyToken => {
            // Any valid token, whatever its scopes.
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
    }
    let mut responses = ResponsesBuilder::new().response(success_code(ok), success(ok));
    responses = responses.response(
        "4XX",
        ResponseBuilder::new()
            .description("A Mastodon error")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Error")))
                    .build(),
            ),
    );
    if ok == Ok::Html {
        responses = responses.response(
            "3XX",
            ResponseBuilder::new().description("A redirect to the app or the next page"),
        );
    }
    op.responses(responses).build()
}

fn success_code(ok: Ok) -> &'static str {
    match ok {
        Ok::Stream | Ok::File => "2XX",
        _ => "200",
    }
}

fn success(ok: Ok) -> ResponseBuilder {
    let json = |schema: RefOr<Schema>| {
        ResponseBuilder::new().description("Success").content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
    };
    let named = |name: &str| -> RefOr<Schema> { Ref::from_schema_name(name).into() };
    let list = |name: &str| -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Ref::from_schema_name(name))
            .into()
    };
    match ok {
        Ok::Status => json(named("Status")),
        Ok::Statuses => json(list("Status")),
        Ok::Account => json(named("Account")),
        Ok::Accounts => json(list("Account")),
        Ok::Relationship => json(named("Relationship")),
        Ok::Relationships => json(list("Relationship")),
        Ok::Notification => json(named("Notification")),
        Ok::Notifications => json(list("Notification")),
        Ok::Object => json(object().into()),
        Ok::Objects => json(ArrayBuilder::new().items(object()).into()),
        Ok::Html => ResponseBuilder::new().description("A page").content(
            "text/html",
            ContentBuilder::new().schema(Some(string())).build(),
        ),
        Ok::Text => ResponseBuilder::new().description("Plain text").content(
            "text/plain",
            ContentBuilder::new().schema(Some(string())).build(),
        ),
        Ok::File => ResponseBuilder::new()
            .description("The file (206 for a range)")
            .content("*/*", ContentBuilder::new().build()),
        Ok::Png => ResponseBuilder::new()
            .description("A PNG picture")
            .content("image/png", ContentBuilder::new().build()),
        Ok::Stream => ResponseBuilder::new()
            .description("A stream of events (WebSocket upgrade or text/event-stream)"),
    }
}

/// `{id}`-style parameter names of a path.
fn path_params(path: &str) -> Vec<&str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split('}').next())
        .map(|name| name.split(':').next().unwrap_or(name))
        .collect()
}

/// `name:type[!]` fields, space-separated.
fn fields(spec: &str) -> Vec<(&str, RefOr<Schema>, bool)> {
    spec.split_whitespace()
        .filter_map(|field| {
            let (name, ty) = field.split_once(':')?;
            let required = ty.ends_with('!');
            let schema: RefOr<Schema> = match ty.trim_end_matches('!') {
                "i" => ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(
                        utoipa::openapi::KnownFormat::Int64,
                    )))
                    .into(),
                "b" => ObjectBuilder::new().schema_type(Type::Boolean).into(),
                "s[]" => ArrayBuilder::new().items(string()).into(),
                _ => string(),
            };
            Some((name, schema, required))
        })
        .collect()
}

fn string() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

fn object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
}

/// An object with these members, each of this type (`s` string, `b` boolean, `i` integer,
/// `o` object, `a` array, `s?` string or null, `o?` object or null), all required.
fn entity(members: &str) -> Schema {
    let mut schema = object();
    for member in members.split_whitespace() {
        let Some((name, ty)) = member.split_once(':') else {
            continue;
        };
        let (ty, nullable) = match ty.strip_suffix('?') {
            Some(t) => (t, true),
            None => (ty, false),
        };
        let base = match ty {
            "b" => Type::Boolean,
            "i" => Type::Integer,
            "o" => Type::Object,
            "a" => Type::Array,
            _ => Type::String,
        };
        let kind = if nullable {
            SchemaType::from_iter([base, Type::Null])
        } else {
            SchemaType::Type(base)
        };
        schema = schema
            .property(name, ObjectBuilder::new().schema_type(kind))
            .required(name);
    }
    schema.into()
}

fn components() -> utoipa::openapi::Components {
    let bearer = SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer));
    let mut status = match entity(
        "id:s uri:s url:s? created_at:s content:s visibility:s sensitive:b spoiler_text:s \
         media_attachments:a mentions:a tags:a emojis:a reblogs_count:i favourites_count:i \
         replies_count:i in_reply_to_id:s? in_reply_to_account_id:s? language:s? reblog:o? \
         poll:o? card:o? edited_at:s?",
    ) {
        Schema::Object(o) => o,
        other => return ComponentsBuilder::new().schema("Status", other).build(),
    };
    status
        .properties
        .insert("account".into(), Ref::from_schema_name("Account").into());
    status.required.push("account".into());
    ComponentsBuilder::new()
        .security_scheme("bearer", bearer)
        .schema(
            "Error",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("error", ObjectBuilder::new().schema_type(Type::String))
                .property(
                    "error_description",
                    ObjectBuilder::new().schema_type(Type::String),
                )
                .required("error"),
        )
        .schema("Status", Schema::Object(status))
        .schema(
            "Account",
            entity(
                "id:s username:s acct:s display_name:s locked:b bot:b discoverable:b group:b \
                 created_at:s note:s url:s avatar:s avatar_static:s header:s header_static:s \
                 followers_count:i following_count:i statuses_count:i emojis:a fields:a",
            ),
        )
        .schema(
            "Relationship",
            entity(
                "id:s following:b followed_by:b blocking:b blocked_by:b muting:b \
                 muting_notifications:b requested:b",
            ),
        )
        .schema("Notification", entity("id:s type:s created_at:s account:o"))
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `.rs` file under `dir`.
    fn sources(dir: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }

    /// `(METHOD, path)` of every `.route("path", web::method()…)` in the crate's sources.
    fn registered() -> BTreeSet<(String, String)> {
        let mut all = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut all,
        );
        assert!(all.len() > 10, "the crate's sources are readable");
        let mut found = BTreeSet::new();
        for source in &all {
            let mut rest = source.as_str();
            while let Some(at) = rest.find(".route(") {
                rest = &rest[at + ".route(".len()..];
                // Only literal paths; a route built in a loop is listed by hand.
                let Some(after) = rest.trim_start().strip_prefix('"') else {
                    continue;
                };
                let Some(close) = after.find('"') else { break };
                let path = &after[..close];
                let Some(web) = after.find("web::") else {
                    break;
                };
                let method = after[web + 5..]
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .next()
                    .unwrap_or_default()
                    .to_uppercase();
                if path.starts_with('/') && !path.contains(' ') {
                    found.insert((method, path.to_owned()));
                }
            }
        }
        found
    }

    fn documented() -> BTreeSet<(String, String)> {
        ROUTES
            .iter()
            .map(|r| (r.0.to_owned(), r.1.to_owned()))
            .collect()
    }

    #[test]
    fn every_registered_route_is_documented() {
        let documented = documented();
        let missing: Vec<String> = registered()
            .into_iter()
            .map(|(m, p)| (m, p.replace("{stream:.+}", "{stream}")))
            .filter(|r| !documented.contains(r))
            .map(|(m, p)| format!("{m} {p}"))
            .collect();
        assert!(
            missing.is_empty(),
            "routes missing from ROUTES: {missing:#?}"
        );
    }

    #[test]
    fn the_document_names_every_route_with_its_scope_and_error_shape() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap_or_default();
        assert_eq!(doc["openapi"], "3.1.0");
        let home = &doc["paths"]["/api/v1/timelines/home"]["get"];
        assert_eq!(home["security"][0]["bearer"][0], "read:statuses");
        assert_eq!(
            home["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        let post = &doc["paths"]["/api/v1/statuses"]["post"];
        assert_eq!(post["security"][0]["bearer"][0], "write:statuses");
        let favourite = &doc["paths"]["/api/v1/statuses/{id}/favourite"]["post"];
        assert_eq!(favourite["security"][0]["bearer"][0], "write:favourites");
        assert_eq!(favourite["parameters"][0]["in"], "path");
        let count = doc["paths"]
            .as_object()
            .map(|p| {
                p.values()
                    .map(|i| i.as_object().map_or(0, |o| o.len()))
                    .sum::<usize>()
            })
            .unwrap_or(0);
        assert_eq!(count, ROUTES.len());
    }
}
