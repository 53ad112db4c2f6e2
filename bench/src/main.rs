//! `starling-bench`: generate or import a social graph, seed a running Starling with it,
//! run workloads against it open-loop (with sweeps and ceilings), and write reports and
//! the results page. See `bench/README.md`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use starling_bench::ceilings::{self, Ceilings};
use starling_bench::charts;
use starling_bench::client::Api;
use starling_bench::closed::{self, ClosedOptions};
use starling_bench::graph::{GenParams, Graph};
use starling_bench::machine::Machine;
use starling_bench::procstat::{CpuWatch, Part, url_port};
use starling_bench::report::{CelebrityReport, ClosedReport, Report, RunReport, SweepReport};
use starling_bench::runner::{self, CelebrityOptions, Ctx, LagOptions, RunOptions};
use starling_bench::seed::{self, AdminImport, SeedOptions};
use starling_bench::state::State;
use starling_bench::sweep::{self, SweepOptions};
use starling_bench::workload::{Mix, Workload};

#[derive(Parser)]
#[command(
    name = "starling-bench",
    version,
    about = "Synthetic users against a running Starling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a graph (or read an edge list) and write it as `u v` lines.
    Graph {
        #[command(flatten)]
        graph: GraphArgs,
        /// Where the edge list goes.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create the graph's users, follows and posts on a server; save a state file.
    Seed(SeedArgs),
    /// Run a workload against a seeded server and write its report.
    Run(Box<RunArgs>),
    /// Give some seeded users lists of their followees (fan-out then writes list feeds too).
    Lists {
        /// The state file `seed` wrote.
        #[arg(long)]
        state: PathBuf,
        /// Share of users who own lists.
        #[arg(long, default_value_t = 0.2)]
        share: f64,
        /// Lists per owner.
        #[arg(long, default_value_t = 2)]
        per_user: usize,
        /// Most members per list (taken from the owner's followees).
        #[arg(long, default_value_t = 20)]
        members: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Put reports together into a results page.
    Page {
        /// `report.json` files written by `run`.
        #[arg(long = "report", required = true)]
        reports: Vec<PathBuf>,
        /// A file with the commands that produced the reports, included verbatim.
        #[arg(long)]
        commands: Option<PathBuf>,
        /// Free text placed under the title (what is and is not in this run).
        #[arg(long)]
        notes: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Clone)]
struct GraphArgs {
    /// Read this edge list (`u v` per line, u follows v) instead of generating.
    #[arg(long)]
    edges: Option<PathBuf>,
    /// Each line of the edge list is a follow both ways.
    #[arg(long)]
    undirected: bool,
    /// Users of a generated graph.
    #[arg(long, default_value_t = 1000)]
    users: u32,
    /// Exponent of the follower-count power law.
    #[arg(long, default_value_t = 2.0)]
    exponent: f64,
    #[arg(long, default_value_t = 1)]
    min_followers: u32,
    /// Most followers of an ordinary account (0: no limit but the user count).
    #[arg(long, default_value_t = 0)]
    max_followers: u32,
    /// Accounts 0..N are celebrities, each followed by --celebrity-followers users.
    #[arg(long, default_value_t = 0)]
    celebrities: u32,
    #[arg(long, default_value_t = 0)]
    celebrity_followers: u32,
    /// Chance that a follow is returned.
    #[arg(long, default_value_t = 0.0)]
    reciprocity: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl GraphArgs {
    fn load(&self) -> anyhow::Result<(Graph, String)> {
        if let Some(path) = &self.edges {
            let g = Graph::read_edge_file(path, self.undirected)?;
            let how = format!(
                "edge list {}{}",
                path.display(),
                if self.undirected { " (undirected)" } else { "" }
            );
            return Ok((g, how));
        }
        let p = GenParams {
            users: self.users,
            exponent: self.exponent,
            min_followers: self.min_followers,
            max_followers: if self.max_followers == 0 {
                self.users.saturating_sub(1)
            } else {
                self.max_followers
            },
            celebrities: self.celebrities,
            celebrity_followers: self.celebrity_followers,
            reciprocity: self.reciprocity,
            seed: self.seed,
        };
        let g = Graph::generate(&p)?;
        let how = format!(
            "generated: {} users, follower exponent {}, {} celebrit{} × {} followers, reciprocity {}, seed {}",
            p.users,
            p.exponent,
            p.celebrities,
            if p.celebrities == 1 { "y" } else { "ies" },
            p.celebrity_followers,
            p.reciprocity,
            p.seed
        );
        Ok((g, how))
    }
}

#[derive(Args)]
struct SeedArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    #[arg(long)]
    state: PathBuf,
    #[command(flatten)]
    graph: GraphArgs,
    /// Username prefix: node n becomes `{prefix}{n}`.
    #[arg(long, default_value = "u")]
    prefix: String,
    #[arg(long, default_value_t = 3)]
    posts_per_user: u32,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Create accounts and follows with `starling admin graph import` (large graphs).
    #[arg(long)]
    admin_import: bool,
    /// The `starling` binary for --admin-import.
    #[arg(long, default_value = "starling")]
    starling: PathBuf,
    /// `--config` for the admin import (the running server's config).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct RunArgs {
    #[arg(long)]
    state: PathBuf,
    /// Server base URL (default: the one in the state file).
    #[arg(long)]
    base: Option<String>,
    #[arg(long, value_enum)]
    workload: Workload,
    /// Name of this run in reports and file names.
    #[arg(long)]
    name: Option<String>,
    /// Directory for report.json, summary.md and the charts.
    #[arg(long)]
    out: PathBuf,
    /// Target rate (requests per second) of a single run.
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Step the rate up until p99 passes --p99-ms; report the highest rate that held.
    #[arg(long)]
    sweep: bool,
    #[arg(long, default_value_t = 250.0)]
    sweep_start: f64,
    #[arg(long, default_value_t = 1.5)]
    sweep_factor: f64,
    #[arg(long, default_value_t = 50_000.0)]
    sweep_max: f64,
    #[arg(long, default_value_t = 3)]
    sweep_refine: u32,
    #[arg(long, default_value_t = 10.0)]
    p99_ms: f64,
    /// Seconds of warm-up (sent, not recorded) before each measurement.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Open loop: requests in flight at most (a send due while all are busy waits, late).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Closed loop on N connections: each sends its next request as soon as the last is
    /// answered, for --warmup + --duration; reports the throughput as a share of
    /// `GET /health` closed loop on N connections in the same run. With --sweep both run
    /// (the sweep first); without, only the closed loop.
    #[arg(long, value_name = "N")]
    closed_loop: Option<usize>,
    /// The server's pid for the CPU split (default: whatever listens on the base URL's port).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Redis pids (default: whatever listens on the --redis URLs' ports).
    #[arg(long = "redis-pid")]
    redis_pids: Vec<u32>,
    /// NATS's pid (default: whatever listens on the --nats URL's port).
    #[arg(long)]
    nats_pid: Option<u32>,
    /// The server's NATS URL, to find NATS's pid for the CPU split.
    #[arg(long)]
    nats: Option<String>,
    /// Do not report the CPU split.
    #[arg(long)]
    no_cpu: bool,
    /// Request timeout, seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// `twitter`: reads per write.
    #[arg(long, default_value_t = 50.0)]
    read_per_write: f64,
    /// `twitter`: Zipf exponent of user activity.
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// Share of users holding a streaming socket during the run.
    #[arg(long, default_value_t = 0.0)]
    stream_share: f64,
    #[arg(long, default_value_t = 2000)]
    max_streams: usize,
    /// Fan-out lag sampling: at most one post per this many ms is watched.
    #[arg(long, default_value_t = 500)]
    lag_every_ms: u64,
    /// Followers watched per sampled post.
    #[arg(long, default_value_t = 4)]
    lag_followers: usize,
    #[arg(long, default_value_t = 10)]
    lag_poll_ms: u64,
    #[arg(long, default_value_t = 10)]
    lag_timeout_s: u64,
    /// `celebrity`: posts by the celebrity.
    #[arg(long, default_value_t = 5)]
    celebrity_posts: u32,
    /// `celebrity`: followers watched per post.
    #[arg(long, default_value_t = 200)]
    celebrity_sample: usize,
    /// `celebrity`: of the watched followers, how many also hold a streaming socket.
    #[arg(long, default_value_t = 0)]
    celebrity_streams: usize,
    /// Measure the ceilings (pipelined ZADD per Redis shard, HTTP /health) first.
    #[arg(long)]
    ceilings: bool,
    /// Redis shard URLs for the ZADD ceiling (the server's `redis.shards`); their ports
    /// also find Redis's pids for the CPU split.
    #[arg(long = "redis")]
    redis: Vec<String>,
    /// Seconds of each ceiling (and of the closed loop's `GET /health`).
    #[arg(long, default_value_t = 3.0)]
    ceiling_seconds: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Graph { graph, out } => {
                let (g, how) = graph.load()?;
                g.write_edge_file(&out)?;
                println!("{how}");
                println!("{}", serde_json::to_string_pretty(&g.summary())?);
                Ok(())
            }
            Command::Seed(args) => seed_cmd(args).await,
            Command::Run(args) => run_cmd(*args).await,
            Command::Lists {
                state,
                share,
                per_user,
                members,
                concurrency,
                seed,
            } => {
                let loaded = State::load(&state)?;
                let graph = loaded.load_graph(&state)?;
                let api = Api::new(&loaded.base_url, concurrency * 2, Duration::from_secs(60))?;
                wait_ready(&api).await?;
                let opts = seed::ListOptions {
                    share,
                    per_user,
                    members,
                    seed,
                    concurrency,
                };
                let made = seed::lists(&api, &graph, &loaded.users, &opts).await?;
                println!("made {made} lists");
                Ok(())
            }
            Command::Page {
                reports,
                commands,
                notes,
                out,
            } => page_cmd(&reports, commands.as_deref(), notes.as_deref(), &out),
        }
    })
}

