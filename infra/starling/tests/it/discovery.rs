//! Trends and who to follow end to end (issue 13): hashtags, links and statuses counted by
//! the discovery role from the event stream, decaying, with per-day history; suggestions
//! from friends of friends and the global list, minus whom the user follows, blocks,
//! mutes or dismissed; a suggestion round that carries on after its worker dies.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use starling::Role;
use starling_schema::Id;
use starling_schema::discovery::history_days;
use starling_schema::ids::now_ms;
use starling_schema::model::ImportAccount;
use starling_store::Store;

use crate::helpers::{TestApp, User, spawn_app_roles, spawn_app_with};
use crate::social::{act, id, post};

const WAIT: Duration = Duration::from_secs(15);

/// Poll `path` as `user` until `pred` holds on the JSON; the last answer either way.
async fn wait_for(app: &TestApp, user: &User, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = app.get(&user.token, path).await;
        if pred(&v) || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn account_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| {
            s.get("account")
                .unwrap_or(s)
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn delete(app: &TestApp, user: &User, path: &str) -> (u16, Value) {
    let res = app
        .http
        .delete(format!("{}{path}", app.base))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("DELETE");
    let code = res.status().as_u16();
    (code, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hashtag_used_by_several_accounts_trends_with_history_then_decays() {
    let mut app = spawn_app_with(|s| {
        s.discovery.half_life_secs = 4;
        s.discovery.min_score = 1.5;
    })
    .await;
    let mut users = Vec::new();
    for name in ["ta", "tb", "tc", "td"] {
        users.push(app.register(name).await);
    }
    let viewer = app.register("tviewer").await;
    // Four accounts use #Rust, one of them twice; one account uses #solo; #hidden is used by
    // three accounts but never publicly; a link is posted by two accounts.
    for u in &users {
        app.status(u, "learning #Rust today").await;
    }
    app.status(&users[0], "more #rust").await;
    app.status(&users[0], "just me #solo").await;
    for u in &users[..3] {
        post(
            &app,
            u,
            json!({"status": "quiet #hidden", "visibility": "unlisted"}),
        )
        .await;
    }
    for u in &users[..2] {
        app.status(u, "read https://news.example/story?id=7.").await;
    }

    // Every use counted: five posts by four accounts today.
    let trends = wait_for(&app, &viewer, "/api/v1/trends/tags", |v| {
        v.as_array().is_some_and(|a| {
            a.iter().any(|t| {
                t["name"] == "rust"
                    && t["history"][0]["uses"] == "5"
                    && t["history"][0]["accounts"] == "4"
            })
        })
    })
    .await;
    assert_eq!(names(&trends), vec!["rust"], "{trends}");
    let rust = &trends[0];
    assert!(
        rust["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/tags/rust"))
    );
    let history = rust["history"].as_array().expect("history");
    assert_eq!(history.len(), 7);
    let today = history_days(now_ms())[0].to_string();
    assert_eq!(history[0]["day"], today);
    assert_eq!(history[0]["uses"], "5", "five posts used it today");
    assert_eq!(history[0]["accounts"], "4", "by four accounts");
    assert_eq!(history[1]["uses"], "0");
    // The older path answers the same list; tags everywhere carry the history.
    assert_eq!(
        names(&app.get(&viewer.token, "/api/v1/trends").await),
        vec!["rust"]
    );
    let tag = app.get(&viewer.token, "/api/v1/tags/rust").await;
    assert_eq!(tag["history"][0]["accounts"], "4");
    let followed = app
        .post_json(&viewer.token, "/api/v1/tags/rust/follow", json!({}))
        .await;
    assert!(followed.status().is_success());
    let mine = app.get(&viewer.token, "/api/v1/followed_tags").await;
    assert_eq!(mine[0]["history"][0]["uses"], "5");
    let hidden = app.get(&viewer.token, "/api/v1/tags/hidden").await;
    assert_eq!(
        hidden["history"][0]["uses"], "0",
        "unlisted posts do not count"
    );
    // The link trends too, as a card with its history.
    let links = wait_for(&app, &viewer, "/api/v1/trends/links", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(links[0]["url"], "https://news.example/story?id=7");
    assert_eq!(links[0]["provider_name"], "news.example");
    assert_eq!(links[0]["type"], "link");
    assert_eq!(links[0]["history"][0]["accounts"], "2");

    // Bad input: a limit of a million is clamped (Mastodon's 20), a word is refused.
    let clamped = app
        .get(&viewer.token, "/api/v1/trends/tags?limit=1000000")
        .await;
    assert!(clamped.as_array().is_some_and(|a| a.len() <= 20));
    let res = app
        .get_raw(&viewer.token, "/api/v1/trends/tags?limit=lots")
        .await;
    assert_eq!(res.status().as_u16(), 422);
    assert!(res.json::<Value>().await.expect("json")["error"].is_string());

    // Nobody uses #rust any more: it decays out of the trends (four accounts, halving every
    // four seconds, under 1.5 within about six seconds), while three accounts' new #fresh is in.
    let started = Instant::now();
    let gone = wait_for(&app, &viewer, "/api/v1/trends/tags", |v| {
        !names(v).contains(&"rust".to_owned())
    })
    .await;
    assert!(!names(&gone).contains(&"rust".to_owned()), "{gone}");
    assert!(started.elapsed() < WAIT);
    for u in &users[1..] {
        app.status(u, "#fresh start").await;
    }
    let now = wait_for(&app, &viewer, "/api/v1/trends/tags", |v| {
        names(v).contains(&"fresh".to_owned())
    })
    .await;
    assert_eq!(names(&now), vec!["fresh"]);
    // History does not decay: today's uses of #rust stay counted.
    let tag = app.get(&viewer.token, "/api/v1/tags/rust").await;
    assert_eq!(tag["history"][0]["uses"], "5");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_trend_by_distinct_accounts_and_leave_when_deleted() {
    let mut app = spawn_app_with(|s| {
        s.discovery.min_score = 1.5;
    })
    .await;
    let author = app.register("sauthor").await;
    let fans: Vec<User> = {
        let mut v = Vec::new();
        for name in ["sfan1", "sfan2", "sfan3"] {
            v.push(app.register(name).await);
        }
        v
    };
    let hot = id(&app.status(&author, "a good post").await);
    let quiet = id(&post(
        &app,
        &author,
        json!({"status": "an unlisted one", "visibility": "unlisted"}),
    )
    .await);
    let own = id(&app.status(&author, "liked by me alone").await);
    for f in &fans[..2] {
        assert_eq!(
            act(&app, f, &format!("/api/v1/statuses/{hot}/favourite"))
                .await
                .0,
            200
        );
        assert_eq!(
            act(&app, f, &format!("/api/v1/statuses/{quiet}/favourite"))
                .await
                .0,
            200
        );
    }
    // A reblog by a third account counts; the author's own favourite and a repeat do not.
    assert_eq!(
        act(&app, &fans[2], &format!("/api/v1/statuses/{hot}/reblog"))
            .await
            .0,
        200
    );
    act(&app, &author, &format!("/api/v1/statuses/{own}/favourite")).await;
    act(&app, &fans[0], &format!("/api/v1/statuses/{own}/favourite")).await;

    let viewer = &fans[0];
    let trending = wait_for(&app, viewer, "/api/v1/trends/statuses", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let ids: Vec<&str> = trending
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["id"].as_str())
        .collect();
    assert_eq!(ids, vec![hot.as_str()], "{trending}");
    assert_eq!(trending[0]["favourites_count"], 2);
    // Anonymous readers see it too; a reader who blocks the author does not.
    let anon: Value = app
        .http
        .get(format!("{}/api/v1/trends/statuses", app.base))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(anon[0]["id"], hot.as_str());
    let blocker = &fans[1];
    act(
        &app,
        blocker,
        &format!("/api/v1/accounts/{}/block", author.id),
    )
    .await;
    let theirs = app.get(&blocker.token, "/api/v1/trends/statuses").await;
    assert_eq!(theirs, json!([]));
    // Deleted: out of the trends at once.
    let res = app
        .http
        .delete(format!("{}/api/v1/statuses/{hot}", app.base))
        .bearer_auth(&author.token)
        .send()
        .await
        .expect("DELETE");
    assert!(res.status().is_success());
    let after = wait_for(&app, viewer, "/api/v1/trends/statuses", |v| v == &json!([])).await;
    assert_eq!(after, json!([]));
    let capped = app
        .get(
            &viewer.token,
            "/api/v1/trends/statuses?limit=1000000&offset=99999999",
        )
        .await;
    assert_eq!(capped, json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_rank_friends_of_friends_and_leave_out_whom_the_user_shuns() {
    let mut app = spawn_app_with(|s| {
        s.discovery.interval_secs = 1;
    })
    .await;
    let me = app.register("me").await;
    let mut named = std::collections::HashMap::new();
    for name in [
        "f1",
        "f2",
        "f3",
        "x",
        "y",
        "z",
        "blocked",
        "muted",
        "dismissed",
        "blocker",
    ] {
        named.insert(name, app.register(name).await);
    }
    let u = |n: &str| named[n].clone();
    // f1, f2, f3 follow x; f1, f2 follow y; f1 follows z and the others; f2 follows f1.
    for f in ["f1", "f2", "f3"] {
        app.follow(&u(f), &u("x")).await;
    }
    app.follow(&u("f1"), &u("y")).await;
    app.follow(&u("f2"), &u("y")).await;
    for other in ["z", "blocked", "muted", "dismissed", "blocker"] {
        app.follow(&u("f1"), &u(other)).await;
    }
    app.follow(&u("f2"), &u("f1")).await;
    act(
        &app,
        &me,
        &format!("/api/v1/accounts/{}/block", u("blocked").id),
    )
    .await;
    act(
        &app,
        &me,
        &format!("/api/v1/accounts/{}/mute", u("muted").id),
    )
    .await;
    act(
        &app,
        &u("blocker"),
        &format!("/api/v1/accounts/{}/block", me.id),
    )
    .await;
    let (code, body) = delete(
        &app,
        &me,
        &format!("/api/v1/suggestions/{}", u("dismissed").id),
    )
    .await;
    assert_eq!((code, body), (200, json!({})));
    // Following asks for the user's suggestions at once.
    for f in ["f1", "f2", "f3"] {
        app.follow(&me, &u(f)).await;
    }
    let want = [u("x").id, u("y").id, u("z").id];
    let got = wait_for(&app, &me, "/api/v2/suggestions", |v| {
        account_ids(v).get(..3) == Some(&want[..])
    })
    .await;
    assert_eq!(account_ids(&got).get(..3), Some(&want[..]), "{got}");
    assert_eq!(got[0]["sources"][0], "friends_of_friends");
    assert_eq!(got[0]["source"], "past_interactions");
    assert_eq!(got[0]["account"]["username"], "x");
    let all = account_ids(&got);
    for shunned in ["f1", "f2", "f3", "blocked", "muted", "dismissed", "blocker"] {
        assert!(!all.contains(&u(shunned).id), "{shunned} suggested: {got}");
    }
    assert!(!all.contains(&me.id));
    // v1 answers the accounts alone.
    let v1 = app.get(&me.token, "/api/v1/suggestions").await;
    assert_eq!(account_ids(&v1).get(..3), Some(&want[..]));
    // Dismissed: gone at once, and for good.
    let (code, _) = delete(&app, &me, &format!("/api/v1/suggestions/{}", u("x").id)).await;
    assert_eq!(code, 200);
    let now = app.get(&me.token, "/api/v2/suggestions").await;
    assert_eq!(account_ids(&now).first(), Some(&u("y").id));
    // Followed: gone at once too.
    app.follow(&me, &u("y")).await;
    let now = app.get(&me.token, "/api/v2/suggestions?limit=1").await;
    assert_eq!(account_ids(&now), vec![u("z").id]);
    // Bad input: a limit of a million is clamped; an account that does not exist is 404.
    let many = app
        .get(&me.token, "/api/v2/suggestions?limit=1000000")
        .await;
    assert!(many.as_array().is_some_and(|a| a.len() <= 80));
    for missing in ["999999999999", "nobody"] {
        let (code, body) = delete(&app, &me, &format!("/api/v1/suggestions/{missing}")).await;
        assert_eq!(code, 404, "{body}");
        assert!(body["error"].is_string());
    }

    // A new user who follows nobody gets the global list: x posted and is the most followed.
    app.status(&u("x"), "hello").await;
    let newbie = app.register("newbie").await;
    let global = wait_for(&app, &newbie, "/api/v2/suggestions", |v| {
        account_ids(v).contains(&u("x").id)
    })
    .await;
    let x = global
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["account"]["id"] == u("x").id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(x["sources"], json!(["most_followed"]), "{global}");
    assert_eq!(x["source"], "global");
    app.stop().await;
}

/// Accounts imported straight into the store: `n` of them, each following the next two.
async fn chain(app: &TestApp, n: usize) -> Vec<Id> {
    let store = &app.node().store;
    let accounts = store
        .import_accounts(
            (0..n)
                .map(|i| ImportAccount {
                    username: format!("chain{i}"),
                    display_name: None,
                    bot: false,
                })
                .collect(),
        )
        .await
        .expect("import");
    let ids: Vec<Id> = accounts.iter().map(|a| a.id).collect();
    let mut edges = Vec::new();
    for i in 0..n {
        for d in 1..=2 {
            if i + d < n {
                edges.push((ids[i], ids[i + d]));
            }
        }
    }
    store.import_follows(edges).await.expect("follows");
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suggestion_round_carries_on_after_its_worker_dies() {
    // No discovery role yet: the test plays the first worker itself.
    let roles: Vec<Role> = Role::all()
        .into_iter()
        .filter(|r| *r != Role::Discovery)
        .collect();
    let tweak = |s: &mut starling_schema::settings::Settings| {
        s.discovery.batch = 3;
        s.discovery.claim_timeout_secs = 1;
    };
    let app = spawn_app_roles(&roles, tweak).await;
    let ids = chain(&app, 30).await;
    let node = app.node();
    let mut settings = starling_schema::settings::Settings::default();
    tweak(&mut settings);
    let job = starling_discovery::SuggestionJob::new(
        node.store.clone(),
        node.timelines.clone(),
        &settings.discovery,
    );
    // Two batches done by the first worker...
    for _ in 0..2 {
        let step = job.step().await.expect("step");
        assert_eq!(step, starling_discovery::RoundReport::Batch { users: 3 });
    }
    // ...which then claims a third and dies before finishing it.
    let tl = &node.timelines;
    let round = tl
        .suggestion_round()
        .await
        .expect("round")
        .expect("started");
    assert_eq!((round.number, round.users, round.done), (1, 6, false));
    let page = node
        .store
        .scan_accounts(round.cursor, 3)
        .await
        .expect("scan");
    tl.claim_suggestion_batch(round.cursor, page.next, now_ms())
        .await
        .expect("claim");
    let orphaned: Vec<Id> = page.items.iter().map(|a| a.id).collect();

    // A discovery process starts (a restart): it carries the same round to its end,
    // claiming the orphaned batch again once it is stale.
    let worker = app.spawn_role_node(2, &[Role::Discovery], tweak).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let finished = loop {
        let r = tl.suggestion_round().await.expect("round").expect("round");
        if r.finished_ms.is_some() || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finished.number, 1, "the same round, not a new one");
    assert!(
        finished.done && finished.finished_ms.is_some(),
        "{finished:?}"
    );
    assert!(finished.users >= ids.len() as u64, "{finished:?}");
    for user in ids.iter().chain(&orphaned) {
        assert!(
            tl.suggestions(*user).await.expect("read").is_some(),
            "{user} has no suggestions"
        );
    }
    // chain0 follows chain1 and chain2, who follow chain3 (both) and chain4 (one).
    let first = tl.suggestions(ids[0]).await.expect("read").expect("some");
    let fof: Vec<Id> = first.iter().map(|s| s.account).collect();
    assert_eq!(fof, vec![ids[3], ids[4]]);
    worker.stop().await;
    app.stop().await;
}
