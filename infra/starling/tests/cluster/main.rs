//! Fault tests on a local cluster of separate processes (`infra/cluster.sh`: 3 NATS servers
//! with the stream at 3 replicas, 3 Redis shards, 2 api nodes behind HAProxy, 2 fan-out
//! workers, 2 indexers) on the CQL server `SCYLLA_URI` names. Without `SCYLLA_URI` they say
//! they were skipped and pass.
//!
//! A writer posts continuously through the load balancer (retrying a failed post with the
//! same `Idempotency-Key`, as a client should) while readers read their home timelines.
//! Each fault is injected in turn; after each: every acknowledged post is in every
//! follower's home timeline exactly once, none is missing from search, and the api nodes'
//! metrics show the fault and the recovery. The CQL server is killed only when
//! `CLUSTER_CQL_KILL` and `CLUSTER_CQL_START` give the commands to kill and start it.
//!
//! Ignored in the workspace run (a few minutes, and a CQL server); `infra/test.sh` runs it
//! when `SCYLLA_URI` is set:
//! `SCYLLA_URI=127.0.0.1:9042 cargo test -p starling --test cluster -- --ignored --nocapture`

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

const FOLLOWERS: usize = 4;
/// Held by each test that kills the CQL server (the cluster's CQL fault, the crash test), so
/// that one never kills it under the other.
static CQL_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const PASSWORD: &str = "correct horse battery";

/// The cluster, started by `infra/cluster.sh` in a temporary directory on free ports.
struct Cluster {
    dir: tempfile::TempDir,
    base: String,
    api_ports: [u16; 2],
    /// `/metrics` of the fan-out workers, then of the indexers.
    metrics_ports: [u16; 4],
    env: Vec<(String, String)>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cluster.sh")
}

/// A free block of loopback ports for the cluster's internal servers (base+1 ..= base+50).
fn free_port_base() -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand_u64() % 400) as u16 * 100;
        let free = (1..=50).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free block of 40 loopback ports");
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .expect("urandom");
    u64::from_le_bytes(b)
}

impl Cluster {
    fn up(uri: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let port_base = free_port_base();
        let http = free_port();
        let env = vec![
            ("SCYLLA_URI".to_owned(), uri.to_owned()),
            ("CLUSTER_DIR".to_owned(), dir.path().display().to_string()),
            ("CLUSTER_PORT_BASE".to_owned(), port_base.to_string()),
            ("CLUSTER_HTTP_PORT".to_owned(), http.to_string()),
            (
                "CLUSTER_KEYSPACE".to_owned(),
                format!("starling_faults_{:08x}", rand_u64() as u32),
            ),
            (
                "CLUSTER_STARLING_BIN".to_owned(),
                env!("CARGO_BIN_EXE_starling").to_owned(),
            ),
            ("STARLING_LOG__FILTER".to_owned(), "info".to_owned()),
        ];
        let cluster = Cluster {
            dir,
            base: format!("http://127.0.0.1:{http}"),
            api_ports: [port_base + 31, port_base + 32],
            metrics_ports: [
                port_base + 41,
                port_base + 42,
                port_base + 43,
                port_base + 44,
            ],
            env,
        };
        cluster.script(&["up"]);
        cluster
    }