async fn wait_ready(api: &Api) -> anyhow::Result<()> {
    for _ in 0..300 {
        if api.ready().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{} did not answer /ready within 30 s", api.base)
}

async fn seed_cmd(a: SeedArgs) -> anyhow::Result<()> {
    let (graph, how) = a.graph.load()?;
    let api = Api::new(&a.base, a.concurrency * 2, Duration::from_secs(60))?;
    wait_ready(&api).await?;
    eprintln!("seeding {how}");
    let state = seed::seed(
        &api,
        &graph,
        &SeedOptions {
            prefix: a.prefix,
            concurrency: a.concurrency,
            posts_per_user: a.posts_per_user,
            graph_source: how,
            state_path: a.state.clone(),
            admin: a.admin_import.then(|| AdminImport {
                starling: a.starling.clone(),
                config: a.config.clone(),
            }),
            seed: a.graph.seed,
            progress: !a.no_progress,
        },
    )
    .await?;
    eprintln!(
        "seeded {} users, {} follows; state in {}",
        state.users.len(),
        state.graph.edges,
        a.state.display()
    );
    Ok(())
}

fn settings_of(a: &RunArgs) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        s.insert(k.to_owned(), v);
    };
    put("warmup_s", a.warmup.to_string());
    put("duration_s", a.duration.to_string());
    put("connections", a.connections.to_string());
    if let Some(n) = a.closed_loop {
        put("closed_loop_connections", n.to_string());
    }
    put("seed", a.seed.to_string());
    match a.workload {
        Workload::Twitter => {
            put("read_per_write", a.read_per_write.to_string());
            put("zipf", a.zipf.to_string());
        }
        Workload::Celebrity => {
            put("celebrity_posts", a.celebrity_posts.to_string());
            put("celebrity_sample", a.celebrity_sample.to_string());
            put("celebrity_streams", a.celebrity_streams.to_string());
        }
        _ => {}
    }
    put("stream_share", a.stream_share.to_string());
    put("lag_every_ms", a.lag_every_ms.to_string());
    put("lag_followers", a.lag_followers.to_string());
    put("lag_poll_ms", a.lag_poll_ms.to_string());
    s
}

