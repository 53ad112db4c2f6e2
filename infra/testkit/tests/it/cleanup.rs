use std::panic::catch_unwind;
use std::path::PathBuf;
use std::sync::Mutex;

use starling_testkit::{NatsServer, RedisServer};

use crate::refuses;

/// A port and directory recorded by a closure that then panics.
type Seen = Mutex<Option<(u16, PathBuf)>>;

fn assert_cleaned_up(seen: &Seen, outcome: std::thread::Result<()>) {
    let recorded = seen
        .lock()
        .map(|s| s.clone())
        .unwrap_or_else(|e| e.into_inner().clone());
    let Some((port, dir)) = recorded else {
        panic!("the server did not start (see the panic message above)");
    };
    assert!(outcome.is_err(), "the closure was meant to panic");
    assert!(refuses(port), "port {port} still accepts after a panic");
    assert!(
        !dir.exists(),
        "{} still exists after a panic",
        dir.display()
    );
}

#[test]
fn a_panicking_tests_redis_is_cleaned_up() {
    let seen = Seen::default();
    let outcome = catch_unwind(|| {
        let server = match RedisServer::start() {
            Ok(server) => server,
            Err(e) => panic!("RedisServer::start failed: {e:#}"),
        };
        assert!(!refuses(server.port()));
        if let Ok(mut s) = seen.lock() {
            *s = Some((server.port(), server.dir().to_owned()));
        }
        panic!(
            "deliberate panic with redis-server on port {}",
            server.port()
        );
    });
    assert_cleaned_up(&seen, outcome);
}

#[test]
fn a_panicking_tests_nats_is_cleaned_up() {
    let seen = Seen::default();
    let outcome = catch_unwind(|| {
        let server = match NatsServer::start() {
            Ok(server) => server,
            Err(e) => panic!("NatsServer::start failed: {e:#}"),
        };
        assert!(!refuses(server.port()));
        if let Ok(mut s) = seen.lock() {
            *s = Some((server.port(), server.dir().to_owned()));
        }
        panic!(
            "deliberate panic with nats-server on port {}",
            server.port()
        );
    });
    assert_cleaned_up(&seen, outcome);
}
