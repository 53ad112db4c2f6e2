//! The conformance suite: what every `Store` backend must do. Each case is a generic async
//! function; `conformance_suite!` instantiates all of them as tests for one backend.

use std::collections::HashSet;

use futures::StreamExt;
use starling_schema::model::{
    AuthCode, Created, ImportAccount, NewAccount, NewApp, NewNotification, NewPost, NewToken,
    NotificationKind, Order, Page, Post, Role, Visibility, Window,
};
use starling_schema::push::{Alerts, PushPolicy, PushSubscription};
use starling_schema::{ErrorKind, Id};
use starling_store::{MAX_BATCH, MAX_PAGE, Store, StoreError};

mod social;
pub use social::*;
mod feeds;
pub use feeds::*;
mod polls;
pub use polls::*;
mod conversations;
pub use conversations::*;
mod discovery;
pub use discovery::*;

/// A backend under test: a fresh, empty store that can be closed and opened again.
pub trait Backend: Sized {
    type S: Store + Clone;
    fn store(&self) -> &Self::S;
    /// Close the store and open the same data again.
    async fn reopen(self) -> Self;
    async fn finish(self);
}

fn kind<T: std::fmt::Debug>(r: Result<T, StoreError>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

pub(crate) async fn user<S: Store>(s: &S, name: &str) -> Id {
    s.create_account(NewAccount {
        username: name.into(),
        email: Some(format!("{name}@example.org")),
        password: "correct horse battery".into(),
        display_name: Some(format!("{name} display")),
        role: Role::User,
        bot: false,
    })
    .await
    .expect("create account")
    .id
}

/// Many accounts quickly (no password hashing).
async fn users<S: Store>(s: &S, prefix: &str, n: usize) -> Vec<Id> {
    let mut ids = Vec::with_capacity(n);
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    for chunk in names.chunks(MAX_BATCH) {
        let batch = chunk
            .iter()
            .map(|u| ImportAccount {
                username: u.clone(),
                display_name: None,
                bot: false,
            })
            .collect();
        ids.extend(
            s.import_accounts(batch)
                .await
                .expect("import")
                .into_iter()
                .map(|a| a.id),
        );
    }
    assert_eq!(ids.len(), n);
    ids
}

fn text(author: Id, text: &str) -> NewPost {
    NewPost {
        author_id: author,
        text: text.into(),
        ..NewPost::default()
    }
}

async fn post<S: Store>(s: &S, author: Id, body: &str) -> Post {
    s.create_post(text(author, body), None)
        .await
        .expect("create post")
        .value
}

/// Read a whole id list page by page.
async fn drain<F, Fut>(mut window: Window, mut read: F) -> Vec<Id>
where
    F: FnMut(Window) -> Fut,
    Fut: std::future::Future<Output = Result<Page<Id>, StoreError>>,
{
    let mut all = Vec::new();
    loop {
        let page = read(window).await.expect("page");
        all.extend(page.items);
        match page.next {
            Some(next) => window = next,
            None => return all,
        }
    }
}

// ---- accounts -------------------------------------------------------------------------

pub async fn account_round_trip<B: Backend>(b: &B) {
    let s = b.store();
    let id = user(s, "alice").await;
    let got = s.accounts_by_ids(&[id]).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].username, "alice");
    assert_eq!(got[0].display_name, "alice display");
    assert_eq!(got[0].id, id);
    assert!(got[0].created_at_ms > 0);
    assert_eq!(got[0].role, Role::User);
    let counts = s.account_counts(&[id]).await.unwrap();
    assert_eq!(
        counts[0].followers + counts[0].following + counts[0].statuses,
        0
    );
    assert_eq!(counts[0].last_status_at_ms, None);
}

/// An empty name names nobody: found by no lookup, signed in by no password (ScyllaDB
/// refuses an empty key, so the backend must not ask).
pub async fn an_empty_username_names_nobody<B: Backend>(b: &B) {
    let s = b.store();
    user(s, "alice").await;
    let found = s.accounts_by_usernames(&["", "alice"]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].username, "alice");
    assert!(s.accounts_by_usernames(&[""]).await.unwrap().is_empty());
    assert_eq!(
        kind(s.verify_password("", "correct horse battery").await),
        ErrorKind::Unauthorized
    );
}

pub async fn username_is_unique_in_any_case<B: Backend>(b: &B) {
    let s = b.store();
    let id = user(s, "Alice").await;
    let again = s
        .create_account(NewAccount {
            username: "aLICE".into(),
            email: None,
            password: "another password".into(),
            display_name: None,
            role: Role::User,
            bot: false,
        })
        .await;
    assert_eq!(kind(again), ErrorKind::Conflict);
    let found = s
        .accounts_by_usernames(&["ALICE", "alice", "nobody"])
        .await
        .unwrap();
    assert_eq!(found.iter().map(|a| a.id).collect::<Vec<_>>(), vec![id, id]);
    assert_eq!(
        found[0].username, "Alice",
        "the username keeps the case it was registered with"
    );
}

pub async fn unicode_usernames_normalise<B: Backend>(b: &B) {
    let s = b.store();
    let id = user(s, "Ærøskøbing").await;
    for clash in ["ærøskøbing", "ÆRØSKØBING"] {
        let r = s
            .create_account(NewAccount {
                username: clash.into(),
                email: None,
                password: "another password".into(),
                display_name: None,
                role: Role::User,
                bot: false,
            })
            .await;
        assert_eq!(kind(r), ErrorKind::Conflict, "{clash}");
    }
    // Full-width letters are the same name as their ASCII forms.
    let alice = user(s, "alice").await;
    let imported = s
        .import_accounts(vec![ImportAccount {
            username: "ａｌｉｃｅ".into(),
            display_name: None,
            bot: false,
        }])
        .await
        .unwrap();
    assert!(
        imported.is_empty(),
        "full-width alice must clash with alice"
    );
    // Decomposed input is stored composed and found either way.
    let remy = user(s, "re\u{301}my").await;
    let found = s
        .accounts_by_usernames(&["r\u{e9}my", "RE\u{301}MY", "ærøskøbing"])
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![remy, remy, id]
    );
    assert_eq!(found[0].username, "r\u{e9}my");
    assert_ne!(alice, remy);
}

pub async fn invalid_usernames_are_rejected<B: Backend>(b: &B) {
    let s = b.store();
    for bad in [
        "",
        "has space",
        "x".repeat(31).as_str(),
        "semi;colon",
        ".dot",
    ] {
        let r = s
            .create_account(NewAccount {
                username: bad.into(),
                email: None,
                password: "long enough password".into(),
                display_name: None,
                role: Role::User,
                bot: false,
            })
            .await;
        match r {
            Err(StoreError::Invalid(inv)) => assert_eq!(inv.field, "username", "{bad:?}"),
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
    let r = s
        .import_accounts(vec![
            ImportAccount {
                username: "fine".into(),
                display_name: None,
                bot: false,
            },
            ImportAccount {
                username: "not fine".into(),
                display_name: None,
                bot: false,
            },
        ])
        .await;
    assert_eq!(kind(r), ErrorKind::Invalid);
    assert!(
        s.accounts_by_usernames(&["fine"]).await.unwrap().is_empty(),
        "nothing written"
    );
}

pub async fn passwords_are_checked_and_never_stored_plain<B: Backend>(b: &B) {
    let s = b.store();
    let short = s
        .create_account(NewAccount {
            username: "shorty".into(),
            email: None,
            password: "short".into(),
            display_name: None,
            role: Role::User,
            bot: false,
        })
        .await;
    assert_eq!(kind(short), ErrorKind::Invalid);
    let id = user(s, "bob").await;
    let ok = s
        .verify_password("BOB", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(ok.id, id);
    assert_eq!(
        kind(s.verify_password("bob", "wrong horse battery").await),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        kind(s.verify_password("nobody", "correct horse battery").await),
        ErrorKind::Unauthorized
    );
    let shown = format!("{:?}", s.accounts_by_ids(&[id]).await.unwrap());
    assert!(!shown.contains("correct horse"));
    // Imported accounts have no password at all.
    users(s, "imported", 1).await;
    assert_eq!(
        kind(s.verify_password("imported0", "").await),
        ErrorKind::Unauthorized
    );
}

pub async fn batch_reads_keep_order_and_skip_missing<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "u", 5).await;
    let ask = vec![ids[3], Id(12345), ids[0], ids[4]];
    let got: Vec<Id> = s
        .accounts_by_ids(&ask)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(got, vec![ids[3], ids[0], ids[4]]);
    let counts = s.account_counts(&ask).await.unwrap();
    assert_eq!(counts.len(), 4, "one count per id asked");
    assert!(s.accounts_by_ids(&[]).await.unwrap().is_empty());
}

pub async fn account_counts_answer_more_than_a_batch<B: Backend>(b: &B) {
    // A page of 20 posts with 50 mentions each names 1,000 accounts and their authors.
    let s = b.store();
    let a = users(s, "cnt", 2).await;
    s.follow(a[0], a[1]).await.unwrap();
    let mut ask: Vec<Id> = (0..MAX_BATCH as u64 + 500)
        .map(|i| Id(1_000_000 + i))
        .collect();
    ask.push(a[1]);
    ask.insert(0, a[0]);
    let counts = s.account_counts(&ask).await.unwrap();
    assert_eq!(counts.len(), ask.len(), "one count per id asked, in order");
    assert_eq!(counts[0].following, 1);
    assert_eq!(counts[ask.len() - 1].followers, 1);
    assert_eq!(counts[1].followers, 0, "unknown ids count zero");
}

pub async fn oversized_batches_are_rejected<B: Backend>(b: &B) {
    let s = b.store();
    let many: Vec<Id> = (0..=MAX_BATCH as u64).map(Id).collect();
    assert_eq!(kind(s.accounts_by_ids(&many).await), ErrorKind::Invalid);
    assert_eq!(kind(s.posts_by_ids(&many).await), ErrorKind::Invalid);
    assert_eq!(kind(s.post_counts(&many).await), ErrorKind::Invalid);
    assert_eq!(kind(s.viewer_flags(Id(1), &many).await), ErrorKind::Invalid);
    assert_eq!(
        kind(s.relationships(Id(1), &many).await),
        ErrorKind::Invalid
    );
    let a = users(s, "w", 1).await[0];
    assert_eq!(
        kind(s.followers(a, Window::newest(0)).await),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(s.followers(a, Window::newest(MAX_PAGE + 1)).await),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(s.posts_by_author(a, Window::newest(0)).await),
        ErrorKind::Invalid
    );
}

pub async fn bulk_import_skips_taken_usernames<B: Backend>(b: &B) {
    let s = b.store();
    user(s, "taken").await;
    let batch = ["taken", "fresh1", "fresh2"]
        .into_iter()
        .map(|u| ImportAccount {
            username: u.into(),
            display_name: Some("D".into()),
            bot: true,
        })
        .collect();
    let created = s.import_accounts(batch).await.unwrap();
    let names: Vec<&str> = created.iter().map(|a| a.username.as_str()).collect();
    assert_eq!(names, vec!["fresh1", "fresh2"]);
    assert!(created.iter().all(|a| a.bot && a.display_name == "D"));
    assert_eq!(
        s.accounts_by_usernames(&["fresh2"]).await.unwrap()[0].id,
        created[1].id
    );
}

// ---- apps and tokens ------------------------------------------------------------------

// ---- authorization codes (schema version 3) ---------------------------------------------

pub async fn apps_are_found_by_client_id_and_by_id<B: Backend>(b: &B) {
    let s = b.store();
    let issued = s
        .create_app(NewApp {
            name: "Ivory".into(),
            website: None,
            redirect_uris: vec![
                "com.tapbots.Ivory.19300:/request_token/x".into(),
                "urn:ietf:wg:oauth:2.0:oob".into(),
            ],
            scopes: vec!["read".into(), "write".into(), "follow".into()],
        })
        .await
        .unwrap();
    let by_client = s
        .app_by_client_id(&issued.app.client_id)
        .await
        .unwrap()
        .expect("app by client id");
    assert_eq!(by_client, issued.app);
    let by_id = s
        .app_by_id(issued.app.id)
        .await
        .unwrap()
        .expect("app by id");
    assert_eq!(by_id, issued.app);
    assert_eq!(s.app_by_client_id("unknown").await.unwrap(), None);
    assert_eq!(s.app_by_id(Id(1)).await.unwrap(), None);
}

fn code_for(app: &starling_schema::model::App, account: Id, ttl_ms: u64) -> AuthCode {
    let now = starling_schema::ids::now_ms();
    AuthCode {
        app_id: app.id,
        client_id: app.client_id.clone(),
        account_id: account,
        redirect_uri: "https://app.example/callback".into(),
        scopes: vec!["read".into(), "write".into()],
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGcSFY8Q".into()),
        code_challenge_method: Some("S256".into()),
        created_at_ms: now,
        expires_at_ms: now + ttl_ms,
    }
}

pub async fn auth_codes_are_hashed_single_use_and_expire<B: Backend>(b: &B) {
    let s = b.store();
    let alice = user(s, "codealice").await;
    let app = s
        .create_app(NewApp {
            name: "Elk".into(),
            website: None,
            redirect_uris: vec!["https://app.example/callback".into()],
            scopes: vec!["read".into(), "write".into()],
        })
        .await
        .unwrap()
        .app;
    let wanted = code_for(&app, alice, 600_000);
    let code = s.create_auth_code(wanted.clone()).await.unwrap();
    assert!(code.len() >= 32, "a code is long and random: {code}");
    assert_eq!(s.take_auth_code("not-a-code").await.unwrap(), None);
    assert_eq!(s.take_auth_code(&code).await.unwrap(), Some(wanted));
    assert_eq!(
        s.take_auth_code(&code).await.unwrap(),
        None,
        "a code works once"
    );
    let other = s
        .create_auth_code(code_for(&app, alice, 600_000))
        .await
        .unwrap();
    assert_ne!(other, code, "every code is new");

    let short = s
        .create_auth_code(code_for(&app, alice, 1_000))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        s.take_auth_code(&short).await.unwrap(),
        None,
        "an expired code is refused"
    );
    assert_eq!(
        kind(s.create_auth_code(code_for(&app, Id(42), 600_000)).await),
        ErrorKind::NotFound,
        "a code for a missing account is refused"
    );
}

