//! The report of one `starling-bench run`: every figure as JSON, a Markdown summary, and
//! the results page that puts several reports together with the machine and commands.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::ceilings::Ceilings;
use crate::closed::ClosedResult;
use crate::graph::GraphSummary;
use crate::procstat::CpuReport;
use crate::runner::{CelebrityResult, RunResult, StreamLag};
use crate::stats::{Latency, cdf};
use crate::sweep::Step;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpReport {
    pub name: String,
    pub latency: Latency,
    pub errors: BTreeMap<String, u64>,
    /// Completions in each second of the measurement window.
    pub per_second: Vec<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LagReport {
    pub latency: Latency,
    /// Followers (or deliveries) that never showed the post within the timeout.
    pub missed: u64,
    pub cdf: Vec<(f64, f64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StreamReport {
    pub sockets: usize,
    pub failed_sockets: usize,
    pub first_error: Option<String>,
    pub expected: u64,
    pub delivered: u64,
    pub lag: LagReport,
}

impl StreamReport {
    fn of(s: &StreamLag) -> StreamReport {
        StreamReport {
            sockets: s.sockets,
            failed_sockets: s.failed,
            first_error: s.first_error.clone(),
            expected: s.expected,
            delivered: s.delivered,
            lag: LagReport {
                latency: Latency::of(&s.lag),
                missed: s.expected.saturating_sub(s.delivered),
                cdf: cdf(&s.lag),
            },
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub measured_s: f64,
    pub all: Latency,
    pub error_share: f64,
    pub ops: Vec<OpReport>,
    /// Share of operations sent over 1 ms after their due time: above a few percent the
    /// client (not enough connections, or not enough CPU) limited the run.
    pub late_send_share: f64,
    pub send_lateness_p99_ms: f64,
    pub fanout_lag_home: LagReport,
    /// Post acknowledged → found by `/api/v2/search` (absent from older reports).
    #[serde(default)]
    pub search_freshness: LagReport,
    pub fanout_lag_stream: Option<StreamReport>,
    /// CPU used by the server, Redis, NATS and the harness over the measured window.
    #[serde(default)]
    pub cpu: Option<CpuReport>,
}

impl RunReport {
    pub fn of(r: &RunResult) -> RunReport {
        let all = r.recorder.all_latency();
        let total = all.len().max(1) as f64;
        let errors: u64 = r.recorder.ops.values().map(|s| s.error_count()).sum();
        RunReport {
            target_rate: r.target_rate,
            achieved_rate: r.achieved_rate,
            measured_s: r.measured.as_secs_f64(),
            all: Latency::of(&all),
            error_share: errors as f64 / total,
            ops: r
                .recorder
                .ops
                .iter()
                .map(|(name, s)| OpReport {
                    name: name.clone(),
                    latency: Latency::of(&s.latency),
                    errors: s.errors.clone(),
                    per_second: s.per_second.clone(),
                })
                .collect(),
            late_send_share: r.late_sends as f64 / total,
            send_lateness_p99_ms: r
                .recorder
                .send_lateness
                .as_ref()
                .map_or(0.0, |h| h.value_at_quantile(0.99) as f64 / 1000.0),
            fanout_lag_home: LagReport {
                latency: Latency::of(&r.lag_home),
                missed: r.lag_home_missed,
                cdf: cdf(&r.lag_home),
            },
            search_freshness: LagReport {
                latency: Latency::of(&r.search_fresh),
                missed: r.search_missed,
                cdf: cdf(&r.search_fresh),
            },
            fanout_lag_stream: r.lag_stream.as_ref().map(StreamReport::of),
            cpu: r.cpu.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CelebrityPostReport {
    pub id: String,
    pub post_ms: f64,
    /// Ack → every sampled follower's home read showed it; `None` if some never did.
    pub all_seen_ms: Option<f64>,
    pub missed: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CelebrityReport {
    pub username: String,
    pub followers: usize,
    pub sampled: usize,
    pub posts: Vec<CelebrityPostReport>,
    pub lag_home: LagReport,
    pub lag_stream: Option<StreamReport>,
}

impl CelebrityReport {
    pub fn of(c: &CelebrityResult) -> CelebrityReport {
        CelebrityReport {
            username: c.username.clone(),
            followers: c.followers,
            sampled: c.sampled,
            posts: c
                .posts
                .iter()
                .map(|p| CelebrityPostReport {
                    id: p.id.to_string(),
                    post_ms: p.post_latency.as_secs_f64() * 1000.0,
                    all_seen_ms: p.all_seen.map(|d| d.as_secs_f64() * 1000.0),
                    missed: p.missed,
                })
                .collect(),
            lag_home: LagReport {
                latency: Latency::of(&c.lag_home),
                missed: c.posts.iter().map(|p| p.missed as u64).sum(),
                cdf: cdf(&c.lag_home),
            },
            lag_stream: c.lag_stream.as_ref().map(StreamReport::of),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepReport {
    pub p99_bound_ms: f64,
    pub steps: Vec<Step>,
    /// p99 (ms) of each operation at each step, in the order of `steps`.
    pub ops_p99_ms: Vec<BTreeMap<String, f64>>,
    /// The highest target rate that held, if any did.
    pub best_rate: Option<f64>,
    /// Share of sends over 1 ms late at each step (absent from older reports).
    #[serde(default)]
    pub late_send_share: Vec<f64>,
    /// The CPU split at each step.
    #[serde(default)]
    pub cpu: Vec<Option<CpuReport>>,
}

/// The closed-loop run: the most the server answered, beside the `/health` ceiling.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClosedReport {
    pub connections: usize,
    pub measured_s: f64,
    pub throughput_rps: f64,
    pub all: Latency,
    pub error_share: f64,
    pub ops: Vec<OpReport>,
    pub cpu: Option<CpuReport>,
    /// Closed-loop `GET /health` on as many connections, in the same run.
    pub health_rps: f64,
    pub health_cpu: Option<CpuReport>,
    /// `throughput_rps / health_rps`.
    pub share_of_health: f64,
}

impl ClosedReport {
    pub fn of(r: &ClosedResult, health_rps: f64, health_cpu: Option<CpuReport>) -> ClosedReport {
        let all = r.recorder.all_latency();
        let errors: u64 = r.recorder.ops.values().map(|s| s.error_count()).sum();
        ClosedReport {
            connections: r.connections,
            measured_s: r.measured.as_secs_f64(),
            throughput_rps: r.throughput,
            all: Latency::of(&all),
            error_share: errors as f64 / all.len().max(1) as f64,
            ops: r
                .recorder
                .ops
                .iter()
                .map(|(name, s)| OpReport {
                    name: name.clone(),
                    latency: Latency::of(&s.latency),
                    errors: s.errors.clone(),
                    per_second: s.per_second.clone(),
                })
                .collect(),
            cpu: r.cpu.clone(),
            health_rps,
            health_cpu,
            share_of_health: if health_rps > 0.0 {
                r.throughput / health_rps
            } else {
                0.0
            },
        }
    }
}

fn cores(c: Option<&CpuReport>, role: &str) -> String {
    c.and_then(|c| c.cores_of(role))
        .map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "-".into())
}

fn per_request(c: Option<&CpuReport>) -> String {
    c.and_then(|c| c.server_us_per_request)
        .map(|v| format!("{v:.0}"))
        .unwrap_or_else(|| "-".into())
}

fn op_table(md: &mut String, ops: &[OpReport], all: &Latency) {
    let _ = writeln!(
        md,
        "| operation | count | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|");
    let all = OpReport {
        name: "**all**".into(),
        latency: all.clone(),
        errors: BTreeMap::new(),
        per_second: Vec::new(),
    };
    for op in ops.iter().chain(std::iter::once(&all)) {
        let errors = if op.errors.is_empty() {
            "-".to_owned()
        } else {
            op.errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let l = &op.latency;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            op.name,
            l.count,
            ms(l.p50_ms),
            ms(l.p90_ms),
            ms(l.p99_ms),
            ms(l.p999_ms),
            ms(l.max_ms),
            errors
        );
    }
}

/// Everything one invocation of `starling-bench run` measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub name: String,
    pub workload: String,
    pub started_utc: String,
    pub base_url: String,
    pub command: String,
    pub graph_source: String,
    pub graph: GraphSummary,
    pub seeded_by: String,
    pub settings: BTreeMap<String, String>,
    pub ceilings: Option<Ceilings>,
    pub sweep: Option<SweepReport>,
    /// The run at the fixed rate, or the sweep's best step (its lowest step when none held).
    pub run: Option<RunReport>,
    pub celebrity: Option<CelebrityReport>,
    /// The closed-loop run (`--closed-loop N`).
    #[serde(default)]
    pub closed_loop: Option<ClosedReport>,
    /// `(title, file name)` of the charts written beside the report.
    pub charts: Vec<(String, String)>,
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn lag_line(l: &LagReport) -> String {
    if l.latency.count == 0 {
        format!("no samples ({} missed)", l.missed)
    } else {
        format!(
            "p50 {} ms, p99 {} ms, max {} ms over {} samples ({} missed)",
            ms(l.latency.p50_ms),
            ms(l.latency.p99_ms),
            ms(l.latency.max_ms),
            l.latency.count,
            l.missed
        )
    }
}

fn stream_line(s: &StreamReport) -> String {
    if s.sockets == 0 {
        format!(
            "no socket opened ({} failed: {})",
            s.failed_sockets,
            s.first_error.as_deref().unwrap_or("?")
        )
    } else {
        format!(
            "{} sockets, {}/{} updates delivered; {}",
            s.sockets,
            s.delivered,
            s.expected,
            lag_line(&s.lag)
        )
    }
}

impl Report {
    /// The Markdown section of this report; `charts` names the chart files beside it.
    pub fn markdown(&self, charts: &[(String, String)]) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "### {} (`{}`)\n", self.name, self.workload);
        let _ = writeln!(
            md,
            "Graph: {} — {} users, {} follows, mean {:.1} / max {} followers, reciprocity {:.2}{}; seeded by {}.\n",
            self.graph_source,
            self.graph.users,
            self.graph.edges,
            self.graph.mean_followers,
            self.graph.max_followers,
            self.graph.reciprocity,
            self.graph
                .exponent_estimate
                .map(|e| format!(", follower exponent ≈ {e:.2}"))
                .unwrap_or_default(),
            self.seeded_by
        );
        if let Some(s) = &self.sweep {
            let _ = writeln!(
                md,
                "Sweep (p99 ≤ {} ms, errors ≤ 1%, achieved ≥ 95% of target):\n",
                s.p99_bound_ms
            );
            let _ = writeln!(
                md,
                "| target req/s | achieved req/s | p99 ms | p99 by operation, ms | errors | late sends | held | server cores | server µs/req | Redis cores | NATS cores | harness cores |"
            );
            let _ = writeln!(
                md,
                "|---:|---:|---:|---|---:|---:|:---:|---:|---:|---:|---:|---:|"
            );
            for (i, st) in s.steps.iter().enumerate() {
                let by_op = s
                    .ops_p99_ms
                    .get(i)
                    .map(|m| {
                        m.iter()
                            .map(|(op, v)| format!("{op} {}", ms(*v)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                let late = s
                    .late_send_share
                    .get(i)
                    .map(|l| format!("{:.1}%", l * 100.0))
                    .unwrap_or_else(|| "-".into());
                let cpu = s.cpu.get(i).and_then(Option::as_ref);
                let _ = writeln!(
                    md,
                    "| {:.0} | {:.0} | {} | {} | {:.2}% | {} | {} | {} | {} | {} | {} | {} |",
                    st.target_rate,
                    st.achieved_rate,
                    ms(st.p99_ms),
                    by_op,
                    st.error_share * 100.0,
                    late,
                    if st.held { "yes" } else { "no" },
                    cores(cpu, "server"),
                    per_request(cpu),
                    cores(cpu, "redis"),
                    cores(cpu, "nats"),
                    cores(cpu, "harness"),
                );
            }
            let _ = writeln!(
                md,
                "\n**Highest rate that held: {}**\n",
                s.best_rate
                    .map(|r| format!("{r:.0} req/s"))
                    .unwrap_or_else(|| "none (even the first step failed)".into())
            );
        }
        if let Some(r) = &self.run {
            let label = match &self.sweep {
                Some(s) if s.best_rate.is_some() => "At that rate",
                Some(_) => "At the lowest rate tried (it did not hold)",
                None => "Run",
            };
            let _ = writeln!(
                md,
                "{label}: target {:.0} req/s, achieved {:.0} req/s over {:.1} s; {:.2}% errors; {:.2}% of sends over 1 ms late (send lateness p99 {} ms).\n",
                r.target_rate,
                r.achieved_rate,
                r.measured_s,
                r.error_share * 100.0,
                r.late_send_share * 100.0,
                ms(r.send_lateness_p99_ms)
            );
            if let Some(c) = &r.cpu {
                let _ = writeln!(md, "CPU over the measured window: {}.\n", c.line());
            }
            op_table(&mut md, &r.ops, &r.all);
            let _ = writeln!(
                md,
                "\nFan-out lag (post acknowledged → in a sampled follower's home read): {}.",
                lag_line(&r.fanout_lag_home)
            );
            if let Some(s) = &r.fanout_lag_stream {
                let _ = writeln!(
                    md,
                    "\nFan-out lag on streaming sockets: {}.",
                    stream_line(s)
                );
            }
            let _ = writeln!(
                md,
                "\nSearch freshness (post acknowledged → found by `/api/v2/search`): {}.",
                lag_line(&r.search_freshness)
            );
            let _ = writeln!(md);
        }
        if let Some(c) = &self.celebrity {
            let _ = writeln!(
                md,
                "Celebrity `{}` with {} followers posted {} times; {} followers sampled.\n",
                c.username,
                c.followers,
                c.posts.len(),
                c.sampled
            );
            let _ = writeln!(
                md,
                "| post | accept ms | every sampled follower sees it, ms | missed |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|");
            for p in &c.posts {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} |",
                    p.id,
                    ms(p.post_ms),
                    p.all_seen_ms.map(ms).unwrap_or_else(|| "never".into()),
                    p.missed
                );
            }
            let _ = writeln!(
                md,
                "\nPer-follower lag (home reads): {}.",
                lag_line(&c.lag_home)
            );
            if let Some(s) = &c.lag_stream {
                let _ = writeln!(md, "\nStreaming: {}.", stream_line(s));
            }
            let _ = writeln!(md);
        }
        if let Some(c) = &self.closed_loop {
            let _ = writeln!(
                md,
                "Closed loop ({} connections, each sending as soon as its last request is answered, {:.0} s measured): **{:.0} req/s, {:.1}% of `GET /health` closed loop on as many connections in the same run ({:.0} req/s)**; {:.2}% errors.\n",
                c.connections,
                c.measured_s,
                c.throughput_rps,
                c.share_of_health * 100.0,
                c.health_rps,
                c.error_share * 100.0
            );
            if let Some(cpu) = &c.cpu {
                let _ = writeln!(md, "CPU during the closed loop: {}.\n", cpu.line());
            }
            if let Some(cpu) = &c.health_cpu {
                let _ = writeln!(md, "CPU during `GET /health`: {}.\n", cpu.line());
            }
            op_table(&mut md, &c.ops, &c.all);
            let _ = writeln!(md);
        }
        if let Some(c) = &self.ceilings {
            let _ = writeln!(md, "Ceilings measured in the same run:\n");
            for (url, rate) in &c.zadd_per_shard {
                let _ = writeln!(
                    md,
                    "- pipelined ZADD on `{url}`: {rate:.0}/s ({} connections × {} in flight)",
                    c.zadd_connections, c.zadd_pipeline
                );
            }
            let _ = writeln!(
                md,
                "- `GET /health`: {:.0} req/s ({} connections, closed loop)",
                c.http_health_rps, c.http_connections
            );
            if let Some(r) = &self.run
                && c.http_health_rps > 0.0
            {
                let _ = writeln!(
                    md,
                    "- this workload's achieved rate is {:.2}% of the trivial-endpoint ceiling",
                    100.0 * r.achieved_rate / c.http_health_rps
                );
            }
            let _ = writeln!(md);
        }
        for (title, file) in charts {
            let _ = writeln!(md, "![{title}]({file})\n");
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_formatting_keeps_three_figures() {
        assert_eq!(ms(0.123), "0.12");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(1234.5), "1234");
    }
}
