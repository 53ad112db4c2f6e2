//! Embedded store throughput: post writes, follower-page scans over a 100k-follower
//! account, and the batch get of 20 posts that hydrates a timeline page.
//!
//! `cargo bench -p starling-store --bench embedded`

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use starling_schema::Id;
use starling_schema::model::{ImportAccount, NewPost, Window};
use starling_schema::settings::{EmbeddedSettings, Limits};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;

const FOLLOWERS: usize = 100_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn open(dir: &tempfile::TempDir) -> EmbeddedStore {
    let settings = EmbeddedSettings {
        path: dir.path().join("store"),
        fsync: false,
        cache_mib: 256,
    };
    EmbeddedStore::open(&settings, 1, Limits::default()).expect("open")
}

async fn accounts(store: &EmbeddedStore, prefix: &str, n: usize) -> Vec<Id> {
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(1000) {
        let batch = (start..n.min(start + 1000))
            .map(|i| ImportAccount {
                username: format!("{prefix}{i}"),
                display_name: None,
                bot: false,
            })
            .collect();
        ids.extend(
            store
                .import_accounts(batch)
                .await
                .expect("import")
                .into_iter()
                .map(|a| a.id),
        );
    }
    ids
}

fn post(author: Id, i: u64) -> NewPost {
    NewPost {
        author_id: author,
        text: format!("benchmark post number {i} with a little text #bench"),
        hashtags: vec!["bench".into()],
        ..NewPost::default()
    }
}

fn writes(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let author = rt.block_on(accounts(&store, "writer", 1))[0];
    let mut group = c.benchmark_group("post_writes");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sequential", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    store
                        .create_post(post(author, i), None)
                        .await
                        .expect("post");
                }
                start.elapsed()
            })
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("64_concurrent", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    futures::stream::iter(0..64)
                        .map(|i| store.create_post(post(author, i), None))
                        .buffer_unordered(64)
                        .for_each(|r| async move {
                            r.expect("post");
                        })
                        .await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn follower_scan(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let star = rt.block_on(async {
        let star = accounts(&store, "star", 1).await[0];
        let fans = accounts(&store, "fan", FOLLOWERS).await;
        futures::stream::iter(fans)
            .map(|f| store.follow(f, star))
            .buffer_unordered(64)
            .for_each(|r| async move {
                r.expect("follow");
            })
            .await;
        star
    });
    let mut group = c.benchmark_group("follower_scan_100k");
    group.throughput(Throughput::Elements(FOLLOWERS as u64));
    group.measurement_time(Duration::from_secs(10));
    for page in [1_000usize, 10_000] {
        group.bench_with_input(BenchmarkId::new("page", page), &page, |b, &page| {
            b.iter(|| {
                rt.block_on(async {
                    let mut window = Window::oldest(page);
                    let mut seen = 0;
                    loop {
                        let p = store.followers(star, window).await.expect("page");
                        seen += p.items.len();
                        match p.next {
                            Some(next) => window = next,
                            None => break,
                        }
                    }
                    assert_eq!(seen, FOLLOWERS);
                })
            })
        });
    }
    group.finish();
}

fn batch_get(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir);
    let ids: Vec<Id> = rt.block_on(async {
        let author = accounts(&store, "author", 1).await[0];
        let mut ids = Vec::new();
        for i in 0..10_000 {
            ids.push(
                store
                    .create_post(post(author, i), None)
                    .await
                    .expect("post")
                    .value
                    .id,
            );
        }
        ids
    });
    let mut group = c.benchmark_group("posts_by_ids");
    group.throughput(Throughput::Elements(20));
    let mut offset = 0usize;
    group.bench_function("batch_of_20", |b| {
        b.iter(|| {
            // Walk different pages so the benchmark is not one hot cache line.
            offset = (offset + 20 * 37) % (ids.len() - 20);
            let got = rt
                .block_on(store.posts_by_ids(&ids[offset..offset + 20]))
                .expect("get");
            assert_eq!(got.len(), 20);
        })
    });
    group.finish();
}

criterion_group!(benches, writes, follower_scan, batch_get);
criterion_main!(benches);
