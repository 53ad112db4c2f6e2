//! Child-process plumbing shared by the servers: finding the binary, picking a port,
//! spawning with a log file, polling for readiness, stopping.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How long a server gets to answer its protocol after it was spawned.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts at a first start, each on a fresh port, when the port was taken between
/// picking it and the server binding it.
pub(crate) const START_ATTEMPTS: usize = 3;

const POLL_STEP: Duration = Duration::from_millis(20);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
const LOG_TAIL_LINES: usize = 40;

/// Finds `name` on `PATH`, then in the system directories Debian installs daemons in
/// (`nats-server` is `/usr/sbin/nats-server` there, and `/usr/sbin` is often not on a
/// user's `PATH`).
pub(crate) fn find_binary(name: &str, apt_package: &str) -> Result<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let system_dirs = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .into_iter()
        .map(PathBuf::from);
    path_dirs
        .into_iter()
        .chain(system_dirs)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            anyhow!(
                "`{name}` is not on PATH nor in /usr/sbin or /usr/bin; install it with \
                 `apt-get install {apt_package}` (or run `bash infra/install-deps.sh`)"
            )
        })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A port on 127.0.0.1 that was free a moment ago: bound with port 0, read, released.
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to pick a free port")?;
    let port = listener
        .local_addr()
        .context("reading the port of a listener bound to 127.0.0.1:0")?
        .port();
    Ok(port)
}

pub(crate) fn local_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Opens a TCP connection to 127.0.0.1:`port` with short timeouts, for probes.
pub(crate) fn probe_connect(port: u16) -> Option<TcpStream> {
    let stream = TcpStream::connect_timeout(&local_addr(port), PROBE_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    Some(stream)
}

/// Reads from `stream` until a `\r\n`, end of stream, an error or `limit` bytes.
pub(crate) fn read_line(stream: &mut TcpStream, limit: usize) -> Vec<u8> {
    let mut line = Vec::new();
    let mut chunk = [0_u8; 1024];
    while !line.windows(2).any(|w| w == b"\r\n") && line.len() < limit {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => line.extend_from_slice(&chunk[..n]),
        }
    }
    line
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(LOG_TAIL_LINES);
            if lines.is_empty() {
                "(log is empty)".to_owned()
            } else {
                lines[start..].join("\n")
            }
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Whether a start failed because the port was taken by someone else.
pub(crate) fn is_port_taken(error: &anyhow::Error) -> bool {
    format!("{error:#}")
        .to_lowercase()
        .contains("address already in use")
}

/// A server running as a child process, with its output in a log file. Dropping it kills
/// the process and reaps it.
#[derive(Debug)]
pub(crate) struct Daemon {
    name: &'static str,
    port: u16,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Daemon {
    /// Spawns `program args` with stdout and stderr appended to `log_path`.
    pub(crate) fn spawn(
        name: &'static str,
        program: &Path,
        args: &[OsString],
        port: u16,
        log_path: &Path,
    ) -> Result<Daemon> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening log file {}", log_path.display()))?;
        writeln!(
            log,
            "--- starling-testkit: starting {name} on 127.0.0.1:{port} ---"
        )
        .with_context(|| format!("writing to log file {}", log_path.display()))?;
        let stderr: File = log
            .try_clone()
            .with_context(|| format!("duplicating log file handle {}", log_path.display()))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .with_context(|| format!("spawning {} {:?}", program.display(), args))?;
        Ok(Daemon {
            name,
            port,
            log_path: log_path.to_owned(),
            child: Some(child),
        })
    }

    /// Polls `probe` until it returns true while the process stays alive. Fails with the
    /// log tail if the process exits or [`READY_TIMEOUT`] passes.
    pub(crate) fn wait_ready(
        &mut self,
        expectation: &str,
        mut probe: impl FnMut() -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.fail_if_exited()?;
            if probe() {
                // The answer must come from our process, not from whoever else may have
                // been listening on the port.
                self.fail_if_exited()?;
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} on 127.0.0.1:{} did not {expectation} within {:?}; log {}:\n{}",
                    self.name,
                    self.port,
                    READY_TIMEOUT,
                    self.log_path.display(),
                    log_tail(&self.log_path)
                );
            }
            std::thread::sleep(POLL_STEP);
        }
    }

    fn fail_if_exited(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} on 127.0.0.1:{} is stopped", self.name, self.port);
        };
        let status = child
            .try_wait()
            .with_context(|| format!("checking whether {} is alive", self.name))?;
        if let Some(status) = status {
            self.child = None;
            bail!(
                "{} exited ({status}) before it was ready on 127.0.0.1:{}; log {}:\n{}",
                self.name,
                self.port,
                self.log_path.display(),
                log_tail(&self.log_path)
            );
        }
        Ok(())
    }

    pub(crate) fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the process (SIGKILL) and reaps it. Does nothing when already stopped.
    pub(crate) fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Err(kill_error) = child.kill() {
            // kill fails only when the process is gone already; wait tells which.
            if matches!(child.try_wait(), Ok(None)) {
                self.child = Some(child);
                return Err(kill_error)
                    .with_context(|| format!("killing {} on port {}", self.name, self.port));
            }
        }
        child
            .wait()
            .with_context(|| format!("waiting for {} on port {} to exit", self.name, self.port))?;
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Nothing useful can be done with an error here; a test that needs to know calls
        // stop() itself.
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_package_to_install() {
        let error = find_binary("starling-no-such-server", "starling-no-such-package")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("apt-get install starling-no-such-package"),
            "error was: {error:?}"
        );
    }

    #[test]
    fn only_address_in_use_counts_as_a_taken_port() {
        let taken = anyhow!("redis-server exited\nbind: Address already in use");
        let other = anyhow!("redis-server exited\nFATAL CONFIG FILE ERROR");
        assert!(is_port_taken(&taken.context("restarting")));
        assert!(!is_port_taken(&other));
    }
}