    fn script(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(script())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run infra/cluster.sh");
        assert!(
            out.status.success(),
            "infra/cluster.sh {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop the cluster and drop its keyspace (every run makes a fresh one).
    async fn down(self) {
        self.script(&["--down"]);
        let get = |k: &str| {
            self.env
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .expect("cluster env")
        };
        let mut settings = starling_schema::settings::Settings::default();
        settings.store.backend = starling_schema::settings::StoreBackend::Scylla;
        settings.store.scylla.nodes = vec![get("SCYLLA_URI")];
        settings.store.scylla.keyspace = get("CLUSTER_KEYSPACE");
        match starling_store::AnyStore::open(&settings).await {
            Ok(starling_store::AnyStore::Scylla(store)) => {
                if let Err(e) = store.drop_keyspace().await {
                    eprintln!("could not drop the test keyspace: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => eprintln!("could not reach the CQL server to drop the test keyspace: {e}"),
        }
    }

    fn kill(&self, name: &str) {
        self.script(&["kill", name]);
    }
    fn stop(&self, name: &str) {
        self.script(&["stop", name]);
    }
    fn start(&self, name: &str) {
        self.script(&["start", name]);
    }

    /// Sum of the metric samples whose line starts with `prefix`, over every process that
    /// answers (api nodes, fan-out workers, indexers).
    async fn metric(&self, http: &reqwest::Client, prefix: &str) -> f64 {
        let mut sum = 0.0;
        for port in self.api_ports.into_iter().chain(self.metrics_ports) {
            let Ok(res) = http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
            else {
                continue;
            };
            let text = res.text().await.unwrap_or_default();
            for line in text.lines().filter(|l| l.starts_with(prefix)) {
                if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                    sum += v;
                }
            }
        }
        sum
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("--down")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output();
        if std::env::var_os("CLUSTER_KEEP_LOGS").is_some() {
            let kept = self.dir.path().to_owned();
            eprintln!("cluster logs kept in {}", kept.display());
            std::mem::forget(std::mem::replace(
                &mut self.dir,
                tempfile::tempdir().expect("tempdir"),
            ));
        }
    }
}

#[derive(Clone)]
struct User {
    id: String,
    token: String,
}

async fn register(http: &reqwest::Client, base: &str, username: &str) -> User {
    let app: Value = http
        .post(format!("{base}/api/v1/apps"))
        .form(&[
            ("client_name", "faults"),
            ("redirect_uris", "urn:ietf:wg:oauth:2.0:oob"),
            ("scopes", "read write follow"),
        ])
        .send()
        .await
        .expect("create app")
        .json()
        .await
        .expect("app json");
    let token: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app["client_id"].as_str().expect("client_id")),
            (
                "client_secret",
                app["client_secret"].as_str().expect("client_secret"),
            ),
            ("scope", "read write follow"),
        ])
        .send()
        .await
        .expect("app token")
        .json()
        .await
        .expect("token json");
    let res = http
        .post(format!("{base}/api/v1/accounts"))
        .bearer_auth(token["access_token"].as_str().expect("access_token"))
        .form(&[
            ("username", username),
            ("email", &format!("{username}@example.org")),
            ("password", PASSWORD),
            ("agreement", "true"),
            ("locale", "en"),
        ])
        .send()
        .await
        .expect("register");
    assert!(
        res.status().is_success(),
        "register {username}: {}",
        res.status()
    );
    let token = res.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();
    let me: Value = http
        .get(format!("{base}/api/v1/accounts/verify_credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("verify")
        .json()
        .await
        .expect("json");
    User {
        id: me["id"].as_str().expect("id").to_owned(),
        token,
    }
}

/// What the writer saw during one fault.
#[derive(Default)]
struct Writes {
    /// Text of each acknowledged post → its id.
    acked: HashMap<String, String>,
    /// Posts whose every try failed (never acknowledged; they may or may not exist).
    unacked: usize,
    /// Tries that failed (connection errors, 5xx), retried with the same key.
    failed_tries: u64,
    /// Longest time between two acknowledged posts.
    longest_gap: Duration,
}

/// Post continuously as `author` until `stop`, each post retried with its key until it is
/// acknowledged or 60 s have passed.
async fn writer(
    http: reqwest::Client,
    base: String,
    author: User,
    tag: String,
    stop: Arc<AtomicBool>,
    writes: Arc<Mutex<Writes>>,
) {
    let mut n = 0u64;
    let mut last_ack = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let text = format!("{tag} post{n} w{}", rand_u64() % 1_000_000);
        let key = format!("{tag}-{n}-{}", rand_u64());
        let started = Instant::now();
        let mut acked = None;
        while started.elapsed() < Duration::from_secs(60) {
            let res = http
                .post(format!("{base}/api/v1/statuses"))
                .bearer_auth(&author.token)
                .header("Idempotency-Key", &key)
                .form(&[("status", text.as_str()), ("visibility", "public")])
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or_default();
                    acked = v["id"].as_str().map(str::to_owned);
                    break;
                }
                Ok(r) => {
                    assert!(
                        r.status().is_server_error() || r.status().as_u16() == 429,
                        "a post answered {} (a client error is a bug here)",
                        r.status()
                    );
                    writes.lock().await.failed_tries += 1;
                }
                Err(_) => writes.lock().await.failed_tries += 1,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut w = writes.lock().await;
        match acked {
            Some(id) => {
                w.longest_gap = w.longest_gap.max(last_ack.elapsed());
                last_ack = Instant::now();
                w.acked.insert(text, id);
            }
            None => w.unacked += 1,
        }
        drop(w);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Read home timelines until `stop`, counting failed reads.
async fn reader(
    http: reqwest::Client,
    base: String,
    users: Vec<User>,
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    reads: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        for u in &users {
            let ok = http
                .get(format!("{base}/api/v1/timelines/home?limit=40"))
                .bearer_auth(&u.token)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            reads.fetch_add(1, Ordering::Relaxed);
            if !ok {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every status text in `user`'s home timeline that contains `tag`, with how often it appears
/// (paging back through the whole timeline). `None` if a page could not be read.
async fn home_texts(
    http: &reqwest::Client,
    base: &str,
    user: &User,
    tag: &str,
) -> Option<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    let mut max_id: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/timelines/home?limit=40");
        if let Some(m) = &max_id {
            url.push_str(&format!("&max_id={m}"));
        }
        let res = http.get(url).bearer_auth(&user.token).send().await.ok()?;
        if !res.status().is_success() {
            return None;
        }
        let page: Vec<Value> = res.json().await.ok()?;
        let Some(last) = page.last() else {
            return Some(counts);
        };
        max_id = last["id"].as_str().map(str::to_owned);
        for s in &page {
            let content = s["content"].as_str().unwrap_or_default();
            if content.contains(tag) {
                let text = strip_html(content);
                *counts.entry(text).or_insert(0) += 1;
            }
        }
    }
}

fn strip_html(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// Whether search finds the post `id` by its unique word.
async fn searchable(http: &reqwest::Client, base: &str, user: &User, text: &str, id: &str) -> bool {
    let word = text.rsplit(' ').next().unwrap_or_default();
    let Ok(res) = http
        // The word is ASCII letters and digits: nothing to escape.
        .get(format!(
            "{base}/api/v2/search?q={word}&type=statuses&limit=40"
        ))
        .bearer_auth(&user.token)
        .send()
        .await
    else {
        return false;
    };
    let v: Value = res.json().await.unwrap_or_default();
    v["statuses"]
        .as_array()
        .is_some_and(|a| a.iter().any(|s| s["id"].as_str() == Some(id)))
}

/// The outcome of one fault, as the README's table records it.
struct Outcome {
    fault: &'static str,
    acked: usize,
    unacked: usize,
    lost: usize,
    duplicated: usize,
    missing_from_search: usize,
    failed_tries: u64,
    failed_reads: u64,
    reads: u64,
    longest_gap: Duration,
    converged_in: Duration,
    metric: String,
}

struct Scenario {
    http: reqwest::Client,
    base: String,
    author: User,
    followers: Vec<User>,
}

impl Scenario {
    /// Run the writer and readers, inject `fault` after 3 s (it returns when the fault is
    /// over), keep writing 5 s more, then check homes and search.
    async fn run<F, Fut>(
        &self,
        cluster: &Cluster,
        name: &'static str,
        metric: &str,
        fault: F,
    ) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let tag = format!("fz{:x}", rand_u64() as u32);
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(Mutex::new(Writes::default()));
        let failures = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(AtomicU64::new(0));
        let metric_before = cluster.metric(&self.http, metric).await;
        let w = tokio::spawn(writer(
            self.http.clone(),
            self.base.clone(),
            self.author.clone(),
            tag.clone(),
            stop.clone(),
            writes.clone(),
        ));
        let r = tokio::spawn(reader(
            self.http.clone(),
            self.base.clone(),
            self.followers.clone(),
            stop.clone(),
            failures.clone(),
            reads.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(3)).await;
        eprintln!("[{name}] injecting the fault");
        fault().await;
        eprintln!("[{name}] fault over; writing 5 s more");
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.store(true, Ordering::Relaxed);
        w.await.expect("writer");
        r.await.expect("reader");
        let metric_after = cluster.metric(&self.http, metric).await;
        let writes = Arc::try_unwrap(writes)
            .ok()
            .expect("writer done")
            .into_inner();

        // Converge: every follower's home has every acknowledged post (within 90 s).
        let settled = Instant::now();
        let (mut lost, mut duplicated);
        loop {
            lost = 0;
            duplicated = 0;
            let mut complete = true;
            for f in &self.followers {
                let Some(counts) = home_texts(&self.http, &self.base, f, &tag).await else {
                    complete = false;
                    continue;
                };
                lost += writes
                    .acked
                    .keys()
                    .filter(|t| !counts.contains_key(*t))
                    .count();
                duplicated += counts.values().filter(|&&n| n > 1).count();
            }
            if complete && lost == 0 || settled.elapsed() > Duration::from_secs(90) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let converged_in = settled.elapsed();
        // Search: every acknowledged post, by its unique word (indexers may trail a little).
        let mut missing: HashSet<&String> = writes.acked.keys().collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !missing.is_empty() && Instant::now() < deadline {
            let mut still = HashSet::new();
            for text in missing {
                if !searchable(
                    &self.http,
                    &self.base,
                    &self.author,
                    text,
                    &writes.acked[text],
                )
                .await
                {
                    still.insert(text);
                }
            }
            missing = still;
            if !missing.is_empty() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Outcome {
            fault: name,
            acked: writes.acked.len(),
            unacked: writes.unacked,
            lost,
            duplicated,
            missing_from_search: missing.len(),
            failed_tries: writes.failed_tries,
            failed_reads: failures.load(Ordering::Relaxed),
            reads: reads.load(Ordering::Relaxed),
            longest_gap: writes.longest_gap,
            converged_in,
            metric: format!("{metric}: {metric_before} -> {metric_after}"),
        }
    }
}

/// Run `command` (a shell command line from the environment, `name`) off the runtime; it must
/// succeed.
async fn shell(command: String, name: &'static str) {
    let status =
        tokio::task::spawn_blocking(move || Command::new("bash").args(["-c", &command]).status())
            .await
            .expect("command task")
            .unwrap_or_else(|e| panic!("could not run {name}: {e}"));
    assert!(status.success(), "{name} failed: {status}");
}

/// What the CQL server fault rests on: a write the CQL server acknowledged is still there
/// after the server is killed (-9) and started again. A single-node server whose commit log
/// is synced periodically (Cassandra's default `commitlog_sync: periodic`) fails this: it
/// acknowledges a write before the commit log's next sync marker, and replay after a crash
/// stops at the last marker (written every 100 ms), so the posts acknowledged in the last
/// moments before the kill are gone, with their `Idempotency-Key` claims and listings, while
/// their events were published already (the fan-out then retracts them as deleted, and search
/// finds no post behind the index entry). Such a server needs `commitlog_sync: group` (or
/// `batch`), or replicas (replication factor 3 at `LOCAL_QUORUM`), for "acknowledged is kept".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "kills and restarts the CQL server: run with CLUSTER_CQL_KILL and CLUSTER_CQL_START"]
async fn acknowledged_store_writes_survive_a_cql_server_kill() {
    use starling_schema::model::{NewAccount, NewPost, Role, Window};
    use starling_store::Store;
    use starling_store::scylla::ScyllaStore;

    let (Ok(uri), Ok(kill), Ok(start)) = (
        std::env::var("SCYLLA_URI"),
        std::env::var("CLUSTER_CQL_KILL"),
        std::env::var("CLUSTER_CQL_START"),
    ) else {
        eprintln!(
            "skipped: set SCYLLA_URI, CLUSTER_CQL_KILL and CLUSTER_CQL_START (commands that kill and start the CQL server)"
        );
        return;
    };
    let _server = CQL_SERVER.lock().await;
    let keyspace = format!("starling_crash_{:08x}", rand_u64() as u32);
    let limits = starling_schema::settings::Limits::default();
    let store = ScyllaStore::connect_fresh_keyspace(&uri, &keyspace, 7, limits)
        .await
        .expect("connect to SCYLLA_URI");
    eprintln!(
        "the CQL server's commitlog_sync: {:?}",
        store.commitlog_sync().await
    );
    let author = store
        .create_account(NewAccount {
            username: "crash".into(),
            email: Some("crash@example.org".into()),
            password: PASSWORD.into(),
            display_name: None,
            role: Role::User,
            bot: false,
        })
        .await
        .expect("create account")
        .id;

    // Writers post (each with its own key) until their first failure: the server is gone.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (store, acked) = (store.clone(), acked.clone());
        writers.spawn(async move {
            for n in 0u64.. {
                let key = format!("crash-{w}-{n}");
                let new = NewPost {
                    author_id: author,
                    text: format!("crash {w} {n}"),
                    ..NewPost::default()
                };
                match store.create_post(new, Some(&key)).await {
                    Ok(created) => acked.lock().await.push((created.value.id, key)),
                    Err(_) => return,
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    shell(kill, "CLUSTER_CQL_KILL").await;
    while writers.join_next().await.is_some() {}
    shell(start, "CLUSTER_CQL_START").await;

    let acked = Arc::try_unwrap(acked).expect("writers done").into_inner();
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    let back = Instant::now();
    while store.posts_by_ids(&[acked[0].0]).await.is_err() {
        assert!(
            back.elapsed() < Duration::from_secs(120),
            "the CQL server did not answer within 120 s of its start"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every acknowledged post: its row, its place on its author's page, and its key, which
    // must replay to the same post (a lost claim would make a retry post it twice).
    let mut found = HashSet::new();
    for chunk in acked.chunks(starling_store::MAX_BATCH) {
        let ids: Vec<_> = chunk.iter().map(|(id, _)| *id).collect();
        let posts = store.posts_by_ids(&ids).await.expect("read posts");
        found.extend(posts.into_iter().map(|p| p.id));
    }
    let mut listed = HashSet::new();
    let mut window = Some(Window::newest(starling_store::MAX_PAGE));
    while let Some(w) = window {
        let page = store
            .posts_by_author(author, w)
            .await
            .expect("read the author's posts");
        listed.extend(page.items.iter().map(|p| p.id));
        window = page.next;
    }
    let mut replayed_elsewhere = 0;
    for (id, key) in &acked {
        let again = NewPost {
            author_id: author,
            text: "a retry".into(),
            ..NewPost::default()
        };
        let replay = store
            .create_post(again, Some(key))
            .await
            .expect("replay a key");
        if replay.value.id != *id {
            replayed_elsewhere += 1;
        }
    }
    let lost = acked.iter().filter(|(id, _)| !found.contains(id)).count();
    let unlisted = acked.iter().filter(|(id, _)| !listed.contains(id)).count();
    eprintln!(
        "acknowledged {}, rows lost {lost}, unlisted {unlisted}, keys replaying to another post {replayed_elsewhere}",
        acked.len()
    );
    if let Err(e) = store.drop_keyspace().await {
        eprintln!("could not drop the test keyspace: {e}");
    }
    assert_eq!(
        lost, 0,
        "acknowledged posts lost by the CQL server's crash: its commit log must be synced before \
         it acknowledges (commitlog_sync: group or batch) when it is the only replica"
    );
    assert_eq!(
        unlisted, 0,
        "acknowledged posts missing from their author's page"
    );
    assert_eq!(
        replayed_elsewhere, 0,
        "Idempotency-Keys that no longer name their acknowledged post"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "starts a cluster of processes on a CQL server: run by infra/test.sh when SCYLLA_URI is set"]
async fn acknowledged_posts_survive_each_fault() {
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        eprintln!("cluster fault tests skipped: SCYLLA_URI is not set (they need a CQL server)");
        return;
    };
    let _server = CQL_SERVER.lock().await;
    let cluster = Cluster::up(&uri);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let run = format!("{:x}", rand_u64() as u32);
    let author = register(&http, &cluster.base, &format!("author_{run}")).await;
    let mut followers = Vec::new();
    for i in 0..FOLLOWERS {
        let f = register(&http, &cluster.base, &format!("follower{i}_{run}")).await;
        let res = http
            .post(format!(
                "{}/api/v1/accounts/{}/follow",
                cluster.base, author.id
            ))
            .bearer_auth(&f.token)
            .send()
            .await
            .expect("follow");
        assert!(res.status().is_success(), "follow: {}", res.status());
        followers.push(f);
    }
    let s = Scenario {
        http: http.clone(),
        base: cluster.base.clone(),
        author,
        followers,
    };
    let c = &cluster;
    let mut outcomes = Vec::new();

    outcomes.push(
        s.run(
            c,
            "kill -9 one fan-out worker",
            "starling_fanout_events_total{outcome=\"applied\",type=\"post.created\"}",
            || async {
                c.kill("fanout1");
                tokio::time::sleep(Duration::from_secs(5)).await;
                c.start("fanout1");
            },
        )
        .await,
    );
    outcomes.push(
        s.run(c, "kill -9 one api node", "starling_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/statuses\",status=\"200\"}", || async {
            c.kill("api1");
            tokio::time::sleep(Duration::from_secs(10)).await;
            c.start("api1");
            tokio::time::sleep(Duration::from_secs(3)).await;
        })
        .await,
    );
    outcomes.push(
        s.run(
            c,
            "stop one NATS server of 3 for 20 s",
            "starling_consumer_pull_failures_total",
            || async {
                c.stop("nats2");
                tokio::time::sleep(Duration::from_secs(20)).await;
                c.start("nats2");
            },
        )
        .await,
    );
    outcomes.push(
        s.run(
            c,
            "restart one Redis shard empty",
            "starling_timeline_shard_errors_total",
            || async {
                c.stop("redis2");
                c.start("redis2");
            },
        )
        .await,
    );
    match (std::env::var("CLUSTER_CQL_KILL"), std::env::var("CLUSTER_CQL_START")) {
        (Ok(kill), Ok(start)) => outcomes.push(
            s.run(c, "kill the CQL server for 10 s", "starling_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/statuses\",status=\"503\"}", || async {
                shell(kill.clone(), "CLUSTER_CQL_KILL").await;
                tokio::time::sleep(Duration::from_secs(10)).await;
                shell(start.clone(), "CLUSTER_CQL_START").await;
            })
            .await,
        ),
        _ => eprintln!(
            "CQL server fault skipped: set CLUSTER_CQL_KILL and CLUSTER_CQL_START to commands that kill and start it"
        ),
    }

    eprintln!(
        "\n| fault | acked | unacked | lost | duplicated | missing from search | failed tries | failed reads | longest write gap | converged in |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|---|");
    for o in &outcomes {
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} | {}/{} | {:.1} s | {:.1} s |",
            o.fault,
            o.acked,
            o.unacked,
            o.lost,
            o.duplicated,
            o.missing_from_search,
            o.failed_tries,
            o.failed_reads,
            o.reads,
            o.longest_gap.as_secs_f64(),
            o.converged_in.as_secs_f64()
        );
    }
    for o in &outcomes {
        eprintln!("[{}] {}", o.fault, o.metric);
    }
    cluster.down().await;
    for o in &outcomes {
        assert!(o.acked > 0, "[{}] nothing was acknowledged", o.fault);
        assert_eq!(
            o.lost, 0,
            "[{}] acknowledged posts missing from homes",
            o.fault
        );
        assert_eq!(o.duplicated, 0, "[{}] posts in a home twice", o.fault);
        assert_eq!(
            o.missing_from_search, 0,
            "[{}] acknowledged posts missing from search",
            o.fault
        );
    }
}
