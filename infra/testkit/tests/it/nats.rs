use anyhow::{Context, Result};
use starling_testkit::NatsServer;

use crate::{NatsClient, compact, connect, refuses};

/// The first line a fresh connection receives, compacted.
fn info(port: u16) -> Result<String> {
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(connect(port)?), &mut line)
        .context("reading INFO")?;
    Ok(compact(&line))
}

#[test]
fn a_started_nats_announces_jetstream_in_info() -> Result<()> {
    let server = NatsServer::start()?;
    let port = server.port();
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));

    let info = info(port)?;
    assert!(info.starts_with("INFO{"), "{info}");
    assert!(info.contains("\"jetstream\":true"), "{info}");
    assert!(info.contains(&format!("\"port\":{port},")), "{info}");
    Ok(())
}

#[test]
fn stop_refuses_and_start_again_serves_on_the_same_port() -> Result<()> {
    let mut server = NatsServer::start()?;
    let port = server.port();
    assert!(server.is_running());
    assert!(
        server.start_again().is_err(),
        "start_again on a running server must fail"
    );

    server.stop()?;
    assert!(!server.is_running());
    assert!(refuses(port), "port {port} still accepts after stop");
    server.stop()?;

    server.start_again()?;
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    assert!(info(port)?.contains("\"jetstream\":true"));
    Ok(())
}

#[test]
fn a_jetstream_stream_and_its_messages_survive_stop_and_start_again() -> Result<()> {
    let mut server = NatsServer::start()?;
    let port = server.port();
    {
        let mut nats = NatsClient::connect(port)?;
        let created = nats.request(
            "$JS.API.STREAM.CREATE.POSTS",
            r#"{"name":"POSTS","subjects":["posts.>"],"storage":"file"}"#,
        )?;
        assert!(!created.contains("\"error\""), "{created}");
        for i in 1..=2 {
            let ack = compact(&nats.request(&format!("posts.{i}"), "hello")?);
            assert!(ack.contains(&format!("\"seq\":{i}")), "{ack}");
        }
    }

    server.stop()?;
    server.start_again()?;

    let mut nats = NatsClient::connect(port)?;
    let stream = compact(&nats.request("$JS.API.STREAM.INFO.POSTS", "")?);
    assert!(stream.contains("\"messages\":2,"), "{stream}");
    Ok(())
}