pub async fn concurrent_exchanges_of_one_code_win_once<B: Backend>(b: &B) {
    let s = b.store();
    let alice = user(s, "racealice").await;
    let app = s
        .create_app(NewApp {
            name: "Phanpy".into(),
            website: None,
            redirect_uris: vec!["https://app.example/callback".into()],
            scopes: vec!["read".into()],
        })
        .await
        .unwrap()
        .app;
    let code = s
        .create_auth_code(code_for(&app, alice, 600_000))
        .await
        .unwrap();
    let takes = futures::future::join_all((0..8).map(|_| {
        let s = s.clone();
        let code = code.clone();
        async move { s.take_auth_code(&code).await.unwrap() }
    }))
    .await;
    assert_eq!(takes.iter().filter(|t| t.is_some()).count(), 1);
}

pub async fn app_secret_verifies_only_itself<B: Backend>(b: &B) {
    let s = b.store();
    let issued = s
        .create_app(NewApp {
            name: "Tusky".into(),
            website: Some("https://tusky.app".into()),
            redirect_uris: vec!["urn:ietf:wg:oauth:2.0:oob".into()],
            scopes: vec!["read".into(), "write".into()],
        })
        .await
        .unwrap();
    let app = s
        .verify_app(&issued.app.client_id, &issued.client_secret)
        .await
        .unwrap();
    assert_eq!(app.name, "Tusky");
    assert_eq!(app.scopes, vec!["read", "write"]);
    assert_eq!(
        kind(s.verify_app(&issued.app.client_id, "wrong").await),
        ErrorKind::Unauthorized
    );
    assert_eq!(
        kind(s.verify_app("unknown", &issued.client_secret).await),
        ErrorKind::Unauthorized
    );
    let blank = s
        .create_app(NewApp {
            name: "  ".into(),
            website: None,
            redirect_uris: vec![],
            scopes: vec![],
        })
        .await;
    assert_eq!(kind(blank), ErrorKind::Invalid);
}

pub async fn tokens_are_hashed_looked_up_and_revoked<B: Backend>(b: &B) {
    let s = b.store();
    let a = user(s, "tok").await;
    let issued = s
        .issue_token(NewToken {
            account_id: Some(a),
            app_id: None,
            scopes: vec!["read".into()],
            expires_at_ms: None,
        })
        .await
        .unwrap();
    assert!(issued.token.len() >= 32);
    assert_ne!(issued.info.token_hash, issued.token, "only a hash is kept");
    let info = s.token(&issued.token).await.unwrap().expect("token works");
    assert_eq!(info.account_id, Some(a));
    assert_eq!(info.scopes, vec!["read"]);
    assert!(s.token("not-a-token").await.unwrap().is_none());
    assert!(
        s.token(&issued.info.token_hash).await.unwrap().is_none(),
        "the hash is not a token"
    );
    assert!(s.revoke_token(&issued.info.token_hash).await.unwrap());
    assert!(s.token(&issued.token).await.unwrap().is_none());
    assert!(!s.revoke_token(&issued.info.token_hash).await.unwrap());
}

pub async fn expired_tokens_are_refused<B: Backend>(b: &B) {
    let s = b.store();
    let a = user(s, "exp").await;
    let past = s
        .issue_token(NewToken {
            account_id: Some(a),
            app_id: None,
            scopes: vec![],
            expires_at_ms: Some(1),
        })
        .await
        .unwrap();
    assert!(s.token(&past.token).await.unwrap().is_none());
    let future = starling_schema::ids::now_ms() + 3_600_000;
    let live = s
        .issue_token(NewToken {
            account_id: Some(a),
            app_id: None,
            scopes: vec![],
            expires_at_ms: Some(future),
        })
        .await
        .unwrap();
    assert!(s.token(&live.token).await.unwrap().is_some());
}

pub async fn tokens_are_listed_per_account<B: Backend>(b: &B) {
    let s = b.store();
    let a = user(s, "lister").await;
    let other = user(s, "other").await;
    for _ in 0..2 {
        s.issue_token(NewToken {
            account_id: Some(a),
            app_id: None,
            scopes: vec![],
            expires_at_ms: None,
        })
        .await
        .unwrap();
    }
    s.issue_token(NewToken {
        account_id: Some(other),
        app_id: None,
        scopes: vec![],
        expires_at_ms: None,
    })
    .await
    .unwrap();
    let app_only = s
        .issue_token(NewToken {
            account_id: None,
            app_id: Some(Id(9)),
            scopes: vec![],
            expires_at_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(
        s.token(&app_only.token).await.unwrap().unwrap().account_id,
        None
    );
    let mine = s.tokens_of(a).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|t| t.account_id == Some(a)));
    s.revoke_token(&mine[0].token_hash).await.unwrap();
    assert_eq!(s.tokens_of(a).await.unwrap().len(), 1);
    let missing = s
        .issue_token(NewToken {
            account_id: Some(Id(77)),
            app_id: None,
            scopes: vec![],
            expires_at_ms: None,
        })
        .await;
    assert_eq!(kind(missing), ErrorKind::NotFound);
}

// ---- follows --------------------------------------------------------------------------

pub async fn follow_is_idempotent_and_counted<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "f", 2).await;
    let (a, c) = (ids[0], ids[1]);
    assert!(s.follow(a, c).await.unwrap());
    assert!(
        !s.follow(a, c).await.unwrap(),
        "second follow changes nothing"
    );
    let counts = s.account_counts(&[a, c]).await.unwrap();
    assert_eq!((counts[0].following, counts[0].followers), (1, 0));
    assert_eq!((counts[1].following, counts[1].followers), (0, 1));
    assert!(s.unfollow(a, c).await.unwrap());
    assert!(
        !s.unfollow(a, c).await.unwrap(),
        "second unfollow changes nothing"
    );
    let counts = s.account_counts(&[a, c]).await.unwrap();
    assert_eq!((counts[0].following, counts[1].followers), (0, 0));
    assert!(
        s.followers(c, Window::newest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn follow_of_self_or_missing_is_rejected<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "s", 1).await[0];
    assert_eq!(kind(s.follow(a, a).await), ErrorKind::Invalid);
    assert_eq!(kind(s.follow(a, Id(4242)).await), ErrorKind::NotFound);
    assert_eq!(kind(s.follow(Id(4242), a).await), ErrorKind::NotFound);
    assert_eq!(s.account_counts(&[a]).await.unwrap()[0].following, 0);
}

pub async fn follows_are_stored_both_ways<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "g", 4).await;
    let (a, x, y, z) = (ids[0], ids[1], ids[2], ids[3]);
    for t in [x, y, z] {
        s.follow(a, t).await.unwrap();
    }
    s.follow(x, a).await.unwrap();
    let following = s.following(a, Window::oldest(10)).await.unwrap();
    assert_eq!(following.items, vec![x, y, z]);
    assert_eq!(following.next, None);
    assert_eq!(
        s.followers(y, Window::oldest(10)).await.unwrap().items,
        vec![a]
    );
    assert_eq!(
        s.followers(a, Window::oldest(10)).await.unwrap().items,
        vec![x]
    );
    let newest_first = s.following(a, Window::newest(10)).await.unwrap();
    assert_eq!(newest_first.items, vec![z, y, x]);
}

