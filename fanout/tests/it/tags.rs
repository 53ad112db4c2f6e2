//! Followed hashtags in fan-out: a public post with a followed tag reaches strangers who
//! follow the tag, once, never where blocks or mutes forbid it; and a rebuilt home agrees.

use anyhow::{Result, bail};
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::model::{NewPost, Post, Visibility, Window};
use starling_store::Store;

use super::World;

impl World {
    async fn tagged(&self, author: Id, tags: &[&str], visibility: Visibility) -> Result<Post> {
        let new = NewPost {
            author_id: author,
            text: "tagged".into(),
            visibility,
            hashtags: tags.iter().map(|t| (*t).to_owned()).collect(),
            ..NewPost::default()
        };
        Ok(self.store.create_post(new, None).await?.value)
    }
}

#[tokio::test]
async fn a_followed_tag_brings_public_posts_home_once_and_never_past_a_block() -> Result<()> {
    let w = World::start().await?;
    let [author, fan, follower, muter, blocker, blocked, bystander] =
        w.accounts("tg", 7).await?[..]
    else {
        bail!("seven accounts")
    };
    w.store.follow(follower, author).await?;
    for user in [fan, follower, muter, blocker, blocked] {
        w.store.follow_tag(user, "rust").await?;
        w.store.follow_tag(user, "zig").await?;
    }
    w.store.mute(muter, author, false).await?;
    w.store.block(blocker, author).await?;
    w.store.block(author, blocked).await?;
    // Pages of one, so every follower of the tag is its own page.
    let fanout = w.fanout(1, 1);
    let post = w
        .tagged(author, &["rust", "zig"], Visibility::Public)
        .await?;
    let unlisted = w.tagged(author, &["rust"], Visibility::Unlisted).await?;
    for p in [&post, &unlisted] {
        fanout
            .apply(&Event::PostCreated { post: p.clone() })
            .await?;
    }
    assert_eq!(
        w.timeline(fan).await?,
        vec![post.id],
        "by tag, once, public only"
    );
    assert_eq!(
        w.timeline(follower).await?,
        vec![unlisted.id, post.id],
        "a follower of the author has both, each once"
    );
    for user in [muter, blocker, blocked, bystander] {
        assert!(w.timeline(user).await?.is_empty(), "{user}");
    }
    // A rebuilt home finds the tagged post too.
    w.timelines.clear(fan).await?;
    let home = w.timelines.read(&w.store, fan, Window::newest(100)).await?;
    assert_eq!(home, vec![post.id]);
    // Found deleted while fanned out (its delete applied first): out of their homes again.
    w.store.delete_post(post.id).await?;
    fanout
        .apply(&Event::PostCreated { post: post.clone() })
        .await?;
    assert!(w.timeline(fan).await?.is_empty());
    Ok(())
}
