//! Who used the CPU during a measurement: the server, Redis, NATS and the harness itself,
//! from `/proc/<pid>/stat` (user + system time of every thread of the process) read at the
//! start and the end of the measured window. The harness finds its own pid; the others by
//! the TCP port they listen on (`/proc/net/tcp{,6}` gives the listening socket's inode,
//! `/proc/<pid>/fd/*` the process holding it), or from `--server-pid` style flags. A
//! process it cannot find is reported as not found, never guessed.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `(utime, stime)` in clock ticks from the text of `/proc/<pid>/stat`. The command name
/// (field 2) is in parentheses and may itself hold spaces or parentheses, so fields are
/// counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<(u64, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state (field 3) ... utime is field 14, stime field 15.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), from the auxiliary vector the kernel
/// gave this process (`AT_CLKTCK`, type 17); on every Linux today it is 100.
pub fn clock_ticks() -> Option<u64> {
    let auxv = std::fs::read("/proc/self/auxv").ok()?;
    clock_ticks_of_auxv(&auxv)
}

fn clock_ticks_of_auxv(auxv: &[u8]) -> Option<u64> {
    const AT_CLKTCK: u64 = 17;
    let word = |b: &[u8]| -> Option<u64> { Some(u64::from_ne_bytes(b.try_into().ok()?)) };
    auxv.chunks_exact(16).find_map(|pair| {
        (word(&pair[..8])? == AT_CLKTCK)
            .then(|| word(&pair[8..]))
            .flatten()
            .filter(|&t| t > 0)
    })
}

/// Inodes of sockets listening on TCP `port` (any local address) in the text of
/// `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let local = f.get(1)?;
            let (_, hex_port) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(hex_port, 16).ok()?;
            (p == port && *f.get(3)? == LISTEN)
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

/// The processes holding a socket that listens on TCP `port` on this machine.
pub fn pids_listening_on(port: u16) -> Vec<u32> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return Vec::new();
    }
    let wanted: HashSet<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut pids = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|l| l.to_str().map(|s| wanted.contains(s)))
                .unwrap_or(false)
        });
        if holds {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// The port of a URL such as `http://127.0.0.1:8080/x`, `redis://h:6380/0` or
/// `nats://h:4222`, with the scheme's default when it names none.
pub fn url_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = match hostport.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").map(|(_, p)| p),
        None => hostport.rsplit_once(':').map(|(_, p)| p),
    };
    match port {
        Some(p) => p.parse().ok(),
        None => match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            "redis" => Some(6379),
            "nats" => Some(4222),
            _ => None,
        },
    }
}

/// A part of the system whose CPU time a run reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub role: String,
    pub pids: Vec<u32>,
    /// How the pids were found (`listening on port 8080`, `--server-pid`, `this process`),
    /// or why none were.
    pub how: String,
}

impl Part {
    /// Pids given on the command line, else whatever listens on the ports.
    pub fn find(role: &str, given: &[u32], ports: &[u16]) -> Part {
        if !given.is_empty() {
            return Part {
                role: role.into(),
                pids: given.to_vec(),
                how: "given".into(),
            };
        }
        let mut pids: Vec<u32> = ports.iter().flat_map(|&p| pids_listening_on(p)).collect();
        pids.sort_unstable();
        pids.dedup();
        let ports = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let how = if ports.is_empty() {
            "not found (no port or pid given)".to_owned()
        } else if pids.is_empty() {
            format!("not found (nothing of this user listens on port {ports})")
        } else {
            format!("listening on port {ports}")
        };
        Part {
            role: role.into(),
            pids,
            how,
        }
    }

    pub fn this_process() -> Part {
        Part {
            role: "harness".into(),
            pids: vec![std::process::id()],
            how: "this process".into(),
        }
    }
}

/// CPU ticks of each part at one instant.
#[derive(Clone, Debug)]
pub struct Snapshot {
    at: Instant,
    /// Per part: ticks summed over its pids, `None` when none could be read.
    ticks: Vec<Option<u64>>,
}

fn read_ticks(pid: u32) -> Option<u64> {
    let text =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    parse_stat(&text).map(|(u, s)| u + s)
}

/// The parts a run watches, and the clock they are read with.
#[derive(Clone, Debug)]
pub struct CpuWatch {
    pub parts: Vec<Part>,
    pub ticks_per_second: Option<u64>,
}

