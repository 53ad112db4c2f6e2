//! Lists, bookmarks, favourites and pins end to end over the Mastodon API (issue 13),
//! with the bad input the issue names: someone else's list, a member not followed, a
//! limit of a million.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, User, spawn_app};
use crate::social::{id, ids, until};

const WAIT: Duration = Duration::from_secs(3);

async fn send(
    app: &TestApp,
    user: &User,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let res = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_private_fed_by_fan_out_and_exclusive_ones_leave_home() {
    use reqwest::Method;
    let mut app = spawn_app().await;
    let owner = app.register("owner").await;
    let friend = app.register("friend").await;
    let other = app.register("other").await;
    let stranger = app.register("stranger").await;
    app.follow(&owner, &friend).await;
    app.follow(&owner, &other).await;

    let (code, list) = send(
        &app,
        &owner,
        Method::POST,
        "/api/v1/lists",
        json!({"title": "friends", "replies_policy": "none"}),
    )
    .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["title"], "friends");
    assert_eq!(list["replies_policy"], "none");
    assert_eq!(list["exclusive"], false);
    let list_id = id(&list);
    let members = format!("/api/v1/lists/{list_id}/accounts");
    // A member the owner does not follow: 422, as Mastodon.
    let (code, body) = send(
        &app,
        &owner,
        Method::POST,
        &members,
        json!({"account_ids": [stranger.id]}),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("followed")),
        "{body}"
    );
    let (code, body) = send(
        &app,
        &owner,
        Method::POST,
        &members,
        json!({"account_ids": [friend.id]}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // Someone else's list is not found, however it is asked for.
    for (method, path) in [
        (Method::GET, format!("/api/v1/lists/{list_id}")),
        (Method::PUT, format!("/api/v1/lists/{list_id}")),
        (Method::DELETE, format!("/api/v1/lists/{list_id}")),
        (Method::GET, members.clone()),
        (Method::GET, format!("/api/v1/timelines/list/{list_id}")),
    ] {
        let (code, body) = send(
            &app,
            &stranger,
            method.clone(),
            &path,
            json!({"title": "mine"}),
        )
        .await;
        assert_eq!(code, 404, "{method} {path}: {body}");
        assert!(body["error"].is_string());
    }
    let (code, _) = send(
        &app,
        &stranger,
        Method::POST,
        &members,
        json!({"account_ids": [friend.id]}),
    )
    .await;
    assert_eq!(code, 404);
    // Bad input: a blank title, an unknown policy, a limit of a million (clamped).
    let (code, body) = send(
        &app,
        &owner,
        Method::POST,
        "/api/v1/lists",
        json!({"title": "  "}),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let (code, body) = send(
        &app,
        &owner,
        Method::PUT,
        &format!("/api/v1/lists/{list_id}"),
        json!({"replies_policy": "everyone"}),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let page = app
        .get(&owner.token, &format!("{members}?limit=1000000"))
        .await;
    assert_eq!(ids(&page), vec![friend.id.clone()]);
    let holding = app
        .get(
            &owner.token,
            &format!("/api/v1/accounts/{}/lists", friend.id),
        )
        .await;
    assert_eq!(ids(&holding), vec![list_id.clone()]);
    assert!(
        ids(&app
            .get(
                &owner.token,
                &format!("/api/v1/accounts/{}/lists", other.id)
            )
            .await)
        .is_empty()
    );

    // A member's post reaches the list by fan-out; another's does not.
    let from_friend = id(&app.status(&friend, "to the list").await);
    let from_other = id(&app.status(&other, "home only").await);
    let timeline = format!("/api/v1/timelines/list/{list_id}?limit=1000000");
    let got = until(&app, &owner, &timeline, |v| ids(v).contains(&from_friend)).await;
    assert_eq!(ids(&got), vec![from_friend.clone()]);
    let (ok, _) = app
        .home_until(&owner, WAIT, |h| {
            h.contains(&from_friend) && h.contains(&from_other)
        })
        .await;
    assert!(ok, "not exclusive yet: home has both");

    // Exclusive: the member's posts leave home, now and from then on.
    let (code, body) = send(
        &app,
        &owner,
        Method::PUT,
        &format!("/api/v1/lists/{list_id}"),
        json!({"exclusive": true}),
    )
    .await;
    assert_eq!(
        (code, body["exclusive"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    assert_eq!(
        body["title"], "friends",
        "an update keeps what it does not name"
    );
    let later = id(&app.status(&friend, "still listed").await);
    let got = until(&app, &owner, &timeline, |v| ids(v).contains(&later)).await;
    assert_eq!(ids(&got), vec![later.clone(), from_friend.clone()]);
    let home = app.home_ids(&owner, "?limit=40").await;
    assert!(home.contains(&from_other));
    assert!(
        !home.contains(&from_friend) && !home.contains(&later),
        "{home:?}"
    );

    // Removing the member empties the list; deleting it makes it unknown.
    let (code, _) = send(
        &app,
        &owner,
        Method::DELETE,
        &members,
        json!({"account_ids": [friend.id]}),
    )
    .await;
    assert_eq!(code, 200);
    assert!(ids(&app.get(&owner.token, &timeline).await).is_empty());
    let (code, _) = send(
        &app,
        &owner,
        Method::DELETE,
        &format!("/api/v1/lists/{list_id}"),
        json!({}),
    )
    .await;
    assert_eq!(code, 200);
    assert!(ids(&app.get(&owner.token, "/api/v1/lists").await).is_empty());
    let (code, _) = send(
        &app,
        &owner,
        Method::GET,
        &format!("/api/v1/timelines/list/{list_id}"),
        json!({}),
    )
    .await;
    assert_eq!(code, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_favourites_and_pins_list_what_was_kept() {
    use reqwest::Method;
    let mut app = spawn_app().await;
    let me = app.register("keeper").await;
    let author = app.register("writer").await;
    let mut posts = Vec::new();
    for i in 0..3 {
        posts.push(id(&app.status(&author, &format!("post {i}")).await));
    }
    // Kept out of posting order: listed newest kept first.
    for p in [&posts[1], &posts[0], &posts[2]] {
        let (code, body) = send(
            &app,
            &me,
            Method::POST,
            &format!("/api/v1/statuses/{p}/bookmark"),
            json!({}),
        )
        .await;
        assert_eq!(
            (code, body["bookmarked"].as_bool()),
            (200, Some(true)),
            "{body}"
        );
        let (code, body) = send(
            &app,
            &me,
            Method::POST,
            &format!("/api/v1/statuses/{p}/favourite"),
            json!({}),
        )
        .await;
        assert_eq!(
            (code, body["favourited"].as_bool()),
            (200, Some(true)),
            "{body}"
        );
    }
    let res = app.get_raw(&me.token, "/api/v1/bookmarks?limit=2").await;
    let link = res
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let first: Value = res.json().await.expect("json");
    assert_eq!(ids(&first), vec![posts[2].clone(), posts[0].clone()]);
    assert!(first[0]["bookmarked"].as_bool() == Some(true));
    // Next first, and it leads to the rest.
    let next = link
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .trim_matches(['<', '>']);
    assert!(
        link.contains("rel=\"next\"") && link.find("next") < link.find("prev"),
        "{link}"
    );
    let rest: Value = app
        .get_raw(&me.token, next)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&rest), vec![posts[1].clone()]);
    let faves = app.get(&me.token, "/api/v1/favourites?limit=1000000").await;
    assert_eq!(
        ids(&faves),
        vec![posts[2].clone(), posts[0].clone(), posts[1].clone()]
    );
    let (code, body) = send(
        &app,
        &me,
        Method::POST,
        &format!("/api/v1/statuses/{}/unbookmark", posts[0]),
        json!({}),
    )
    .await;
    assert_eq!((code, body["bookmarked"].as_bool()), (200, Some(false)));
    assert_eq!(
        ids(&app.get(&me.token, "/api/v1/bookmarks").await),
        vec![posts[2].clone(), posts[1].clone()]
    );
    // Nobody else sees my bookmarks.
    assert!(ids(&app.get(&author.token, "/api/v1/bookmarks").await).is_empty());

    // Pins: own posts only, shown with `pinned=true`, flagged.
    let (code, body) = send(
        &app,
        &me,
        Method::POST,
        &format!("/api/v1/statuses/{}/pin", posts[0]),
        json!({}),
    )
    .await;
    assert_eq!(code, 422, "someone else's post: {body}");
    let mine = id(&app.status(&me, "pin me").await);
    let (code, body) = send(
        &app,
        &me,
        Method::POST,
        &format!("/api/v1/statuses/{mine}/pin"),
        json!({}),
    )
    .await;
    assert_eq!(
        (code, body["pinned"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let pinned = app
        .get(
            &author.token,
            &format!("/api/v1/accounts/{}/statuses?pinned=true", me.id),
        )
        .await;
    assert_eq!(ids(&pinned), vec![mine.clone()]);
    let (code, body) = send(
        &app,
        &me,
        Method::POST,
        &format!("/api/v1/statuses/{mine}/unpin"),
        json!({}),
    )
    .await;
    assert_eq!((code, body["pinned"].as_bool()), (200, Some(false)));
    assert!(
        ids(&app
            .get(
                &me.token,
                &format!("/api/v1/accounts/{}/statuses?pinned=true", me.id)
            )
            .await)
        .is_empty()
    );
    // Unknown posts.
    let (code, body) = send(
        &app,
        &me,
        Method::POST,
        "/api/v1/statuses/12345/bookmark",
        json!({}),
    )
    .await;
    assert_eq!(code, 404, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_search_matches_prefixes_and_puts_follows_first() {
    let mut app = spawn_app().await;
    let me = app.register("searcher").await;
    let first = app.register("alibaba").await;
    let followed = app.register("alicia").await;
    let _other = app.register("bob").await;
    app.follow(&me, &followed).await;
    let path = "/api/v1/accounts/search?q=ali&limit=1000000&resolve=true";
    let got = until(&app, &me, path, |v| ids(v).len() == 2).await;
    let got = ids(&got);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], followed.id, "the followed account first");
    assert_eq!(got[1], first.id);
    let only = app
        .get(&me.token, "/api/v1/accounts/search?q=ali&following=true")
        .await;
    assert_eq!(ids(&only), vec![followed.id.clone()]);
    assert!(ids(&app.get(&me.token, "/api/v1/accounts/search?q=zz").await).is_empty());
    let long = "a".repeat(10_000);
    let res = app
        .get_raw(&me.token, &format!("/api/v1/accounts/search?q={long}"))
        .await;
    assert_eq!(res.status().as_u16(), 422);
    let body: Value = res.json().await.expect("json");
    assert!(body["error"].is_string());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_hashtag_brings_strangers_posts_home() {
    use reqwest::Method;
    let mut app = spawn_app().await;
    let me = app.register("tagfan").await;
    let stranger = app.register("tagger").await;
    let tag = app.get(&me.token, "/api/v1/tags/Rust").await;
    assert_eq!(
        (tag["name"].as_str(), tag["following"].as_bool()),
        (Some("rust"), Some(false))
    );
    let (code, body) = send(
        &app,
        &me,
        Method::POST,
        "/api/v1/tags/rust/follow",
        json!({}),
    )
    .await;
    assert_eq!(
        (code, body["following"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let followed = app
        .get(&me.token, "/api/v1/followed_tags?limit=1000000")
        .await;
    assert_eq!(followed[0]["name"], "rust");
    assert_eq!(
        app.get(&me.token, "/api/v1/tags/rust").await["following"],
        true
    );
    let post = id(&app.status(&stranger, "learning #Rust today").await);
    let other = id(&app.status(&stranger, "no tag here").await);
    let (ok, home) = app.home_until(&me, WAIT, |h| h.contains(&post)).await;
    assert!(ok, "{home:?}");
    assert!(!home.contains(&other));
    // Unfollowing takes them out again (the home is rebuilt without them).
    let (code, body) = send(
        &app,
        &me,
        Method::POST,
        "/api/v1/tags/rust/unfollow",
        json!({}),
    )
    .await;
    assert_eq!((code, body["following"].as_bool()), (200, Some(false)));
    assert!(!app.home_ids(&me, "").await.contains(&post));
    // A tag of 10,000 characters, and something that is no tag.
    let long = "t".repeat(10_000);
    for path in [
        format!("/api/v1/tags/{long}/follow"),
        "/api/v1/tags/no%20tag/follow".to_owned(),
    ] {
        let (code, body) = send(&app, &me, Method::POST, &path, json!({})).await;
        assert_eq!(code, 422, "{body}");
        assert!(body["error"].is_string());
    }
    app.stop().await;
}
