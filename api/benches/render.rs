//! Rendering a home page of 20 statuses (with 5 reblogs among them): cold (every post's
//! and account's unchanging members rendered from scratch, as on a cache miss) and cached
//! (the fragments already rendered; only counts, flags and the joins remain, as on a warm
//! api node). No I/O: what is left when the store and Redis answer instantly.
//!
//! `cargo bench -p starling-api --bench render`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use starling_api::entities::{self, Json, StatusState};
use starling_schema::Id;
use starling_schema::model::{
    Account, AccountCounts, Post, PostCounts, Role, ViewerFlags, Visibility,
};

const BASE: &str = "https://starling.example";
const PAGE: usize = 20;

fn account(i: u64) -> Account {
    Account {
        id: Id((1_700_000_000_000 << 16) + i),
        username: format!("user{i}"),
        display_name: format!("User Number {i}"),
        note: "I post about #rust and https://example.org things".into(),
        locked: false,
        bot: false,
        role: Role::User,
        suspended: false,
        created_at_ms: 1_700_000_000_000,
        profile: Default::default(),
    }
}

fn post(i: u64, authors: &[Account]) -> Post {
    let author = &authors[i as usize % authors.len()];
    let mentioned = &authors[(i as usize + 1) % authors.len()];
    Post {
        id: Id((1_800_000_000_000 << 16) + i),
        author_id: author.id,
        text: format!(
            "post {i}: hello @{} have you seen https://example.org/articles/{i}?ref=feed it is \
             about #Rust and #performance <and escaping & such>\n\nsecond paragraph",
            mentioned.username
        ),
        spoiler_text: String::new(),
        sensitive: false,
        visibility: Visibility::Public,
        in_reply_to_id: None,
        in_reply_to_account_id: None,
        reblog_of: None,
        mentions: vec![mentioned.id],
        hashtags: vec!["rust".into(), "performance".into()],
        language: Some("en".into()),
        created_at_ms: 1_800_000_000_000 + i,
        edited_at_ms: None,
        poll_id: None,
    }
}

struct Page {
    accounts: Vec<Account>,
    posts: Vec<Post>,
}

fn page() -> Page {
    let accounts: Vec<Account> = (0..8).map(account).collect();
    let posts = (0..PAGE as u64).map(|i| post(i, &accounts)).collect();
    Page { accounts, posts }
}

struct Cached {
    posts: Vec<String>,
    accounts: Vec<String>,
}

fn render_cold(p: &Page) -> Cached {
    let accounts = p
        .accounts
        .iter()
        .map(|a| entities::account_members(a, BASE, &Default::default(), BASE))
        .collect();
    let posts = p
        .posts
        .iter()
        .enumerate()
        .map(|(i, post)| {
            let author = &p.accounts[i % p.accounts.len()];
            let mentioned = &p.accounts[(i + 1) % p.accounts.len()];
            entities::status_members(post, &author.username, &[mentioned], &[], BASE, BASE)
        })
        .collect();
    Cached { posts, accounts }
}

/// The page joined from rendered fragments: the work of every warm home read.
fn render_cached(p: &Page, c: &Cached) -> Json {
    let counts = AccountCounts {
        followers: 120,
        following: 80,
        statuses: 999,
        last_status_at_ms: Some(1_800_000_000_000),
    };
    let mut statuses = Vec::with_capacity(PAGE);
    for (i, _) in p.posts.iter().enumerate() {
        let mut account = String::new();
        entities::write_account(&mut account, &c.accounts[i % c.accounts.len()], &counts);
        let state = |reblog| StatusState {
            counts: PostCounts {
                replies: 3,
                reblogs: 5,
                favourites: 12,
            },
            flags: ViewerFlags {
                favourited: i % 3 == 0,
                reblogged: false,
                bookmarked: i % 5 == 0,
                pinned: false,
            },
            own: false,
            muted: false,
            reblog,
            poll: None,
        };
        let mut out = String::new();
        entities::write_status(&mut out, &c.posts[i], &account, &state(None));
        if i % 4 == 0 {
            // A reblog wraps the rendered original.
            let mut wrapper = String::new();
            entities::write_status(&mut wrapper, &c.posts[i], &account, &state(Some(&out)));
            out = wrapper;
        }
        statuses.push(Json(out));
    }
    Json::array(&statuses)
}

fn bench(c: &mut Criterion) {
    let p = page();
    let cached = render_cold(&p);
    let mut g = c.benchmark_group("home_page_20");
    g.throughput(Throughput::Elements(PAGE as u64));
    g.bench_function("cold", |b| {
        b.iter(|| {
            let c = render_cold(&p);
            render_cached(&p, &c)
        })
    });
    g.bench_function("cached", |b| b.iter(|| render_cached(&p, &cached)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
