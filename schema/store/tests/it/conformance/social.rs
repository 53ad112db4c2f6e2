//! Conformance cases of schema version 6: profile edits and follow requests.

use starling_schema::model::{Visibility, Window};
use starling_schema::profile::{ProfileField, ProfileUpdate};
use starling_schema::{ErrorKind, Id};
use starling_store::Store;

use super::{Backend, kind, users};

pub async fn profile_edits_are_stored_whole_and_bounded<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "pe", 2).await;
    let a = ids[0];
    let before = s.accounts_by_ids(&[a]).await.unwrap().remove(0);
    assert!(before.profile.discoverable && before.profile.fields.is_empty());
    let fields = vec![
        ProfileField {
            name: "site".into(),
            value: "https://a.example".into(),
        },
        ProfileField {
            name: "pronouns".into(),
            value: "she/her".into(),
        },
    ];
    let edited = s
        .update_profile(
            a,
            ProfileUpdate {
                display_name: Some("Alice".into()),
                note: Some("hello <b>world</b>".into()),
                locked: Some(true),
                bot: Some(true),
                discoverable: Some(false),
                fields: Some(fields.clone()),
                privacy: Some(Visibility::Private),
                sensitive: Some(true),
                language: Some(Some("de".into())),
            },
        )
        .await
        .unwrap();
    let stored = s.accounts_by_ids(&[a]).await.unwrap().remove(0);
    assert_eq!(stored, edited, "what the edit returned is what is stored");
    assert_eq!(stored.display_name, "Alice");
    assert_eq!(stored.note, "hello <b>world</b>");
    assert!(stored.locked && stored.bot && !stored.profile.discoverable);
    assert_eq!(stored.profile.fields, fields);
    assert_eq!(stored.profile.privacy, Visibility::Private);
    assert!(stored.profile.sensitive);
    assert_eq!(stored.profile.language.as_deref(), Some("de"));
    assert_eq!(
        s.accounts_by_usernames(&["pe0"]).await.unwrap()[0],
        stored,
        "every read path sees the profile"
    );
    let scanned = s.scan_accounts(None, 10).await.unwrap();
    assert!(scanned.items.contains(&stored));

    // A refused edit writes nothing, not even its valid parts.
    let refused = s
        .update_profile(
            a,
            ProfileUpdate {
                display_name: Some("Changed".into()),
                note: Some("x".repeat(501)),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(kind(refused), ErrorKind::Invalid);
    let five = (0..5)
        .map(|i| ProfileField {
            name: format!("f{i}"),
            value: "v".into(),
        })
        .collect();
    let refused = s
        .update_profile(
            a,
            ProfileUpdate {
                fields: Some(five),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(kind(refused), ErrorKind::Invalid);
    assert_eq!(s.accounts_by_ids(&[a]).await.unwrap()[0], stored);

    // A partial edit leaves the rest; clearing works.
    let cleared = s
        .update_profile(
            a,
            ProfileUpdate {
                locked: Some(false),
                fields: Some(Vec::new()),
                language: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(!cleared.locked && cleared.profile.fields.is_empty());
    assert_eq!(cleared.profile.language, None);
    assert_eq!(cleared.display_name, "Alice");
    assert_eq!(cleared.profile.privacy, Visibility::Private);
    assert_eq!(s.accounts_by_ids(&[a]).await.unwrap()[0], cleared);
    // Another account is untouched; a missing one is not found.
    let other = s.accounts_by_ids(&[ids[1]]).await.unwrap().remove(0);
    assert!(!other.locked && other.display_name.is_empty());
    assert_eq!(
        kind(
            s.update_profile(Id(12345 << 16), ProfileUpdate::default())
                .await
        ),
        ErrorKind::NotFound
    );
}

pub async fn follow_requests_wait_until_decided<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "fr", 4).await;
    let (locked, x, y, z) = (ids[0], ids[1], ids[2], ids[3]);
    assert!(s.request_follow(x, locked).await.unwrap());
    assert!(
        !s.request_follow(x, locked).await.unwrap(),
        "asking twice is one request"
    );
    assert!(s.request_follow(y, locked).await.unwrap());
    assert!(s.request_follow(z, locked).await.unwrap());
    let rel = s.relationships(x, &[locked]).await.unwrap()[0];
    assert!(rel.requested && !rel.following);
    assert!(!s.relationships(locked, &[x]).await.unwrap()[0].requested);
    let waiting = s.follow_requests(locked, Window::oldest(10)).await.unwrap();
    assert_eq!(waiting.items, vec![x, y, z]);
    let first = s.follow_requests(locked, Window::newest(2)).await.unwrap();
    assert_eq!(first.items, vec![z, y]);
    let rest = s
        .follow_requests(locked, first.next.expect("a next page"))
        .await
        .unwrap();
    assert_eq!(rest.items, vec![x]);
    assert_eq!(
        s.account_counts(&[locked]).await.unwrap()[0].followers,
        0,
        "a request is not a follow"
    );

    // Authorize x: a follow with its counts, and the request gone.
    assert!(s.authorize_follow_request(locked, x).await.unwrap());
    assert!(!s.authorize_follow_request(locked, x).await.unwrap());
    assert!(!s.reject_follow_request(locked, x).await.unwrap());
    let rel = s.relationships(x, &[locked]).await.unwrap()[0];
    assert!(rel.following && !rel.requested);
    assert_eq!(
        s.followers(locked, Window::oldest(10)).await.unwrap().items,
        vec![x]
    );
    let counts = s.account_counts(&[locked, x]).await.unwrap();
    assert_eq!((counts[0].followers, counts[1].following), (1, 1));
    assert!(
        !s.request_follow(x, locked).await.unwrap(),
        "a follower asks for nothing"
    );

    // Reject y: no follow, gone from the list.
    assert!(s.reject_follow_request(locked, y).await.unwrap());
    assert!(!s.relationships(y, &[locked]).await.unwrap()[0].following);
    assert!(!s.relationships(y, &[locked]).await.unwrap()[0].requested);
    // z withdraws by unfollowing.
    assert!(s.unfollow(z, locked).await.unwrap());
    assert!(!s.relationships(z, &[locked]).await.unwrap()[0].requested);
    assert!(
        s.follow_requests(locked, Window::oldest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Nobody asked: nothing to decide.
    assert!(!s.authorize_follow_request(locked, z).await.unwrap());
    assert_eq!(s.account_counts(&[locked]).await.unwrap()[0].followers, 1);
}

pub async fn blocks_end_follow_requests_and_forbid_them<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "fb", 3).await;
    let (locked, x, y) = (ids[0], ids[1], ids[2]);
    assert!(s.request_follow(x, locked).await.unwrap());
    s.block(locked, x).await.unwrap();
    assert!(!s.relationships(x, &[locked]).await.unwrap()[0].requested);
    assert!(
        s.follow_requests(locked, Window::oldest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        kind(s.request_follow(x, locked).await),
        ErrorKind::Forbidden
    );
    assert_eq!(kind(s.request_follow(x, x).await), ErrorKind::Invalid);
    assert_eq!(
        kind(s.request_follow(x, Id(999 << 16)).await),
        ErrorKind::NotFound
    );
    // Deleting the requester drops its request.
    assert!(s.request_follow(y, locked).await.unwrap());
    assert!(s.delete_account(y).await.unwrap());
    assert!(
        s.follow_requests(locked, Window::oldest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn concurrent_decisions_on_one_request_apply_once<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "fc", 9).await;
    let locked = ids[0];
    for (round, &requester) in ids.iter().enumerate().skip(1) {
        assert!(s.request_follow(requester, locked).await.unwrap());
        let decisions: Vec<_> = (0..6)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move {
                    let accept = (i + round) % 2 == 0;
                    let decided = if accept {
                        s.authorize_follow_request(locked, requester).await
                    } else {
                        s.reject_follow_request(locked, requester).await
                    };
                    (accept, decided.unwrap())
                })
            })
            .collect();
        let mut applied = Vec::new();
        for d in decisions {
            let (accept, decided) = d.await.unwrap();
            if decided {
                applied.push(accept);
            }
        }
        assert_eq!(applied.len(), 1, "exactly one decision applies");
        let following = s.relationships(requester, &[locked]).await.unwrap()[0].following;
        assert_eq!(following, applied[0], "the one that applied decides");
    }
    let followers = s
        .followers(locked, Window::oldest(20))
        .await
        .unwrap()
        .items
        .len() as u64;
    assert_eq!(
        s.account_counts(&[locked]).await.unwrap()[0].followers,
        followers,
        "counted once per accepted request"
    );
}

pub async fn muted_conversations_are_kept_per_account_and_thread<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "mc", 2).await;
    let (a, other) = (ids[0], ids[1]);
    let root = super::post(s, a, "the start").await;
    let reply = |author: Id, parent: Id| async move {
        let new = starling_schema::model::NewPost {
            author_id: author,
            text: "a reply".into(),
            in_reply_to_id: Some(parent),
            ..Default::default()
        };
        s.create_post(new, None).await.unwrap().value
    };
    let first = reply(other, root.id).await;
    let deeper = reply(a, first.id).await;
    // Every post of the thread has the same root.
    for p in [&root, &first, &deeper] {
        assert_eq!(starling_store::thread_root(s, p).await.unwrap(), root.id);
    }
    let elsewhere = Id(77 << 16);
    assert_eq!(
        s.muted_conversations(a, &[root.id, elsewhere])
            .await
            .unwrap(),
        vec![false, false]
    );
    assert!(s.mute_conversation(a, root.id).await.unwrap());
    assert!(!s.mute_conversation(a, root.id).await.unwrap(), "once");
    assert_eq!(
        s.muted_conversations(a, &[root.id, elsewhere])
            .await
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(
        s.muted_conversations(other, &[root.id]).await.unwrap(),
        vec![false],
        "a mute is the muter's own"
    );
    assert!(s.unmute_conversation(a, root.id).await.unwrap());
    assert!(!s.unmute_conversation(a, root.id).await.unwrap());
    assert_eq!(
        s.muted_conversations(a, &[root.id]).await.unwrap(),
        vec![false]
    );
    assert_eq!(
        kind(s.mute_conversation(Id(999 << 16), root.id).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            s.muted_conversations(a, &vec![root.id; starling_store::MAX_BATCH + 1])
                .await
        ),
        ErrorKind::Invalid
    );
}
