//! The scope matrix: every route × the kinds of token apps hold → allowed or refused, as
//! Mastodon's documentation lists each route's scopes.

#![allow(clippy::unwrap_used)]

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, User, spawn_app};

const PASSWORD: &str = "correct horse battery";

/// The tokens of the matrix, in the order of its columns.
const KINDS: [&str; 7] = [
    "read",
    "write",
    "follow",
    "write:statuses",
    "read:notifications",
    "profile",
    "app",
];

/// A token of `scope` for `user` through the password grant of an app registered for
/// every scope, or an app-only token (`"app"`).
async fn token(app: &TestApp, user: &User, scope: &str) -> String {
    let registered: Value = app
        .http
        .post(format!("{}/api/v1/apps", app.base))
        .form(&[
            ("client_name", "scope matrix"),
            ("redirect_uris", "urn:ietf:wg:oauth:2.0:oob"),
            ("scopes", "read write follow push profile"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().unwrap();
    let form: Vec<(&str, &str)> = if scope == "app" {
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", secret),
            ("scope", "read write follow"),
        ]
    } else {
        vec![
            ("grant_type", "password"),
            ("client_id", id),
            ("client_secret", secret),
            ("username", &user.username),
            ("password", PASSWORD),
            ("scope", scope),
        ]
    };
    let v: Value = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no {scope} token: {v}"))
        .to_owned()
}

/// Each route with one letter per token of [`KINDS`]: `Y` allowed (answered, neither 401 nor
/// 403 nor 5xx), `N` refused for its scope (403), `U` refused because the route needs a
/// user (403 for an app-only token).
const MATRIX: &[(&str, &str, &str)] = &[
    // method, path, read write follow write:statuses read:notifications profile app
    ("GET", "/api/v1/accounts/verify_credentials", "YNNNNYU"),
    ("GET", "/oauth/userinfo", "YNNNNYU"),
    (
        "GET",
        "/api/v1/accounts/relationships?id[]={other}",
        "YNYNNNU",
    ),
    ("GET", "/api/v1/accounts/lookup?acct=other", "YNNNNNY"),
    ("GET", "/api/v1/accounts/{other}", "YNNNNNY"),
    ("GET", "/api/v1/accounts/{other}/statuses", "YNNNNNY"),
    ("GET", "/api/v1/accounts/{other}/followers", "YNNNNNY"),
    ("GET", "/api/v1/accounts/{other}/following", "YNNNNNY"),
    ("POST", "/api/v1/accounts/{other}/follow", "NYYNNNU"),
    ("POST", "/api/v1/accounts/{other}/unfollow", "NYYNNNU"),
    ("POST", "/api/v1/accounts/{other}/mute", "NYYNNNU"),
    ("POST", "/api/v1/accounts/{other}/unmute", "NYYNNNU"),
    ("GET", "/api/v1/blocks", "YNYNNNU"),
    ("GET", "/api/v1/mutes", "YNYNNNU"),
    ("GET", "/api/v1/preferences", "YNNNNNU"),
    ("GET", "/api/v1/statuses/{post}", "YNNNNNY"),
    ("GET", "/api/v1/statuses/{post}/context", "YNNNNNY"),
    ("GET", "/api/v1/statuses/{post}/favourited_by", "YNNNNNY"),
    ("GET", "/api/v1/statuses/{post}/reblogged_by", "YNNNNNY"),
    ("POST", "/api/v1/statuses/{post}/favourite", "NYNNNNU"),
    ("POST", "/api/v1/statuses/{post}/unfavourite", "NYNNNNU"),
    ("POST", "/api/v1/statuses/{post}/reblog", "NYNYNNU"),
    ("POST", "/api/v1/statuses/{post}/unreblog", "NYNYNNU"),
    ("POST", "/api/v1/statuses", "NYNYNNU"),
    ("DELETE", "/api/v1/statuses/{doomed}", "NYNYNNU"),
    ("GET", "/api/v1/timelines/home", "YNNNNNU"),
    ("GET", "/api/v1/timelines/public", "YNNNNNY"),
    ("GET", "/api/v1/timelines/tag/starling", "YNNNNNY"),
    ("GET", "/api/v2/search?q=hello", "YNNNNNY"),
    ("GET", "/api/v1/markers?timeline[]=home", "YNNNNNU"),
    ("POST", "/api/v1/markers", "NYNYNNU"),
    ("GET", "/api/v1/notifications", "YNNNYNU"),
    ("GET", "/api/v1/notifications/{notification}", "YNNNYNU"),
    ("GET", "/api/v1/notifications/unread_count", "YNNNYNU"),
    ("GET", "/api/v2/notifications", "YNNNYNU"),
    ("GET", "/api/v2/notifications/unread_count", "YNNNYNU"),
    ("GET", "/api/v2/notifications/{group}", "YNNNYNU"),
    ("GET", "/api/v2/notifications/{group}/accounts", "YNNNYNU"),
    (
        "POST",
        "/api/v1/notifications/{notification}/dismiss",
        "NYNNNNU",
    ),
    ("POST", "/api/v2/notifications/{group}/dismiss", "NYNNNNU"),
    ("POST", "/api/v1/notifications/clear", "NYNNNNU"),
    ("GET", "/api/v1/filters", "YNNNNNU"),
    ("GET", "/api/v2/filters", "YNNNNNU"),
    ("GET", "/api/v2/filters/{filter}", "YNNNNNU"),
    ("GET", "/api/v2/filters/{filter}/keywords", "YNNNNNU"),
    ("POST", "/api/v2/filters", "NYNNNNU"),
    ("PUT", "/api/v2/filters/{filter}", "NYNNNNU"),
    ("GET", "/api/v1/announcements", "YNNNNNU"),
    ("GET", "/api/v1/custom_emojis", "YYYYYYY"),
    ("GET", "/api/v1/instance", "YYYYYYY"),
    ("GET", "/api/v1/apps/verify_credentials", "YYYYYYY"),
    ("POST", "/api/v1/accounts/{other}/block", "NYYNNNU"),
    ("POST", "/api/v1/accounts/{other}/unblock", "NYYNNNU"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_grants_exactly_the_scopes_mastodon_lists() {
    let mut app = spawn_app().await;
    let me = app.register("scoped").await;
    let other = app.register("other").await;
    app.follow(&other, &me).await;
    let post = app.status(&me, "hello #starling").await;
    let doomed = app.status(&me, "soon gone").await;
    let filter: Value = app
        .post_json(
            &me.token,
            "/api/v2/filters",
            json!({"title": "spoilers", "context": ["home"], "keywords_attributes": [{"keyword": "plot"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let notifications = app.get(&me.token, "/api/v1/notifications").await;
    let notification = notifications[0]["id"].as_str().unwrap().to_owned();
    let groups = app.get(&me.token, "/api/v2/notifications").await;
    let group = groups["notification_groups"][0]["group_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let fill = |path: &str| {
        path.replace("{other}", &other.id)
            .replace("{post}", post["id"].as_str().unwrap())
            .replace("{doomed}", doomed["id"].as_str().unwrap())
            .replace("{filter}", filter["id"].as_str().unwrap())
            .replace("{notification}", &notification)
            .replace("{group}", &group)
    };
    let mut tokens = Vec::new();
    for kind in KINDS {
        tokens.push(token(&app, &me, kind).await);
    }

    let mut wrong = Vec::new();
    for (method, path, expected) in MATRIX {
        assert_eq!(expected.len(), KINDS.len(), "{method} {path}");
        for ((kind, token), want) in KINDS.iter().zip(&tokens).zip(expected.chars()) {
            let url = format!("{}{}", app.base, fill(path));
            let res = app
                .http
                .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
                .bearer_auth(token)
                .form(&[("status", "from the matrix"), ("home[last_read_id]", "1")])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap_or_default();
            let error = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            let ok = match want {
                'Y' => status != 401 && status != 403 && status < 500,
                'N' => status == 403 && error.contains("outside the authorized scopes"),
                'U' => status == 403 && error.contains("user token"),
                other => panic!("unknown matrix letter {other}"),
            };
            if !ok {
                wrong.push(format!(
                    "{method} {path} with {kind}: expected {want}, got {status} {body:.120}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    app.stop().await;
}

/// Every operation of the published OpenAPI document (which states each route's scope from
/// the table the server enforces): a token granting that scope's family is let through
/// (neither 401 nor 403 nor 5xx), and a user token of another family is refused with 403
/// and Mastodon's error. Together with the matrix above: no route is left unchecked, and
/// none checks a different scope than the document says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_grants_its_scope_and_refuses_other_families() {
    let mut app = spawn_app().await;
    let me = app.register("me").await;
    let other = app.register("other").await;
    let post = app.status(&me, "hello #starling").await;
    let post = post["id"].as_str().unwrap().to_owned();
    let mut tokens = std::collections::HashMap::new();
    for kind in ["read", "write", "follow", "push", "profile"] {
        tokens.insert(kind, token(&app, &me, kind).await);
    }
    let doc: Value = app
        .http
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A value for each path parameter: ids that exist where the route names an account or
    // a status, a plain word elsewhere (a 404 still shows the scope was granted).
    let fill = |path: &str| -> String {
        let mut out = String::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').unwrap() + start;
            let name = &rest[start + 1..end];
            out.push_str(match name {
                "id" if path.starts_with("/api/v1/accounts/") => &other.id,
                "id" if path.starts_with("/api/v1/statuses/") => &post,
                "name" | "tag" | "hashtag" => "starling",
                _ => "1",
            });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    };
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Long-lived streams answer a granted token with a stream that never ends.
        if path.starts_with("/api/v1/streaming") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            // Open to anyone (no token read), or to any valid token whatever its scopes.
            let Some(scope) = op["security"]
                .as_array()
                .and_then(|reqs| reqs.iter().find_map(|r| r["bearer"][0].as_str()))
            else {
                continue;
            };
            let family = scope.split(':').next().unwrap();
            let (grant, refuse) = match family {
                "read" => ("read", "write"),
                "write" => ("write", "read"),
                "push" => ("push", "read"),
                "follow" => ("follow", "read"),
                "profile" => ("profile", "write"),
                other => panic!("{method} {path}: unknown scope family {other}"),
            };
            let url = format!("{}{}", app.base, fill(path));
            for (kind, want_refused) in [(refuse, true), (grant, false)] {
                let res = app
                    .http
                    .request(
                        Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                        &url,
                    )
                    .bearer_auth(&tokens[kind])
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap_or_default();
                let error = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let scope_refused =
                    status == 403 && error.contains("outside the authorized scopes");
                // Granted: anything but a refusal of the token (a 403 of the route's own,
                // such as a block standing between two accounts, is an answer).
                let ok = if want_refused {
                    scope_refused
                } else {
                    status != 401 && !scope_refused && status < 500
                };
                if !ok {
                    wrong.push(format!(
                        "{} {path} ({scope}) with {kind}: expected {}, got {status} {body:.120}",
                        method.to_uppercase(),
                        if want_refused { "403" } else { "granted" },
                    ));
                }
            }
            checked += 1;
        }
    }
    eprintln!("{checked} operations checked with a granting and a refused token");
    assert!(checked >= 100, "only {checked} operations carry a scope");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    app.stop().await;
}
