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
use crate::procstat::{CpuReport, CpuWatch};
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
    /// Whose CPU time to report over the measured window.
    pub cpu: Option<CpuWatch>,
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
    /// The CPU split over the measured window, when asked for.
    pub cpu: Option<CpuReport>,
}

/// Sends more than this after their due time count as late.
pub const LATE: Duration = Duration::from_millis(1);

/// How late operations were sent: the share over [`LATE`] and the distribution.
#[derive(Clone, Debug)]
pub struct SendTally {
    pub sent: u64,
    pub late: u64,
    /// Microseconds from due to sent.
    pub lateness: Histogram<u64>,
}

impl Default for SendTally {
    fn default() -> Self {
        SendTally {
            sent: 0,
            late: 0,
            lateness: histogram(),
        }
    }
}

impl SendTally {
    pub fn record(&mut self, due: Instant, sent: Instant) {
        let lateness = sent.saturating_duration_since(due);
        self.sent += 1;
        if lateness > LATE {
            self.late += 1;
        }
        record_ms(&mut self.lateness, lateness);
    }

    pub fn late_share(&self) -> f64 {
        self.late as f64 / self.sent.max(1) as f64
    }
}

/// Start the pacing thread: it calls `launch(i, due)` for every operation of `schedule`
/// at its due time (`start + due(i)`), or at once for one already due.
///
/// A dedicated OS thread sleeping with `nanosleep` wakes within tens of microseconds of
/// the due time. Sleeping in the async runtime instead (`tokio::time::sleep_until` in each
/// worker, as the harness first did) rounds every deadline up to the timer wheel's next
/// millisecond and then waits for a runtime thread the server's load competes for, so half
/// of all sends were over a millisecond late at a few hundred requests per second.
pub fn spawn_pacer<F>(
    schedule: Schedule,
    start: Instant,
    mut launch: F,
) -> anyhow::Result<std::thread::JoinHandle<()>>
where
    F: FnMut(u64, Instant) + Send + 'static,
{
    std::thread::Builder::new()
        .name("bench-pacer".into())
        .spawn(move || {
            for i in 0..schedule.total {
                let due = start + schedule.due(i);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                launch(i, due);
            }
        })
        .map_err(|e| anyhow::anyhow!("starting the pacing thread: {e}"))
}

/// What the send tasks of one open-loop run share.
struct Shared {
    api: Api,
    users: Arc<Vec<User>>,
    mix: Arc<Mix>,
    posted: Arc<Mutex<Vec<(u64, usize, Instant)>>>,
    last_sample: AtomicU64,
    every: Duration,
    sample_tx: tokio::sync::mpsc::UnboundedSender<(u64, usize, Instant, Option<String>)>,
    out_tx: tokio::sync::mpsc::UnboundedSender<Outcome>,
    /// At most this many requests in flight (`--connections`).
    permits: tokio::sync::Semaphore,
    schedule: Schedule,
    start: Instant,
    give_up_at: Instant,
    seed: u64,
}

/// One operation's fate.
struct Outcome {
    op: &'static str,
    warmup: bool,
    due: Instant,
    sent: Instant,
    /// `None`: abandoned unsent (the server was too far behind).
    done: Option<Instant>,
    error: Option<String>,
}

fn rec_latency(
    rec: &mut Recorder,
    op: &str,
    due: Instant,
    done: Instant,
    second: usize,
    error: Option<&str>,
) {
    let micros = done.saturating_duration_since(due).as_micros() as u64;
    rec.record(op, micros, second, error);
}

