//! Golden bodies: fixed content (posts with mentions, tags, links and HTML to escape, a reply,
//! a reblog, private, direct and unlisted posts, notifications of every kind, blocks, mutes,
//! relationships, accounts) rendered through the real API, every body compared with the one
//! saved under `tests/it/golden/` after ids, times and the port are normalised. A change to
//! how statuses, accounts or notifications are rendered must leave these bodies equal.
//!
//! `STARLING_GOLDEN=update cargo test -p starling --test it golden` rewrites the files.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, User, spawn_app};

const WAIT: Duration = Duration::from_secs(5);

/// Replaces what differs between runs: the base URL, ids (long digit runs, numbered by first
/// appearance across the whole test) and ISO 8601 times and dates.
struct Normaliser {
    base: String,
    ids: HashMap<String, usize>,
}

impl Normaliser {
    fn normalise(&mut self, body: &Value) -> String {
        let text = serde_json::to_string_pretty(body)
            .expect("json")
            .replace(&self.base, "http://server");
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while i < bytes.len() {
            if let Some(len) = time_at(&bytes[i..]) {
                out.push_str(if len == 10 { "<date>" } else { "<time>" });
                i += len;
                continue;
            }
            if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(bytes.len(), |n| i + n);
                let run = &text[i..end];
                if run.len() >= 12 {
                    let n = self.ids.len();
                    let n = *self.ids.entry(run.to_owned()).or_insert(n);
                    out.push_str(&format!("<id{n}>"));
                } else {
                    out.push_str(run);
                }
                i = end;
                continue;
            }
            let c = text[i..].chars().next().expect("char");
            out.push(c);
            i += c.len_utf8();
        }
        out
    }
}

/// The length of `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS.mmmZ` at the start of `b`.
fn time_at(b: &[u8]) -> Option<usize> {
    let shape = |pattern: &[u8]| {
        b.len() >= pattern.len()
            && pattern.iter().zip(b).all(|(p, c)| match p {
                b'd' => c.is_ascii_digit(),
                p => p == c,
            })
    };
    if shape(b"dddd-dd-ddTdd:dd:dd.dddZ") {
        Some(24)
    } else if shape(b"dddd-dd-dd") {
        Some(10)
    } else {
        None
    }
}

struct Golden {
    norm: Normaliser,
    dir: PathBuf,
    update: bool,
    mismatches: Vec<String>,
}

impl Golden {
    fn check(&mut self, name: &str, body: &Value) {
        let got = self.norm.normalise(body);
        let path = self.dir.join(format!("{name}.json"));
        if self.update {
            std::fs::create_dir_all(&self.dir).expect("golden dir");
            std::fs::write(&path, format!("{got}\n")).expect("write golden");
            return;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (STARLING_GOLDEN=update writes it)", path.display())
        });
        if want.trim_end() != got {
            eprintln!("--- {name}: want\n{want}\n--- got\n{got}");
            self.mismatches.push(name.to_owned());
        }
    }
}

async fn ok(res: reqwest::Response, what: &str) -> Value {
    let status = res.status();
    let text = res.text().await.expect("body");
    assert!(status.is_success(), "{what}: {status} {text}");
    serde_json::from_str(&text).expect("json")
}

async fn post(app: &TestApp, user: &User, body: Value) -> Value {
    ok(
        app.post_json(&user.token, "/api/v1/statuses", body).await,
        "post",
    )
    .await
}