/// Whether `url`'s host is this machine (only then are its processes found by port).
fn is_local(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, r)| r)
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    ["127.", "localhost", "[::1]", "0.0.0.0"]
        .iter()
        .any(|l| host.starts_with(l))
}

/// The processes whose CPU time the run reports.
fn cpu_watch(a: &RunArgs, base: &str) -> CpuWatch {
    let find = |role: &str, given: &[u32], urls: &[&str]| {
        if given.is_empty() && urls.iter().any(|u| !is_local(u)) {
            return Part {
                role: role.into(),
                pids: Vec::new(),
                how: "not found (not on this machine)".into(),
            };
        }
        let ports: Vec<u16> = urls.iter().filter_map(|u| url_port(u)).collect();
        Part::find(role, given, &ports)
    };
    let redis: Vec<&str> = a.redis.iter().map(String::as_str).collect();
    let nats: Vec<&str> = a.nats.iter().map(String::as_str).collect();
    let parts = vec![
        find(
            "server",
            &a.server_pid.into_iter().collect::<Vec<_>>(),
            &[base],
        ),
        find("redis", &a.redis_pids, &redis),
        find("nats", &a.nats_pid.into_iter().collect::<Vec<_>>(), &nats),
        Part::this_process(),
    ];
    for p in &parts {
        eprintln!("cpu: {} {:?} ({})", p.role, p.pids, p.how);
    }
    CpuWatch::new(parts)
}