pub async fn follower_windows_are_exclusive_and_page<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "h", 8).await;
    let star = ids[0];
    let fans = &ids[1..];
    for f in fans {
        s.follow(*f, star).await.unwrap();
    }
    let page = s.followers(star, Window::oldest(3)).await.unwrap();
    assert_eq!(page.items, fans[..3].to_vec());
    let next = page.next.expect("more to read");
    let page2 = s.followers(star, next).await.unwrap();
    assert_eq!(page2.items, fans[3..6].to_vec());
    let page3 = s.followers(star, page2.next.expect("more")).await.unwrap();
    assert_eq!(page3.items, fans[6..].to_vec());
    assert_eq!(
        page3.next, None,
        "an exactly-full last page still says there is no more"
    );
    let between = Window::oldest(10).above(fans[1]).below(fans[5]);
    assert_eq!(
        s.followers(star, between).await.unwrap().items,
        fans[2..5].to_vec()
    );
    let newest_between = Window::newest(2).above(fans[1]).below(fans[5]);
    assert_eq!(
        s.followers(star, newest_between).await.unwrap().items,
        vec![fans[4], fans[3]]
    );
    let empty = Window::oldest(10).above(fans[3]).below(fans[4]);
    assert!(s.followers(star, empty).await.unwrap().items.is_empty());
}

pub async fn a_20k_follower_account_pages_completely<B: Backend>(b: &B) {
    let s = b.store();
    let star = user(s, "celebrity").await;
    let fans = users(s, "fan", 20_000).await;
    futures::stream::iter(fans.iter().copied())
        .map(|f| async move { s.follow(f, star).await })
        .buffer_unordered(64)
        .for_each(|r| async move {
            assert!(r.expect("follow"));
        })
        .await;
    assert_eq!(
        s.account_counts(&[star]).await.unwrap()[0].followers,
        20_000
    );
    let all = drain(Window::oldest(1_000), |w| s.followers(star, w)).await;
    assert_eq!(all.len(), 20_000);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats");
    let mut expected = fans.clone();
    expected.sort();
    assert_eq!(all, expected);
    let desc = drain(Window::newest(7_000), |w| s.followers(star, w)).await;
    assert_eq!(desc.len(), 20_000);
    assert!(desc.windows(2).all(|w| w[0] > w[1]));
}

pub async fn concurrent_follow_and_unfollow_of_a_pair_stay_consistent<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "c", 2).await;
    let (a, t) = (ids[0], ids[1]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                s.follow(a, t).await
            } else {
                s.unfollow(a, t).await
            }
        }));
    }
    let mut changes: i64 = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        let changed = task.await.expect("task").expect("op");
        if changed {
            changes += if i % 2 == 0 { 1 } else { -1 };
        }
    }
    let rel = s.relationships(a, &[t]).await.unwrap()[0];
    let listed = s.followers(t, Window::oldest(10)).await.unwrap().items;
    let counts = s.account_counts(&[a, t]).await.unwrap();
    assert_eq!(rel.following, listed == vec![a]);
    assert_eq!(counts[0].following, u64::from(rel.following));
    assert_eq!(counts[1].followers, u64::from(rel.following));
    assert_eq!(
        changes,
        i64::from(rel.following),
        "each reported change really happened"
    );
}

pub async fn concurrent_follows_count_exactly<B: Backend>(b: &B) {
    let s = b.store();
    let star = users(s, "k", 1).await[0];
    let fans = users(s, "kf", 100).await;
    let mut tasks = Vec::new();
    for f in fans {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.follow(f, star).await }));
    }
    for task in tasks {
        assert!(task.await.expect("task").expect("follow"));
    }
    assert_eq!(s.account_counts(&[star]).await.unwrap()[0].followers, 100);
}

// ---- posts ----------------------------------------------------------------------------

pub async fn post_round_trip<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "p", 2).await;
    let new = NewPost {
        author_id: ids[0],
        text: "hello #rust @p1 🦀".into(),
        spoiler_text: "cw".into(),
        sensitive: true,
        visibility: Visibility::Unlisted,
        in_reply_to_id: None,
        reblog_of: None,
        mentions: vec![ids[1]],
        hashtags: vec!["rust".into()],
        language: Some("en".into()),
        media_ids: Vec::new(),
        poll: None,
    };
    let created = s.create_post(new.clone(), None).await.unwrap();
    assert!(created.created);
    let p = created.value;
    assert_eq!(p.text, new.text);
    assert_eq!(p.spoiler_text, "cw");
    assert!(p.sensitive);
    assert_eq!(p.visibility, Visibility::Unlisted);
    assert_eq!(p.mentions, vec![ids[1]]);
    assert_eq!(p.hashtags, vec!["rust"]);
    assert_eq!(p.language.as_deref(), Some("en"));
    assert_eq!(p.created_at_ms, p.id.unix_ms());
    assert_eq!(s.posts_by_ids(&[p.id]).await.unwrap(), vec![p.clone()]);
    let counts = s.account_counts(&[ids[0]]).await.unwrap()[0];
    assert_eq!(counts.statuses, 1);
    assert_eq!(counts.last_status_at_ms, Some(p.created_at_ms));
}

pub async fn post_ids_increase_in_creation_order<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "o", 1).await[0];
    let mut last = Id(0);
    for i in 0..50 {
        let p = post(s, a, &format!("n{i}")).await;
        assert!(p.id > last);
        last = p.id;
    }
}

pub async fn idempotency_key_returns_the_first_post<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "i", 2).await;
    let first = s
        .create_post(text(ids[0], "once"), Some("key-1"))
        .await
        .unwrap();
    assert!(first.created);
    let retry = s
        .create_post(text(ids[0], "once (retried)"), Some("key-1"))
        .await
        .unwrap();
    assert_eq!(
        retry,
        Created {
            value: first.value.clone(),
            created: false
        }
    );
    assert_eq!(s.account_counts(&[ids[0]]).await.unwrap()[0].statuses, 1);
    let other_key = s
        .create_post(text(ids[0], "twice"), Some("key-2"))
        .await
        .unwrap();
    assert!(other_key.created);
    let other_author = s
        .create_post(text(ids[1], "mine"), Some("key-1"))
        .await
        .unwrap();
    assert!(other_author.created, "keys are per author");
    let page = s.posts_by_author(ids[0], Window::newest(10)).await.unwrap();
    assert_eq!(page.items.len(), 2);
}

pub async fn concurrent_retries_with_one_key_create_one_post<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "r", 1).await[0];
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.create_post(text(a, "retry storm"), Some("same")).await
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.expect("task").expect("post").value.id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        s.posts_by_author(a, Window::newest(20))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

pub async fn bad_idempotency_keys_are_rejected<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "ik", 1).await[0];
    assert_eq!(
        kind(s.create_post(text(a, "x"), Some("")).await),
        ErrorKind::Invalid
    );
    let long = "k".repeat(300);
    assert_eq!(
        kind(s.create_post(text(a, "x"), Some(&long)).await),
        ErrorKind::Invalid
    );
}

pub async fn post_text_limits_are_enforced<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "t", 1).await[0];
    assert_eq!(
        kind(s.create_post(text(a, ""), None).await),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(s.create_post(text(a, " \n "), None).await),
        ErrorKind::Invalid
    );
    let at_limit = "ü".repeat(500);
    assert!(
        s.create_post(text(a, &at_limit), None).await.is_ok(),
        "500 characters fit"
    );
    let over = "ü".repeat(501);
    match s.create_post(text(a, &over), None).await {
        Err(StoreError::Invalid(inv)) => assert_eq!(inv.field, "status"),
        other => panic!("{other:?}"),
    }
    let huge = "x".repeat(1 << 20);
    assert_eq!(
        kind(s.create_post(text(a, &huge), None).await),
        ErrorKind::Invalid
    );
    let mut reblog = text(a, "");
    reblog.reblog_of = Some(Id(1));
    assert_eq!(kind(s.create_post(reblog, None).await), ErrorKind::Invalid);
    assert_eq!(
        kind(s.create_post(text(Id(999), "ghost"), None).await),
        ErrorKind::NotFound
    );
    assert_eq!(s.account_counts(&[a]).await.unwrap()[0].statuses, 1);
}

pub async fn posts_batch_keeps_order_and_skips_deleted<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "b", 1).await[0];
    let p1 = post(s, a, "one").await;
    let p2 = post(s, a, "two").await;
    let p3 = post(s, a, "three").await;
    s.delete_post(p2.id).await.unwrap();
    let got: Vec<Id> = s
        .posts_by_ids(&[p3.id, Id(5), p2.id, p1.id])
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(got, vec![p3.id, p1.id]);
}

