//! Which thread a post belongs to: the root of its reply chain, the post that replies to
//! nothing. Muting a conversation mutes that root, so every post of the thread, whichever
//! one was muted, is found by the same key.

use std::future::Future;

use crate::Id;

/// How far up a chain of replies the root is looked for; a deeper thread is keyed by the
/// post this many levels up (threads that deep are rare, and the key stays stable).
pub const MAX_THREAD_DEPTH: usize = 64;

/// The root of the thread of `post`, which replies to `in_reply_to`. `parent_of(id)` says
/// what post `id` replies to (`None`: nothing, or `id` is gone). A deleted post in the
/// chain ends the walk there: its id is the root for every post below it.
pub async fn root_of<F, Fut, E>(
    post: Id,
    in_reply_to: Option<Id>,
    mut parent_of: F,
) -> Result<Id, E>
where
    F: FnMut(Id) -> Fut,
    Fut: Future<Output = Result<Option<Id>, E>>,
{
    let mut root = post;
    let mut next = in_reply_to;
    for _ in 0..MAX_THREAD_DEPTH {
        let Some(parent) = next else {
            return Ok(root);
        };
        root = parent;
        next = parent_of(parent).await?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Walk `chain` (post → what it replies to) from `start` without any I/O.
    fn walk(chain: &HashMap<u64, u64>, start: u64) -> u64 {
        let parent = |id: Id| {
            let found = chain.get(&id.0).map(|p| Id(*p));
            async move { Ok::<_, ()>(found) }
        };
        let fut = root_of(Id(start), chain.get(&start).map(|p| Id(*p)), parent);
        futures_lite_block_on(fut).map(|id| id.0).unwrap_or(0)
    }

    /// A tiny executor for futures that never wait (the loaders above are ready at once).
    fn futures_lite_block_on<T>(fut: impl Future<Output = T>) -> T {
        use std::task::{Context, Poll, Waker};
        let mut fut = std::pin::pin!(fut);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn every_post_of_a_thread_finds_the_same_root() {
        // 1 ← 2 ← 3 ← 4, and 5 replies to 9, which is gone (not in the chain).
        let chain: HashMap<u64, u64> = [(2, 1), (3, 2), (4, 3), (5, 9)].into();
        // (start, root)
        let cases = [(1, 1), (2, 1), (3, 1), (4, 1), (5, 9), (7, 7)];
        for (start, root) in cases {
            assert_eq!(walk(&chain, start), root, "from {start}");
        }
    }

    #[test]
    fn a_very_deep_thread_stops_at_the_depth_limit() {
        let depth = MAX_THREAD_DEPTH as u64 + 10;
        let chain: HashMap<u64, u64> = (1..=depth).map(|i| (i + 1, i)).collect();
        let start = depth + 1;
        assert_eq!(walk(&chain, start), start - MAX_THREAD_DEPTH as u64);
    }
}
