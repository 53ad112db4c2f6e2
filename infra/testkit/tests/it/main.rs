//! Integration tests of the test kit: the servers it starts speak their protocol on the
//! port it reports, and are gone (port refused, directory removed) when it says so.

mod cleanup;
mod nats;
mod redis;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn connect(port: u16) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr(port), IO_TIMEOUT)
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Whether a TCP connection to 127.0.0.1:`port` is refused (nothing listens there).
fn refuses(port: u16) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr(port), IO_TIMEOUT),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused
    )
}

/// Sends one RESP command and returns the raw reply (a simple line, or a bulk string
/// with its payload).
fn redis(port: u16, args: &[&str]) -> Result<String> {
    let mut stream = connect(port)?;
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(command.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    if let Some(len) = reply.strip_prefix('$') {
        let len: i64 = len.trim_end().parse().context("bulk string length")?;
        if len >= 0 {
            let mut payload = vec![0_u8; usize::try_from(len)? + 2];
            reader.read_exact(&mut payload)?;
            reply.push_str(&String::from_utf8(payload)?);
        }
    }
    Ok(reply)
}

/// A NATS connection speaking just enough of the protocol for request/reply.
struct NatsClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl NatsClient {
    fn connect(port: u16) -> Result<NatsClient> {
        let writer = connect(port)?;
        let mut client = NatsClient {
            reader: BufReader::new(writer.try_clone()?),
            writer,
        };
        let info = client.line()?;
        if !info.starts_with("INFO ") {
            bail!("expected INFO, got {info:?}");
        }
        client.writer.write_all(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\n\
              SUB _INBOX.it 1\r\nPING\r\n",
        )?;
        loop {
            match client.line()?.as_str() {
                "PONG" => return Ok(client),
                "PING" => client.writer.write_all(b"PONG\r\n")?,
                other if other.starts_with("-ERR") => bail!("NATS: {other}"),
                _ => {}
            }
        }
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("NATS closed the connection");
        }
        Ok(line.trim_end().to_owned())
    }

    /// Publishes `payload` to `subject` and returns the reply's payload.
    fn request(&mut self, subject: &str, payload: &str) -> Result<String> {
        let publish = format!("PUB {subject} _INBOX.it {}\r\n{payload}\r\n", payload.len());
        self.writer.write_all(publish.as_bytes())?;
        loop {
            let line = self.line()?;
            if line == "PING" {
                self.writer.write_all(b"PONG\r\n")?;
            } else if line.starts_with("-ERR") {
                bail!("NATS: {line}");
            } else if line.starts_with("MSG ") {
                let len: usize = line
                    .rsplit(' ')
                    .next()
                    .unwrap_or_default()
                    .parse()
                    .context("MSG payload length")?;
                let mut payload = vec![0_u8; len + 2];
                self.reader.read_exact(&mut payload)?;
                payload.truncate(len);
                return Ok(String::from_utf8(payload)?);
            }
        }
    }
}

/// `json` with whitespace removed, so that `"key":value` can be searched for.
fn compact(json: &str) -> String {
    json.chars().filter(|c| !c.is_whitespace()).collect()
}