async fn measure_ceilings(a: &RunArgs, api: &Api) -> anyhow::Result<Ceilings> {
    let secs = Duration::from_secs_f64(a.ceiling_seconds);
    let (pipeline, conns) = (64, 2);
    let mut zadd = Vec::new();
    for url in &a.redis {
        eprintln!("ceiling: pipelined ZADD on {url}");
        let rate = ceilings::zadd_rate(url, secs, pipeline, conns).await?;
        zadd.push((url.clone(), rate));
    }
    eprintln!("ceiling: GET /health");
    let http_conns = 64;
    let http = ceilings::http_rate(api, secs, http_conns).await?;
    Ok(Ceilings {
        zadd_per_shard: zadd,
        zadd_pipeline: pipeline,
        zadd_connections: conns,
        http_health_rps: http,
        http_connections: http_conns,
    })
}

async fn run_cmd(a: RunArgs) -> anyhow::Result<()> {
    let state = State::load(&a.state)?;
    let graph = state.load_graph(&a.state)?;
    let base = a.base.clone().unwrap_or_else(|| state.base_url.clone());
    let api = Api::new(
        &base,
        a.connections + 64,
        Duration::from_secs_f64(a.timeout),
    )?;
    wait_ready(&api).await?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| a.workload.name().to_owned());
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let started = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let celebrity_node = state.celebrity;
    let node_index = state.node_index();
    let usernames: Vec<String> = state.users.iter().map(|u| u.username.clone()).collect();
    let ctx = Ctx::new(api.clone(), state.users.clone(), &graph);

    let cpu = (!a.no_cpu).then(|| cpu_watch(&a, &base));
    let ceilings = if a.ceilings {
        Some(measure_ceilings(&a, &api).await?)
    } else {
        None
    };

    let mut report = Report {
        name: name.clone(),
        workload: a.workload.name().into(),
        started_utc: started,
        base_url: base.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        graph_source: state.graph_source.clone(),
        graph: state.graph.clone(),
        seeded_by: state.seeded_by.clone(),
        settings: settings_of(&a),
        ceilings,
        sweep: None,
        run: None,
        celebrity: None,
        closed_loop: None,
        charts: Vec::new(),
    };

    if a.workload == Workload::Celebrity {
        let node = celebrity_node.context("the state names no celebrity")?;
        let celebrity = node_index
            .get(node as usize)
            .copied()
            .flatten()
            .context("the celebrity node has no account")?;
        let c = runner::run_celebrity(
            &ctx,
            &CelebrityOptions {
                celebrity,
                posts: a.celebrity_posts,
                interval: Duration::from_secs(2),
                sample: a.celebrity_sample,
                poll: Duration::from_millis(a.lag_poll_ms),
                timeout: Duration::from_secs(a.lag_timeout_s.max(30)),
                concurrency: 16,
                streams: a.celebrity_streams,
                seed: a.seed,
            },
        )
        .await?;
        report.celebrity = Some(CelebrityReport::of(&c));
    } else {
        let mix = Arc::new(Mix::new(
            a.workload,
            usernames,
            a.read_per_write,
            a.zipf,
            a.seed,
        )?);
        let opts = |rate: f64| RunOptions {
            rate,
            warmup: Duration::from_secs_f64(a.warmup),
            duration: Duration::from_secs_f64(a.duration),
            connections: a.connections,
            seed: a.seed,
            lag: LagOptions {
                every: Duration::from_millis(a.lag_every_ms),
                followers: a.lag_followers,
                poll: Duration::from_millis(a.lag_poll_ms),
                timeout: Duration::from_secs(a.lag_timeout_s),
            },
            stream_share: a.stream_share,
            max_streams: a.max_streams,
            cpu: cpu.clone(),
        };
        if a.sweep {
            let sweep_opts = SweepOptions {
                start: a.sweep_start,
                factor: a.sweep_factor,
                max_rate: a.sweep_max,
                p99_bound_ms: a.p99_ms,
                max_error_share: 0.01,
                min_achieved_share: 0.95,
                refine: a.sweep_refine,
            };
            let (steps, best) = sweep::sweep(&sweep_opts, |rate| {
                let (ctx, mix, o) = (&ctx, mix.clone(), opts(rate));
                async move {
                    let r = runner::run_mix(ctx, mix, &o).await?;
                    let rep = RunReport::of(&r);
                    eprintln!(
                        "  {:>8.0} req/s target: achieved {:>8.0}, p99 {:>8.2} ms, errors {:.2}%, late sends {:.1}%{}",
                        rate,
                        rep.achieved_rate,
                        rep.all.p99_ms,
                        rep.error_share * 100.0,
                        rep.late_send_share * 100.0,
                        rep.cpu
                            .as_ref()
                            .map(|c| format!("; {}", c.line()))
                            .unwrap_or_default()
                    );
                    // Let queues (fan-out backlog, sockets) drain before the next step.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Ok((rep.achieved_rate, rep.all.p99_ms, rep.error_share, rep))
                }
            })
            .await?;
            report.sweep = Some(SweepReport {
                p99_bound_ms: a.p99_ms,
                steps: steps.iter().map(|s| s.0.clone()).collect(),
                ops_p99_ms: steps
                    .iter()
                    .map(|s| {
                        s.1.ops
                            .iter()
                            .map(|o| (o.name.clone(), o.latency.p99_ms))
                            .collect()
                    })
                    .collect(),
                best_rate: best.map(|b| steps[b].0.target_rate),
                late_send_share: steps.iter().map(|s| s.1.late_send_share).collect(),
                cpu: steps.iter().map(|s| s.1.cpu.clone()).collect(),
            });
            // The best step's figures; when none held, the lowest rate tried shows why.
            let shown = best.or_else(|| {
                (0..steps.len())
                    .min_by(|&x, &y| steps[x].0.target_rate.total_cmp(&steps[y].0.target_rate))
            });
            report.run = shown.map(|b| steps[b].1.clone());
        } else if a.closed_loop.is_none() {
            // Fan-out's timeline inserts over the run (warm-up included), from the
            // server's own counter, beside the pipelined-ZADD ceiling of the same run.
            const INSERTS: &str = "starling_fanout_inserts_total";
            let before = api.metric(INSERTS).await;
            let started = std::time::Instant::now();
            let r = runner::run_mix(&ctx, mix.clone(), &opts(a.rate)).await?;
            report.run = Some(RunReport::of(&r));
            if let (Some(b), Some(c)) = (before, api.metric(INSERTS).await) {
                let rate = (c - b).max(0.0) / started.elapsed().as_secs_f64().max(1e-9);
                let ceiling: f64 = report
                    .ceilings
                    .as_ref()
                    .map_or(0.0, |c| c.zadd_per_shard.iter().map(|(_, r)| r).sum());
                let share = if ceiling > 0.0 {
                    format!(
                        " ({:.1}% of the ZADD ceiling, {ceiling:.0}/s)",
                        rate / ceiling * 100.0
                    )
                } else {
                    String::new()
                };
                eprintln!("fan-out: {rate:.0} timeline inserts/s over the run{share}");
                report
                    .settings
                    .insert("fanout_inserts_per_sec".into(), format!("{rate:.0}"));
            }
        }
        if let Some(n) = a.closed_loop {
            let secs = Duration::from_secs_f64(a.ceiling_seconds);
            eprintln!("closed loop: GET /health on {n} connections");
            let (health, health_cpu) = closed::health_ceiling(&api, n, secs, cpu.as_ref()).await?;
            eprintln!("closed loop: {} on {n} connections", a.workload.name());
            let r = closed::run_closed(
                &ctx,
                mix.clone(),
                &ClosedOptions {
                    connections: n,
                    warmup: Duration::from_secs_f64(a.warmup),
                    duration: Duration::from_secs_f64(a.duration),
                    seed: a.seed,
                    cpu: cpu.clone(),
                },
            )
            .await?;
            let rep = ClosedReport::of(&r, health, health_cpu);
            eprintln!(
                "  closed loop: {:.0} req/s ({:.1}% of /health {:.0} req/s), p99 {:.2} ms, errors {:.2}%{}",
                rep.throughput_rps,
                rep.share_of_health * 100.0,
                rep.health_rps,
                rep.all.p99_ms,
                rep.error_share * 100.0,
                rep.cpu
                    .as_ref()
                    .map(|c| format!("; {}", c.line()))
                    .unwrap_or_default()
            );
            report.closed_loop = Some(rep);
        }
    }

    write_outputs(&mut report, &a.out)?;
    print!("{}", report.markdown(&report.charts));
    Ok(())
}

