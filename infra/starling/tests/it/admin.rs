//! `starling admin`: the real binary against real Redis shards, NATS and the embedded
//! store, with the server down (the command opens the store) and with it running (the
//! command goes through the server's admin socket).

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use starling_admin::TokenLine;
use starling_schema::Id;
use starling_schema::settings::Settings;
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::{NatsServer, RedisShards};
use starling_timeline::{Ring, Timelines};

use crate::helpers::{TestApp, spawn_app, test_settings};

/// Write the settings the binary needs to reach what `s` names.
fn write_config(dir: &Path, s: &Settings) -> PathBuf {
    let shards: Vec<String> = s.redis.shards.iter().map(|u| format!("{u:?}")).collect();
    let text = format!(
        "node_id = {}\n[store.embedded]\npath = {:?}\nfsync = false\n\
         [redis]\nshards = [{}]\n[nats]\nurl = {:?}\npublish_timeout_ms = 500\n\
         [search]\npath = {:?}\n",
        s.node_id,
        s.store.embedded.path,
        shards.join(", "),
        s.nats.url,
        s.search.path,
    );
    let path = dir.join("starling.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Run `starling --config CONFIG admin ARGS…` off the runtime's threads.
async fn admin(config: &Path, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_starling"));
    cmd.arg("--config").arg(config).arg("admin").args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run starling admin"))
        .await
        .expect("join")
}

/// The JSON result of a command that must succeed.
async fn admin_json(config: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = admin(config, &all).await;
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

/// A stopped installation: Redis shards, NATS and a data directory, no server.
struct Down {
    redis: RedisShards,
    _nats: NatsServer,
    dir: tempfile::TempDir,
    settings: Settings,
    config: PathBuf,
}

fn down(shards: usize) -> Down {
    let redis = RedisShards::start(shards).expect("redis");
    let nats = NatsServer::start().expect("nats");
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(&redis, &nats, dir.path());
    let config = write_config(dir.path(), &settings);
    Down {
        redis,
        _nats: nats,
        dir,
        settings,
        config,
    }
}

fn open_store(s: &Settings) -> EmbeddedStore {
    EmbeddedStore::open(&s.store.embedded, s.node_id, s.limits.clone()).expect("open store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_tokens_work_with_the_server_down() {
    let d = down(2);
    let created = admin_json(
        &d.config,
        &[
            "accounts",
            "create",
            "carol",
            "--random-password",
            "--email",
            "c@example.org",
        ],
    )
    .await;
    let password = created["password"].as_str().expect("generated password");
    assert!(password.len() >= 20);
    let id = created["account"]["id"].as_u64().expect("id").to_string();

    let shown = admin_json(&d.config, &["accounts", "show", "CAROL"]).await;
    assert_eq!(shown["account"]["id"].to_string(), id);
    assert_eq!(shown["tokens"], 0);

    let issued = admin_json(&d.config, &["tokens", "issue", "carol", "--scopes", "read"]).await;
    let token = issued["token"].as_str().expect("token").to_owned();
    let listed = admin_json(&d.config, &["tokens", "list", "carol"]).await;
    assert_eq!(listed.as_array().expect("array").len(), 1);
    assert_eq!(listed[0]["scopes"], json!(["read"]));
    assert_ne!(
        listed[0]["token_hash"],
        token.as_str(),
        "only the hash is stored"
    );

    // The password and token are real: the store accepts them.
    {
        let store = open_store(&d.settings);
        store
            .verify_password("carol", password)
            .await
            .expect("password works");
        assert!(store.token(&token).await.unwrap().is_some());
    }

    let suspended = admin_json(&d.config, &["accounts", "suspend", "carol"]).await;
    assert_eq!(suspended["suspended"], true);
    let issue_again = admin(&d.config, &["tokens", "issue", "carol"]).await;
    assert!(!issue_again.status.success());
    assert!(String::from_utf8_lossy(&issue_again.stderr).contains("suspended"));
    admin_json(&d.config, &["accounts", "unsuspend", "carol"]).await;

    let dry = admin_json(&d.config, &["tokens", "revoke", &token, "--dry-run"]).await;
    assert_eq!(dry["revoked"].as_array().unwrap().len(), 1);
    assert!(
        open_store(&d.settings)
            .token(&token)
            .await
            .unwrap()
            .is_some()
    );
    admin_json(&d.config, &["tokens", "revoke", "--all", "carol"]).await;
    assert!(
        open_store(&d.settings)
            .token(&token)
            .await
            .unwrap()
            .is_none()
    );

    let list = admin_json(&d.config, &["accounts", "list"]).await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The search index is rebuilt from the store: carol's account is its one document.
    let rebuilt = admin_json(&d.config, &["search", "reindex"]).await;
    assert_eq!(rebuilt["documents"], 1);
    let stats = admin_json(&d.config, &["search", "stats"]).await;
    assert_eq!(stats["documents"], 1);
    assert_eq!(stats["interrupted_rebuild"], false);

    // Bad input: a clear message and a non-zero exit, never a panic.
    let missing = admin(&d.config, &["accounts", "show", "nobody"]).await;
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no account \"nobody\""), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let taken = admin(
        &d.config,
        &[
            "accounts",
            "create",
            "Carol",
            "--password",
            "long enough pw",
        ],
    )
    .await;
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("taken"));
    let neither = admin(&d.config, &["accounts", "create", "dave"]).await;
    assert!(!neither.status.success());
    assert!(String::from_utf8_lossy(&neither.stderr).contains("--random-password"));
}

/// The config file for a running test app.
fn app_config(app: &TestApp) -> PathBuf {
    let mut s = test_settings(&app.redis, &app.nats, app.dir());
    s.node_id = 1;
    write_config(app.dir(), &s)
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_a_running_server_through_its_socket() {
    let mut app = spawn_app().await;
    let config = app_config(&app);
    let socket = app.dir().join("store").join("admin.sock");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&socket)
            .expect("socket exists")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "only the owner may use the admin socket"
        );
    }
    // The store is locked by the server, so these can only work through it.
    let created = admin_json(
        &config,
        &["accounts", "create", "erin", "--random-password"],
    )
    .await;
    let id = created["account"]["id"].as_u64().unwrap().to_string();
    let issued = admin_json(&config, &["tokens", "issue", "erin"]).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let me = app.get(&token, "/api/v1/accounts/verify_credentials").await;
    assert_eq!(me["id"], id.as_str());

    // Suspension takes effect on this server at once (its caches are told).
    admin_json(&config, &["accounts", "suspend", "erin"]).await;
    let res = app
        .get_raw(&token, "/api/v1/accounts/verify_credentials")
        .await;
    assert!(
        res.status() == 401 || res.status() == 403,
        "a suspended account's token is refused, got {}",
        res.status()
    );
    admin_json(&config, &["accounts", "unsuspend", "erin"]).await;
    let res = app
        .get_raw(&token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(res.status(), 200);

    // Moderation through the server: the status disappears from the follower's home.
    let frank = app.register("frank").await;
    let erin = crate::helpers::User {
        id: id.clone(),
        username: "erin".into(),
        token: token.clone(),
    };
    app.follow(&frank, &erin).await;
    let post = app.status(&erin, "a status to moderate").await;
    let post_id = post["id"].as_str().unwrap().to_owned();
    let (seen, _) = app
        .home_until(&frank, Duration::from_secs(10), |ids| {
            ids.contains(&post_id)
        })
        .await;
    assert!(seen, "the post reached the follower");
    let removed = admin_json(&config, &["statuses", "remove", &post_id]).await;
    assert_eq!(removed["id"].to_string(), post_id);
    let (gone, ids) = app
        .home_until(&frank, Duration::from_secs(10), |ids| {
            !ids.contains(&post_id)
        })
        .await;
    assert!(gone, "removed status still in home: {ids:?}");
    let again = admin(&config, &["statuses", "remove", &post_id]).await;
    assert!(!again.status.success());

    // A rebuild cannot run beside this server's indexer, and says so.
    let reindex = admin(&config, &["search", "reindex"]).await;
    assert!(!reindex.status.success());
    let err = String::from_utf8_lossy(&reindex.stderr);
    assert!(err.contains("indexer"), "{err}");

    // Revocation is immediate on this server too.
    admin_json(&config, &["tokens", "revoke", &token]).await;
    let res = app
        .get_raw(&token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(res.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_cascades_everywhere() {
    let mut app = spawn_app().await;
    let config = app_config(&app);
    let gone = app.register("gone").await;
    let fan = app.register("fan").await;
    let idol = app.register("idol").await;
    app.follow(&fan, &gone).await;
    app.follow(&gone, &idol).await;
    let post = app.status(&gone, "zeppelinish words to search for").await;
    let post_id = post["id"].as_str().unwrap().to_owned();
    let (seen, _) = app
        .home_until(&fan, Duration::from_secs(10), |ids| ids.contains(&post_id))
        .await;
    assert!(seen);
    let (a, t) = (&app, fan.token.as_str());
    wait_for(
        "the post to be searchable",
        Duration::from_secs(10),
        || async move {
            search(a, t, "zeppelinish").await["statuses"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        },
    )
    .await;

    let dry = admin_json(&config, &["accounts", "delete", "gone", "--dry-run"]).await;
    assert_eq!(dry["posts"], 1);
    assert_eq!(dry["followers"], 1);
    assert_eq!(dry["following"], 1);
    let deleted = admin_json(&config, &["accounts", "delete", "gone"]).await;
    assert_eq!(deleted["posts"], 1);

    let res = app
        .get_raw(&fan.token, &format!("/api/v1/accounts/{}", gone.id))
        .await;
    assert_eq!(res.status(), 404, "the account is gone");
    let res = app
        .get_raw(&fan.token, &format!("/api/v1/statuses/{post_id}"))
        .await;
    assert_eq!(res.status(), 404, "its post is gone");
    let res = app
        .get_raw(&gone.token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(res.status(), 401, "its token is gone");
    let ids = app.home_ids(&fan, "?limit=40").await;
    assert!(!ids.contains(&post_id), "the post left the follower's home");
    let fan_me = app
        .get(&fan.token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(fan_me["following_count"], 0);
    let idol_me = app
        .get(&idol.token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(idol_me["followers_count"], 0);
    let gone_id: Id = gone.id.parse().unwrap();
    assert!(
        !app.node().timelines.exists(gone_id).await.unwrap(),
        "its timeline is gone"
    );
    wait_for(
        "the search documents to go",
        Duration::from_secs(10),
        || async move {
            let p = search(a, t, "zeppelinish").await;
            let found = search(a, t, "gone").await;
            p["statuses"].as_array().is_some_and(Vec::is_empty)
                && !found["accounts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["username"] == "gone"))
        },
    )
    .await;
    // The name is free again.
    admin_json(
        &config,
        &["accounts", "create", "gone", "--random-password"],
    )
    .await;
    app.stop().await;
}

async fn search(app: &TestApp, token: &str, q: &str) -> Value {
    app.get_raw(token, &format!("/api/v2/search?q={q}"))
        .await
        .json()
        .await
        .expect("search json")
}

/// A deterministic pseudo-random edge list: `edges` lines over `nodes` nodes, power-law-ish
/// (low node numbers are followed far more), with some duplicates and self-loops.
fn edge_file(path: &Path, nodes: u64, edges: usize) -> HashSet<(u64, u64)> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut text = String::from("# generated for the admin import test\n\n");
    let mut distinct = HashSet::new();
    for _ in 0..edges {
        let u = next() % nodes;
        // Squaring a uniform fraction skews followees toward small numbers.
        let f = (next() % 10_000) as f64 / 10_000.0;
        let v = ((f * f) * nodes as f64) as u64 % nodes;
        text.push_str(&format!("{u} {v}\n"));
        if u != v {
            distinct.insert((u, v));
        }
    }
    std::fs::write(path, text).expect("write edges");
    distinct
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_import_of_100k_edges_creates_accounts_follows_and_tokens_once() {
    let d = down(2);
    let file = d.dir.path().join("edges.txt");
    let distinct = edge_file(&file, 10_000, 100_000);
    let nodes: HashSet<u64> = distinct.iter().flat_map(|(u, v)| [*u, *v]).collect();
    let tokens = d.dir.path().join("tokens.jsonl");
    let file_s = file.to_str().unwrap();
    let tokens_s = tokens.to_str().unwrap();

    let dry = admin_json(&d.config, &["graph", "import", file_s, "--dry-run"]).await;
    assert_eq!(dry["edges_read"], 100_000);
    assert!(
        open_store(&d.settings)
            .scan_accounts(None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let args = [
        "graph",
        "import",
        file_s,
        "--create-accounts",
        "bench",
        "--tokens-out",
        tokens_s,
    ];
    let first = admin_json(&d.config, &args).await;
    assert_eq!(first["follows_new"], distinct.len() as u64);
    assert_eq!(
        first["tokens_issued"].as_u64().unwrap(),
        first["nodes"].as_u64().unwrap()
    );
    let created = first["accounts_created"].as_u64().unwrap();
    assert!(created > 9_000 && created <= 10_000, "{created}");

    let lines: Vec<TokenLine> = std::fs::read_to_string(&tokens)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("token line"))
        .collect();
    assert_eq!(lines.len(), created as usize);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tokens).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the tokens file is private");
    }
    let line = &lines[lines.len() / 2];
    assert_eq!(line.username, format!("bench{}", line.node));

    // Re-running adds nothing and keeps the tokens.
    let second = admin_json(&d.config, &args).await;
    assert_eq!(second["follows_new"], 0);
    assert_eq!(second["accounts_created"], 0);
    assert_eq!(second["tokens_issued"], 0);
    assert_eq!(second["tokens_kept"], created);
    let again: Vec<TokenLine> = std::fs::read_to_string(&tokens)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(again, lines);

    let stats = admin_json(&d.config, &["graph", "stats", "--top", "3"]).await;
    assert_eq!(stats["accounts"], nodes.len() as u64);
    assert_eq!(stats["edges"], distinct.len() as u64);
    let top = stats["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    // Node 0 is followed most (the generator skews toward small numbers).
    let mut followers: HashMap<u64, u64> = HashMap::new();
    for (_, v) in &distinct {
        *followers.entry(*v).or_default() += 1;
    }
    let max = followers.values().max().copied().unwrap();
    assert_eq!(top[0]["followers"], max);

    // The store agrees, and a token is the account's.
    let store = open_store(&d.settings);
    let info = store
        .token(&line.token)
        .await
        .unwrap()
        .expect("token valid");
    assert_eq!(info.account_id.unwrap().to_string(), line.id);
    assert_eq!(info.scopes, vec!["read", "write", "follow"]);
    let id: Id = line.id.parse().unwrap();
    let node: u64 = line.node.parse().unwrap();
    let counts = store.account_counts(&[id]).await.unwrap();
    assert_eq!(
        counts[0].followers,
        followers.get(&node).copied().unwrap_or(0)
    );
}

/// The users whose timelines each shard holds.
async fn timelines_per_shard(t: &Timelines) -> Vec<HashSet<Id>> {
    let mut out = Vec::new();
    for shard in 0..t.shard_count() {
        let mut users = HashSet::new();
        let mut cursor = 0;
        loop {
            let page = t.scan_timelines(shard, cursor, 500).await.unwrap();
            users.extend(page.users);
            cursor = page.next;
            if cursor == 0 {
                break;
            }
        }
        out.push(users);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_moves_exactly_the_reassigned_timelines_and_loses_none() {
    // Three servers; the installation uses the first two, then adds the third.
    let d = down(3);
    let all = d.redis.urls();
    let mut two = d.settings.clone();
    two.redis.shards = all[..2].to_vec();
    let config = write_config(d.dir.path(), &two);
    let file = d.dir.path().join("edges.txt");
    edge_file(&file, 300, 2_000);
    admin_json(
        &config,
        &[
            "graph",
            "import",
            file.to_str().unwrap(),
            "--create-accounts",
            "r",
        ],
    )
    .await;
    let built = admin_json(&config, &["feeds", "build", "--all"]).await;
    assert_eq!(built["timelines"], 300);

    let mut three = two.clone();
    three.redis.shards = all.clone();
    let view = Timelines::connect(&three.redis).await.unwrap();
    let before = timelines_per_shard(&view).await;
    assert_eq!(before[0].len() + before[1].len(), 300);
    assert!(before[2].is_empty());
    let new_ring = Ring::new(&all, three.redis.virtual_nodes);
    let reassigned: HashSet<Id> = before[..2]
        .iter()
        .flatten()
        .filter(|u| new_ring.shard_of(**u) == 2)
        .copied()
        .collect();
    assert!(!reassigned.is_empty());
    // Entries before, to compare after the move.
    let sample = *reassigned.iter().next().unwrap();
    let old = Timelines::connect(&two.redis).await.unwrap();
    let entries_before = old
        .range(sample, starling_schema::model::Window::newest(800))
        .await
        .unwrap();

    let dry = admin_json(
        &config,
        &["shards", "rebalance", "--add", &all[2], "--dry-run"],
    )
    .await;
    assert_eq!(dry["moved"], reassigned.len() as u64);
    assert_eq!(
        timelines_per_shard(&view).await,
        before,
        "a dry run moves nothing"
    );

    let out = admin(&config, &["shards", "rebalance", "--add", &all[2]]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("moved {} of 300 timelines", reassigned.len())),
        "{text}"
    );
    assert!(text.contains("shards = ["), "{text}");

    let after = timelines_per_shard(&view).await;
    assert_eq!(
        after.iter().map(HashSet::len).sum::<usize>(),
        300,
        "no timeline lost"
    );
    assert_eq!(
        after[2], reassigned,
        "the new shard holds exactly the reassigned ones"
    );
    for shard in 0..2 {
        let stayed: HashSet<Id> = before[shard].difference(&reassigned).copied().collect();
        assert_eq!(
            after[shard], stayed,
            "shard {shard} kept the others untouched"
        );
    }
    assert_eq!(
        view.range(sample, starling_schema::model::Window::newest(800))
            .await
            .unwrap(),
        entries_before,
        "a moved timeline keeps its entries"
    );

    // Safe to re-run, before and after the config names the new shard.
    let again = admin_json(&config, &["shards", "rebalance", "--add", &all[2]]).await;
    assert_eq!(again["moved"], 0);
    let config3 = write_config(d.dir.path(), &three);
    let again = admin_json(&config3, &["shards", "rebalance", "--add", &all[2]]).await;
    assert_eq!(again["moved"], 0);
    let status = admin_json(&config3, &["shards", "status"]).await;
    let users: u64 = status
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_u64().unwrap())
        .sum();
    assert_eq!(users, 300);
    assert_eq!(status[2]["users"], reassigned.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_follows_and_doctor_with_the_server_down() {
    let mut d = down(2);
    for name in ["gina", "hank"] {
        admin_json(
            &d.config,
            &["accounts", "create", name, "--random-password"],
        )
        .await;
    }
    let followed = admin_json(&d.config, &["graph", "follow", "gina", "hank"]).await;
    assert_eq!(followed["changed"], true);
    let again = admin_json(&d.config, &["graph", "follow", "gina", "hank"]).await;
    assert_eq!(again["changed"], false);

    // A post by hank straight into the store, then gina's feed rebuilt from it.
    let hank_id = Id(
        admin_json(&d.config, &["accounts", "show", "hank"]).await["account"]["id"]
            .as_u64()
            .unwrap(),
    );
    let post = {
        let store = open_store(&d.settings);
        store
            .create_post(
                starling_schema::model::NewPost {
                    author_id: hank_id,
                    text: "from the store".into(),
                    ..Default::default()
                },
                None,
            )
            .await
            .unwrap()
            .value
    };
    admin_json(&d.config, &["feeds", "clear", "gina"]).await;
    let inspected = admin_json(&d.config, &["feeds", "inspect", "gina"]).await;
    assert_eq!(inspected["exists"], false);
    admin_json(&d.config, &["feeds", "build", "gina"]).await;
    let inspected = admin_json(&d.config, &["feeds", "inspect", "gina"]).await;
    assert_eq!(inspected["exists"], true);
    assert_eq!(inspected["length"], 1);
    assert_eq!(inspected["newest"].as_u64(), Some(post.id.0));
    assert!(inspected["bytes"].as_u64().unwrap() > 0);
    let cleared = admin_json(&d.config, &["feeds", "clear", "--all"]).await;
    assert_eq!(cleared["timelines"], 2);
    let unfollowed = admin_json(&d.config, &["graph", "unfollow", "gina", "hank"]).await;
    assert_eq!(unfollowed["changed"], true);

    // Counters: drifted counts are found and fixed from the rows.
    open_store(&d.settings)
        .set_account_counts(
            hank_id,
            starling_schema::model::AccountCounts {
                followers: 41,
                following: 0,
                statuses: 9,
                last_status_at_ms: None,
            },
        )
        .await
        .unwrap();
    let dry = admin_json(&d.config, &["counters", "recount", "--dry-run"]).await;
    assert_eq!(
        (dry["accounts"].as_u64(), dry["fixed"].as_u64()),
        (Some(2), Some(1))
    );
    let fixed = admin_json(&d.config, &["counters", "recount"]).await;
    assert_eq!(fixed["fixed"], 1);
    let counts = open_store(&d.settings)
        .account_counts(&[hank_id])
        .await
        .unwrap()[0];
    assert_eq!((counts.followers, counts.statuses), (0, 1));
    let again = admin_json(&d.config, &["counters", "recount"]).await;
    assert_eq!(again["fixed"], 0);

    // Purge: nothing is older than a day yet.
    let purge = admin_json(&d.config, &["statuses", "purge", "--older-than", "1"]).await;
    assert_eq!(purge["removed"], 0);
    assert_eq!(purge["scanned"], 1);

    // Doctor: the stream and consumers do not exist until a server ran, so it fails and
    // says why; with a shard down it names that shard.
    let out = admin(&d.config, &["doctor"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok   store"), "{text}");
    assert!(text.contains("ok   redis shard 0"), "{text}");
    d.redis.shard(1).stop().unwrap();
    let out = admin(&d.config, &["doctor"]).await;
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAIL redis shard 1"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_a_healthy_running_installation() {
    let app = spawn_app().await;
    let config = app_config(&app);
    let out = admin(&config, &["doctor"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("checks passed"), "{text}");
    assert!(text.contains("consumer"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_are_managed_through_a_running_server() {
    let mut app = spawn_app().await;
    let config = app_config(&app);
    let alice = app.register("alice").await;
    let made = admin_json(
        &config,
        &[
            "announcements",
            "create",
            "Maintenance on Sunday",
            "--starts-at",
            "2030-01-05T10:00:00Z",
            "--ends-at",
            "2099-01-05T12:00:00Z",
        ],
    )
    .await;
    let id = made["id"].as_u64().unwrap().to_string();
    let shown = app.get(&alice.token, "/api/v1/announcements").await;
    assert_eq!(shown[0]["id"], id.as_str());
    assert_eq!(shown[0]["content"], "<p>Maintenance on Sunday</p>");
    assert_eq!(shown[0]["starts_at"], "2030-01-05T10:00:00.000Z");
    let listed = admin_json(&config, &["announcements", "list"]).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let bad_time = admin(
        &config,
        &["announcements", "create", "x", "--ends-at", "tomorrow"],
    )
    .await;
    assert!(!bad_time.status.success());
    assert!(String::from_utf8_lossy(&bad_time.stderr).contains("RFC 3339"));
    let blank = admin(&config, &["announcements", "create", "  "]).await;
    assert!(!blank.status.success());

    admin_json(&config, &["announcements", "delete", &id]).await;
    let shown = app.get(&alice.token, "/api/v1/announcements").await;
    assert_eq!(shown, json!([]));
    let again = admin(&config, &["announcements", "delete", &id]).await;
    assert!(!again.status.success());
    app.stop().await;
}

/// Whether the WebSocket closes within `timeout` (events before the close are skipped).
async fn ws_closes(ws: &mut crate::streaming::Ws, timeout: Duration) -> bool {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_and_revocation_by_the_cli_reach_every_api_node() {
    use crate::streaming::ws_connect;
    let mut app = spawn_app().await;
    let config = app_config(&app);
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&bob, &alice).await;
    let mine = app.status(&bob, "bob writes").await;
    let res = app
        .post_json(
            &alice.token,
            &format!(
                "/api/v1/statuses/{}/favourite",
                mine["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert!(res.status().is_success());
    let post = app.status(&alice, "findable words from alice").await;
    let post_id = post["id"].as_str().unwrap().to_owned();
    let (seen, _) = app
        .home_until(&bob, Duration::from_secs(10), |ids| ids.contains(&post_id))
        .await;
    assert!(seen, "the post reached the follower");
    let search = || async {
        let found: Value = app
            .get_raw(
                &bob.token,
                &format!("{}/api/v2/search?q=findable", app.base),
            )
            .await
            .json()
            .await
            .unwrap();
        found["statuses"].as_array().unwrap().len()
    };
    wait_for("the post in search", Duration::from_secs(10), || async {
        search().await == 1
    })
    .await;
    let (node2, base2) = app.spawn_api_node(2, |_| {}).await;

    // Revoking a token from the command line closes its streams on the other node.
    let issued = admin_json(&config, &["tokens", "issue", "bob"]).await;
    let second = issued["token"].as_str().unwrap().to_owned();
    let mut ws = ws_connect(&base2, &format!("?stream=user&access_token={second}")).await;
    admin_json(&config, &["tokens", "revoke", &second]).await;
    assert!(
        ws_closes(&mut ws, Duration::from_secs(3)).await,
        "the revoked token's WebSocket on the second node must close"
    );

    // Suspending alice closes her stream on the other node and hides her everywhere.
    let mut ws = ws_connect(
        &base2,
        &format!("?stream=user&access_token={}", alice.token),
    )
    .await;
    admin_json(&config, &["accounts", "suspend", "alice"]).await;
    assert!(
        ws_closes(&mut ws, Duration::from_secs(3)).await,
        "a suspended account's WebSocket on the second node must close"
    );
    // (post, account) statuses, and whether home, public and notifications show alice.
    let seen_from = |base: String| {
        let (app, bob, alice_id, post_id) = (&app, &bob, alice.id.clone(), post_id.clone());
        async move {
            let get = |path: String| {
                let url = format!("{base}{path}");
                async move { app.get_raw(&bob.token, &url).await }
            };
            let list = |path: &'static str| async move {
                let v: Value = get(path.into()).await.json().await.unwrap();
                v.as_array().unwrap().clone()
            };
            let status = get(format!("/api/v1/statuses/{post_id}")).await.status();
            let account = get(format!("/api/v1/accounts/{alice_id}")).await.status();
            let home = list("/api/v1/timelines/home").await;
            let public = list("/api/v1/timelines/public").await;
            let notes = list("/api/v1/notifications").await;
            let listed = |v: &[Value]| v.iter().any(|s| s["id"] == post_id.as_str());
            let noticed = notes
                .iter()
                .any(|n| n["account"]["id"] == alice_id.as_str());
            (status, account, listed(&home), listed(&public), noticed)
        }
    };
    for base in [app.base.clone(), base2.clone()] {
        let (status, account, home, public, noticed) = seen_from(base.clone()).await;
        assert_eq!(status, 404, "{base}: the suspended account's post");
        assert_eq!(account, 404, "{base}: the suspended account");
        assert!(!home, "{base}: the post left the follower's home");
        assert!(!public, "{base}: the post left the public timeline");
        assert!(
            !noticed,
            "{base}: the suspended account's favourite left notifications"
        );
    }
    assert_eq!(search().await, 0, "search no longer finds the post");

    // Lifting the suspension brings everything back on both nodes.
    admin_json(&config, &["accounts", "unsuspend", "alice"]).await;
    for base in [app.base.clone(), base2.clone()] {
        let (status, account, home, _, noticed) = seen_from(base.clone()).await;
        assert_eq!((status.as_u16(), account.as_u16()), (200, 200), "{base}");
        assert!(
            home && noticed,
            "{base}: home and notifications show alice again"
        );
    }
    node2.stop().await;
    app.stop().await;
}
