//! A `nats-server -js` child process.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::process::{
    Daemon, START_ATTEMPTS, find_binary, free_port, is_port_taken, probe_connect, read_line,
};

/// A `nats-server` with JetStream on 127.0.0.1 at a free port, in its own temporary
/// directory (JetStream storage in `js/`, output in `nats.log`).
///
/// [`stop`](Self::stop) and [`start_again`](Self::start_again) keep the port and the
/// JetStream storage, so streams and their messages survive an outage. Dropping it kills
/// the server and removes the directory.
#[derive(Debug)]
pub struct NatsServer {
    // Declared before `dir`: fields drop in order, so the process dies before its
    // directory is removed.
    daemon: Daemon,
    port: u16,
    binary: PathBuf,
    dir: TempDir,
}

impl NatsServer {
    /// Starts a server on a free port and waits until its `INFO` says `"jetstream":true`.
    pub fn start() -> Result<NatsServer> {
        let binary = find_binary("nats-server", "nats-server")?;
        let dir = tempfile::Builder::new()
            .prefix("starling-nats-")
            .tempdir()
            .context("creating a temporary directory for nats-server")?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            match spawn_ready(&binary, dir.path(), port) {
                Ok(daemon) => {
                    return Ok(NatsServer {
                        daemon,
                        port,
                        binary,
                        dir,
                    });
                }
                Err(e) if is_port_taken(&e) && attempt < START_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's temporary directory (`js/`, `nats.log`); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server process is alive (false after [`stop`](Self::stop) or a crash).
    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }

    /// Kills the server (SIGKILL, as a crash) and waits for it to exit; the port then
    /// refuses connections. The JetStream storage is kept. Stopping a stopped server does
    /// nothing.
    pub fn stop(&mut self) -> Result<()> {
        self.daemon.stop()
    }

    /// Starts a stopped server again on the same port with the same JetStream storage and
    /// waits until it is ready. Fails if it is still running.
    pub fn start_again(&mut self) -> Result<()> {
        if self.daemon.is_running() {
            bail!(
                "nats-server on port {} is still running; stop() it first",
                self.port
            );
        }
        self.daemon = spawn_ready(&self.binary, self.dir.path(), self.port)
            .with_context(|| format!("starting nats-server again on port {}", self.port))?;
        Ok(())
    }
}

fn spawn_ready(binary: &Path, dir: &Path, port: u16) -> Result<Daemon> {
    let args: Vec<OsString> = vec![
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string().into(),
        "-js".into(),
        "-sd".into(),
        dir.join("js").into_os_string(),
    ];
    let mut daemon = Daemon::spawn("nats-server", binary, &args, port, &dir.join("nats.log"))?;
    daemon.wait_ready("send an INFO line with \"jetstream\":true", || {
        announces_jetstream(port)
    })?;
    Ok(daemon)
}

/// Whether a fresh connection receives `INFO {...}` with `"jetstream":true`.
fn announces_jetstream(port: u16) -> bool {
    let Some(mut stream) = probe_connect(port) else {
        return false;
    };
    let line = read_line(&mut stream, 64 * 1024);
    let Some(json) = line.strip_prefix(b"INFO ") else {
        return false;
    };
    let compact: Vec<u8> = json
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    compact
        .windows(b"\"jetstream\":true".len())
        .any(|w| w == b"\"jetstream\":true")
}
