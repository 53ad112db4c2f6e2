//! Conformance cases for post edits and polls (schema version 10). The backends run with
//! `poll_min_expiration_secs = 1` so that a poll can end within a test.

use std::collections::HashSet;

use starling_schema::ids::now_ms;
use starling_schema::model::{NewPost, Post, Visibility, Window};
use starling_schema::polls::{NewPoll, PostEdit};
use starling_schema::{ErrorKind, Id};
use starling_store::Store;

use super::{Backend, kind, text, users};

fn edit(body: &str, tags: &[&str]) -> PostEdit {
    PostEdit {
        text: body.into(),
        hashtags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..PostEdit::default()
    }
}

fn question(options: &[&str], secs: u64, multiple: bool) -> NewPoll {
    NewPoll {
        options: options.iter().map(|o| (*o).to_owned()).collect(),
        expires_in_secs: secs,
        multiple,
        hide_totals: false,
    }
}

async fn with_poll<S: Store>(s: &S, author: Id, poll: NewPoll) -> Post {
    s.create_post(
        NewPost {
            poll: Some(poll),
            ..text(author, "which one?")
        },
        None,
    )
    .await
    .expect("post with a poll")
    .value
}

async fn tagged<S: Store>(s: &S, tag: &str) -> Vec<Id> {
    s.tagged_posts(tag, Window::newest(10)).await.unwrap().items
}

pub async fn edits_keep_history_and_follow_hashtags<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "ed", 2).await;
    let (me, other) = (ids[0], ids[1]);
    let p = s
        .create_post(
            NewPost {
                hashtags: vec!["old".into()],
                visibility: Visibility::Public,
                ..text(me, "hello #old")
            },
            None,
        )
        .await
        .unwrap()
        .value;
    // Never edited: one version, the post itself.
    let versions = s.post_versions(p.id).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].text, "hello #old");
    assert_eq!(p.edited_at_ms, None);

    let first = s
        .update_post(me, p.id, edit("bye #new", &["new"]))
        .await
        .unwrap();
    assert_eq!(first.text, "bye #new");
    assert_eq!(first.id, p.id);
    assert_eq!(first.created_at_ms, p.created_at_ms);
    let edited_at = first.edited_at_ms.expect("edited_at is set");
    assert!(edited_at > p.created_at_ms);
    let read = s.posts_by_ids(&[p.id]).await.unwrap();
    assert_eq!(read[0].text, "bye #new");
    assert_eq!(read[0].edited_at_ms, Some(edited_at));
    assert_eq!(tagged(s, "old").await, Vec::<Id>::new());
    assert_eq!(tagged(s, "new").await, vec![p.id]);
    // The author's page shows the edit too.
    let page = s.posts_by_author(me, Window::newest(5)).await.unwrap();
    assert_eq!(page.items[0].text, "bye #new");

    let second = s
        .update_post(
            me,
            p.id,
            PostEdit {
                spoiler_text: "cw".into(),
                sensitive: true,
                ..edit("third words", &[])
            },
        )
        .await
        .unwrap();
    assert!(second.edited_at_ms > first.edited_at_ms);
    let versions = s.post_versions(p.id).await.unwrap();
    let texts: Vec<&str> = versions.iter().map(|v| v.text.as_str()).collect();
    assert_eq!(texts, ["hello #old", "bye #new", "third words"]);
    assert_eq!(versions[0].created_at_ms, p.created_at_ms);
    assert!(versions[2].sensitive);
    assert_eq!(versions[2].spoiler_text, "cw");
    assert!(
        versions
            .windows(2)
            .all(|w| w[0].created_at_ms < w[1].created_at_ms)
    );
    assert_eq!(tagged(s, "new").await, Vec::<Id>::new());

    // Someone else's post, a reblog, a bad edit, a deleted post.
    assert_eq!(
        kind(s.update_post(other, p.id, edit("mine now", &[])).await),
        ErrorKind::Forbidden
    );
    let wrapper = s.reblog(other, p.id).await.unwrap().value;
    assert_eq!(
        kind(s.update_post(other, wrapper.id, edit("boost", &[])).await),
        ErrorKind::Forbidden
    );
    assert_eq!(
        kind(s.update_post(me, p.id, edit("   ", &[])).await),
        ErrorKind::Invalid
    );
    assert_eq!(
        s.posts_by_ids(&[p.id]).await.unwrap()[0].text,
        "third words",
        "a refused edit changes nothing"
    );
    s.delete_post(p.id).await.unwrap();
    assert_eq!(
        kind(s.update_post(me, p.id, edit("ghost", &[])).await),
        ErrorKind::NotFound
    );
    assert!(s.post_versions(p.id).await.unwrap().is_empty());
}