impl CpuWatch {
    pub fn new(parts: Vec<Part>) -> CpuWatch {
        CpuWatch {
            parts,
            ticks_per_second: clock_ticks(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            ticks: self
                .parts
                .iter()
                .map(|p| {
                    let each: Vec<u64> = p.pids.iter().filter_map(|&pid| read_ticks(pid)).collect();
                    (!each.is_empty()).then(|| each.iter().sum())
                })
                .collect(),
        }
    }

    /// CPU used by each part between two snapshots; `requests` completed in the window
    /// gives the server's CPU per request.
    pub fn report(&self, from: &Snapshot, to: &Snapshot, requests: u64) -> CpuReport {
        let window = to.at.saturating_duration_since(from.at);
        let tps = self.ticks_per_second;
        let parts = self
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let used = match (
                    from.ticks.get(i).copied().flatten(),
                    to.ticks.get(i).copied().flatten(),
                    tps,
                ) {
                    (Some(a), Some(b), Some(t)) => Some(b.saturating_sub(a) as f64 / t as f64),
                    _ => None,
                };
                PartCpu {
                    role: p.role.clone(),
                    pids: p.pids.clone(),
                    how: p.how.clone(),
                    cpu_s: used,
                    cores: used.map(|s| s / window.as_secs_f64().max(1e-9)),
                }
            })
            .collect();
        CpuReport::new(window, parts, requests)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartCpu {
    /// `server`, `redis`, `nats` or `harness`.
    pub role: String,
    pub pids: Vec<u32>,
    pub how: String,
    /// User + system CPU seconds in the window; `None`: not found or not readable.
    pub cpu_s: Option<f64>,
    /// `cpu_s` over the window: cores kept busy on average.
    pub cores: Option<f64>,
}

/// The CPU split of one measured window.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CpuReport {
    pub window_s: f64,
    pub parts: Vec<PartCpu>,
    /// Requests the workload completed in the window.
    pub requests: u64,
    /// Server CPU per completed request, microseconds (lag sampling's reads, a few per
    /// second, are not in `requests` but their cost is in the server's time).
    pub server_us_per_request: Option<f64>,
    /// The server and the harness are one process (a test node in the harness's process):
    /// their split cannot be told apart.
    pub server_is_harness: bool,
}

impl CpuReport {
    fn new(window: Duration, parts: Vec<PartCpu>, requests: u64) -> CpuReport {
        let pids_of = |role: &str| {
            parts
                .iter()
                .find(|p| p.role == role)
                .map(|p| p.pids.clone())
                .unwrap_or_default()
        };
        let server_is_harness = pids_of("server")
            .iter()
            .any(|p| pids_of("harness").contains(p));
        let server_us_per_request = parts
            .iter()
            .find(|p| p.role == "server")
            .and_then(|p| p.cpu_s)
            .filter(|_| requests > 0)
            .map(|s| s * 1e6 / requests as f64);
        CpuReport {
            window_s: window.as_secs_f64(),
            parts,
            requests,
            server_us_per_request,
            server_is_harness,
        }
    }

    pub fn cores_of(&self, role: &str) -> Option<f64> {
        self.parts
            .iter()
            .find(|p| p.role == role)
            .and_then(|p| p.cores)
    }