/// Operation `i`, due at `due`: drawn from the mix with its own seeded generator (so a
/// run's operations do not depend on which task sends them), sent as soon as a connection
/// slot is free, and its outcome reported.
async fn send_one(s: Arc<Shared>, i: u64, due: Instant) {
    let _permit = s.permits.acquire().await.ok();
    let sent = Instant::now();
    let mut rng = StdRng::seed_from_u64(s.seed.wrapping_mul(1_000_003) ^ i);
    let op = s.mix.next(&mut rng);
    let warmup = s.schedule.is_warmup(i);
    let mut out = Outcome {
        op: op.name(),
        warmup,
        due,
        sent,
        done: None,
        error: None,
    };
    if sent > s.give_up_at {
        let _ = s.out_tx.send(out);
        return;
    }
    let result = run_op(&s.api, &s.users, &op).await;
    let done = Instant::now();
    out.done = Some(done);
    out.error = result.as_ref().err().map(|e| e.0.clone());
    if !warmup && let (Op::Post { user, text }, Ok(Some(id))) = (&op, &result) {
        if let Ok(mut p) = s.posted.lock() {
            p.push((*id, *user, done));
        }
        // One sampled post per `every`, claimed by whichever task gets it.
        let now_ms = done.saturating_duration_since(s.start).as_millis() as u64;
        let prev = s.last_sample.load(Ordering::Relaxed);
        if (prev == 0 || now_ms >= prev + s.every.as_millis() as u64)
            && s.last_sample
                .compare_exchange(prev, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let _ = s.sample_tx.send((*id, *user, done, search_word(text)));
        }
    }
    let _ = s.out_tx.send(out);
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
    let lag = Arc::new(Mutex::new((histogram(), 0u64)));
    let fresh = Arc::new(Mutex::new((histogram(), 0u64)));
    let mut samplers = tokio::task::JoinSet::new();
    let (sample_tx, mut sample_rx) =
        tokio::sync::mpsc::unbounded_channel::<(u64, usize, Instant, Option<String>)>();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Outcome>();

    // A run may overrun its schedule by its own length (at least 10 s), no more.
    let give_up_at = measure_start + opts.duration + opts.duration.max(Duration::from_secs(10));
    let shared = Arc::new(Shared {
        api: ctx.api.clone(),
        users: users.clone(),
        mix,
        posted: posted.clone(),
        last_sample: AtomicU64::new(0),
        every: opts.lag.every,
        sample_tx,
        out_tx,
        permits: tokio::sync::Semaphore::new(opts.connections.max(1)),
        schedule,
        start,
        give_up_at,
        seed: opts.seed,
    });
    // The CPU split is read over the measured window: from its start to the last answer.
    let cpu_from = opts.cpu.clone().map(|watch| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_start.into()).await;
            let from = watch.snapshot();
            (watch, from)
        })
    });
    let runtime = tokio::runtime::Handle::current();
    let pacer = {
        let shared = shared.clone();
        spawn_pacer(schedule, start, move |i, due| {
            runtime.spawn(send_one(shared.clone(), i, due));
        })?
    };
    drop(shared);

    // Lag sampling runs beside the sends.
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

    // Every operation's outcome, until the last send task is done.
    let mut recorder = Recorder::default();
    let mut sends = SendTally::default();
    let mut last_done = measure_start;
    while let Some(o) = out_rx.recv().await {
        if o.warmup {
            continue;
        }
        let second = o.due.saturating_duration_since(measure_start).as_secs() as usize;
        match o.done {
            Some(done) => {
                sends.record(o.due, o.sent);
                rec_latency(&mut recorder, o.op, o.due, done, second, o.error.as_deref());
                last_done = last_done.max(done);
            }
            None => {
                // Abandoned: counted, unsent, as failed at its lateness when given up.
                rec_latency(
                    &mut recorder,
                    o.op,
                    o.due,
                    o.sent,
                    second,
                    Some("abandoned (server too far behind)"),
                );
                last_done = last_done.max(o.sent);
            }
        }
    }
    let completed: u64 = recorder.ops.values().map(|s| s.latency.len()).sum();
    let cpu = match cpu_from {
        Some(h) => {
            let (watch, from) = h.await?;
            Some(watch.report(&from, &watch.snapshot(), completed))
        }
        None => None,
    };
    tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the pacing thread panicked"))?;
    recorder.send_lateness = Some(sends.lateness.clone());
    let late_sends = sends.late;
    sampler.await?;
    let measured = last_done.saturating_duration_since(measure_start);
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
        cpu,
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
    fn late_sends_are_those_over_a_millisecond_behind() {
        let t0 = Instant::now();
        let mut t = SendTally::default();
        t.record(t0, t0);
        t.record(t0, t0 + Duration::from_micros(1_000));
        t.record(t0, t0 + Duration::from_micros(1_001));
        t.record(t0 + Duration::from_secs(1), t0); // early (cannot happen): on time
        t.record(t0, t0 + Duration::from_millis(30));
        assert_eq!((t.sent, t.late), (5, 2));
        assert!((t.late_share() - 0.4).abs() < 1e-12);
        assert_eq!(t.lateness.len(), 5);
        assert!(t.lateness.max() >= 29_900);
        assert_eq!(SendTally::default().late_share(), 0.0);
    }

    /// The pacing thread launches every operation into a multi-threaded runtime like the
    /// harness's, typically a tenth of a millisecond after its due time. (Per-task tokio
    /// sleeps, the first design, have a median near 1 ms: the timer rounds deadlines up to
    /// the next millisecond. How many sends pass 1 ms depends on the machine's load: with
    /// 14 runnable threads on 2 cores, 11-31% for the pacer, 37-47% for tokio sleeps.)
    #[test]
    fn the_pacer_keeps_time() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let schedule = Schedule::new(2000.0, Duration::ZERO, Duration::from_millis(1000)).unwrap();
        let tally = Arc::new(Mutex::new((SendTally::default(), Vec::new())));
        let (handle, t) = (rt.handle().clone(), tally.clone());
        let pacer = spawn_pacer(
            schedule,
            Instant::now() + Duration::from_millis(5),
            move |i, due| {
                let t = t.clone();
                handle.spawn(async move {
                    let started = Instant::now();
                    let mut t = t.lock().unwrap();
                    t.0.record(due, started);
                    t.1.push(i);
                });
            },
        )
        .unwrap();
        pacer.join().unwrap();
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        let t = tally.lock().unwrap();
        assert_eq!(t.0.sent, 2000);
        let mut order = t.1.clone();
        order.sort_unstable();
        assert_eq!(order, (0..2000).collect::<Vec<_>>());
        let median = t.0.lateness.value_at_quantile(0.5);
        assert!(median < 500, "median lateness {median} µs");
    }

    #[test]
    fn search_word_is_the_longest_plain_word() {
        let text = "@u1 @u22 http://example.org/abcdefghij abc Qx7zPq9 xyzw Kk2mm";
        assert_eq!(search_word(text).as_deref(), Some("Qx7zPq9"));
        assert_eq!(search_word("@someone http://example.org/x hi"), None);
    }
}