fn write_outputs(report: &mut Report, out: &Path) -> anyhow::Result<()> {
    let slug: String = report
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut charts = Vec::new();
    let mut write = |title: String, file: String, svg: String| -> anyhow::Result<()> {
        std::fs::write(out.join(&file), svg).with_context(|| format!("writing {file}"))?;
        charts.push((title, file));
        Ok(())
    };
    if let Some(r) = &report.run {
        let ops: Vec<_> = r
            .ops
            .iter()
            .map(|o| (o.name.clone(), o.latency.clone()))
            .collect();
        let title = format!("{}: latency at {:.0} req/s", report.name, r.target_rate);
        write(
            title.clone(),
            format!("{slug}-latency.svg"),
            charts::latency_percentiles(&title, &ops)?,
        )?;
        let per_second: Vec<_> = r
            .ops
            .iter()
            .map(|o| (o.name.clone(), o.per_second.clone()))
            .collect();
        let title = format!("{}: throughput at {:.0} req/s", report.name, r.target_rate);
        write(
            title.clone(),
            format!("{slug}-throughput.svg"),
            charts::throughput(&title, &per_second)?,
        )?;
        let mut cdfs = vec![("home reads".to_owned(), r.fanout_lag_home.cdf.clone())];
        if let Some(s) = &r.fanout_lag_stream {
            cdfs.push(("streaming".to_owned(), s.lag.cdf.clone()));
        }
        cdfs.push((
            "search freshness".to_owned(),
            r.search_freshness.cdf.clone(),
        ));
        let title = format!("{}: fan-out lag and search freshness CDF", report.name);
        write(
            title.clone(),
            format!("{slug}-lag.svg"),
            charts::lag_cdf(&title, &cdfs)?,
        )?;
    }
    if let Some(c) = &report.celebrity {
        let mut cdfs = vec![("home reads".to_owned(), c.lag_home.cdf.clone())];
        if let Some(s) = &c.lag_stream {
            cdfs.push(("streaming".to_owned(), s.lag.cdf.clone()));
        }
        let title = format!(
            "{}: lag to {} sampled of {} followers",
            report.name, c.sampled, c.followers
        );
        write(
            title.clone(),
            format!("{slug}-lag.svg"),
            charts::lag_cdf(&title, &cdfs)?,
        )?;
    }
    report.charts = charts;
    let json = serde_json::to_vec_pretty(&report).context("encoding the report")?;
    std::fs::write(out.join("report.json"), json).context("writing report.json")?;
    std::fs::write(out.join("summary.md"), report.markdown(&report.charts))
        .context("writing summary.md")?;
    Ok(())
}

