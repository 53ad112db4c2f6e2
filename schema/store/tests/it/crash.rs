//! The embedded store keeps every acknowledged write when its process is killed with
//! SIGKILL mid-stream (no destructor, no flush at exit).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use starling_schema::Id;
use starling_schema::model::Window;
use starling_schema::settings::{EmbeddedSettings, Limits};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store");
    let mut acked: Vec<Id> = Vec::new();
    // Two rounds: the second starts on the data the first one's kill left behind.
    for round in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let target = acked.len() + 500;
        while acked.len() < target {
            let line = lines
                .next()
                .expect("writer stopped early")
                .expect("read line");
            acked.push(line.parse().expect("an id"));
        }
        child.kill().expect("SIGKILL");
        // Ids printed before the kill landed were acknowledged too.
        for line in lines {
            let Ok(line) = line else { break };
            if let Ok(id) = line.parse() {
                acked.push(id);
            }
        }
        child.wait().expect("reap");
        assert!(acked.len() >= 500 * (round + 1));
    }

    let settings = EmbeddedSettings {
        path,
        fsync: false,
        cache_mib: 16,
    };
    let store = EmbeddedStore::open(&settings, 2, Limits::default()).expect("reopen after kill");
    let mut found = 0;
    for chunk in acked.chunks(1000) {
        found += store.posts_by_ids(chunk).await.expect("read").len();
    }
    assert_eq!(found, acked.len(), "every acknowledged post is there");
    let mut sorted = acked.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        acked.len(),
        "no id was handed out twice across the restart"
    );
    let author = store
        .accounts_by_usernames(&["crasher"])
        .await
        .expect("author")[0]
        .id;
    let counts = store.account_counts(&[author]).await.expect("counts")[0];
    assert!(
        counts.statuses >= acked.len() as u64,
        "counters were written with their posts"
    );
    let newest = store
        .posts_by_author(author, Window::newest(1))
        .await
        .expect("page");
    assert!(newest.items[0].id >= *sorted.last().expect("some"));
}