pub async fn edits_keep_or_replace_the_poll<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "ep", 2).await;
    let (me, voter) = (ids[0], ids[1]);
    let p = with_poll(s, me, question(&["a", "b"], 3_600, false)).await;
    let poll = p.poll_id.expect("the post names its poll");
    s.vote(voter, poll, &[1]).await.unwrap();
    // The same question keeps the poll and its votes.
    let same = s
        .update_post(
            me,
            p.id,
            PostEdit {
                poll: Some(question(&["a", "b"], 7_200, false)),
                ..edit("which one, really?", &[])
            },
        )
        .await
        .unwrap();
    assert_eq!(same.poll_id, Some(poll));
    assert_eq!(s.polls_by_ids(&[poll]).await.unwrap()[0].voters, 1);
    // Another question is a new poll without votes.
    let other = s
        .update_post(
            me,
            p.id,
            PostEdit {
                poll: Some(question(&["x", "y", "z"], 3_600, false)),
                ..edit("which one now?", &[])
            },
        )
        .await
        .unwrap();
    let new_poll = other.poll_id.expect("a new poll");
    assert_ne!(new_poll, poll);
    let found = s.polls_by_ids(&[new_poll]).await.unwrap();
    assert_eq!(found[0].options, ["x", "y", "z"]);
    assert_eq!((found[0].votes_count(), found[0].voters), (0, 0));
    assert_eq!(found[0].post_id, p.id);
    // No poll any more.
    let none = s
        .update_post(me, p.id, edit("no question", &[]))
        .await
        .unwrap();
    assert_eq!(none.poll_id, None);
    let versions = s.post_versions(p.id).await.unwrap();
    let options: Vec<Option<usize>> = versions
        .iter()
        .map(|v| v.poll_options.as_ref().map(Vec::len))
        .collect();
    assert_eq!(options, [Some(2), Some(2), Some(3), None]);
    // A bad poll refuses the whole edit.
    assert_eq!(
        kind(
            s.update_post(
                me,
                p.id,
                PostEdit {
                    poll: Some(question(&["only one"], 3_600, false)),
                    ..edit("bad", &[])
                },
            )
            .await
        ),
        ErrorKind::Invalid
    );
}

