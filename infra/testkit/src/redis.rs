//! `redis-server` child processes: one ([`RedisServer`]) or several shards ([`RedisShards`]).

use std::ffi::OsString;
use std::io::Write;
use std::ops::{Index, IndexMut};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::process::{
    Daemon, START_ATTEMPTS, find_binary, free_port, is_port_taken, probe_connect, read_line,
};

/// A `redis-server` on 127.0.0.1 at a free port, without persistence, in its own
/// temporary directory (data in `data/`, output in `redis.log`).
///
/// Dropping it kills the server and removes the directory.
#[derive(Debug)]
pub struct RedisServer {
    // Declared before `dir`: fields drop in order, so the process dies before its
    // directory is removed.
    daemon: Daemon,
    port: u16,
    binary: PathBuf,
    dir: TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub fn start() -> Result<RedisServer> {
        let binary = find_binary("redis-server", "redis-server")?;
        let dir = tempfile::Builder::new()
            .prefix("starling-redis-")
            .tempdir()
            .context("creating a temporary directory for redis-server")?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            match spawn_ready(&binary, dir.path(), port) {
                Ok(daemon) => {
                    return Ok(RedisServer {
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

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's temporary directory (`data/`, `redis.log`); removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server process is alive (false after [`stop`](Self::stop) or a crash).
    pub fn is_running(&mut self) -> bool {
        self.daemon.is_running()
    }

    /// Stops the server and starts it again on the same port with no data, as a shard
    /// that restarts empty. Returns once it answers `PING`.
    pub fn restart_empty(&mut self) -> Result<()> {
        self.daemon.stop()?;
        self.daemon = spawn_ready(&self.binary, self.dir.path(), self.port)
            .with_context(|| format!("restarting redis-server on port {}", self.port))?;
        Ok(())
    }

    /// Kills the server and waits for it to exit; the port then refuses connections.
    /// Stopping a stopped server does nothing.
    pub fn stop(&mut self) -> Result<()> {
        self.daemon.stop()
    }
}

/// Spawns redis-server on `port` with an empty data directory and waits for `+PONG`.
fn spawn_ready(binary: &Path, dir: &Path, port: u16) -> Result<Daemon> {
    let data = dir.join("data");
    match std::fs::remove_dir_all(&data) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("emptying {}", data.display()));
        }
    }
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let args: Vec<OsString> = vec![
        "--port".into(),
        port.to_string().into(),
        "--bind".into(),
        "127.0.0.1".into(),
        "--save".into(),
        "".into(),
        "--appendonly".into(),
        "no".into(),
        "--dir".into(),
        data.into_os_string(),
    ];
    let mut daemon = Daemon::spawn("redis-server", binary, &args, port, &dir.join("redis.log"))?;
    daemon.wait_ready("answer PING with +PONG", || answers_pong(port))?;
    Ok(daemon)
}

fn answers_pong(port: u16) -> bool {
    let Some(mut stream) = probe_connect(port) else {
        return false;
    };
    if stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    read_line(&mut stream, 256).starts_with(b"+PONG\r\n")
}

/// Several independent [`RedisServer`]s on distinct ports, as the shards of a sharded
/// Redis. Index it (`shards[i]`) or use [`shard`](Self::shard) to restart one.
#[derive(Debug)]
pub struct RedisShards {
    servers: Vec<RedisServer>,
}

impl RedisShards {
    /// Starts `n` servers. Each one binds its port before the next picks one, so the
    /// ports are distinct.
    pub fn start(n: usize) -> Result<RedisShards> {
        let servers = (0..n)
            .map(|i| {
                RedisServer::start().with_context(|| format!("starting Redis shard {i} of {n}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RedisShards { servers })
    }

    /// `redis://127.0.0.1:PORT` of each shard, in shard order.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::url).collect()
    }

    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// Shard `i`, to stop or restart it. Panics if `i >= len()`, as slice indexing does.
    pub fn shard(&mut self, i: usize) -> &mut RedisServer {
        &mut self.servers[i]
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }
}

impl Index<usize> for RedisShards {
    type Output = RedisServer;

    fn index(&self, i: usize) -> &RedisServer {
        &self.servers[i]
    }
}

impl IndexMut<usize> for RedisShards {
    fn index_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.servers[i]
    }
}
