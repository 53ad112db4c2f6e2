//! Which OAuth scope each route needs, declared once, and whether a token grants it.
//!
//! The declarations follow Mastodon's controllers (`doorkeeper_authorize! :write,
//! :'write:statuses'`): a route needs one granular scope, which the token grants when it
//! holds that scope or its family (`write`); the legacy `follow` scope also grants the
//! follow, block and mute scopes, and `profile` grants only `verify_credentials`. Routes
//! open to anonymous readers check the scope only when a token is presented. A route missing
//! from [`needed`] needs its method's whole family (`read` for GET and HEAD, `write`
//! otherwise), so an undeclared route is never more open than a declared one.

use actix_web::http::Method;

/// What a route asks of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    /// The granular scope (`write:statuses`), or a family alone (`read`, `push`).
    pub scope: &'static str,
    /// A second scope that also grants it (`follow`, `profile`), if any.
    pub also: Option<&'static str>,
}

impl Need {
    const fn scope(scope: &'static str) -> Self {
        Need { scope, also: None }
    }

    const fn or(scope: &'static str, also: &'static str) -> Self {
        Need {
            scope,
            also: Some(also),
        }
    }

    /// Whether a token holding `scopes` may use the route.
    pub fn granted_by(&self, scopes: &[String]) -> bool {
        let family = self.scope.split(':').next().unwrap_or(self.scope);
        scopes
            .iter()
            .any(|s| s == self.scope || s == family || self.also.is_some_and(|a| s == a))
    }
}

/// The live streams: a user's home and notifications, public and hashtag streams.
pub const STREAMING: Need = Need::or("read:statuses", "read:notifications");

/// Who the token's user is (OpenID Connect's `userinfo`, `verify_credentials`).
pub const PROFILE: Need = Need::or("read:accounts", "profile");

