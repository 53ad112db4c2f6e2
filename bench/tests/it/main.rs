//! The harness against a real Starling node (in this process, on a free port, with real
//! `redis-server` and `nats-server -js`): seeding through the API, an open-loop run with
//! fan-out lag, the celebrity run, the ceilings, and the command line end to end.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use starling::{Node, Role};
use starling_bench::ceilings;
use starling_bench::client::Api;
use starling_bench::closed::{self, ClosedOptions};
use starling_bench::graph::{GenParams, Graph};
use starling_bench::procstat::{CpuWatch, Part, url_port};
use starling_bench::report::Report;
use starling_bench::runner::{self, CelebrityOptions, Ctx, LagOptions, RunOptions};
use starling_bench::seed::{SeedOptions, seed};
use starling_bench::state::State;
use starling_bench::workload::{Mix, Workload};
use starling_schema::settings::{EmbeddedSettings, Settings};
use starling_store::AnyStore;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::{NatsServer, RedisShards};

struct Server {
    _node: Node,
    base: String,
    redis: RedisShards,
    _nats: NatsServer,
    dir: tempfile::TempDir,
}

async fn server() -> Server {
    let redis = RedisShards::start(2).unwrap();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Settings::default();
    s.log.filter = "warn".into();
    s.api.listen = "127.0.0.1:0".into();
    s.api.workers = 2;
    s.redis.shards = redis.urls();
    s.nats.url = nats.url();
    s.store.embedded = EmbeddedSettings {
        path: dir.path().join("store"),
        fsync: false,
        cache_mib: 32,
    };
    s.search.path = dir.path().join("search");
    // The harness is one address with many accounts at full speed: no rate limits.
    s.rate_limits.enabled = false;
    s.limits.password_hash_queue = 4_096;
    let store = AnyStore::Embedded(
        EmbeddedStore::open(&s.store.embedded, s.node_id, s.limits.clone()).unwrap(),
    );
    let node = starling::start_with_store(s, &Role::all(), store)
        .await
        .unwrap();
    let base = format!("http://{}", node.addr.unwrap());
    let api = Api::new(&base, 4, Duration::from_secs(5)).unwrap();
    for _ in 0..200 {
        if api.ready().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server {
        _node: node,
        base,
        redis,
        _nats: nats,
        dir,
    }
}

fn small_graph() -> Graph {
    Graph::generate(&GenParams {
        users: 30,
        exponent: 2.0,
        min_followers: 1,
        max_followers: 10,
        celebrities: 1,
        celebrity_followers: 25,
        reciprocity: 0.2,
        seed: 5,
    })
    .unwrap()
}

async fn seeded(srv: &Server) -> (Api, State, Graph) {
    let api = Api::new(&srv.base, 64, Duration::from_secs(30)).unwrap();
    let graph = small_graph();
    let state_path = srv.dir.path().join("state.json");
    let state = seed(
        &api,
        &graph,
        &SeedOptions {
            prefix: "t".into(),
            concurrency: 8,
            posts_per_user: 1,
            graph_source: "test".into(),
            state_path: state_path.clone(),
            admin: None,
            seed: 1,
            progress: false,
        },
    )
    .await
    .unwrap();
    (api, state, graph)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_creates_the_graph_on_the_server() {
    let srv = server().await;
    let (api, state, graph) = seeded(&srv).await;
    assert_eq!(state.users.len(), 30);
    assert_eq!(state.celebrity, Some(0));
    // The state reloads with the same graph.
    let path = srv.dir.path().join("state.json");
    let back = State::load(&path).unwrap();
    assert_eq!(back.load_graph(&path).unwrap(), graph);
    // The celebrity has every follower the graph gave it, as the server counts them.
    let celeb = &state.users[0];
    let http = reqwest::Client::new();
    let account: serde_json::Value = http
        .get(format!("{}/api/v1/accounts/{}", api.base, celeb.id))
        .bearer_auth(&celeb.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        account["followers_count"].as_u64().unwrap(),
        graph.follower_counts()[0]
    );
    assert_eq!(account["statuses_count"].as_u64().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_run_measures_every_operation_and_fanout_lag() {
    let srv = server().await;
    let (api, state, graph) = seeded(&srv).await;
    let names = state.users.iter().map(|u| u.username.clone()).collect();
    let ctx = Ctx::new(api, state.users.clone(), &graph);
    let mix = Arc::new(Mix::new(Workload::DsbMixed, names, 0.0, 0.0, 3).unwrap());
    let r = runner::run_mix(
        &ctx,
        mix,
        &RunOptions {
            rate: 100.0,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(3),
            connections: 16,
            seed: 3,
            lag: LagOptions {
                every: Duration::from_millis(100),
                followers: 3,
                poll: Duration::from_millis(10),
                timeout: Duration::from_secs(5),
            },
            stream_share: 0.0,
            max_streams: 0,
            cpu: Some(CpuWatch::new(vec![
                Part::find("server", &[], &[url_port(&srv.base).unwrap()]),
                Part::this_process(),
            ])),
        },
    )
    .await
    .unwrap();
    // Every send's lateness is measured, and the late count is the part of that
    // distribution over 1 ms. (How late sends are here depends on the machine's load, and on
    // this debug-built node sharing the test's runtime threads.)
    let lateness = r.recorder.send_lateness.as_ref().unwrap();
    assert_eq!(lateness.len(), 300);
    let over = lateness.len() - lateness.count_between(0, 1000);
    assert!(
        r.late_sends.abs_diff(over) <= 3,
        "{} vs {over}",
        r.late_sends
    );
    // The server is this test process, found by its port; its CPU is accounted.
    let cpu = r.cpu.as_ref().unwrap();
    assert!(cpu.server_is_harness, "{cpu:?}");
    assert_eq!(cpu.parts[0].pids, vec![std::process::id()]);
    assert!(cpu.server_us_per_request.unwrap() > 0.0);
    assert!((2.5..5.0).contains(&cpu.window_s), "{}", cpu.window_s);
    let measured: u64 = r.recorder.ops.values().map(|s| s.latency.len()).sum();
    assert_eq!(
        measured, 300,
        "every scheduled operation after warm-up is recorded"
    );
    for op in ["home_read", "account_read", "post"] {
        let s = &r.recorder.ops[op];
        assert!(!s.latency.is_empty(), "{op} ran");
        assert!(s.errors.is_empty(), "{op} errors: {:?}", s.errors);
    }
    assert!(
        (80.0..=110.0).contains(&r.achieved_rate),
        "achieved {}",
        r.achieved_rate
    );
    assert!(!r.lag_home.is_empty(), "fan-out lag was sampled");
    assert_eq!(r.lag_home_missed, 0, "every watched follower saw the post");
    // The indexer role runs too: sampled posts were found by search.
    assert!(!r.search_fresh.is_empty(), "search freshness was sampled");
    assert_eq!(r.search_missed, 0, "every sampled post became searchable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_measures_throughput_against_health() {
    let srv = server().await;
    let (api, state, graph) = seeded(&srv).await;
    let names = state.users.iter().map(|u| u.username.clone()).collect();
    let ctx = Ctx::new(api.clone(), state.users.clone(), &graph);
    let mix = Arc::new(Mix::new(Workload::ReadOnly, names, 0.0, 0.0, 3).unwrap());
    let watch = CpuWatch::new(vec![
        Part::find("server", &[], &[url_port(&srv.base).unwrap()]),
        Part::find("redis", &[], &[url_port(&srv.redis.urls()[0]).unwrap()]),
        Part::this_process(),
    ]);
    let (health, _) = closed::health_ceiling(&api, 4, Duration::from_secs(1), Some(&watch))
        .await
        .unwrap();
    let r = closed::run_closed(
        &ctx,
        mix,
        &ClosedOptions {
            connections: 4,
            warmup: Duration::from_millis(300),
            duration: Duration::from_secs(2),
            seed: 1,
            cpu: Some(watch),
        },
    )
    .await
    .unwrap();
    // Only home reads, none failed, every answer inside the window counted once.
    assert_eq!(r.recorder.ops.keys().collect::<Vec<_>>(), vec!["home_read"]);
    let reads = &r.recorder.ops["home_read"];
    assert!(reads.errors.is_empty(), "{:?}", reads.errors);
    assert_eq!(reads.latency.len(), r.completed);
    assert_eq!(reads.per_second.iter().sum::<u64>(), r.completed);
    assert!(reads.per_second.len() <= 2, "{:?}", reads.per_second);
    assert!(r.completed > 20, "{} reads in 2 s", r.completed);
    assert!((r.throughput - r.completed as f64 / 2.0).abs() < 1e-9);
    // Four connections, each with one request in flight: Little's law bounds the rate.
    let mean_s = reads.latency.mean() / 1e6;
    assert!(
        r.throughput <= 4.0 / mean_s * 1.05,
        "{} vs {mean_s}",
        r.throughput
    );
    // The ceiling was measured (which is faster is the harness's finding, not this test's:
    // on a loaded debug build a one-second /health sample can come out below the reads).
    assert!(health > 0.0, "/health ceiling {health}");
    let cpu = r.cpu.as_ref().unwrap();
    assert!(cpu.cores_of("redis").is_some(), "{cpu:?}");
    assert!(cpu.cores_of("server").unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn celebrity_posts_reach_every_sampled_follower() {
    let srv = server().await;
    let (api, state, graph) = seeded(&srv).await;
    let ctx = Ctx::new(api, state.users.clone(), &graph);
    let c = runner::run_celebrity(
        &ctx,
        &CelebrityOptions {
            celebrity: 0,
            posts: 2,
            interval: Duration::from_millis(200),
            sample: 10,
            poll: Duration::from_millis(10),
            timeout: Duration::from_secs(10),
            concurrency: 4,
            streams: 0,
            seed: 1,
        },
    )
    .await
    .unwrap();
    assert_eq!(c.followers as u64, graph.follower_counts()[0]);
    assert_eq!(c.sampled, 10);
    assert_eq!(c.posts.len(), 2);
    assert!(
        c.posts
            .iter()
            .all(|p| p.missed == 0 && p.all_seen.is_some())
    );
    assert_eq!(c.lag_home.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ceilings_measure_redis_and_http() {
    let srv = server().await;
    let url = &srv.redis.urls()[0];
    let zadd = ceilings::zadd_rate(url, Duration::from_millis(500), 32, 1)
        .await
        .unwrap();
    assert!(zadd > 1000.0, "zadd {zadd}/s");
    let api = Api::new(&srv.base, 8, Duration::from_secs(5)).unwrap();
    let http = ceilings::http_rate(&api, Duration::from_millis(500), 4)
        .await
        .unwrap();
    assert!(http > 50.0, "health {http}/s");
    // A shard that is not there is an error, not a zero.
    assert!(
        ceilings::zadd_rate("redis://127.0.0.1:1", Duration::from_millis(100), 1, 1)
            .await
            .is_err()
    );
}

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_starling-bench"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_seeds_runs_a_sweep_and_writes_the_page() {
    let srv = server().await;
    let dir = srv.dir.path();
    let p = |name: &str| dir.join(name).display().to_string();
    let base = srv.base.clone();
    let (state, out, page) = (p("cli.json"), p("out"), p("RESULTS.md"));
    let redis = srv.redis.urls()[0].clone();
    let nats = srv._nats.url();
    let closed_out = p("closed");
    let srv_dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        ok(bench(&[
            "seed",
            "--base",
            &base,
            "--state",
            &state,
            "--users",
            "20",
            "--celebrities",
            "1",
            "--celebrity-followers",
            "15",
            "--posts-per-user",
            "1",
            "--no-progress",
        ]));
        let md = ok(bench(&[
            "run",
            "--state",
            &state,
            "--workload",
            "read-only",
            "--out",
            &out,
            "--sweep",
            "--sweep-start",
            "20",
            "--sweep-factor",
            "2",
            "--sweep-max",
            "40",
            "--p99-ms",
            "500",
            "--warmup",
            "0.5",
            "--duration",
            "1",
            "--connections",
            "8",
            "--ceilings",
            "--redis",
            &redis,
            "--ceiling-seconds",
            "0.3",
        ]));
        assert!(md.contains("Highest rate that held: 40 req/s"), "{md}");
        let report: Report =
            serde_json::from_slice(&std::fs::read(Path::new(&out).join("report.json")).unwrap())
                .unwrap();
        let sweep = report.sweep.as_ref().unwrap();
        assert_eq!(sweep.steps.len(), 2);
        assert_eq!(sweep.best_rate, Some(40.0));
        assert!(report.ceilings.as_ref().unwrap().zadd_per_shard[0].1 > 0.0);
        assert_eq!(report.charts.len(), 3);
        for (_, file) in &report.charts {
            let svg = std::fs::read_to_string(Path::new(&out).join(file)).unwrap();
            assert!(svg.starts_with("<svg"));
        }
        // The sweep's table has the late sends and the CPU split of every step.
        assert_eq!(sweep.late_send_share.len(), 2);
        assert_eq!(sweep.cpu.len(), 2);
        assert!(md.contains("| late sends | held | server cores |"), "{md}");
        // Closed loop, with the processes found by their ports: the server is the test
        // process, the harness is the command's own.
        let md = ok(bench(&[
            "run",
            "--state",
            &state,
            "--workload",
            "read-only",
            "--out",
            &closed_out,
            "--closed-loop",
            "2",
            "--warmup",
            "0.2",
            "--duration",
            "1",
            "--ceiling-seconds",
            "0.5",
            "--redis",
            &redis,
            "--nats",
            &nats,
        ]));
        assert!(md.contains("Closed loop (2 connections"), "{md}");
        assert!(md.contains("of `GET /health`"), "{md}");
        let closed: Report = serde_json::from_slice(
            &std::fs::read(Path::new(&closed_out).join("report.json")).unwrap(),
        )
        .unwrap();
        assert!(closed.run.is_none() && closed.sweep.is_none());
        let c = closed.closed_loop.as_ref().unwrap();
        assert!(
            c.throughput_rps > 0.0 && c.health_rps > c.throughput_rps,
            "{c:?}"
        );
        assert!(c.share_of_health > 0.0 && c.share_of_health < 1.0);
        let cpu = c.cpu.as_ref().unwrap();
        let pids = |role: &str| {
            cpu.parts
                .iter()
                .find(|p| p.role == role)
                .unwrap()
                .pids
                .clone()
        };
        assert_eq!(pids("server"), vec![std::process::id()]);
        assert_eq!(pids("redis").len(), 1);
        assert_eq!(pids("nats").len(), 1);
        assert!(!cpu.server_is_harness);
        assert!(cpu.server_us_per_request.unwrap() > 0.0);
        assert!(cpu.cores_of("harness").is_some());
        std::fs::write(srv_dir.join("cmds.sh"), "starling-bench run ...\n").unwrap();
        ok(bench(&[
            "page",
            "--report",
            &Path::new(&out).join("report.json").display().to_string(),
            "--report",
            &Path::new(&closed_out)
                .join("report.json")
                .display()
                .to_string(),
            "--commands",
            &srv_dir.join("cmds.sh").display().to_string(),
            "--out",
            &page,
        ]));
        let page = std::fs::read_to_string(&page).unwrap();
        assert!(
            page.contains("| read-only | read-only | 20 | 40 req/s (p99 ≤ 500 ms)"),
            "{page}"
        );
        assert!(page.contains("(2 conns), "), "{page}");
        assert!(page.contains("](out/read-only-latency.svg)"), "{page}");
        assert!(page.contains("starling-bench run ..."));
        // A workload against a state file that does not exist is a clear error.
        let out = bench(&[
            "run",
            "--state",
            "/nonexistent",
            "--workload",
            "twitter",
            "--out",
            "/tmp/x",
        ]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent"));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_socket_records_update_events() {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    // A WebSocket server speaking Mastodon's streaming format, standing in until
    // Starling's own streaming lands on this branch.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let status = serde_json::json!({"id": "4242", "content": "<p>x</p>"}).to_string();
        for frame in [
            serde_json::json!({"stream": ["user"], "event": "delete", "payload": "1"}),
            serde_json::json!({"stream": ["user"], "event": "update", "payload": status}),
        ] {
            ws.send(Message::text(frame.to_string())).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let arrivals = starling_bench::stream::Arrivals::default();
    let api = Api::new(&format!("http://{addr}"), 1, Duration::from_secs(5)).unwrap();
    let task = starling_bench::stream::open(&api.streaming_url("tok"), 7, arrivals.clone())
        .await
        .unwrap();
    for _ in 0..100 {
        if !arrivals.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got: Vec<(usize, u64)> = arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|&(u, id, _)| (u, id))
        .collect();
    assert_eq!(got, vec![(7, 4242)]);
    task.abort();
    // Nothing listening: opening fails with an error, not a hang.
    let closed = "ws://127.0.0.1:1/api/v1/streaming?stream=user&access_token=t";
    assert!(
        starling_bench::stream::open(closed, 0, arrivals)
            .await
            .is_err()
    );
}
