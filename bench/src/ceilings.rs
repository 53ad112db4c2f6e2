//! This machine's limits, measured in the same run as the workload: the pipelined `ZADD`
//! rate of each Redis shard (the ceiling of fan-out, which is ZADDs into followers'
//! timelines) and the plain HTTP rate of a trivial Starling endpoint (`/health`, the
//! ceiling of any API operation). Results are then also given as a share of these.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::Api;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ceilings {
    /// `(shard url, ZADDs per second)`.
    pub zadd_per_shard: Vec<(String, f64)>,
    pub zadd_pipeline: usize,
    pub zadd_connections: usize,
    /// Closed-loop `GET /health` requests per second.
    pub http_health_rps: f64,
    pub http_connections: usize,
}

/// One RESP command as an array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `host:port` and database of a `redis://[user:pass@]host[:port][/db]` URL. Credentials
/// are not supported (the ceiling is for local shards).
pub fn parse_redis_url(url: &str) -> anyhow::Result<(String, u32)> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("{url:?} is not a redis:// URL"))?;
    anyhow::ensure!(
        !rest.contains('@'),
        "Redis URLs with credentials are not supported by the ceiling"
    );
    let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:6379")
    };
    let db = if db.is_empty() {
        0
    } else {
        db.parse()
            .with_context(|| format!("bad database in {url:?}"))?
    };
    Ok((hostport, db))
}

/// Count complete single-line replies (`:n`, `+OK`, `-ERR`) in `buf`, returning the
/// count, the number of error replies and the bytes consumed.
fn count_replies(buf: &[u8]) -> (usize, usize, usize) {
    let (mut n, mut errs, mut used) = (0, 0, 0);
    while let Some(pos) = buf[used..].windows(2).position(|w| w == b"\r\n") {
        if buf[used] == b'-' {
            errs += 1;
        }
        n += 1;
        used += pos + 2;
    }
    (n, errs, used)
}

/// ZADDs per second into one shard over `connections` connections, `pipeline` commands
/// in flight on each, for `duration`. Writes to keys under `starling-bench:ceiling:` and
/// deletes them afterwards.
pub async fn zadd_rate(
    url: &str,
    duration: Duration,
    pipeline: usize,
    connections: usize,
) -> anyhow::Result<f64> {
    let (addr, db) = parse_redis_url(url)?;
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections.max(1) {
        let addr = addr.clone();
        tasks.spawn(async move {
            let mut conn = TcpStream::connect(&addr)
                .await
                .with_context(|| format!("connecting to Redis at {addr}"))?;
            conn.set_nodelay(true).ok();
            let key = format!("starling-bench:ceiling:{c}");
            let mut buf = Vec::new();
            if db != 0 {
                conn.write_all(&encode(&[b"SELECT", db.to_string().as_bytes()]))
                    .await?;
                read_replies(&mut conn, &mut buf, 1).await?;
            }
            let mut member = 0u64;
            let mut done = 0u64;
            while Instant::now() < deadline {
                let mut batch = Vec::with_capacity(pipeline * 64);
                for _ in 0..pipeline {
                    member += 1;
                    // Timeline-shaped: score and member are a post id; capped like a timeline.
                    let m = (member % 100_000).to_string();
                    batch.extend(encode(&[
                        b"ZADD",
                        key.as_bytes(),
                        m.as_bytes(),
                        m.as_bytes(),
                    ]));
                }
                conn.write_all(&batch).await.context("writing to Redis")?;
                read_replies(&mut conn, &mut buf, pipeline).await?;
                done += pipeline as u64;
            }
            conn.write_all(&encode(&[b"DEL", key.as_bytes()])).await?;
            read_replies(&mut conn, &mut buf, 1).await?;
            anyhow::Ok(done)
        });
    }
    let mut total = 0;
    while let Some(r) = tasks.join_next().await {
        total += r??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

async fn read_replies(conn: &mut TcpStream, buf: &mut Vec<u8>, want: usize) -> anyhow::Result<()> {
    let mut got = 0;
    let mut chunk = [0u8; 16 * 1024];
    while got < want {
        let n = conn.read(&mut chunk).await.context("reading from Redis")?;
        anyhow::ensure!(n > 0, "Redis closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        let (replies, errors, used) = count_replies(buf);
        anyhow::ensure!(
            errors == 0,
            "Redis answered with an error: {}",
            String::from_utf8_lossy(buf)
        );
        got += replies;
        buf.drain(..used);
    }
    Ok(())
}

/// Closed-loop `GET /health` rate with `connections` requests in flight.
pub async fn http_rate(api: &Api, duration: Duration, connections: usize) -> anyhow::Result<f64> {
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let counts: Vec<(u64, u64)> = futures::stream::iter(0..connections.max(1))
        .map(|_| async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                match api.health().await {
                    Ok(()) => ok += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        })
        .buffer_unordered(connections.max(1))
        .collect()
        .await;
    let elapsed = start.elapsed().as_secs_f64();
    let (ok, failed) = counts.iter().fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    anyhow::ensure!(
        failed <= ok / 100,
        "{failed} of {} /health requests failed",
        ok + failed
    );
    Ok(ok as f64 / elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_encoding() {
        assert_eq!(
            encode(&[b"ZADD", b"k", b"1", b"m"]),
            b"*4\r\n$4\r\nZADD\r\n$1\r\nk\r\n$1\r\n1\r\n$1\r\nm\r\n".to_vec()
        );
    }

    #[test]
    fn replies_are_counted_across_reads() {
        assert_eq!(count_replies(b":1\r\n:0\r\n:1"), (2, 0, 8));
        assert_eq!(count_replies(b"+OK\r\n-ERR wrong\r\n"), (2, 1, 17));
        assert_eq!(count_replies(b""), (0, 0, 0));
    }

    #[test]
    fn redis_urls() {
        assert_eq!(
            parse_redis_url("redis://127.0.0.1:6380").unwrap(),
            ("127.0.0.1:6380".into(), 0)
        );
        assert_eq!(
            parse_redis_url("redis://localhost/3").unwrap(),
            ("localhost:6379".into(), 3)
        );
        assert!(parse_redis_url("http://x").is_err());
        assert!(parse_redis_url("redis://u:p@x:1").is_err());
    }
}