pub async fn delete_tombstones_once<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "d", 1).await[0];
    let p = post(s, a, "regret").await;
    let keep = post(s, a, "keep").await;
    assert_eq!(s.delete_post(p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(
        s.delete_post(p.id).await.unwrap(),
        None,
        "second delete changes nothing"
    );
    assert_eq!(s.delete_post(Id(31337)).await.unwrap(), None);
    assert!(s.posts_by_ids(&[p.id]).await.unwrap().is_empty());
    let page = s.posts_by_author(a, Window::newest(10)).await.unwrap();
    assert_eq!(
        page.items.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![keep.id]
    );
    assert_eq!(s.account_counts(&[a]).await.unwrap()[0].statuses, 1);
    assert_eq!(
        kind(s.favourite(a, p.id).await),
        ErrorKind::NotFound,
        "a deleted post is gone"
    );
}

pub async fn full_scans_walk_every_live_post_and_account_once<B: Backend>(b: &B) {
    let s = b.store();
    let authors = users(s, "scan", 3).await;
    let mut live = HashSet::new();
    let mut deleted = HashSet::new();
    for i in 0..57 {
        let p = post(s, authors[i % 3], &format!("scanned {i}")).await.id;
        if i % 5 == 0 {
            s.delete_post(p).await.unwrap();
            deleted.insert(p);
        } else {
            live.insert(p);
        }
    }
    // Pages of 10, including pages that hold only deleted posts, until the cursor runs out.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_posts(after, 10).await.unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|p| p.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let unique: HashSet<Id> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no post is scanned twice");
    assert_eq!(unique, live, "every live post, no deleted one");
    let mut accounts = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_accounts(after, 2).await.unwrap();
        accounts.extend(page.items.iter().map(|a| a.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    accounts.sort();
    assert_eq!(accounts, authors);
    assert_eq!(kind(s.scan_posts(None, 0).await), ErrorKind::Invalid);
    assert_eq!(
        kind(s.scan_accounts(None, MAX_BATCH + 1).await),
        ErrorKind::Invalid
    );
}

pub async fn author_pages_walk_150_posts_exactly_once<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "w", 1).await[0];
    let mut created = Vec::new();
    for i in 0..150 {
        created.push(post(s, a, &format!("post {i}")).await.id);
    }
    // max_id style: newest first, each page below the last.
    let mut seen = Vec::new();
    let mut window = Window::newest(40);
    loop {
        let page = s.posts_by_author(a, window).await.unwrap();
        seen.extend(page.items.iter().map(|p| p.id));
        match page.next {
            Some(n) => window = n,
            None => break,
        }
    }
    let mut newest_first = created.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    // since_id style: the newest above a cursor.
    let since = s
        .posts_by_author(a, Window::newest(5).above(created[100]))
        .await
        .unwrap();
    let ids: Vec<Id> = since.items.iter().map(|p| p.id).collect();
    assert_eq!(ids, newest_first[..5].to_vec());
    // min_id style: the ones just above a cursor, oldest first.
    let min = s
        .posts_by_author(a, Window::oldest(5).above(created[100]))
        .await
        .unwrap();
    let ids: Vec<Id> = min.items.iter().map(|p| p.id).collect();
    assert_eq!(ids, created[101..106].to_vec());
}

pub async fn replies_link_and_count<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "re", 2).await;
    let parent = post(s, ids[0], "question").await;
    let mut reply = text(ids[1], "answer");
    reply.in_reply_to_id = Some(parent.id);
    let reply = s.create_post(reply, None).await.unwrap().value;
    assert_eq!(reply.in_reply_to_id, Some(parent.id));
    assert_eq!(reply.in_reply_to_account_id, Some(ids[0]));
    assert_eq!(s.post_counts(&[parent.id]).await.unwrap()[0].replies, 1);
    let mut orphan = text(ids[1], "to nothing");
    orphan.in_reply_to_id = Some(Id(404));
    assert_eq!(kind(s.create_post(orphan, None).await), ErrorKind::NotFound);
    s.delete_post(reply.id).await.unwrap();
    assert_eq!(s.post_counts(&[parent.id]).await.unwrap()[0].replies, 0);
}

// ---- favourites and reblogs -------------------------------------------------------------

pub async fn favourites_are_idempotent_counted_and_flagged<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "fv", 3).await;
    let p = post(s, ids[0], "like me").await;
    let other = post(s, ids[0], "not me").await;
    assert!(s.favourite(ids[1], p.id).await.unwrap());
    assert!(!s.favourite(ids[1], p.id).await.unwrap());
    assert!(s.favourite(ids[2], p.id).await.unwrap());
    assert_eq!(
        s.post_counts(&[p.id, other.id]).await.unwrap()[0].favourites,
        2
    );
    let flags = s.viewer_flags(ids[1], &[p.id, other.id]).await.unwrap();
    assert!(flags[0].favourited && !flags[1].favourited);
    assert_eq!(
        s.favourited_by(p.id, Window::oldest(10))
            .await
            .unwrap()
            .items,
        vec![ids[1], ids[2]]
    );
    assert!(s.unfavourite(ids[1], p.id).await.unwrap());
    assert!(!s.unfavourite(ids[1], p.id).await.unwrap());
    assert_eq!(s.post_counts(&[p.id]).await.unwrap()[0].favourites, 1);
    assert!(!s.viewer_flags(ids[1], &[p.id]).await.unwrap()[0].favourited);
    assert_eq!(
        kind(s.favourite(ids[1], Id(8080)).await),
        ErrorKind::NotFound
    );
}

pub async fn reblog_creates_one_wrapper<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "rb", 2).await;
    let p = post(s, ids[0], "share me").await;
    let first = s.reblog(ids[1], p.id).await.unwrap();
    assert!(first.created);
    let w = &first.value;
    assert_eq!(w.reblog_of, Some(p.id));
    assert_eq!(w.author_id, ids[1]);
    assert!(w.text.is_empty());
    assert_eq!(w.visibility, Visibility::Public);
    let again = s.reblog(ids[1], p.id).await.unwrap();
    assert_eq!(
        again,
        Created {
            value: first.value.clone(),
            created: false
        }
    );
    assert_eq!(s.post_counts(&[p.id]).await.unwrap()[0].reblogs, 1);
    assert!(s.viewer_flags(ids[1], &[p.id]).await.unwrap()[0].reblogged);
    let mine = s.posts_by_author(ids[1], Window::newest(5)).await.unwrap();
    assert_eq!(mine.items, vec![first.value.clone()]);
    assert_eq!(
        s.reblogged_by(p.id, Window::oldest(5)).await.unwrap().items,
        vec![ids[1]]
    );
    // Reblogging the wrapper reblogs the original.
    let via_wrapper = s.reblog(ids[0], first.value.id).await.unwrap();
    assert_eq!(via_wrapper.value.reblog_of, Some(p.id));
    assert_eq!(s.post_counts(&[p.id]).await.unwrap()[0].reblogs, 2);
}

pub async fn private_and_direct_posts_cannot_be_reblogged_by_others<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "pv", 2).await;
    let mut private = text(ids[0], "followers only");
    private.visibility = Visibility::Private;
    let private = s.create_post(private, None).await.unwrap().value;
    let mut direct = text(ids[0], "just you");
    direct.visibility = Visibility::Direct;
    let direct = s.create_post(direct, None).await.unwrap().value;
    assert_eq!(
        kind(s.reblog(ids[1], private.id).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(s.reblog(ids[1], direct.id).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(s.reblog(ids[0], direct.id).await),
        ErrorKind::Forbidden
    );
    let own = s.reblog(ids[0], private.id).await.unwrap().value;
    assert_eq!(
        own.visibility,
        Visibility::Private,
        "a self-reblog keeps the audience"
    );
    assert_eq!(kind(s.reblog(ids[1], Id(1)).await), ErrorKind::NotFound);
}

pub async fn unreblog_removes_the_wrapper<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "ur", 2).await;
    let p = post(s, ids[0], "briefly shared").await;
    let w = s.reblog(ids[1], p.id).await.unwrap().value;
    assert_eq!(s.unreblog(ids[1], p.id).await.unwrap(), Some(w.clone()));
    assert_eq!(s.unreblog(ids[1], p.id).await.unwrap(), None);
    assert!(s.posts_by_ids(&[w.id]).await.unwrap().is_empty());
    assert_eq!(s.post_counts(&[p.id]).await.unwrap()[0].reblogs, 0);
    assert!(!s.viewer_flags(ids[1], &[p.id]).await.unwrap()[0].reblogged);
    assert_eq!(s.account_counts(&[ids[1]]).await.unwrap()[0].statuses, 0);
    // Deleting the wrapper directly is the same as unreblogging.
    let w2 = s.reblog(ids[1], p.id).await.unwrap().value;
    assert_ne!(w2.id, w.id, "a new reblog is a new wrapper");
    s.delete_post(w2.id).await.unwrap();
    assert_eq!(s.post_counts(&[p.id]).await.unwrap()[0].reblogs, 0);
    assert!(s.reblog(ids[1], p.id).await.unwrap().created);
}

// ---- blocks and mutes ---------------------------------------------------------------------

pub async fn block_removes_follows_both_ways<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "bl", 2).await;
    let (a, t) = (ids[0], ids[1]);
    s.follow(a, t).await.unwrap();
    s.follow(t, a).await.unwrap();
    assert!(s.block(a, t).await.unwrap());
    assert!(!s.block(a, t).await.unwrap());
    let rel = s.relationships(a, &[t]).await.unwrap()[0];
    assert!(rel.blocking && !rel.following && !rel.followed_by && !rel.blocked_by);
    let counts = s.account_counts(&[a, t]).await.unwrap();
    assert_eq!((counts[0].following, counts[0].followers), (0, 0));
    assert_eq!((counts[1].following, counts[1].followers), (0, 0));
    assert!(s.relationships(t, &[a]).await.unwrap()[0].blocked_by);
}

pub async fn a_block_forbids_following_either_way<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "bf", 2).await;
    let (a, t) = (ids[0], ids[1]);
    s.block(a, t).await.unwrap();
    assert_eq!(kind(s.follow(t, a).await), ErrorKind::Forbidden);
    assert_eq!(kind(s.follow(a, t).await), ErrorKind::Forbidden);
    assert!(s.unblock(a, t).await.unwrap());
    assert!(!s.unblock(a, t).await.unwrap());
    assert!(s.follow(t, a).await.unwrap());
    assert_eq!(kind(s.block(a, a).await), ErrorKind::Invalid);
}

pub async fn mutes_record_their_notification_choice<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "mu", 2).await;
    let (a, t) = (ids[0], ids[1]);
    assert!(s.mute(a, t, false).await.unwrap());
    assert!(!s.mute(a, t, false).await.unwrap());
    let rel = s.relationships(a, &[t]).await.unwrap()[0];
    assert!(rel.muting && !rel.muting_notifications);
    assert!(
        s.mute(a, t, true).await.unwrap(),
        "changing the choice is a change"
    );
    assert!(s.relationships(a, &[t]).await.unwrap()[0].muting_notifications);
    assert!(
        !s.relationships(t, &[a]).await.unwrap()[0].muting,
        "a mute is one-way"
    );
    assert!(s.unmute(a, t).await.unwrap());
    assert!(!s.unmute(a, t).await.unwrap());
    assert!(!s.relationships(a, &[t]).await.unwrap()[0].muting);
}

pub async fn relationships_answer_per_target_in_order<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "rl", 5).await;
    let me = ids[0];
    s.follow(me, ids[1]).await.unwrap();
    s.follow(ids[2], me).await.unwrap();
    s.block(me, ids[3]).await.unwrap();
    s.mute(me, ids[4], true).await.unwrap();
    let rels = s
        .relationships(me, &[ids[4], ids[3], ids[2], ids[1], Id(1)])
        .await
        .unwrap();
    assert_eq!(
        rels.iter().map(|r| r.target).collect::<Vec<_>>(),
        vec![ids[4], ids[3], ids[2], ids[1], Id(1)]
    );
    assert!(rels[0].muting && rels[0].muting_notifications && !rels[0].following);
    assert!(rels[1].blocking);
    assert!(rels[2].followed_by && !rels[2].following);
    assert!(rels[3].following && !rels[3].followed_by);
    assert_eq!(
        rels[4],
        starling_schema::model::Relationship {
            target: Id(1),
            ..Default::default()
        }
    );
}