pub async fn polls_count_each_account_once<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "pv", 3).await;
    let (me, a, c) = (ids[0], ids[1], ids[2]);
    let p = with_poll(s, me, question(&["red", "green", "blue"], 3_600, true)).await;
    let poll = p.poll_id.unwrap();
    let voted = s.vote(a, poll, &[2, 0, 2]).await.unwrap();
    assert_eq!(voted.votes_per_option(), [1, 0, 1]);
    assert_eq!(voted.voters, 1);
    s.vote(c, poll, &[0]).await.unwrap();
    // Twice, one's own, unknown choices, none at all: refused, nothing counted.
    assert_eq!(kind(s.vote(a, poll, &[1]).await), ErrorKind::Invalid);
    assert_eq!(kind(s.vote(me, poll, &[1]).await), ErrorKind::Invalid);
    assert_eq!(kind(s.vote(c, poll, &[3]).await), ErrorKind::Invalid);
    assert_eq!(kind(s.vote(c, poll, &[]).await), ErrorKind::Invalid);
    assert_eq!(kind(s.vote(a, Id(12345), &[0]).await), ErrorKind::NotFound);
    let found = &s.polls_by_ids(&[poll, Id(12345)]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].votes_per_option(), [2, 0, 1]);
    assert_eq!((found[0].votes_count(), found[0].voters), (3, 2));
    assert_eq!(
        s.poll_votes(a, &[poll]).await.unwrap(),
        vec![Some(vec![0, 2])]
    );
    assert_eq!(s.poll_votes(me, &[poll]).await.unwrap(), vec![None]);
    let voters = s.poll_voters(poll, Window::oldest(10)).await.unwrap().items;
    let mut expected = vec![a, c];
    expected.sort_unstable();
    assert_eq!(voters, expected);
    // A single-choice poll takes one choice.
    let single = with_poll(s, me, question(&["yes", "no"], 3_600, false)).await;
    assert_eq!(
        kind(s.vote(a, single.poll_id.unwrap(), &[0, 1]).await),
        ErrorKind::Invalid
    );
    // Polls that break the limits are refused with the post.
    for bad in [
        question(&["alone"], 3_600, false),
        question(&["a", "b", "c", "d", "e"], 3_600, false),
        question(&["a", &"x".repeat(51)], 3_600, false),
        question(&["a", "b"], 0, false),
    ] {
        let refused = s
            .create_post(
                NewPost {
                    poll: Some(bad),
                    ..text(me, "bad poll")
                },
                None,
            )
            .await;
        assert_eq!(kind(refused), ErrorKind::Invalid);
    }
}

pub async fn concurrent_votes_count_exactly<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "cv", 21).await;
    let author = ids[0];
    let p = with_poll(s, author, question(&["a", "b"], 3_600, false)).await;
    let poll = p.poll_id.unwrap();
    // Every voter votes twice at once (a double-tap): exactly one of each pair counts.
    let mut tasks = Vec::new();
    for (i, voter) in ids[1..].iter().copied().enumerate() {
        for _ in 0..2 {
            let s = s.clone();
            let choice = (i % 2) as u32;
            tasks.push(tokio::spawn(async move {
                s.vote(voter, poll, &[choice]).await.is_ok()
            }));
        }
    }
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 20, "one vote per account");
    let found = &s.polls_by_ids(&[poll]).await.unwrap()[0];
    assert_eq!(found.votes_per_option(), [10, 10]);
    assert_eq!(found.voters, 20);
    let voters: HashSet<Id> = s
        .poll_voters(poll, Window::oldest(100))
        .await
        .unwrap()
        .items
        .into_iter()
        .collect();
    assert_eq!(voters.len(), 20);
}

pub async fn ended_polls_come_due_once_and_refuse_votes<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "pd", 2).await;
    let (me, voter) = (ids[0], ids[1]);
    let p = with_poll(s, me, question(&["a", "b"], 1, false)).await;
    let poll = p.poll_id.unwrap();
    let later = with_poll(s, me, question(&["a", "b"], 3_600, false)).await;
    let later = later.poll_id.unwrap();
    let due_now = |until| async move {
        s.due_polls(until, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<Id>>()
    };
    // Not due before its end; due from then on, soonest first.
    assert!(
        !due_now(now_ms().saturating_sub(10_000))
            .await
            .contains(&poll)
    );
    let due = due_now(now_ms() + 7_200_000).await;
    let at = |id| due.iter().position(|d| *d == id);
    assert!(at(poll).is_some() && at(later).is_some());
    assert!(at(poll) < at(later));
    // It ends: votes are refused from then on.
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(kind(s.vote(voter, poll, &[0]).await), ErrorKind::Invalid);
    assert!(due_now(now_ms()).await.contains(&poll));
    assert!(!due_now(now_ms()).await.contains(&later));
    // One claim at a time; once finished it is off the list for good.
    assert!(s.claim_poll_expiry(poll, 60_000).await.unwrap());
    assert!(!s.claim_poll_expiry(poll, 60_000).await.unwrap());
    s.finish_poll_expiry(poll).await.unwrap();
    assert!(!due_now(now_ms()).await.contains(&poll));
    assert!(!s.claim_poll_expiry(poll, 60_000).await.unwrap());
}