/// The scope a request with `method` to the route registered as `pattern` needs.
pub fn needed(method: &Method, pattern: Option<&str>) -> Need {
    let shape = pattern.map(shape).unwrap_or_default();
    declared(method, &shape).unwrap_or(if is_read(method) {
        Need::scope("read")
    } else {
        Need::scope("write")
    })
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// A route pattern with its parameters unnamed: `/api/v1/lists/{id}` → `/api/v1/lists/{}`.
fn shape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut depth = 0usize;
    for c in pattern.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push_str("{}");
                }
                depth += 1;
            }
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Mastodon's declarations, route by route (`app/controllers/api/**`).
fn declared(method: &Method, shape: &str) -> Option<Need> {
    let read = is_read(method);
    let need = match shape {
        // Accounts.
        "/api/v1/accounts" => Need::scope("write:accounts"),
        "/api/v1/accounts/verify_credentials" | "/oauth/userinfo" => PROFILE,
        "/api/v1/accounts/update_credentials" => Need::scope("write:accounts"),
        "/api/v1/accounts/relationships" => Need::or("read:follows", "follow"),
        "/api/v1/accounts/lookup"
        | "/api/v1/accounts/search"
        | "/api/v1/accounts/{}"
        | "/api/v1/accounts/{}/followers"
        | "/api/v1/accounts/{}/following"
        | "/api/v1/accounts/{}/lists"
        | "/api/v1/statuses/{}/favourited_by"
        | "/api/v1/statuses/{}/reblogged_by"
        | "/api/v1/preferences" => Need::scope("read:accounts"),
        "/api/v1/accounts/{}/statuses" => Need::scope("read:statuses"),
        "/api/v1/accounts/{}/follow" | "/api/v1/accounts/{}/unfollow" => {
            Need::or("write:follows", "follow")
        }
        "/api/v1/accounts/{}/block" | "/api/v1/accounts/{}/unblock" => {
            Need::or("write:blocks", "follow")
        }
        "/api/v1/accounts/{}/mute" | "/api/v1/accounts/{}/unmute" => {
            Need::or("write:mutes", "follow")
        }
        "/api/v1/blocks" => Need::or("read:blocks", "follow"),
        "/api/v1/mutes" => Need::or("read:mutes", "follow"),
        "/api/v1/follow_requests" | "/api/v1/followed_tags" => Need::or("read:follows", "follow"),
        "/api/v1/follow_requests/{}/authorize"
        | "/api/v1/follow_requests/{}/reject"
        | "/api/v1/tags/{}/follow"
        | "/api/v1/tags/{}/unfollow" => Need::or("write:follows", "follow"),
        // Statuses and what is done to them.
        "/api/v1/statuses" | "/api/v1/statuses/{}" if !read => Need::scope("write:statuses"),
        "/api/v1/statuses/{}/favourite" | "/api/v1/statuses/{}/unfavourite" => {
            Need::scope("write:favourites")
        }
        "/api/v1/statuses/{}/bookmark" | "/api/v1/statuses/{}/unbookmark" => {
            Need::scope("write:bookmarks")
        }
        "/api/v1/statuses/{}/mute" | "/api/v1/statuses/{}/unmute" => Need::scope("write:mutes"),
        "/api/v1/statuses/{}/pin" | "/api/v1/statuses/{}/unpin" => Need::scope("write:accounts"),
        "/api/v1/statuses/{}/reblog" | "/api/v1/statuses/{}/unreblog" => {
            Need::scope("write:statuses")
        }
        "/api/v1/polls/{}/votes" => Need::scope("write:statuses"),
        "/api/v1/bookmarks" => Need::scope("read:bookmarks"),
        "/api/v1/favourites" => Need::scope("read:favourites"),
        "/api/v1/media" | "/api/v2/media" | "/api/v1/media/{}" if !read => {
            Need::scope("write:media")
        }
        "/api/v1/media/{}" => Need::scope("write:media"),
        // Timelines, markers, conversations (Mastodon reads them all as statuses).
        "/api/v1/statuses/{}"
        | "/api/v1/statuses/{}/context"
        | "/api/v1/statuses/{}/history"
        | "/api/v1/statuses/{}/source"
        | "/api/v1/polls/{}"
        | "/api/v1/timelines/home"
        | "/api/v1/timelines/public"
        | "/api/v1/timelines/tag/{}"
        | "/api/v1/timelines/list/{}"
        | "/api/v1/conversations"
        | "/api/v1/conversations/" => Need::scope("read:statuses"),
        "/api/v1/markers" if read => Need::scope("read:statuses"),
        "/api/v1/markers" => Need::scope("write:statuses"),
        "/api/v1/conversations/{}" | "/api/v1/conversations/{}/read" => {
            Need::scope("write:conversations")
        }
        // Lists.
        "/api/v1/lists" | "/api/v1/lists/{}" | "/api/v1/lists/{}/accounts" if read => {
            Need::scope("read:lists")
        }
        "/api/v1/lists" | "/api/v1/lists/{}" | "/api/v1/lists/{}/accounts" => {
            Need::scope("write:lists")
        }
        // Notifications.
        "/api/v1/notifications"
        | "/api/v1/notifications/{}"
        | "/api/v1/notifications/unread_count"
        | "/api/v2/notifications"
        | "/api/v2/notifications/unread_count"
        | "/api/v2/notifications/{}"
        | "/api/v2/notifications/{}/accounts"
            if read =>
        {
            Need::scope("read:notifications")
        }
        "/api/v1/notifications/clear"
        | "/api/v1/notifications/{}/dismiss"
        | "/api/v2/notifications/{}/dismiss" => Need::scope("write:notifications"),
        // Filters.
        "/api/v1/filters"
        | "/api/v1/filters/{}"
        | "/api/v2/filters"
        | "/api/v2/filters/{}"
        | "/api/v2/filters/{}/keywords"
        | "/api/v2/filters/{}/statuses"
        | "/api/v2/filters/keywords/{}"
        | "/api/v2/filters/statuses/{}"
        | "/api/v2/filter_keywords/{}"
        | "/api/v2/filter_statuses/{}"
            if read =>
        {
            Need::scope("read:filters")
        }
        "/api/v1/filters"
        | "/api/v1/filters/{}"
        | "/api/v2/filters"
        | "/api/v2/filters/{}"
        | "/api/v2/filters/{}/keywords"
        | "/api/v2/filters/{}/statuses"
        | "/api/v2/filters/keywords/{}"
        | "/api/v2/filters/statuses/{}"
        | "/api/v2/filter_keywords/{}"
        | "/api/v2/filter_statuses/{}" => Need::scope("write:filters"),
        // Search, suggestions, announcements, push.
        "/api/v2/search" => Need::scope("read:search"),
        "/api/v1/suggestions" | "/api/v2/suggestions" | "/api/v1/suggestions/{}" if read => {
            Need::scope("read")
        }
        "/api/v1/suggestions/{}" => Need::scope("write"),
        "/api/v1/announcements" => Need::scope("read"),
        "/api/v1/announcements/{}/dismiss" => Need::scope("write:accounts"),
        "/api/v1/push/subscription" => Need::scope("push"),
        _ => return None,
    };
    Some(need)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn allowed(token: &str, method: Method, pattern: &str) -> bool {
        needed(&method, Some(pattern)).granted_by(&scopes(token))
    }

    #[test]
    fn route_patterns_lose_their_parameter_names() {
        assert_eq!(shape("/api/v1/lists/{id}"), "/api/v1/lists/{}");
        assert_eq!(
            shape("/api/v1/streaming/{stream:.+}"),
            "/api/v1/streaming/{}"
        );
        assert_eq!(
            shape("/api/v2/notifications/{group_key}/accounts"),
            "/api/v2/notifications/{}/accounts"
        );
    }

    /// token scopes × route → allowed, as Mastodon's documentation lists them.
    #[test]
    fn tokens_reach_exactly_the_routes_their_scopes_name() {
        use Method as M;
        let cases: &[(&str, Method, &str, bool)] = &[
            ("read", M::GET, "/api/v1/timelines/home", true),
            ("read", M::POST, "/api/v1/statuses", false),
            ("write", M::POST, "/api/v1/statuses", true),
            ("write", M::GET, "/api/v1/timelines/home", false),
            ("write:statuses", M::POST, "/api/v1/statuses", true),
            ("write:statuses", M::DELETE, "/api/v1/statuses/{id}", true),
            (
                "write:statuses",
                M::POST,
                "/api/v1/statuses/{id}/favourite",
                false,
            ),
            (
                "write:favourites",
                M::POST,
                "/api/v1/statuses/{id}/favourite",
                true,
            ),
            ("write:favourites", M::POST, "/api/v1/statuses", false),
            ("follow", M::POST, "/api/v1/statuses", false),
            ("follow", M::POST, "/api/v1/accounts/{id}/follow", true),
            ("follow", M::POST, "/api/v1/accounts/{id}/block", true),
            ("follow", M::GET, "/api/v1/mutes", true),
            ("follow", M::GET, "/api/v1/accounts/relationships", true),
            ("follow", M::GET, "/api/v1/timelines/home", false),
            ("read:notifications", M::GET, "/api/v1/notifications", true),
            (
                "read:notifications",
                M::GET,
                "/api/v1/timelines/home",
                false,
            ),
            (
                "read:notifications",
                M::POST,
                "/api/v1/notifications/clear",
                false,
            ),
            (
                "profile",
                M::GET,
                "/api/v1/accounts/verify_credentials",
                true,
            ),
            ("profile", M::GET, "/api/v1/accounts/{id}", false),
            (
                "read:accounts",
                M::GET,
                "/api/v1/accounts/verify_credentials",
                true,
            ),
            ("read:statuses", M::GET, "/api/v1/markers", true),
            ("read:statuses", M::POST, "/api/v1/markers", false),
            ("push", M::POST, "/api/v1/push/subscription", true),
            (
                "read write follow",
                M::POST,
                "/api/v1/push/subscription",
                false,
            ),
            ("write:media", M::POST, "/api/v2/media", true),
            ("write:media", M::GET, "/api/v1/media/{id}", true),
            ("read", M::GET, "/api/v1/media/{id}", false),
            ("read:lists", M::GET, "/api/v1/lists/{id}/accounts", true),
            ("read:lists", M::POST, "/api/v1/lists/{id}/accounts", false),
            ("write:lists", M::DELETE, "/api/v1/lists/{id}", true),
            // Undeclared routes need the whole family of their method.
            ("read:statuses", M::GET, "/api/v1/not/declared", false),
            ("read", M::GET, "/api/v1/not/declared", true),
            ("write:statuses", M::POST, "/api/v1/not/declared", false),
            ("write", M::POST, "/api/v1/not/declared", true),
        ];
        for (token, method, pattern, expected) in cases {
            assert_eq!(
                allowed(token, method.clone(), pattern),
                *expected,
                "{token} {method} {pattern}"
            );
        }
    }

    #[test]
    fn a_route_without_a_pattern_needs_its_methods_family() {
        assert_eq!(needed(&Method::GET, None), Need::scope("read"));
        assert_eq!(needed(&Method::PATCH, None), Need::scope("write"));
    }
}
