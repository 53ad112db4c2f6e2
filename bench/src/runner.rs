//! Running workloads against a server: the open-loop mix runner (with fan-out lag sampled
//! through followers' home reads and, where users hold sockets, through streaming) and
//! the celebrity run.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::client::{Api, run_op};
use crate::schedule::Schedule;
use crate::state::User;
use crate::stats::{Recorder, histogram};
use crate::stream::{self, Arrivals};
use crate::workload::{Mix, Op};

/// Everything a run needs to know about the seeded server.
pub struct Ctx {
    pub api: Api,
    pub users: Arc<Vec<User>>,
    /// `followers[i]`: indexes into `users` of user `i`'s followers.
    pub followers: Arc<Vec<Vec<usize>>>,
}

impl Ctx {
    pub fn new(api: Api, users: Vec<User>, graph: &crate::graph::Graph) -> Ctx {
        let mut index = vec![None; graph.users as usize];
        for (i, u) in users.iter().enumerate() {
            if let Some(slot) = index.get_mut(u.node as usize) {
                *slot = Some(i);
            }
        }
        let mut followers = vec![Vec::new(); users.len()];
        for &(u, v) in &graph.edges {
            if let (Some(Some(u)), Some(Some(v))) = (index.get(u as usize), index.get(v as usize)) {
                followers[*v].push(*u);
            }
        }
        Ctx {
            api,
            users: Arc::new(users),
            followers: Arc::new(followers),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LagOptions {
    /// At most one post per this interval has its followers watched.
    pub every: Duration,
    /// Followers watched per sampled post.
    pub followers: usize,
    /// Pause between two home reads of the same follower.
    pub poll: Duration,
    /// Give up on a follower after this long.
    pub timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    /// Worker tasks, each with at most one request in flight.
    pub connections: usize,
    pub seed: u64,
    pub lag: LagOptions,
    /// Share of users holding a streaming socket during the run.
    pub stream_share: f64,
    /// At most this many sockets.
    pub max_streams: usize,
}

/// Fan-out lag as seen through streaming sockets.
#[derive(Debug)]
pub struct StreamLag {
    pub sockets: usize,
    /// Sockets that failed to open (first error kept).
    pub failed: usize,
    pub first_error: Option<String>,
    /// Deliveries the graph says should happen (measured posts × streaming followers).
    pub expected: u64,
    pub delivered: u64,
    /// Post acknowledged → `update` on the socket (0 when the event came first).
    pub lag: Histogram<u64>,
}

#[derive(Debug)]
pub struct RunResult {
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub measured: Duration,
    pub recorder: Recorder,
    /// Operations sent more than a millisecond after their due time.
    pub late_sends: u64,
    pub lag_home: Histogram<u64>,
    pub lag_home_missed: u64,
    /// Post acknowledged → found by `/api/v2/search` (the post's author searching).
    pub search_fresh: Histogram<u64>,
    pub search_missed: u64,
    pub lag_stream: Option<StreamLag>,
}

/// Watch followers' home timelines until each shows status `id`; the lag of each is the
/// time from `acked` to the answer that first showed the post (an upper bound, finer than
/// `poll` plus one read). `None` for a follower that never showed it within `timeout`.
pub async fn watch_home(
    api: &Api,
    tokens: &[String],
    id: u64,
    acked: Instant,
    poll: Duration,
    timeout: Duration,
    concurrency: usize,
) -> Vec<Option<Duration>> {
    let mut seen: Vec<Option<Duration>> = vec![None; tokens.len()];
    let deadline = acked + timeout;
    loop {
        let pending: Vec<usize> = (0..tokens.len()).filter(|&i| seen[i].is_none()).collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return seen;
        }
        let round_start = Instant::now();
        let found: Vec<(usize, Instant)> = futures::stream::iter(pending)
            .map(|i| async move {
                match api.home_has(&tokens[i], id).await {
                    Ok(true) => Some((i, Instant::now())),
                    _ => None,
                }
            })
            .buffer_unordered(concurrency.max(1))
            .filter_map(|x| async move { x })
            .collect()
            .await;
        for (i, at) in found {
            seen[i] = Some(at.saturating_duration_since(acked));
        }
        if let Some(rest) = poll.checked_sub(round_start.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
}

/// A word of a post to find it by: its longest plain alphanumeric word (the random words
/// of generated posts are unique in practice), if it has one of five characters or more.
pub fn search_word(text: &str) -> Option<String> {
    text.split_whitespace()
        .filter(|w| w.len() >= 5 && w.chars().all(|c| c.is_ascii_alphanumeric()))
        .max_by_key(|w| w.len())
        .map(str::to_owned)
}

/// Poll `/api/v2/search` for `word` until status `id` is among the results; the time from
/// `acked` to the answer that first had it, or `None` after `timeout`.
pub async fn watch_search(
    api: &Api,
    token: &str,
    word: &str,
    id: u64,
    acked: Instant,
    poll: Duration,
    timeout: Duration,
) -> Option<Duration> {
    let deadline = acked + timeout;
    while Instant::now() < deadline {
        let asked = Instant::now();
        if let Ok(true) = api.search_has(token, word, id).await {
            return Some(Instant::now().saturating_duration_since(acked));
        }
        if let Some(rest) = poll.checked_sub(asked.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    None
}

fn record_ms(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// Open streaming sockets for the given users.
async fn open_streams(
    api: &Api,
    users: &[User],
    who: &[usize],
    arrivals: &Arrivals,
) -> (Vec<tokio::task::JoinHandle<()>>, usize, Option<String>) {
    let results: Vec<anyhow::Result<tokio::task::JoinHandle<()>>> =
        futures::stream::iter(who.iter().copied())
            .map(|i| {
                let url = api.streaming_url(&users[i].token);
                let arrivals = arrivals.clone();
                async move { stream::open(&url, i, arrivals).await }
            })
            .buffer_unordered(32)
            .collect()
            .await;
    let mut handles = Vec::new();
    let (mut failed, mut first) = (0, None);
    for r in results {
        match r {
            Ok(h) => handles.push(h),
            Err(e) => {
                failed += 1;
                first.get_or_insert(format!("{e:#}"));
            }
        }
    }
    (handles, failed, first)
}

/// Close the sockets and match their `update` events with the acknowledged posts: one
/// delivery per (socket, post), lag from the acknowledgement (0 when the event came first).
fn stream_lag(
    handles: Vec<tokio::task::JoinHandle<()>>,
    failed: usize,
    first_error: Option<String>,
    arrivals: &Arrivals,
    acked: &HashMap<u64, Instant>,
    expected: u64,
) -> StreamLag {
    let sockets = handles.len();
    for h in handles {
        h.abort();
    }
    let mut lag = histogram();
    let mut delivered = 0;
    if let Ok(a) = arrivals.lock() {
        let mut once = HashSet::new();
        for &(user, id, at) in a.iter() {
            if let Some(ack) = acked.get(&id)
                && once.insert((user, id))
            {
                delivered += 1;
                record_ms(&mut lag, at.saturating_duration_since(*ack));
            }
        }
    }
    StreamLag {
        sockets,
        failed,
        first_error,
        expected,
        delivered,
        lag,
    }
}

/// Run `mix` open-loop at `opts.rate`.
pub async fn run_mix(ctx: &Ctx, mix: Arc<Mix>, opts: &RunOptions) -> anyhow::Result<RunResult> {
    let schedule = Schedule::new(opts.rate, opts.warmup, opts.duration)?;
    let users = ctx.users.clone();

    // Streaming sockets, opened before the clock starts.
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let mut streamers: Vec<usize> = Vec::new();
    let mut sockets = (Vec::new(), 0, None);
    if opts.stream_share > 0.0 {
        let n = ((users.len() as f64 * opts.stream_share).round() as usize)
            .min(opts.max_streams)
            .max(1);
        let mut all: Vec<usize> = (0..users.len()).collect();
        all.shuffle(&mut StdRng::seed_from_u64(opts.seed ^ 0x57_8e_a3));
        streamers = all.into_iter().take(n).collect();
        sockets = open_streams(&ctx.api, &users, &streamers, &arrivals).await;
    }
    let streaming: HashSet<usize> = streamers.iter().copied().collect();

    let start = Instant::now() + Duration::from_millis(20);
    let measure_start = start + opts.warmup;
    let posted: Arc<Mutex<Vec<(u64, usize, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let last_sample = Arc::new(AtomicU64::new(0));
    let lag = Arc::new(Mutex::new((histogram(), 0u64)));
    let fresh = Arc::new(Mutex::new((histogram(), 0u64)));
    let mut samplers = tokio::task::JoinSet::new();
    let (sample_tx, mut sample_rx) =
        tokio::sync::mpsc::unbounded_channel::<(u64, usize, Instant, Option<String>)>();

    // A run may overrun its schedule by its own length (at least 10 s), no more.
    let give_up_at = measure_start + opts.duration + opts.duration.max(Duration::from_secs(10));
    let workers = opts.connections.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (api, users, mix, posted) =
            (ctx.api.clone(), users.clone(), mix.clone(), posted.clone());
        let (last_sample, sample_tx) = (last_sample.clone(), sample_tx.clone());
        let every = opts.lag.every;
        let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_mul(1_000_003) ^ w as u64);
        let slice: Vec<u64> = schedule.slice(w, workers).collect();
        tasks.spawn(async move {
            let mut rec = Recorder::default();
            let mut late = 0u64;
            let mut last_done = measure_start;
            for i in slice {
                let op = mix.next(&mut rng);
                let due = start + schedule.due(i);
                tokio::time::sleep_until(due.into()).await;
                let sent = Instant::now();
                if sent > give_up_at {
                    // The server is so far behind that finishing the schedule would take
                    // minutes: the rest is counted, unsent, as failed at its current lateness.
                    if !schedule.is_warmup(i) {
                        let second =
                            due.saturating_duration_since(measure_start).as_secs() as usize;
                        let micros = sent.saturating_duration_since(due).as_micros() as u64;
                        rec.record(
                            op.name(),
                            micros,
                            second,
                            Some("abandoned (server too far behind)"),
                        );
                        last_done = last_done.max(sent);
                    }
                    continue;
                }
                let result = run_op(&api, &users, &op).await;
                let done = Instant::now();
                if schedule.is_warmup(i) {
                    continue;
                }
                let lateness = sent.saturating_duration_since(due);
                rec.record_lateness(lateness.as_micros() as u64);
                if lateness > Duration::from_millis(1) {
                    late += 1;
                }
                let second = due.saturating_duration_since(measure_start).as_secs() as usize;
                let micros = done.saturating_duration_since(due).as_micros() as u64;
                let err = result.as_ref().err().map(|e| e.0.as_str());
                rec.record(op.name(), micros, second, err);
                last_done = last_done.max(done);
                if let (Op::Post { user, text }, Ok(Some(id))) = (&op, &result) {
                    if let Ok(mut p) = posted.lock() {
                        p.push((*id, *user, done));
                    }
                    // One sampled post per `every`, claimed by whichever worker gets it.
                    let now_ms = done.saturating_duration_since(start).as_millis() as u64;
                    let prev = last_sample.load(Ordering::Relaxed);
                    if (prev == 0 || now_ms >= prev + every.as_millis() as u64)
                        && last_sample
                            .compare_exchange(
                                prev,
                                now_ms.max(1),
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                    {
                        let _ = sample_tx.send((*id, *user, done, search_word(text)));
                    }
                }
            }
            (rec, late, last_done)
        });
    }
    drop(sample_tx);

    // Lag sampling runs beside the workers.
    let sampler = {
        let (api, users, followers, lag) = (
            ctx.api.clone(),
            users.clone(),
            ctx.followers.clone(),
            lag.clone(),
        );
        let fresh = fresh.clone();
        let lag_opts = opts.lag.clone();
        let seed = opts.seed;
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x1a6);
            while let Some((id, author, acked, word)) = sample_rx.recv().await {
                if let Some(word) = word {
                    let (api, token, fresh, o) = (
                        api.clone(),
                        users[author].token.clone(),
                        fresh.clone(),
                        lag_opts.clone(),
                    );
                    // Search commits are batched, so a poll every 50 ms is fine enough.
                    let poll = o.poll.max(Duration::from_millis(50));
                    samplers.spawn(async move {
                        let found =
                            watch_search(&api, &token, &word, id, acked, poll, o.timeout).await;
                        if let Ok(mut f) = fresh.lock() {
                            match found {
                                Some(d) => record_ms(&mut f.0, d),
                                None => f.1 += 1,
                            }
                        }
                    });
                }
                let mut fs = followers[author].clone();
                if fs.is_empty() {
                    continue;
                }
                fs.shuffle(&mut rng);
                fs.truncate(lag_opts.followers.max(1));
                let tokens: Vec<String> = fs.iter().map(|&f| users[f].token.clone()).collect();
                let (api, lag, o) = (api.clone(), lag.clone(), lag_opts.clone());
                samplers.spawn(async move {
                    let seen = watch_home(&api, &tokens, id, acked, o.poll, o.timeout, 4).await;
                    if let Ok(mut l) = lag.lock() {
                        for s in seen {
                            match s {
                                Some(d) => record_ms(&mut l.0, d),
                                None => l.1 += 1,
                            }
                        }
                    }
                });
            }
            samplers.join_all().await;
        })
    };

    let mut recorder = Recorder::default();
    let mut late_sends = 0;
    let mut last_done = measure_start;
    while let Some(joined) = tasks.join_next().await {
        let (rec, late, done) = joined?;
        recorder.merge(&rec);
        late_sends += late;
        last_done = last_done.max(done);
    }
    sampler.await?;
    let measured = last_done.saturating_duration_since(measure_start);
    let completed: u64 = recorder.ops.values().map(|s| s.latency.len()).sum();
    let achieved_rate = completed as f64 / measured.as_secs_f64().max(1e-9);

    let lag_stream = if opts.stream_share > 0.0 {
        // Let the last events arrive, then close the sockets.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (handles, failed, first_error) = sockets;
        let acked: HashMap<u64, (usize, Instant)> = posted
            .lock()
            .map(|p| p.iter().map(|&(id, a, t)| (id, (a, t))).collect())
            .unwrap_or_default();
        let expected = acked
            .values()
            .map(|(author, _)| {
                ctx.followers[*author]
                    .iter()
                    .filter(|f| streaming.contains(f))
                    .count() as u64
            })
            .sum();
        let acked = acked.into_iter().map(|(id, (_, t))| (id, t)).collect();
        Some(stream_lag(
            handles,
            failed,
            first_error,
            &arrivals,
            &acked,
            expected,
        ))
    } else {
        None
    };

    let (lag_home, lag_home_missed) = lag
        .lock()
        .map(|l| (l.0.clone(), l.1))
        .unwrap_or_else(|_| (histogram(), 0));
    let (search_fresh, search_missed) = fresh
        .lock()
        .map(|l| (l.0.clone(), l.1))
        .unwrap_or_else(|_| (histogram(), 0));
    Ok(RunResult {
        target_rate: opts.rate,
        achieved_rate,
        measured,
        recorder,
        late_sends,
        lag_home,
        lag_home_missed,
        search_fresh,
        search_missed,
        lag_stream,
    })
}

#[derive(Clone, Debug)]
pub struct CelebrityOptions {
    /// Celebrity account (index into users).
    pub celebrity: usize,
    pub posts: u32,
    /// Pause between the celebrity's posts.
    pub interval: Duration,
    /// Followers watched (all of them when fewer).
    pub sample: usize,
    pub poll: Duration,
    pub timeout: Duration,
    pub concurrency: usize,
    pub streams: usize,
    pub seed: u64,
}

#[derive(Debug)]
pub struct CelebrityPost {
    pub id: u64,
    pub post_latency: Duration,
    /// Ack → the last sampled follower's home read showing it (`None`: some never did).
    pub all_seen: Option<Duration>,
    pub missed: usize,
}

#[derive(Debug)]
pub struct CelebrityResult {
    pub username: String,
    pub followers: usize,
    pub sampled: usize,
    pub posts: Vec<CelebrityPost>,
    /// Every sampled follower's lag over every post.
    pub lag_home: Histogram<u64>,
    pub lag_stream: Option<StreamLag>,
}

/// The celebrity posts `posts` times; after each post its sampled followers' home reads
/// are polled until all of them show it.
pub async fn run_celebrity(ctx: &Ctx, o: &CelebrityOptions) -> anyhow::Result<CelebrityResult> {
    let users = ctx.users.clone();
    let celeb = users
        .get(o.celebrity)
        .ok_or_else(|| anyhow::anyhow!("no user {} in the state", o.celebrity))?
        .clone();
    let mut fs = ctx.followers[o.celebrity].clone();
    let followers = fs.len();
    anyhow::ensure!(followers > 0, "{} has no followers", celeb.username);
    fs.shuffle(&mut StdRng::seed_from_u64(o.seed));
    fs.truncate(o.sample.max(1));
    let tokens: Vec<String> = fs.iter().map(|&f| users[f].token.clone()).collect();
    // A first read makes each sampled timeline active (a timeline that does not exist
    // yet is rebuilt on read, and fan-out then writes to it).
    futures::stream::iter(tokens.iter())
        .map(|t| ctx.api.home(t, 1))
        .buffer_unordered(o.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;

    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let streamers: Vec<usize> = fs.iter().copied().take(o.streams).collect();
    let (handles, failed, first_error) = if o.streams > 0 {
        open_streams(&ctx.api, &users, &streamers, &arrivals).await
    } else {
        (Vec::new(), 0, None)
    };

    let mut lag_home = histogram();
    let mut posts = Vec::new();
    let mut acked = HashMap::new();
    let names: Vec<String> = users.iter().map(|u| u.username.clone()).collect();
    let mut rng = StdRng::seed_from_u64(o.seed ^ 0xce1eb);
    for n in 0..o.posts {
        if n > 0 {
            tokio::time::sleep(o.interval).await;
        }
        let text = crate::workload::post_text(&mut rng, &names, 256);
        let sent = Instant::now();
        let id = ctx
            .api
            .post(&celeb.token, &text)
            .await
            .map_err(|e| anyhow::anyhow!("the celebrity's post failed: {e}"))?;
        let ack = Instant::now();
        acked.insert(id, ack);
        let seen = watch_home(&ctx.api, &tokens, id, ack, o.poll, o.timeout, o.concurrency).await;
        let missed = seen.iter().filter(|s| s.is_none()).count();
        for d in seen.iter().flatten() {
            record_ms(&mut lag_home, *d);
        }
        posts.push(CelebrityPost {
            id,
            post_latency: ack - sent,
            all_seen: if missed == 0 {
                seen.iter().flatten().max().copied()
            } else {
                None
            },
            missed,
        });
    }

    let lag_stream = if o.streams > 0 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let expected = handles.len() as u64 * u64::from(o.posts);
        Some(stream_lag(
            handles,
            failed,
            first_error,
            &arrivals,
            &acked,
            expected,
        ))
    } else {
        None
    };
    Ok(CelebrityResult {
        username: celeb.username,
        followers,
        sampled: tokens.len(),
        posts,
        lag_home,
        lag_stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_word_is_the_longest_plain_word() {
        let text = "@u1 @u22 http://example.org/abcdefghij abc Qx7zPq9 xyzw Kk2mm";
        assert_eq!(search_word(text).as_deref(), Some("Qx7zPq9"));
        assert_eq!(search_word("@someone http://example.org/x hi"), None);
    }
}