pub async fn blocks_and_mutes_are_listed<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "li", 4).await;
    s.block(ids[0], ids[2]).await.unwrap();
    s.block(ids[0], ids[1]).await.unwrap();
    s.mute(ids[0], ids[3], false).await.unwrap();
    assert_eq!(
        s.blocks_of(ids[0], Window::oldest(10)).await.unwrap().items,
        vec![ids[1], ids[2]]
    );
    assert_eq!(
        s.mutes_of(ids[0], Window::oldest(10)).await.unwrap().items,
        vec![ids[3]]
    );
    assert!(
        s.blocks_of(ids[1], Window::oldest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

// ---- notifications --------------------------------------------------------------------------

pub async fn notifications_page_newest_first_and_filter_by_kind<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "nt", 31).await;
    let (me, them) = (ids[0], ids[1]);
    let p = post(s, me, "notice me").await;
    let mut made = Vec::new();
    for (i, from) in ids[1..].iter().enumerate() {
        let kind = if i % 3 == 0 {
            NotificationKind::Follow
        } else {
            NotificationKind::Favourite
        };
        let n = s
            .notify(NewNotification {
                account_id: me,
                kind,
                from_account_id: *from,
                post_id: Some(p.id),
            })
            .await
            .unwrap()
            .expect("a new cause notifies");
        assert_eq!(n.account_id, me);
        made.push(n);
    }
    let mut seen = Vec::new();
    let mut window = Window::newest(7);
    loop {
        let page = s.notifications(me, window, None).await.unwrap();
        seen.extend(page.items.iter().map(|n| n.id));
        match page.next {
            Some(n) => window = n,
            None => break,
        }
    }
    let expected: Vec<Id> = made.iter().rev().map(|n| n.id).collect();
    assert_eq!(seen, expected);
    let follows = s
        .notifications(me, Window::newest(4), Some(&[NotificationKind::Follow]))
        .await
        .unwrap();
    assert_eq!(follows.items.len(), 4, "the filter fills the page");
    assert!(
        follows
            .items
            .iter()
            .all(|n| n.kind == NotificationKind::Follow)
    );
    let next = Window {
        limit: 10,
        ..follows.next.expect("more follows")
    };
    let rest = s
        .notifications(me, next, Some(&[NotificationKind::Follow]))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 6);
    assert_eq!(rest.next, None);
    assert!(
        s.notifications(them, Window::newest(10), None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn notifications_are_private_and_can_be_cleared<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "nc", 2).await;
    let n1 = s
        .notify(NewNotification {
            account_id: ids[0],
            kind: NotificationKind::Mention,
            from_account_id: ids[1],
            post_id: None,
        })
        .await
        .unwrap()
        .unwrap();
    let n2 = s
        .notify(NewNotification {
            account_id: ids[0],
            kind: NotificationKind::Reblog,
            from_account_id: ids[1],
            post_id: None,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.notification(ids[0], n1.id).await.unwrap(),
        Some(n1.clone())
    );
    assert_eq!(
        s.notification(ids[1], n1.id).await.unwrap(),
        None,
        "not someone else's"
    );
    assert!(s.dismiss_notification(ids[0], n1.id).await.unwrap());
    assert!(!s.dismiss_notification(ids[0], n1.id).await.unwrap());
    assert_eq!(s.clear_notifications(ids[0]).await.unwrap(), 1);
    assert!(s.notification(ids[0], n2.id).await.unwrap().is_none());
    assert_eq!(s.clear_notifications(ids[0]).await.unwrap(), 0);
    let missing = s
        .notify(NewNotification {
            account_id: Id(5),
            kind: NotificationKind::Follow,
            from_account_id: ids[1],
            post_id: None,
        })
        .await;
    assert_eq!(kind(missing), ErrorKind::NotFound);
}

pub async fn notify_is_once_per_cause<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "no", 3).await;
    let p = post(s, ids[0], "liked twice").await;
    let fav = |from: Id, post: Option<Id>| NewNotification {
        account_id: ids[0],
        kind: NotificationKind::Favourite,
        from_account_id: from,
        post_id: post,
    };
    let first = s.notify(fav(ids[1], Some(p.id))).await.unwrap();
    assert!(first.is_some());
    assert_eq!(s.notify(fav(ids[1], Some(p.id))).await.unwrap(), None);
    // Another actor, another kind or no post is another cause.
    assert!(s.notify(fav(ids[2], Some(p.id))).await.unwrap().is_some());
    assert!(s.notify(fav(ids[1], None)).await.unwrap().is_some());
    let reblog = NewNotification {
        kind: NotificationKind::Reblog,
        ..fav(ids[1], Some(p.id))
    };
    assert!(s.notify(reblog).await.unwrap().is_some());
    let all = s
        .notifications(ids[0], Window::newest(10), None)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 4);
    // Cleared, a redelivered cause still does not come back.
    s.clear_notifications(ids[0]).await.unwrap();
    assert_eq!(s.notify(fav(ids[1], Some(p.id))).await.unwrap(), None);
}

// ---- conversations, public and tag timelines, who shuns whom ----------------------------------

pub async fn replies_are_listed_under_their_parent<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "rl", 2).await;
    let root = post(s, ids[0], "root").await;
    let mut replies = Vec::new();
    for i in 0..5 {
        let r = s
            .create_post(
                NewPost {
                    in_reply_to_id: Some(root.id),
                    ..text(ids[i % 2], &format!("reply {i}"))
                },
                None,
            )
            .await
            .unwrap()
            .value;
        replies.push(r.id);
    }
    let nested = s
        .create_post(
            NewPost {
                in_reply_to_id: Some(replies[0]),
                ..text(ids[0], "nested")
            },
            None,
        )
        .await
        .unwrap()
        .value;
    let mut seen = Vec::new();
    let mut window = Window::oldest(2);
    loop {
        let page = s.replies_to(root.id, window).await.unwrap();
        seen.extend(page.items);
        match page.next {
            Some(next) => window = next,
            None => break,
        }
    }
    assert_eq!(seen, replies, "direct replies only, oldest first");
    assert_eq!(
        s.replies_to(replies[0], Window::newest(10))
            .await
            .unwrap()
            .items,
        vec![nested.id]
    );
    s.delete_post(replies[2]).await.unwrap();
    let left = s
        .replies_to(root.id, Window::newest(10))
        .await
        .unwrap()
        .items;
    assert!(!left.contains(&replies[2]), "a deleted reply is not listed");
    assert_eq!(left.len(), 4);
}

