//! The admin socket: how `starling admin` reaches a running server that holds the embedded
//! store (which belongs to one process).
//!
//! The server listens on a Unix socket beside its data (`{store dir}/admin.sock`, mode
//! 0600, so only the same OS user may use it). The protocol is line-delimited JSON: the
//! client sends one line `{"command": ...}`; the server answers with any number of
//! `{"progress": ...}` lines and then one `{"outcome": ...}` or `{"error": "..."}` line, and
//! closes. The server runs the very same [`crate::run`] the command line runs directly.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{AdminCommand, AdminContext, Outcome, Progress, ProgressEvent};

/// The socket's file name in the embedded store's directory.
pub const SOCKET_NAME: &str = "admin.sock";
/// Longest request line accepted.
const MAX_REQUEST: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct Request {
    command: AdminCommand,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Progress(ProgressEvent),
    Outcome(Outcome),
    Error(String),
}

/// Where the admin socket of the store in `data_dir` is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Listen on `path`, readable and writable by this OS user only. A socket file left by a
/// process that is gone is replaced; one that answers is an error (another node serves it).
pub async fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            anyhow::bail!("{} is served by another process", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    // Bound under a temporary name, restricted, then renamed into place: the socket is never
    // reachable with looser permissions.
    let tmp = path.with_extension(format!("sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener =
        UnixListener::bind(&tmp).with_context(|| format!("listening on {}", tmp.display()))?;
    restrict(&tmp).with_context(|| format!("restricting {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("placing {}", path.display()))?;
    Ok(listener)
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Answer admin connections until `shutdown`, each in its own task; then remove the socket.
pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    ctx: AdminContext,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        if let Err(e) = handle(stream, ctx).await {
                            tracing::warn!(error = %format!("{e:#}"), "admin connection failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an admin connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Progress sent down the connection as it happens.
struct Sender(mpsc::UnboundedSender<Reply>);

impl Progress for Sender {
    fn event(&self, event: ProgressEvent) {
        let _ = self.0.send(Reply::Progress(event));
    }
}

async fn handle(stream: UnixStream, ctx: AdminContext) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST))
        .read_line(&mut line)
        .await
        .context("reading the request")?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let mut bytes = serde_json::to_vec(&reply).context("encoding a reply")?;
            bytes.push(b'\n');
            write.write_all(&bytes).await.context("answering")?;
        }
        write.shutdown().await.context("closing")?;
        anyhow::Ok(())
    });
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            tracing::info!(
                noun = request.command.noun(),
                "admin command over the socket"
            );
            match crate::run(&ctx, request.command, &Sender(tx.clone())).await {
                Ok(outcome) => Reply::Outcome(outcome),
                Err(e) => Reply::Error(format!("{e:#}")),
            }
        }
        Err(e) => Reply::Error(format!("not an admin request: {e}")),
    };
    let _ = tx.send(reply);
    drop(tx);
    writer.await.context("the reply task failed")?
}

/// Connect to a running server's admin socket, if one answers there.
pub async fn connect(path: &Path) -> Option<UnixStream> {
    UnixStream::connect(path).await.ok()
}

/// Send `command` over `stream` and relay its progress; the server's outcome or error.
pub async fn call(
    stream: UnixStream,
    command: &AdminCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    let (read, mut write) = stream.into_split();
    let mut request = serde_json::to_vec(&Request {
        command: command.clone(),
    })
    .context("encoding the request")?;
    request.push(b'\n');
    write
        .write_all(&request)
        .await
        .context("sending the command to the server")?;
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines
        .next_line()
        .await
        .context("reading the server's answer")?
    {
        match serde_json::from_str::<Reply>(&line).context("reading the server's answer")? {
            Reply::Progress(event) => progress.event(event),
            Reply::Outcome(outcome) => return Ok(outcome),
            Reply::Error(message) => anyhow::bail!("{message}"),
        }
    }
    anyhow::bail!("the server closed the admin connection without an answer")
}
