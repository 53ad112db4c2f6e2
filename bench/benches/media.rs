//! The media benchmark (issue 12):
//!
//! 1. processing time of a 12-megapixel JPEG and a 1-megapixel PNG (made here with the
//!    `image` crate, the same bytes every run), each in a child process of its own doing
//!    what the media worker does with one upload (`starling_media::process::process`),
//!    with that process's peak resident memory (`VmHWM` from `/proc/self/status`);
//! 2. uploads per second through the API (`POST /api/v2/media`, answered once processed,
//!    by a node with every role: api, fan-out, media worker), on a few connections;
//! 3. the home-read rate (`GET /api/v1/timelines/home?limit=20`, closed loop) of two
//!    populations seeded with the same follow graph and the same number of posts, one
//!    with a picture on every third post and one without, in alternating phases of the
//!    same run; the rate with media must stay within 10% of the rate without.
//!
//! `cargo bench -p starling-bench --bench media` (release), or, quicker to build on a busy
//! machine, `cargo bench --profile dev -p starling-bench --bench media` (the image
//! crates are optimised in the dev profile too). Needs `redis-server` and `nats-server`.
//! Environment: `MEDIA_BENCH_SECONDS` (per home-read phase, default 5),
//! `MEDIA_BENCH_CONNECTIONS` (default 8), `MEDIA_BENCH_PHASES` (pairs of phases, default 4).

#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use starling::{Node, Role};
use starling_bench::client::Api;
use starling_bench::graph::{GenParams, Graph};
use starling_bench::seed::{SeedOptions, seed};
use starling_bench::state::User;
use starling_schema::settings::{EmbeddedSettings, Settings};
use starling_store::AnyStore;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::{NatsServer, RedisShards};

const CHILD: &str = "STARLING_MEDIA_BENCH_CHILD";
const BOUNDARY: &str = "starlingbench7MA4YWxkTrZu0gW";

/// A photo-like picture: smooth gradients with a fixed pseudo-random grain (so JPEG and
/// PNG sizes are those of a photo rather than of a flat fill).
fn picture(w: u32, h: u32) -> image::RgbImage {
    let mut state: u32 = 0x9e37_79b9;
    image::RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let grain = (state & 15) as i32 - 8;
        let c = |v: u32| (v as i32 + grain).clamp(0, 255) as u8;
        image::Rgb([c(x * 255 / w), c(y * 255 / h), c(((x + y) / 7) % 256)])
    })
}

fn jpeg_12mp() -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&picture(4000, 3000))
        .unwrap();
    out.into_inner()
}

fn png_1mp() -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture(1000, 1000)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time this process has used (user + system), in milliseconds.
fn cpu_ms() -> f64 {
    let ticks = starling_bench::procstat::clock_ticks().unwrap_or(100) as f64;
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| starling_bench::procstat::parse_stat(&t))
        .map_or(0.0, |(u, s)| (u + s) as f64 * 1e3 / ticks)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// In the child: process the file named by the argument `runs` times; print
/// `{"ms": [...], "rss_before_kib": N, "hwm_kib": N}`.
fn child(path: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(path)?;
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let (content_type, kind) = starling_media::sniff::sniff(&bytes).context("sniff")?;
    let rss_before = status_kib("VmRSS:");
    let (mut ms, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu_ms());
        let p = starling_media::process::process(&bytes, kind, content_type)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(cpu_ms() - c);
        std::hint::black_box(p);
    }
    println!(
        "{}",
        serde_json::json!({
            "ms": ms,
            "cpu_ms": cpu,
            "rss_before_kib": rss_before,
            "hwm_kib": status_kib("VmHWM:"),
        })
    );
    Ok(())
}

struct Processing {
    name: &'static str,
    input_bytes: usize,
    ms: Vec<f64>,
    cpu_ms: Vec<f64>,
    hwm_kib: u64,
    rss_before_kib: u64,
}