    /// `server 1.62, redis 0.21, nats 0.03, harness 0.14 cores; server 812 µs/request`.
    pub fn line(&self) -> String {
        let cores = self
            .parts
            .iter()
            .map(|p| match p.cores {
                Some(c) => format!("{} {c:.2}", p.role),
                None => format!("{} not found", p.role),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let per = self
            .server_us_per_request
            .map(|u| format!("; server {u:.0} µs of CPU per request"))
            .unwrap_or_default();
        let same = if self.server_is_harness {
            " (server and harness are one process)"
        } else {
            ""
        };
        format!("{cores} cores{same}{per}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line of /proc/<pid>/stat, with a command name holding a space and a ')'.
    const STAT: &str = "4242 (tokio-rt (w) x) S 1 4242 4242 0 -1 4194560 5120 0 0 0 \
        1234 567 0 0 20 0 9 0 98765 123456789 2345 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17664 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_gives_user_and_system_ticks() {
        assert_eq!(parse_stat(STAT), Some((1234, 567)));
        assert_eq!(
            parse_stat("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 70 30 0 0"),
            Some((70, 30))
        );
        assert_eq!(parse_stat("1 (init) S 0 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn clock_ticks_come_from_the_aux_vector() {
        let mut auxv = Vec::new();
        for (k, v) in [(6u64, 4096u64), (17, 100), (0, 0)] {
            auxv.extend(k.to_ne_bytes());
            auxv.extend(v.to_ne_bytes());
        }
        assert_eq!(clock_ticks_of_auxv(&auxv), Some(100));
        assert_eq!(clock_ticks_of_auxv(&auxv[..16]), None);
        // And this machine's own.
        assert!(clock_ticks().is_some_and(|t| t > 0));
    }

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 31338 1 0000000000000000 20 4 30 10 -1
   2: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4711 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_sockets_are_found_by_port() {
        // 0x1F90 = 8080: the listener, not the established connection on the same port.
        assert_eq!(listening_inodes(TCP, 8080), vec![31337]);
        assert_eq!(listening_inodes(TCP, 6379), vec![4711]);
        assert!(listening_inodes(TCP, 9).is_empty());
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:1092 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(tcp6, 4242), vec![999]);
    }

    #[test]
    fn this_process_is_found_by_the_port_it_listens_on() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(pids_listening_on(port), vec![std::process::id()]);
        drop(l);
        let gone = Part::find("server", &[], &[port]);
        assert!(
            gone.pids.is_empty() && gone.how.starts_with("not found"),
            "{gone:?}"
        );
    }

    #[test]
    fn ports_of_urls() {
        assert_eq!(url_port("http://127.0.0.1:8080"), Some(8080));
        assert_eq!(url_port("http://example.org/x"), Some(80));
        assert_eq!(url_port("redis://127.0.0.1:6380/2"), Some(6380));
        assert_eq!(url_port("redis://localhost"), Some(6379));
        assert_eq!(url_port("nats://u:p@h:4223"), Some(4223));
        assert_eq!(url_port("nats://[::1]:4224"), Some(4224));
        assert_eq!(url_port("nonsense"), None);
    }

    /// This thread's time on a CPU, from the scheduler's own count (nanoseconds).
    fn thread_cpu() -> Duration {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        Duration::from_nanos(text.split_whitespace().next().unwrap().parse().unwrap())
    }

    #[test]
    fn a_busy_thread_shows_as_harness_cpu() {
        let watch = CpuWatch::new(vec![Part::this_process(), Part::find("nats", &[], &[])]);
        let from = watch.snapshot();
        // Work until the scheduler says this thread ran 300 ms (however busy the machine).
        let ran = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() - ran < Duration::from_millis(300) {
            for _ in 0..10_000 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
        }
        std::hint::black_box(x);
        let to = watch.snapshot();
        let r = watch.report(&from, &to, 10);
        let used = r.parts[0].cpu_s.unwrap();
        // At least this thread's time (less one clock tick at each end), and no more than
        // every core of the machine over the window.
        let cpus = std::thread::available_parallelism().unwrap().get() as f64;
        assert!(used >= 0.28, "{used} s");
        assert!(
            used <= r.window_s * cpus + 0.02,
            "{used} s in {} s",
            r.window_s
        );
        let cores = r.cores_of("harness").unwrap();
        assert!((cores - used / r.window_s).abs() < 1e-9);
        assert_eq!(r.cores_of("nats"), None);
        assert!(r.line().contains("nats not found"), "{}", r.line());
        assert_eq!(r.server_us_per_request, None);
    }

    #[test]
    fn server_cpu_per_request() {
        let part = |role: &str, pid: u32, s: f64| PartCpu {
            role: role.into(),
            pids: vec![pid],
            how: "given".into(),
            cpu_s: Some(s),
            cores: Some(s / 2.0),
        };
        let r = CpuReport::new(
            Duration::from_secs(2),
            vec![part("server", 10, 1.5), part("harness", 11, 0.1)],
            3000,
        );
        assert_eq!(r.server_us_per_request, Some(500.0));
        assert!(!r.server_is_harness);
        assert_eq!(
            r.line(),
            "server 0.75, harness 0.05 cores; server 500 µs of CPU per request"
        );
        let same = CpuReport::new(
            Duration::from_secs(2),
            vec![part("server", 10, 1.5), part("harness", 10, 1.5)],
            0,
        );
        assert!(same.server_is_harness && same.server_us_per_request.is_none());
    }
}