pub async fn public_and_tag_timelines_list_public_originals<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "pt", 2).await;
    let with = |vis: Visibility, body: &str, tags: &[&str]| NewPost {
        visibility: vis,
        hashtags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..text(ids[0], body)
    };
    let mut public = Vec::new();
    for i in 0..7 {
        let tags: &[&str] = if i % 2 == 0 { &["rust", "fjall"] } else { &[] };
        let p = s
            .create_post(with(Visibility::Public, &format!("public {i}"), tags), None)
            .await
            .unwrap()
            .value;
        public.push(p.id);
    }
    for vis in [
        Visibility::Unlisted,
        Visibility::Private,
        Visibility::Direct,
    ] {
        s.create_post(with(vis, "not listed", &["rust"]), None)
            .await
            .unwrap();
    }
    s.reblog(ids[1], public[0]).await.unwrap();
    let mut seen = Vec::new();
    let mut window = Window::newest(3);
    loop {
        let page = s.public_posts(window).await.unwrap();
        seen.extend(page.items);
        match page.next {
            Some(next) => window = next,
            None => break,
        }
    }
    let newest_first: Vec<Id> = public.iter().rev().copied().collect();
    assert_eq!(seen, newest_first, "public originals only, newest first");
    let tagged = s.tagged_posts("rust", Window::newest(10)).await.unwrap();
    let expected: Vec<Id> = [6, 4, 2, 0].iter().map(|i| public[*i]).collect();
    assert_eq!(tagged.items, expected);
    assert_eq!(tagged.next, None);
    let since = s
        .tagged_posts("rust", Window::oldest(2).above(public[0]))
        .await
        .unwrap();
    assert_eq!(since.items, vec![public[2], public[4]]);
    assert!(
        s.tagged_posts("nothing", Window::newest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    s.delete_post(public[6]).await.unwrap();
    assert_eq!(
        s.public_posts(Window::newest(1)).await.unwrap().items,
        vec![public[5]]
    );
    assert_eq!(
        s.tagged_posts("fjall", Window::newest(1))
            .await
            .unwrap()
            .items,
        vec![public[4]]
    );
}

pub async fn blockers_and_muters_are_listed<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "bm", 4).await;
    let target = ids[0];
    s.block(ids[1], target).await.unwrap();
    s.block(ids[2], target).await.unwrap();
    s.mute(ids[3], target, true).await.unwrap();
    s.mute(ids[2], target, false).await.unwrap();
    let blockers = s.blocked_by(target, Window::oldest(10)).await.unwrap();
    assert_eq!(blockers.items, vec![ids[1], ids[2]]);
    let muters = s.muted_by(target, Window::oldest(10)).await.unwrap();
    assert_eq!(muters.items, vec![ids[2], ids[3]]);
    s.unblock(ids[1], target).await.unwrap();
    s.unmute(ids[3], target).await.unwrap();
    assert_eq!(
        s.blocked_by(target, Window::oldest(10))
            .await
            .unwrap()
            .items,
        vec![ids[2]]
    );
    assert_eq!(
        s.muted_by(target, Window::oldest(10)).await.unwrap().items,
        vec![ids[2]]
    );
    assert!(
        s.blocked_by(ids[1], Window::oldest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

// ---- the store as a whole -----------------------------------------------------------------

pub async fn a_reopened_store_keeps_its_data<B: Backend>(b: B) -> B {
    let s = b.store();
    let a = user(s, "persist").await;
    let t = users(s, "pf", 1).await[0];
    s.follow(t, a).await.unwrap();
    let p = post(s, a, "still here").await;
    s.favourite(t, p.id).await.unwrap();
    let token = s
        .issue_token(NewToken {
            account_id: Some(a),
            app_id: None,
            scopes: vec![],
            expires_at_ms: None,
        })
        .await
        .unwrap();
    let b = b.reopen().await;
    let s = b.store();
    assert_eq!(
        s.accounts_by_usernames(&["persist"]).await.unwrap()[0].id,
        a
    );
    assert_eq!(
        s.account_by_email("PERSIST@example.org")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(a)
    );
    assert_eq!(
        s.verify_password("persist", "correct horse battery")
            .await
            .unwrap()
            .id,
        a
    );
    assert_eq!(
        s.followers(a, Window::oldest(5)).await.unwrap().items,
        vec![t]
    );
    assert_eq!(s.posts_by_ids(&[p.id]).await.unwrap(), vec![p.clone()]);
    assert_eq!(s.post_counts(&[p.id]).await.unwrap()[0].favourites, 1);
    assert_eq!(
        s.token(&token.token).await.unwrap().map(|i| i.account_id),
        Some(Some(a))
    );
    let pending = s.outbox_push(b"unpublished".to_vec()).await.unwrap();
    let b = b.reopen().await;
    let s = b.store();
    assert_eq!(
        s.outbox_peek(5).await.unwrap(),
        vec![(pending, b"unpublished".to_vec())]
    );
    let after = post(s, a, "new after restart").await;
    assert!(after.id > p.id, "ids keep increasing across a restart");
    b
}

pub async fn outbox_keeps_events_in_order_until_removed<B: Backend>(b: &B) {
    let s = b.store();
    assert!(s.outbox_peek(10).await.unwrap().is_empty());
    let mut ids = Vec::new();
    for i in 0..5u8 {
        ids.push(s.outbox_push(vec![i; 3]).await.unwrap());
    }
    let waiting = s.outbox_peek(3).await.unwrap();
    assert_eq!(
        waiting.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids[..3].to_vec()
    );
    assert_eq!(waiting[1].1, vec![1, 1, 1]);
    s.outbox_remove(ids[0]).await.unwrap();
    s.outbox_remove(ids[0]).await.unwrap();
    s.outbox_remove(ids[2]).await.unwrap();
    let left: Vec<Id> = s
        .outbox_peek(10)
        .await
        .unwrap()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(left, vec![ids[1], ids[3], ids[4]]);
}

pub async fn ping_answers<B: Backend>(b: &B) {
    b.store().ping().await.unwrap();
}

pub async fn windows_order_matches_cursor_semantics<B: Backend>(b: &B) {
    let s = b.store();
    let a = users(s, "cs", 1).await[0];
    let ps: Vec<Id> = {
        let mut v = Vec::new();
        for i in 0..10 {
            v.push(post(s, a, &format!("{i}")).await.id);
        }
        v
    };
    let w = Window {
        above: Some(ps[2]),
        below: Some(ps[7]),
        order: Order::NewestFirst,
        limit: 10,
    };
    let got: Vec<Id> = s
        .posts_by_author(a, w)
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(got, vec![ps[6], ps[5], ps[4], ps[3]]);
    let w = Window {
        order: Order::OldestFirst,
        ..w
    };
    let got: Vec<Id> = s
        .posts_by_author(a, w)
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(got, vec![ps[3], ps[4], ps[5], ps[6]]);
    let at_max = Window::newest(10).above(Id::MAX);
    assert!(s.posts_by_author(a, at_max).await.unwrap().items.is_empty());
    let below_zero = Window::newest(10).below(Id(0));
    assert!(
        s.posts_by_author(a, below_zero)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

// ---- admin ------------------------------------------------------------------------------

pub async fn moderation_suspends_and_changes_roles<B: Backend>(b: &B) {
    let s = b.store();
    let a = user(s, "moderated").await;
    let got = s.moderate_account(a, Some(true), None).await.unwrap();
    assert!(got.suspended);
    assert_eq!(got.role, Role::User);
    let got = s
        .moderate_account(a, None, Some(Role::Admin))
        .await
        .unwrap();
    assert!(got.suspended, "None leaves suspension as it was");
    assert_eq!(got.role, Role::Admin);
    let stored = s.accounts_by_ids(&[a]).await.unwrap();
    assert!(stored[0].suspended);
    assert_eq!(stored[0].role, Role::Admin);
    let back = s.moderate_account(a, Some(false), None).await.unwrap();
    assert!(!back.suspended);
    assert_eq!(
        kind(s.moderate_account(Id(12345), Some(true), None).await),
        ErrorKind::NotFound
    );
}

pub async fn imported_follows_are_counted_once<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "imp", 4).await;
    let (a, bb, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    s.block(d, a).await.unwrap();
    let edges = vec![
        (a, bb),
        (a, c),
        (bb, c),
        (c, a),
        (a, a),
        (a, bb),
        (a, d),
        (d, a),
    ];
    assert_eq!(s.import_follows(edges.clone()).await.unwrap(), 4);
    // Run again: nothing new, counts unchanged.
    assert_eq!(s.import_follows(edges).await.unwrap(), 0);
    let counts = s.account_counts(&[a, bb, c, d]).await.unwrap();
    assert_eq!((counts[0].following, counts[0].followers), (2, 1));
    assert_eq!((counts[1].following, counts[1].followers), (1, 1));
    assert_eq!((counts[2].following, counts[2].followers), (1, 2));
    assert_eq!((counts[3].following, counts[3].followers), (0, 0));
    let followers_of_c = s.followers(c, Window::oldest(10)).await.unwrap().items;
    assert_eq!(followers_of_c.len(), 2);
    assert!(followers_of_c.contains(&a) && followers_of_c.contains(&bb));
    assert_eq!(
        kind(s.import_follows(vec![(a, Id(999_999))]).await),
        ErrorKind::NotFound
    );
    let too_many = vec![(a, bb); MAX_PAGE + 1];
    assert_eq!(kind(s.import_follows(too_many).await), ErrorKind::Invalid);
}

pub async fn accounts_are_found_by_email_in_any_case<B: Backend>(b: &B) {
    let s = b.store();
    let mk = |username: &str, email: Option<&str>| NewAccount {
        username: username.into(),
        email: email.map(Into::into),
        password: "correct horse battery".into(),
        display_name: None,
        role: Role::User,
        bot: false,
    };
    let bea = s
        .create_account(mk("bea", Some("Bea.Smith@Example.ORG")))
        .await
        .unwrap();
    for asked in [
        "bea.smith@example.org",
        "BEA.SMITH@EXAMPLE.ORG",
        " Bea.Smith@example.org\t",
    ] {
        let found = s.account_by_email(asked).await.unwrap();
        assert_eq!(found.map(|a| a.id), Some(bea.id), "{asked:?}");
    }
    for unknown in ["nobody@example.org", "bea@example.org", "", "   "] {
        assert!(
            s.account_by_email(unknown).await.unwrap().is_none(),
            "{unknown:?} is no one's address"
        );
    }
    // One address, one account, whatever its case; the refused account is not created.
    let taken = s
        .create_account(mk("bea_two", Some("BEA.smith@example.org")))
        .await;
    assert_eq!(kind(taken), ErrorKind::Conflict);
    assert!(
        s.accounts_by_usernames(&["bea_two"])
            .await
            .unwrap()
            .is_empty()
    );
    // No address is no address: any number of accounts may have none.
    s.create_account(mk("noaddr1", None)).await.unwrap();
    s.create_account(mk("noaddr2", None)).await.unwrap();
    assert_eq!(
        kind(s.create_account(mk("noaddr3", Some(" "))).await),
        ErrorKind::Invalid
    );
    // A username refused keeps the address free for the next try.
    let clash = s.create_account(mk("BEA", Some("other@example.org"))).await;
    assert_eq!(kind(clash), ErrorKind::Conflict);
    assert!(
        s.account_by_email("other@example.org")
            .await
            .unwrap()
            .is_none()
    );
    // Deleting the account frees its address.
    assert!(s.delete_account(bea.id).await.unwrap());
    assert!(
        s.account_by_email("bea.smith@example.org")
            .await
            .unwrap()
            .is_none()
    );
    let again = s
        .create_account(mk("bea_again", Some("bea.smith@example.org")))
        .await
        .unwrap();
    assert_eq!(
        s.account_by_email("Bea.Smith@example.org")
            .await
            .unwrap()
            .map(|a| a.username),
        Some("bea_again".to_owned())
    );
    assert_ne!(again.id, bea.id);
}

pub async fn deleting_an_account_removes_it_everywhere_in_the_store<B: Backend>(b: &B) {
    let s = b.store();
    let gone = user(s, "leaving").await;
    let ids = users(s, "stays", 2).await;
    let (x, y) = (ids[0], ids[1]);
    s.follow(gone, x).await.unwrap();
    s.follow(y, gone).await.unwrap();
    s.follow(x, y).await.unwrap();
    let issued = s
        .issue_token(NewToken {
            account_id: Some(gone),
            app_id: None,
            scopes: vec!["read".into()],
            expires_at_ms: None,
        })
        .await
        .unwrap();
    assert!(s.delete_account(gone).await.unwrap());
    assert!(
        !s.delete_account(gone).await.unwrap(),
        "a second delete finds nothing"
    );
    assert!(s.accounts_by_ids(&[gone]).await.unwrap().is_empty());
    assert!(
        s.accounts_by_usernames(&["leaving"])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.token(&issued.token).await.unwrap().is_none());
    assert_eq!(
        kind(s.verify_password("leaving", "correct horse battery").await),
        ErrorKind::Unauthorized
    );
    let counts = s.account_counts(&[x, y]).await.unwrap();
    assert_eq!((counts[0].followers, counts[0].following), (0, 1));
    assert_eq!((counts[1].followers, counts[1].following), (1, 0));
    assert_eq!(
        s.followers(x, Window::oldest(10)).await.unwrap().items,
        vec![]
    );
    assert_eq!(
        s.following(y, Window::oldest(10)).await.unwrap().items,
        vec![]
    );
    // The username is free again.
    user(s, "leaving").await;
}

pub async fn account_counts_can_be_set_from_a_recount<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "recount", 2).await;
    s.follow(ids[0], ids[1]).await.unwrap();
    let want = starling_schema::model::AccountCounts {
        followers: 7,
        following: 0,
        statuses: 3,
        last_status_at_ms: None,
    };
    s.set_account_counts(ids[0], want).await.unwrap();
    let got = s.account_counts(&[ids[0]]).await.unwrap()[0];
    assert_eq!((got.followers, got.following, got.statuses), (7, 0, 3));
    // Later changes count from the new values.
    s.unfollow(ids[0], ids[1]).await.unwrap();
    s.follow(ids[1], ids[0]).await.unwrap();
    let got = s.account_counts(&[ids[0]]).await.unwrap()[0];
    assert_eq!((got.followers, got.following), (8, 0));
    assert_eq!(
        kind(s.set_account_counts(Id(424_242), want).await),
        ErrorKind::NotFound
    );
}

// ---- start-up state: markers, filters, announcements ------------------------------------

pub async fn markers_are_per_user_and_count_their_updates<B: Backend>(b: &B) {
    use starling_schema::startup::MarkerTimeline;
    let s = b.store();
    let ids = users(s, "mk", 2).await;
    assert!(s.markers(ids[0]).await.unwrap().is_empty());
    let m1 = s
        .set_marker(ids[0], MarkerTimeline::Home, Id(100))
        .await
        .unwrap();
    assert_eq!((m1.last_read_id, m1.version), (Id(100), 1));
    let m2 = s
        .set_marker(ids[0], MarkerTimeline::Home, Id(200))
        .await
        .unwrap();
    assert_eq!((m2.last_read_id, m2.version), (Id(200), 2));
    assert!(m2.updated_at_ms >= m1.updated_at_ms);
    s.set_marker(ids[0], MarkerTimeline::Notifications, Id(7))
        .await
        .unwrap();
    let all = s.markers(ids[0]).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], m2, "home first, as stored");
    assert_eq!(
        (all[1].timeline, all[1].last_read_id, all[1].version),
        (MarkerTimeline::Notifications, Id(7), 1)
    );
    assert!(s.markers(ids[1]).await.unwrap().is_empty(), "per user");
    // Concurrent updates each count.
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let s = s.clone();
            let me = ids[1];
            tokio::spawn(async move {
                s.set_marker(me, MarkerTimeline::Home, Id(1000 + i))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut versions: Vec<u64> = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap().version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
    assert_eq!(s.markers(ids[1]).await.unwrap()[0].version, 8);
}

pub async fn filters_round_trip_replace_and_refuse_bad_drafts<B: Backend>(b: &B) {
    use starling_schema::startup::{
        FilterAction, FilterContext, FilterDraft, KeywordDraft, MAX_FILTER_KEYWORDS, StatusDraft,
    };
    let s = b.store();
    let ids = users(s, "fl", 2).await;
    let draft = FilterDraft {
        id: None,
        title: " Spoilers ".into(),
        context: vec![
            FilterContext::Public,
            FilterContext::Home,
            FilterContext::Home,
        ],
        action: FilterAction::Hide,
        expires_at_ms: Some(4_000_000_000_000),
        keywords: vec![
            KeywordDraft {
                id: None,
                keyword: "finale".into(),
                whole_word: true,
            },
            KeywordDraft {
                id: None,
                keyword: "ending".into(),
                whole_word: false,
            },
        ],
        statuses: vec![StatusDraft {
            id: None,
            status_id: Id(42),
        }],
    };
    let f = s.save_filter(ids[0], draft.clone()).await.unwrap();
    assert_eq!(f.title, "Spoilers");
    assert_eq!(f.context, vec![FilterContext::Home, FilterContext::Public]);
    assert_eq!(f.keywords.len(), 2);
    assert_ne!(f.keywords[0].id, f.keywords[1].id);
    assert_eq!(f.statuses[0].status_id, Id(42));
    assert_eq!(s.filters_of(ids[0]).await.unwrap(), vec![f.clone()]);
    assert!(s.filters_of(ids[1]).await.unwrap().is_empty(), "per user");

    // Replace: keep one keyword by id, drop the other, add one.
    let replaced = s
        .save_filter(
            ids[0],
            FilterDraft {
                id: Some(f.id),
                action: FilterAction::Warn,
                keywords: vec![
                    KeywordDraft {
                        id: Some(f.keywords[0].id),
                        keyword: "finale".into(),
                        whole_word: false,
                    },
                    KeywordDraft {
                        id: None,
                        keyword: "twist".into(),
                        whole_word: true,
                    },
                ],
                statuses: vec![],
                ..draft.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(replaced.id, f.id);
    assert_eq!(replaced.action, FilterAction::Warn);
    assert_eq!(replaced.keywords[0].id, f.keywords[0].id);
    assert!(!replaced.keywords[0].whole_word);
    assert_eq!(replaced.keywords[1].keyword, "twist");
    assert!(replaced.statuses.is_empty());
    assert_eq!(s.filters_of(ids[0]).await.unwrap(), vec![replaced.clone()]);

    // Someone else's filter, an unknown keyword id, bad drafts.
    let other = FilterDraft {
        id: Some(f.id),
        ..draft.clone()
    };
    assert_eq!(
        kind(s.save_filter(ids[1], other).await),
        ErrorKind::NotFound
    );
    let stray = FilterDraft {
        id: Some(f.id),
        keywords: vec![KeywordDraft {
            id: Some(Id(1)),
            keyword: "x".into(),
            whole_word: false,
        }],
        ..draft.clone()
    };
    assert_eq!(
        kind(s.save_filter(ids[0], stray).await),
        ErrorKind::NotFound
    );
    let blank = FilterDraft {
        title: "  ".into(),
        ..draft.clone()
    };
    assert_eq!(kind(s.save_filter(ids[0], blank).await), ErrorKind::Invalid);
    let no_context = FilterDraft {
        context: vec![],
        ..draft.clone()
    };
    assert_eq!(
        kind(s.save_filter(ids[0], no_context).await),
        ErrorKind::Invalid
    );
    let huge = FilterDraft {
        keywords: (0..=MAX_FILTER_KEYWORDS)
            .map(|i| KeywordDraft {
                id: None,
                keyword: format!("k{i}"),
                whole_word: false,
            })
            .collect(),
        ..draft.clone()
    };
    assert_eq!(kind(s.save_filter(ids[0], huge).await), ErrorKind::Invalid);
    assert_eq!(
        s.filters_of(ids[0]).await.unwrap(),
        vec![replaced.clone()],
        "unchanged"
    );

    assert!(!s.delete_filter(ids[1], f.id).await.unwrap(), "not theirs");
    assert!(s.delete_filter(ids[0], f.id).await.unwrap());
    assert!(!s.delete_filter(ids[0], f.id).await.unwrap());
    assert!(s.filters_of(ids[0]).await.unwrap().is_empty());
}

pub async fn announcements_are_listed_dismissed_and_deleted<B: Backend>(b: &B) {
    use starling_schema::startup::NewAnnouncement;
    let s = b.store();
    let ids = users(s, "an", 2).await;
    let new = |text: &str| NewAnnouncement {
        text: text.into(),
        starts_at_ms: None,
        ends_at_ms: None,
        all_day: false,
    };
    let a1 = s
        .create_announcement(new("maintenance tonight"))
        .await
        .unwrap();
    let a2 = s.create_announcement(new("welcome")).await.unwrap();
    let listed: Vec<Id> = s
        .announcements()
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, vec![a2.id, a1.id], "newest first");
    assert_eq!(
        kind(s.create_announcement(new(" ")).await),
        ErrorKind::Invalid
    );
    let backwards = NewAnnouncement {
        starts_at_ms: Some(2_000),
        ends_at_ms: Some(1_000),
        ..new("x")
    };
    assert_eq!(
        kind(s.create_announcement(backwards).await),
        ErrorKind::Invalid
    );

    assert!(s.dismiss_announcement(ids[0], a1.id).await.unwrap());
    assert!(
        !s.dismiss_announcement(ids[0], a1.id).await.unwrap(),
        "once"
    );
    assert_eq!(
        kind(s.dismiss_announcement(ids[0], Id(12345)).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        s.dismissed_announcements(ids[0]).await.unwrap(),
        vec![a1.id]
    );
    assert!(s.dismissed_announcements(ids[1]).await.unwrap().is_empty());

    assert!(s.delete_announcement(a1.id).await.unwrap());
    assert!(!s.delete_announcement(a1.id).await.unwrap());
    let listed: Vec<Id> = s
        .announcements()
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(listed, vec![a2.id]);
}

/// Instantiate every case above as a `#[tokio::test]` for one backend. `$make` is an async
/// fn returning `Option<impl Backend>`; `None` means the backend is not available here and
/// the test says so and passes.
#[macro_export]
macro_rules! conformance_suite {
    ($make:path) => {
        $crate::conformance_suite!(@cases $make;
            account_round_trip, username_is_unique_in_any_case, unicode_usernames_normalise,
            accounts_are_found_by_email_in_any_case,
            invalid_usernames_are_rejected, passwords_are_checked_and_never_stored_plain,
            batch_reads_keep_order_and_skip_missing, oversized_batches_are_rejected,
            account_counts_answer_more_than_a_batch,
            bulk_import_skips_taken_usernames, app_secret_verifies_only_itself,
            tokens_are_hashed_looked_up_and_revoked, expired_tokens_are_refused,
            tokens_are_listed_per_account, follow_is_idempotent_and_counted,
            follow_of_self_or_missing_is_rejected, follows_are_stored_both_ways,
            follower_windows_are_exclusive_and_page, a_20k_follower_account_pages_completely,
            concurrent_follow_and_unfollow_of_a_pair_stay_consistent,
            concurrent_follows_count_exactly, post_round_trip,
            post_ids_increase_in_creation_order, idempotency_key_returns_the_first_post,
            concurrent_retries_with_one_key_create_one_post, bad_idempotency_keys_are_rejected,
            post_text_limits_are_enforced, posts_batch_keeps_order_and_skips_deleted,
            delete_tombstones_once, author_pages_walk_150_posts_exactly_once,
            replies_link_and_count, favourites_are_idempotent_counted_and_flagged,
            reblog_creates_one_wrapper, private_and_direct_posts_cannot_be_reblogged_by_others,
            unreblog_removes_the_wrapper, block_removes_follows_both_ways,
            a_block_forbids_following_either_way, mutes_record_their_notification_choice,
            relationships_answer_per_target_in_order, blocks_and_mutes_are_listed,
            notifications_page_newest_first_and_filter_by_kind,
            notifications_are_private_and_can_be_cleared, notify_is_once_per_cause,
            replies_are_listed_under_their_parent,
            public_and_tag_timelines_list_public_originals, blockers_and_muters_are_listed,
            ping_answers, an_empty_username_names_nobody,
            outbox_keeps_events_in_order_until_removed,
            windows_order_matches_cursor_semantics,
            full_scans_walk_every_live_post_and_account_once,
            // admin
            moderation_suspends_and_changes_roles, imported_follows_are_counted_once,
            deleting_an_account_removes_it_everywhere_in_the_store,
            account_counts_can_be_set_from_a_recount,
            // authorization codes (schema version 3)
            apps_are_found_by_client_id_and_by_id, auth_codes_are_hashed_single_use_and_expire,
            concurrent_exchanges_of_one_code_win_once,
            // start-up state
            markers_are_per_user_and_count_their_updates,
            filters_round_trip_replace_and_refuse_bad_drafts,
            announcements_are_listed_dismissed_and_deleted,
            // web push
            push_subscriptions_are_kept_per_token_and_deleted,
            server_keys_keep_the_first_value_offered,
            // profiles and follow requests (schema version 6)
            profile_edits_are_stored_whole_and_bounded, follow_requests_wait_until_decided,
            blocks_end_follow_requests_and_forbid_them,
            concurrent_decisions_on_one_request_apply_once,
            muted_conversations_are_kept_per_account_and_thread,
            // media attachments (schema version 7)
            media_round_trip_and_update, media_attach_once_to_its_owners_post,
            media_scan_walks_every_upload_once,
            profile_images_are_replaced_and_answered_per_account,
            // lists and marks (schema version 9)
            lists_round_trip_update_and_delete,
            list_members_must_be_followed_and_are_found_by_member,
            bookmarks_and_favourites_are_listed_newest_kept_first,
            pins_are_own_posts_five_at_most_and_leave_with_the_post,
            followed_tags_are_kept_both_ways_and_bounded,
            // edits and polls (schema version 10)
            edits_keep_history_and_follow_hashtags, edits_keep_or_replace_the_poll,
            polls_count_each_account_once, concurrent_votes_count_exactly,
            ended_polls_come_due_once_and_refuse_votes,
            // direct conversations (schema version 11)
            conversations_are_kept_per_participant,
            a_deleted_newest_post_falls_back_or_hides_the_conversation,
            concurrent_posts_leave_the_newest_in_a_view,
            // who to follow (schema version 12)
            dismissed_suggestions_are_kept_per_account_and_listed,
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_reopened_store_keeps_its_data() {
            let Some(backend) = $make().await else { return };
            let backend = $crate::conformance::a_reopened_store_keeps_its_data(backend).await;
            $crate::conformance::Backend::finish(backend).await;
        }
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(backend) = $make().await else { return };
                $crate::conformance::$case(&backend).await;
                $crate::conformance::Backend::finish(backend).await;
            }
        )*
    };
}

// ---- media attachments (schema version 7) ---------------------------------------------

fn upload(account: Id, key: &str) -> starling_schema::media::NewMedia {
    starling_schema::media::NewMedia {
        account_id: account,
        kind: starling_schema::media::MediaKind::Image,
        content_type: "image/png".into(),
        upload_key: key.into(),
        description: Some("a cat".into()),
        focus: None,
        size_bytes: 1234,
    }
}

async fn ready<S: Store>(s: &S, account: Id, key: &str) -> starling_schema::media::MediaAttachment {
    use starling_schema::media::{Dimensions, MediaState};
    let mut m = s.create_media(upload(account, key)).await.unwrap();
    assert_eq!(m.state, MediaState::Processing);
    m.state = MediaState::Ready;
    m.upload_key = None;
    m.file_key = Some(format!("{key}-file"));
    m.meta.original = Some(Dimensions {
        width: 10,
        height: 20,
    });
    s.update_media(m.clone()).await.unwrap();
    m
}

pub async fn media_round_trip_and_update<B: Backend>(b: &B) {
    let s = b.store();
    let alice = user(s, "media_alice").await;
    let m = ready(s, alice, "k1").await;
    let got = s.media_by_ids(&[Id(999), m.id]).await.unwrap();
    assert_eq!(got, vec![m.clone()], "unknown ids are skipped");
    let mut changed = m.clone();
    changed.description = Some("a dog".into());
    s.update_media(changed.clone()).await.unwrap();
    assert_eq!(s.media_by_ids(&[m.id]).await.unwrap(), vec![changed]);
    assert_eq!(
        s.delete_media(m.id).await.unwrap().map(|d| d.id),
        Some(m.id)
    );
    assert!(s.delete_media(m.id).await.unwrap().is_none());
    assert!(s.media_by_ids(&[m.id]).await.unwrap().is_empty());
    assert_eq!(kind(s.update_media(m).await), ErrorKind::NotFound);
}

pub async fn media_attach_once_to_its_owners_post<B: Backend>(b: &B) {
    let s = b.store();
    let alice = user(s, "attach_alice").await;
    let bob = user(s, "attach_bob").await;
    let a1 = ready(s, alice, "a1").await;
    let a2 = ready(s, alice, "a2").await;
    let pending = s.create_media(upload(alice, "a3")).await.unwrap();
    let bobs = ready(s, bob, "b1").await;
    let p1 = post(s, alice, "with pictures").await;
    let p2 = post(s, alice, "another").await;

    // Refusals write nothing: all or none.
    assert_eq!(
        kind(s.attach_media(alice, p1.id, &[a1.id, bobs.id]).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(s.attach_media(alice, p1.id, &[a1.id, pending.id]).await),
        ErrorKind::Invalid,
        "unprocessed media"
    );
    assert_eq!(
        kind(s.attach_media(alice, p1.id, &[Id(424242)]).await),
        ErrorKind::NotFound
    );
    assert!(s.media_of_posts(&[p1.id]).await.unwrap().is_empty());

    let attached = s.attach_media(alice, p1.id, &[a2.id, a1.id]).await.unwrap();
    assert_eq!(attached.len(), 2);
    assert!(attached.iter().all(|m| m.post_id == Some(p1.id)));
    // Retrying changes nothing; another post cannot take them.
    s.attach_media(alice, p1.id, &[a2.id, a1.id]).await.unwrap();
    assert_eq!(
        kind(s.attach_media(alice, p2.id, &[a1.id]).await),
        ErrorKind::Conflict
    );
    let listed: Vec<Id> = s
        .media_of_posts(&[p2.id, p1.id])
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, vec![a2.id, a1.id], "in the order attached");
    // Updating an attached upload's record keeps it attached.
    let mut m = s.media_by_ids(&[a1.id]).await.unwrap().remove(0);
    m.post_id = None;
    s.update_media(m).await.unwrap();
    assert_eq!(
        s.media_by_ids(&[a1.id]).await.unwrap()[0].post_id,
        Some(p1.id)
    );
    // Deleting one takes it off the post.
    s.delete_media(a2.id).await.unwrap();
    let listed: Vec<Id> = s
        .media_of_posts(&[p1.id])
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(listed, vec![a1.id]);
}

pub async fn media_scan_walks_every_upload_once<B: Backend>(b: &B) {
    let s = b.store();
    let alice = user(s, "scan_media").await;
    let mut made = HashSet::new();
    for i in 0..7 {
        made.insert(
            s.create_media(upload(alice, &format!("s{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let mut seen = HashSet::new();
    let mut after = None;
    loop {
        let page = s.scan_media(after, 3).await.unwrap();
        for m in page.items {
            assert!(seen.insert(m.id), "seen twice");
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, made);
}

pub async fn profile_images_are_replaced_and_answered_per_account<B: Backend>(b: &B) {
    use starling_schema::media::ProfileImages;
    let s = b.store();
    let ids = users(s, "pimg", 2).await;
    let none = s.profile_images(&ids).await.unwrap();
    assert_eq!(none, vec![ProfileImages::default(); 2]);
    let first = ProfileImages {
        avatar_key: Some("a1".into()),
        header_key: None,
    };
    assert_eq!(
        s.set_profile_images(ids[0], first.clone()).await.unwrap(),
        ProfileImages::default()
    );
    let second = ProfileImages {
        avatar_key: Some("a2".into()),
        header_key: Some("h2".into()),
    };
    assert_eq!(
        s.set_profile_images(ids[0], second.clone()).await.unwrap(),
        first,
        "the old keys come back for removal"
    );
    assert_eq!(
        s.profile_images(&[ids[1], ids[0]]).await.unwrap(),
        vec![ProfileImages::default(), second]
    );
    assert_eq!(
        kind(
            s.set_profile_images(Id(987_654), ProfileImages::default())
                .await
        ),
        ErrorKind::NotFound
    );
}

// ---- web push (schema version 8) -------------------------------------------------------

fn subscription(account: Id, token_hash: &str, endpoint: &str) -> PushSubscription {
    PushSubscription {
        id: Id(7 << 16),
        account_id: account,
        token_hash: token_hash.into(),
        endpoint: endpoint.into(),
        p256dh: "BKey".into(),
        auth: "secret".into(),
        alerts: Alerts::from_pairs([("mention", true), ("follow", true)]).expect("alerts"),
        policy: PushPolicy::Followed,
        standard: true,
        sealed_token: "sealed".into(),
        created_at_ms: 1_700_000_000_000,
    }
}

pub async fn push_subscriptions_are_kept_per_token_and_deleted<B: Backend>(b: &B) {
    let s = b.store();
    let alice = user(s, "pushalice").await;
    let bob = user(s, "pushbob").await;
    assert!(s.push_subscriptions_of(alice).await.unwrap().is_empty());
    let phone = subscription(alice, "aa11", "https://push.example/phone");
    let laptop = subscription(alice, "bb22", "https://push.example/laptop");
    s.save_push_subscription(phone.clone()).await.unwrap();
    s.save_push_subscription(laptop.clone()).await.unwrap();
    s.save_push_subscription(subscription(bob, "cc33", "https://push.example/bob"))
        .await
        .unwrap();
    let mut mine = s.push_subscriptions_of(alice).await.unwrap();
    mine.sort_by(|a, b| a.token_hash.cmp(&b.token_hash));
    assert_eq!(
        mine,
        vec![phone.clone(), laptop.clone()],
        "round trip, per account"
    );

    // One subscription per token: saving again replaces it.
    let moved = PushSubscription {
        endpoint: "https://push.example/phone-2".into(),
        policy: PushPolicy::None,
        ..phone.clone()
    };
    s.save_push_subscription(moved.clone()).await.unwrap();
    let mine = s.push_subscriptions_of(alice).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine.contains(&moved) && !mine.contains(&phone));

    assert!(s.delete_push_subscription(alice, "aa11").await.unwrap());
    assert!(!s.delete_push_subscription(alice, "aa11").await.unwrap());
    assert!(
        !s.delete_push_subscription(alice, "cc33").await.unwrap(),
        "another account's token hash deletes nothing"
    );
    assert_eq!(s.push_subscriptions_of(alice).await.unwrap(), vec![laptop]);
    assert_eq!(s.push_subscriptions_of(bob).await.unwrap().len(), 1);

    // Deleting an account removes its subscriptions.
    assert!(s.delete_account(alice).await.unwrap());
    assert!(s.push_subscriptions_of(alice).await.unwrap().is_empty());
    assert_eq!(s.push_subscriptions_of(bob).await.unwrap().len(), 1);
}

pub async fn server_keys_keep_the_first_value_offered<B: Backend>(b: &B) {
    let s = b.store().clone();
    let offers = (0..8).map(|i| {
        let s = s.clone();
        async move { s.server_key("vapid", format!("key-{i}")).await.unwrap() }
    });
    let kept: HashSet<String> = futures::future::join_all(offers)
        .await
        .into_iter()
        .collect();
    assert_eq!(kept.len(), 1, "concurrent first offers agree: {kept:?}");
    let first = kept.into_iter().next().unwrap();
    assert_eq!(s.server_key("vapid", "later".into()).await.unwrap(), first);
    assert_eq!(
        s.server_key("other", "its-own".into()).await.unwrap(),
        "its-own",
        "keys are kept per name"
    );
}