/// `to` relative to directory `from` when it lies under it; otherwise `to` as it is.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to_abs) = (abs(from), abs(to));
    to_abs
        .strip_prefix(&from)
        .map(Path::to_path_buf)
        .unwrap_or(to_abs)
}

fn page_cmd(
    reports: &[PathBuf],
    commands: Option<&Path>,
    notes: Option<&Path>,
    out: &Path,
) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let page_dir = out.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut md = String::new();
    let machine = Machine::describe();
    let _ = writeln!(md, "# Starling benchmark results\n");
    let _ = writeln!(
        md,
        "Generated by `starling-bench` on {} against `starling serve` (all roles, embedded \
         store) on this machine: **{}**. Every part runs on the same cores: Redis, NATS, the \
         server and the load generator.\n",
        time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        machine.line()
    );
    let _ = writeln!(
        md,
        "Latency is measured from each request's intended send time (open loop at the \
         target rate), so a stalled server cannot hide its queue; warm-up is excluded. Fan-out \
         lag is the time from the post's acknowledgement to the first home read (or \
         streaming event) of a follower that shows it; home-read lag is an upper bound within \
         one poll interval.\n"
    );
    if let Some(n) = notes {
        let text =
            std::fs::read_to_string(n).with_context(|| format!("reading {}", n.display()))?;
        let _ = writeln!(md, "{}\n", text.trim_end());
    }
    let mut loaded = Vec::new();
    for r in reports {
        let text = std::fs::read(r).with_context(|| format!("reading {}", r.display()))?;
        let rep: Report =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", r.display()))?;
        loaded.push((r.clone(), rep));
    }
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(
        md,
        "| run | workload | users | highest rate with p99 ≤ bound | p99 there | late sends there | CPU there (server / Redis / NATS / harness cores) | server µs/req | fan-out lag p50 / p99 | closed loop: req/s, share of `/health` |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---|---:|---:|---:|");
    for (_, rep) in &loaded {
        let rate = rep
            .sweep
            .as_ref()
            .map(|s| {
                s.best_rate
                    .map(|r| format!("{r:.0} req/s (p99 ≤ {} ms)", s.p99_bound_ms))
                    .unwrap_or_else(|| "none held".into())
            })
            .or_else(|| {
                rep.run
                    .as_ref()
                    .map(|r| format!("fixed {:.0} req/s", r.target_rate))
            })
            .unwrap_or_else(|| "-".into());
        let held = rep.sweep.as_ref().is_none_or(|s| s.best_rate.is_some());
        let p99 = rep
            .run
            .as_ref()
            .filter(|_| held)
            .map(|r| format!("{:.2} ms", r.all.p99_ms))
            .unwrap_or_else(|| "-".into());
        let lag = rep
            .run
            .as_ref()
            .map(|r| &r.fanout_lag_home)
            .or(rep.celebrity.as_ref().map(|c| &c.lag_home))
            .filter(|l| l.latency.count > 0)
            .map(|l| format!("{:.1} / {:.1} ms", l.latency.p50_ms, l.latency.p99_ms))
            .unwrap_or_else(|| "-".into());
        let late = rep
            .run
            .as_ref()
            .map(|r| format!("{:.1}%", r.late_send_share * 100.0))
            .unwrap_or_else(|| "-".into());
        let cpu = rep.run.as_ref().and_then(|r| r.cpu.as_ref());
        let split = cpu
            .map(|c| {
                ["server", "redis", "nats", "harness"]
                    .iter()
                    .map(|role| {
                        c.cores_of(role)
                            .map(|v| format!("{v:.2}"))
                            .unwrap_or_else(|| "?".into())
                    })
                    .collect::<Vec<_>>()
                    .join(" / ")
            })
            .unwrap_or_else(|| "-".into());
        let per = cpu
            .and_then(|c| c.server_us_per_request)
            .map(|v| format!("{v:.0}"))
            .unwrap_or_else(|| "-".into());
        let closed = rep
            .closed_loop
            .as_ref()
            .map(|c| {
                format!(
                    "{:.0} ({} conns), {:.1}%",
                    c.throughput_rps,
                    c.connections,
                    c.share_of_health * 100.0
                )
            })
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            rep.name, rep.workload, rep.graph.users, rate, p99, late, split, per, lag, closed
        );
    }
    let _ = writeln!(md, "\n## Runs\n");
    for (path, rep) in &loaded {
        let dir = relative(&page_dir, path.parent().unwrap_or(Path::new(".")));
        let charts: Vec<(String, String)> = rep
            .charts
            .iter()
            .map(|(t, f)| (t.clone(), dir.join(f).display().to_string()))
            .collect();
        md.push_str(&rep.markdown(&charts));
        let _ = writeln!(
            md,
            "Full figures: [`{}`]({}).\n",
            dir.join("report.json").display(),
            dir.join("report.json").display()
        );
    }
    if let Some(c) = commands {
        let text =
            std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?;
        let _ = writeln!(md, "## Exact commands\n\n```sh\n{}\n```", text.trim_end());
    }
    std::fs::write(out, md).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