fn processing(
    dir: &std::path::Path,
    name: &'static str,
    bytes: &[u8],
    runs: usize,
) -> anyhow::Result<Processing> {
    let path = dir.join(name);
    std::fs::write(&path, bytes)?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD, &path)
        .env("RUNS", runs.to_string())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.lines().last().unwrap_or("")).context("child")?;
    let mut ms: Vec<f64> = v["ms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    ms.sort_by(f64::total_cmp);
    let mut cpu_ms: Vec<f64> = v["cpu_ms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    cpu_ms.sort_by(f64::total_cmp);
    Ok(Processing {
        name,
        input_bytes: bytes.len(),
        ms,
        cpu_ms,
        hwm_kib: v["hwm_kib"].as_u64().unwrap_or(0),
        rss_before_kib: v["rss_before_kib"].as_u64().unwrap_or(0),
    })
}

struct Server {
    _node: Node,
    base: String,
    _redis: RedisShards,
    _nats: NatsServer,
    dir: tempfile::TempDir,
}

async fn server() -> anyhow::Result<Server> {
    let redis = RedisShards::start(2)?;
    let nats = NatsServer::start()?;
    let dir = tempfile::tempdir()?;
    let mut s = Settings::default();
    s.log.filter = "warn".into();
    s.api.listen = "127.0.0.1:0".into();
    s.api.workers = 2;
    s.redis.shards = redis.urls();
    s.nats.url = nats.url();
    s.store.embedded = EmbeddedSettings {
        path: dir.path().join("store"),
        fsync: false,
        cache_mib: 64,
    };
    s.search.path = dir.path().join("search");
    s.media.path = dir.path().join("media");
    s.rate_limits.enabled = false;
    s.limits.password_hash_queue = 4_096;
    let store = AnyStore::Embedded(EmbeddedStore::open(
        &s.store.embedded,
        s.node_id,
        s.limits.clone(),
    )?);
    let node = starling::start_with_store(s, &Role::all(), store).await?;
    let base = format!("http://{}", node.addr.context("api address")?);
    let api = Api::new(&base, 4, Duration::from_secs(5))?;
    for _ in 0..400 {
        if api.ready().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Server {
        _node: node,
        base,
        _redis: redis,
        _nats: nats,
        dir,
    })
}

fn multipart(filename: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nbench\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Upload and wait until processed (v2 answers 200, or 202 and then `GET` until 200), as
/// an app does. Returns the media id.
async fn upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    body: Vec<u8>,
) -> anyhow::Result<String> {
    let res = http
        .post(format!("{base}/api/v2/media"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await?;
    let status = res.status().as_u16();
    let v: Value = res.json().await?;
    anyhow::ensure!(status == 200 || status == 202, "upload: {status} {v}");
    let id = v["id"].as_str().context("id")?.to_owned();
    let mut done = status == 200;
    while !done {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let res = http
            .get(format!("{base}/api/v1/media/{id}"))
            .bearer_auth(token)
            .send()
            .await?;
        match res.status().as_u16() {
            200 => done = true,
            206 => {}
            s => anyhow::bail!("media {id}: {s}"),
        }
    }
    Ok(id)
}

/// `n` uploads of `body` on `connections` connections; uploads per second.
async fn upload_rate(
    base: &str,
    users: &[User],
    body: &[u8],
    n: usize,
    connections: usize,
) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (http, next, base) = (http.clone(), next.clone(), base.to_owned());
        let (users, body) = (users.to_vec(), body.to_vec());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return anyhow::Ok(());
                }
                let u = &users[i % users.len()];
                upload(&http, &base, &u.token, body.clone()).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Home reads of random users of `users`, closed loop on `connections` connections for
/// `secs`: reads per second.
async fn home_rate(
    api: &Api,
    users: &[User],
    connections: usize,
    secs: f64,
) -> anyhow::Result<(f64, f64)> {
    let cpu_from = cpu_ms();
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (api, users, done, failed) =
            (api.clone(), users.to_vec(), done.clone(), failed.clone());
        tasks.spawn(async move {
            let mut i = c * 7919;
            while Instant::now() < end {
                i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let u = &users[(i >> 8) % users.len()];
                match api.home(&u.token, 20).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let f = failed.load(Ordering::Relaxed);
    anyhow::ensure!(f == 0, "{f} home reads failed");
    let n = done.load(Ordering::Relaxed) as f64;
    // Server and client share this process: CPU per read of both (Redis aside).
    Ok((n / secs, (cpu_ms() - cpu_from) * 1e3 / n.max(1.0)))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn through_the_api(jpeg: &[u8], png: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let srv = server().await?;
    let api = Api::new(&srv.base, 64, Duration::from_secs(60))?;
    let graph = Graph::generate(&GenParams {
        users: 60,
        exponent: 2.0,
        min_followers: 3,
        max_followers: 20,
        celebrities: 1,
        celebrity_followers: 40,
        reciprocity: 0.2,
        seed: 12,
    })?;
    let mut populations = Vec::new();
    for prefix in ["m", "p"] {
        let state = seed(
            &api,
            &graph,
            &SeedOptions {
                prefix: prefix.into(),
                concurrency: 8,
                posts_per_user: 0,
                graph_source: "media bench".into(),
                state_path: srv.dir.path().join(format!("{prefix}.json")),
                admin: None,
                seed: 1,
                progress: false,
            },
        )
        .await?;
        populations.push(state.users);
    }
    let (with_media, without) = (&populations[0], &populations[1]);

    // Uploads per second, processed, through the API.
    let png_rate = upload_rate(&srv.base, with_media, &multipart("p.png", png), 60, 4).await?;
    lines.push(format!(
        "uploads/s, 1-megapixel PNG ({} bytes), 4 connections, 60 uploads: {png_rate:.1}",
        png.len()
    ));
    let jpeg_rate = upload_rate(&srv.base, with_media, &multipart("j.jpg", jpeg), 8, 2).await?;
    lines.push(format!(
        "uploads/s, 12-megapixel JPEG ({} bytes), 2 connections, 8 uploads: {jpeg_rate:.2}",
        jpeg.len()
    ));

    // The same posts by both populations; a third of those of `with_media` have a picture.
    let posts_per_user = 9;
    let http = reqwest::Client::new();
    let small = multipart("s.png", png);
    for round in 0..posts_per_user {
        for (i, (m, p)) in with_media.iter().zip(without.iter()).enumerate() {
            let text = format!("bench post {round} of {}", m.username);
            let mut form = vec![("status", text.clone())];
            // A third of each round's posts, so any page of a home shows about a third.
            if (round + i) % 3 == 0 {
                let id = upload(&http, &srv.base, &m.token, small.clone()).await?;
                form.push(("media_ids[]", id));
            }
            for (u, form) in [(m, &form), (p, &vec![("status", text.clone())])] {
                let res = http
                    .post(format!("{}/api/v1/statuses", srv.base))
                    .bearer_auth(&u.token)
                    .form(form)
                    .send()
                    .await?;
                anyhow::ensure!(res.status() == 200, "post: {}", res.status());
            }
        }
    }
    // Fan-out settles, and the home pages are what was asked for.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut shown = (0, 0);
    for u in with_media.iter().take(20) {
        let page: Vec<Value> = http
            .get(format!("{}/api/v1/timelines/home?limit=20", srv.base))
            .bearer_auth(&u.token)
            .send()
            .await?
            .json()
            .await?;
        shown.0 += page.len();
        shown.1 += page
            .iter()
            .filter(|s| {
                s["media_attachments"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            })
            .count();
    }
    anyhow::ensure!(shown.1 > 0, "no attachment in any home page");
    lines.push(format!(
        "home pages of the media population: {} of {} statuses carry a picture",
        shown.1, shown.0
    ));

    let secs: f64 = env_or("MEDIA_BENCH_SECONDS", 5.0);
    let connections: usize = env_or("MEDIA_BENCH_CONNECTIONS", 8);
    // Warm both (caches filled as a running server's are), then alternate.
    home_rate(&api, with_media, connections, 2.0).await?;
    home_rate(&api, without, connections, 2.0).await?;
    let (mut m, mut p, mut mc, mut pc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let phases: usize = env_or("MEDIA_BENCH_PHASES", 4);
    for _ in 0..phases {
        let (rate, cpu) = home_rate(&api, with_media, connections, secs).await?;
        m.push(rate);
        mc.push(cpu);
        let (rate, cpu) = home_rate(&api, without, connections, secs).await?;
        p.push(rate);
        pc.push(cpu);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (rm, rp) = (mean(&m), mean(&p));
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    lines.push(format!(
        "home reads/s (limit 20, {connections} connections, closed loop, {phases} alternating phase pairs of {secs} s): \
         with media on a third of the posts {rm:.0} ({}), without media {rp:.0} ({}); ratio {:.3}",
        fmt(&m),
        fmt(&p),
        rm / rp
    ));
    let (cm, cp) = (mean(&mc), mean(&pc));
    lines.push(format!(
        "CPU per home read (server and client, this process): with media {cm:.0} µs, without \
         {cp:.0} µs; ratio {:.3}",
        cm / cp
    ));
    anyhow::ensure!(
        rm >= 0.9 * rp,
        "the home-read rate with media is more than 10% below the rate without"
    );
    Ok(lines)
}

fn main() -> anyhow::Result<()> {
    if let Ok(path) = std::env::var(CHILD) {
        return child(&path);
    }
    // `cargo bench` passes `--bench`; nothing else is taken.
    let started_load = load_average();
    let dir = tempfile::tempdir()?;
    let jpeg = jpeg_12mp();
    let png = png_1mp();
    let mut lines = vec![format!(
        "load average at the start (1, 5, 15 min): {started_load}; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )];
    for p in [
        processing(dir.path(), "jpeg-12mp.jpg", &jpeg, 3)?,
        processing(dir.path(), "png-1mp.png", &png, 10)?,
    ] {
        lines.push(format!(
            "processing {} ({} bytes): median {:.0} ms (min {:.0} ms) wall, median {:.0} ms CPU, \
             over {} runs; peak RSS of the processing process {:.1} MiB ({:.1} MiB before \
             processing)",
            p.name,
            p.input_bytes,
            p.ms[p.ms.len() / 2],
            p.ms[0],
            p.cpu_ms[p.cpu_ms.len() / 2],
            p.ms.len(),
            p.hwm_kib as f64 / 1024.0,
            p.rss_before_kib as f64 / 1024.0,
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let api_lines = rt.block_on(through_the_api(&jpeg, &png));
    let ok = api_lines.is_ok();
    match api_lines {
        Ok(l) => lines.extend(l),
        Err(e) => lines.push(format!("FAILED: {e:#}")),
    }
    lines.push(format!("load average at the end: {}", load_average()));
    println!("\nmedia benchmark");
    for l in &lines {
        println!("  {l}");
    }
    anyhow::ensure!(ok, "the media benchmark failed");
    Ok(())
}