async fn act(app: &TestApp, user: &User, path: &str) -> Value {
    ok(app.post_json(&user.token, path, json!({})).await, path).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// Wait until `user` has `n` notifications, so that each action's notification is made
/// before the next (their order is then fixed).
async fn notified(app: &TestApp, user: &User, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = app.get(&user.token, "/api/v1/notifications").await;
        let len = got.as_array().expect("array").len();
        if len >= n {
            assert_eq!(
                len, n,
                "{} has more notifications than expected",
                user.username
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} got {len} of {n} notifications",
            user.username
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn home_holds(app: &TestApp, user: &User, post: &str) {
    let post = post.to_owned();
    let (found, ids) = app.home_until(user, WAIT, |ids| ids.contains(&post)).await;
    assert!(found, "{} never saw {post} at home: {ids:?}", user.username);
}

/// Wait until `user`'s home page stays the same for a while (fan-out may apply events of
/// one author on several workers at once, so the newest arriving says little of the rest).
async fn settled_home(app: &TestApp, user: &User) {
    let deadline = Instant::now() + WAIT;
    let mut last = app.home_ids(user, "?limit=40").await;
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_millis(400) {
        assert!(
            Instant::now() < deadline,
            "{}'s home never settled",
            user.username
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = app.home_ids(user, "?limit=40").await;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entity_renders_as_its_golden_body() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let mut g = Golden {
        norm: Normaliser {
            base: app.base.clone(),
            ids: HashMap::new(),
        },
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden"),
        update: std::env::var("STARLING_GOLDEN").is_ok_and(|v| v == "update"),
        mismatches: Vec::new(),
    };
    // Number the accounts first, so every body names them alike.
    for u in [&alice, &bob, &carol, &dave] {
        g.norm.normalise(&json!(u.id));
    }

    let mut alice_notes = 0;
    for follower in [&bob, &carol, &dave] {
        g.check(
            &format!("follow-{}", follower.username),
            &act(
                &app,
                follower,
                &format!("/api/v1/accounts/{}/follow", alice.id),
            )
            .await,
        );
        alice_notes += 1;
        notified(&app, &alice, alice_notes).await;
    }
    app.follow(&alice, &bob).await;
    notified(&app, &bob, 1).await;

    let hello = post(
        &app,
        &alice,
        json!({"status": "hello @bob and @carol and @nobody #Rust #日本語 see https://example.org/a?b=1&c=2. <b>bold</b> \"q\" 'a'\n\nsecond paragraph\nnext line",
               "language": "en"}),
    )
    .await;
    g.check("create-public", &hello);
    let hello_id = id(&hello);
    notified(&app, &bob, 2).await;
    notified(&app, &carol, 1).await;

    let reply = post(
        &app,
        &bob,
        json!({"status": "@alice thanks! #rust", "in_reply_to_id": hello_id}),
    )
    .await;
    g.check("create-reply", &reply);
    alice_notes += 1;
    notified(&app, &alice, alice_notes).await;

    g.check(
        "favourite",
        &act(
            &app,
            &bob,
            &format!("/api/v1/statuses/{hello_id}/favourite"),
        )
        .await,
    );
    alice_notes += 1;
    notified(&app, &alice, alice_notes).await;

    let reblog = act(&app, &carol, &format!("/api/v1/statuses/{hello_id}/reblog")).await;
    g.check("reblog", &reblog);
    alice_notes += 1;
    notified(&app, &alice, alice_notes).await;

    let private = post(
        &app,
        &alice,
        json!({"status": "@dave followers only", "visibility": "private"}),
    )
    .await;
    g.check("create-private", &private);
    notified(&app, &dave, 1).await;
    let direct = post(
        &app,
        &alice,
        json!({"status": "@carol just you", "visibility": "direct"}),
    )
    .await;
    g.check("create-direct", &direct);
    notified(&app, &carol, 2).await;
    let unlisted = post(
        &app,
        &alice,
        json!({"status": "quiet one", "visibility": "unlisted", "spoiler_text": "cw: quiet", "sensitive": true}),
    )
    .await;
    g.check("create-unlisted", &unlisted);
    let carols = post(&app, &carol, json!({"status": "carol speaks #Rust"})).await;

    // Dave mutes carol, bob blocks dave.
    g.check(
        "mute",
        &act(&app, &dave, &format!("/api/v1/accounts/{}/mute", carol.id)).await,
    );
    g.check(
        "block",
        &act(&app, &bob, &format!("/api/v1/accounts/{}/block", dave.id)).await,
    );

    for u in [&bob, &carol, &dave] {
        home_holds(&app, u, &id(&unlisted)).await;
    }
    home_holds(&app, &carol, &id(&carols)).await;
    home_holds(&app, &alice, &id(&reply)).await;
    for u in [&alice, &bob, &carol, &dave] {
        settled_home(&app, u).await;
    }

    for u in [&alice, &bob, &carol, &dave] {
        let name = &u.username;
        g.check(
            &format!("home-{name}"),
            &app.get(&u.token, "/api/v1/timelines/home?limit=40").await,
        );
        g.check(
            &format!("notifications-{name}"),
            &app.get(&u.token, "/api/v1/notifications").await,
        );
        g.check(
            &format!("account-{name}"),
            &app.get(&alice.token, &format!("/api/v1/accounts/{}", u.id))
                .await,
        );
        g.check(
            &format!("verify-{name}"),
            &app.get(&u.token, "/api/v1/accounts/verify_credentials")
                .await,
        );
        g.check(
            &format!("statuses-of-{name}"),
            &app.get(&bob.token, &format!("/api/v1/accounts/{}/statuses", u.id))
                .await,
        );
        let others: Vec<String> = [&alice, &bob, &carol, &dave]
            .iter()
            .map(|o| format!("id[]={}", o.id))
            .collect();
        g.check(
            &format!("relationships-{name}"),
            &app.get(
                &u.token,
                &format!("/api/v1/accounts/relationships?{}", others.join("&")),
            )
            .await,
        );
    }
    for (name, s) in [
        ("hello", &hello),
        ("reply", &reply),
        ("reblog", &reblog),
        ("private", &private),
        ("direct", &direct),
        ("unlisted", &unlisted),
    ] {
        for viewer in [&alice, &carol] {
            let res = app
                .get_raw(&viewer.token, &format!("/api/v1/statuses/{}", id(s)))
                .await;
            let body = if res.status().is_success() {
                res.json().await.expect("json")
            } else {
                json!({"status": res.status().as_u16()})
            };
            g.check(&format!("status-{name}-as-{}", viewer.username), &body);
        }
    }
    let anonymous = app
        .http
        .get(format!("{}/api/v1/statuses/{hello_id}", app.base))
        .send()
        .await
        .expect("GET");
    g.check("status-hello-anonymous", &ok(anonymous, "anonymous").await);
    g.check(
        "context-hello-as-bob",
        &app.get(&bob.token, &format!("/api/v1/statuses/{hello_id}/context"))
            .await,
    );
    g.check(
        "favourited-by",
        &app.get(
            &bob.token,
            &format!("/api/v1/statuses/{hello_id}/favourited_by"),
        )
        .await,
    );
    g.check(
        "reblogged-by",
        &app.get(
            &bob.token,
            &format!("/api/v1/statuses/{hello_id}/reblogged_by"),
        )
        .await,
    );
    g.check(
        "public-as-dave",
        &app.get(&dave.token, "/api/v1/timelines/public").await,
    );
    g.check(
        "tag-rust-as-carol",
        &app.get(&carol.token, "/api/v1/timelines/tag/rust").await,
    );
    g.check("blocks-bob", &app.get(&bob.token, "/api/v1/blocks").await);
    g.check("mutes-dave", &app.get(&dave.token, "/api/v1/mutes").await);
    let first = app.get(&alice.token, "/api/v1/notifications").await;
    let note = first[0]["id"].as_str().expect("notification id").to_owned();
    g.check(
        "notification-one",
        &app.get(&alice.token, &format!("/api/v1/notifications/{note}"))
            .await,
    );
    let deleted = ok(
        app.http
            .delete(format!("{}/api/v1/statuses/{}", app.base, id(&unlisted)))
            .bearer_auth(&alice.token)
            .send()
            .await
            .expect("DELETE"),
        "delete",
    )
    .await;
    g.check("delete-unlisted", &deleted);

    assert!(
        g.mismatches.is_empty(),
        "bodies differ from their golden files: {:?}",
        g.mismatches
    );
    app.stop().await;
}
