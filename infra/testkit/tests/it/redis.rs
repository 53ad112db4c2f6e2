use std::collections::HashSet;
use std::net::TcpListener;

use anyhow::Result;
use starling_testkit::{RedisServer, RedisShards};

use crate::{redis, refuses};

#[test]
fn a_started_redis_answers_ping_and_set_get() -> Result<()> {
    let server = RedisServer::start()?;
    let port = server.port();
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
    assert_eq!(server.addr(), format!("127.0.0.1:{port}"));

    assert_eq!(redis(port, &["PING"])?, "+PONG\r\n");
    assert_eq!(redis(port, &["SET", "greeting", "hello"])?, "+OK\r\n");
    assert_eq!(redis(port, &["GET", "greeting"])?, "$5\r\nhello\r\n");
    assert_eq!(redis(port, &["GET", "absent"])?, "$-1\r\n");
    Ok(())
}

#[test]
fn three_shards_have_distinct_ports_and_independent_data() -> Result<()> {
    let shards = RedisShards::start(3)?;
    assert_eq!(shards.len(), 3);
    let ports: HashSet<u16> = shards.servers().iter().map(RedisServer::port).collect();
    assert_eq!(ports.len(), 3, "ports: {ports:?}");
    let urls = shards.urls();
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(url, &format!("redis://127.0.0.1:{}", shards[i].port()));
    }

    assert_eq!(redis(shards[0].port(), &["SET", "k", "zero"])?, "+OK\r\n");
    assert_eq!(redis(shards[0].port(), &["GET", "k"])?, "$4\r\nzero\r\n");
    assert_eq!(redis(shards[1].port(), &["GET", "k"])?, "$-1\r\n");
    assert_eq!(redis(shards[2].port(), &["GET", "k"])?, "$-1\r\n");
    Ok(())
}

#[test]
fn a_dropped_redis_refuses_connections_and_its_directory_is_gone() -> Result<()> {
    let server = RedisServer::start()?;
    let port = server.port();
    let dir = server.dir().to_owned();
    assert!(!refuses(port), "a running server must accept connections");
    assert!(dir.join("redis.log").is_file());

    drop(server);
    assert!(refuses(port), "port {port} still accepts after drop");
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
    Ok(())
}

#[test]
fn restart_empty_loses_the_data_and_serves_again_on_the_same_port() -> Result<()> {
    let mut server = RedisServer::start()?;
    let port = server.port();
    assert_eq!(redis(port, &["SET", "k", "before"])?, "+OK\r\n");

    server.restart_empty()?;
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    assert_eq!(redis(port, &["PING"])?, "+PONG\r\n");
    assert_eq!(redis(port, &["GET", "k"])?, "$-1\r\n");
    assert_eq!(redis(port, &["SET", "k", "after"])?, "+OK\r\n");
    assert_eq!(redis(port, &["GET", "k"])?, "$5\r\nafter\r\n");
    Ok(())
}

#[test]
fn restarting_one_shard_empty_keeps_the_others_data() -> Result<()> {
    let mut shards = RedisShards::start(2)?;
    let (p0, p1) = (shards[0].port(), shards[1].port());
    assert_eq!(redis(p0, &["SET", "k", "kept"])?, "+OK\r\n");
    assert_eq!(redis(p1, &["SET", "k", "lost"])?, "+OK\r\n");

    shards.shard(1).restart_empty()?;
    assert_eq!(redis(p0, &["GET", "k"])?, "$4\r\nkept\r\n");
    assert_eq!(redis(p1, &["GET", "k"])?, "$-1\r\n");
    Ok(())
}

#[test]
fn a_stopped_redis_refuses_connections_and_stop_is_idempotent() -> Result<()> {
    let mut server = RedisServer::start()?;
    let port = server.port();
    assert!(server.is_running());

    server.stop()?;
    assert!(!server.is_running());
    assert!(refuses(port), "port {port} still accepts after stop");
    server.stop()?;
    assert!(refuses(port));
    Ok(())
}

#[test]
fn a_failed_restart_reports_the_server_log() -> Result<()> {
    let mut server = RedisServer::start()?;
    let port = server.port();
    server.stop()?;
    let _squatter = TcpListener::bind(("127.0.0.1", port))?;

    let error = match server.restart_empty() {
        Ok(()) => panic!("restart_empty succeeded although port {port} was taken"),
        Err(e) => format!("{e:#}"),
    };
    assert!(error.contains(&format!("port {port}")), "{error}");
    assert!(
        error.to_lowercase().contains("address already in use"),
        "the log tail is missing: {error}"
    );
    assert!(!server.is_running());
    Ok(())
}
