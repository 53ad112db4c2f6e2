//! Discovery: trends and who to follow. The rules the background workers and the api share,
//! as pure functions: days of usage history, time decay, suggestion sources and their wire
//! names, and how friends of friends are ranked. Who may trend or be suggested at all is
//! [`crate::policy`]'s to say.

use std::collections::{HashMap, HashSet};

use crate::Id;

/// Days of usage history on a hashtag or link (Mastodon's 7), today's first.
pub const HISTORY_DAYS: usize = 7;
const DAY_SECS: u64 = 86_400;

/// The UTC day a time falls on: its midnight, in unix seconds (Mastodon's `day`).
pub fn day_of(unix_ms: u64) -> u64 {
    unix_ms / 1_000 / DAY_SECS * DAY_SECS
}

/// The [`HISTORY_DAYS`] days of history that end today, newest first.
pub fn history_days(now_ms: u64) -> [u64; HISTORY_DAYS] {
    let today = day_of(now_ms);
    std::array::from_fn(|i| today.saturating_sub(i as u64 * DAY_SECS))
}

/// One day of a hashtag's or link's use: posts that used it and distinct accounts that did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayUse {
    /// Midnight UTC, unix seconds.
    pub day: u64,
    pub uses: u64,
    pub accounts: u64,
}

/// What one use at `at_ms` weighs at `now_ms` when weights halve every `half_life_ms`
/// (exponential decay; a use from the future weighs 1).
pub fn decayed(at_ms: u64, now_ms: u64, half_life_ms: u64) -> f64 {
    let age = now_ms.saturating_sub(at_ms) as f64;
    0.5f64.powf(age / half_life_ms.max(1) as f64)
}

/// Why an account is suggested, by Mastodon 4.3's names (`sources` of a `Suggestion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Followed by accounts the user follows.
    FriendsOfFriends,
    /// Among the most followed accounts that posted recently.
    MostFollowed,
    /// Among the accounts whose recent posts got the most favourites and reblogs.
    MostInteractions,
}

impl Source {
    pub const ALL: [Source; 3] = [
        Source::FriendsOfFriends,
        Source::MostFollowed,
        Source::MostInteractions,
    ];

    /// This source's bit in [`Suggestion::sources`].
    pub fn bit(self) -> u8 {
        match self {
            Source::FriendsOfFriends => 1,
            Source::MostFollowed => 2,
            Source::MostInteractions => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::FriendsOfFriends => "friends_of_friends",
            Source::MostFollowed => "most_followed",
            Source::MostInteractions => "most_interactions",
        }
    }
}

/// One account suggested to someone, with why (a set of [`Source`] bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub account: Id,
    pub sources: u8,
}

impl Suggestion {
    /// Its sources by name, in [`Source::ALL`] order.
    pub fn source_names(&self) -> Vec<&'static str> {
        Source::ALL
            .iter()
            .filter(|s| self.sources & s.bit() != 0)
            .map(|s| s.as_str())
            .collect()
    }

    /// The single `source` of API v2 before 4.3, as Mastodon 4.3 still answers it: what
    /// the user's own follows gave is `past_interactions`, the rest `global`.
    pub fn legacy_source(&self) -> &'static str {
        if self.sources & Source::FriendsOfFriends.bit() != 0 {
            "past_interactions"
        } else {
            "global"
        }
    }

    /// Suggestions as stored: 9 bytes each (big-endian id, sources).
    pub fn encode(list: &[Suggestion]) -> Vec<u8> {
        let mut out = Vec::with_capacity(list.len() * 9);
        for s in list {
            out.extend_from_slice(&s.account.to_be_bytes());
            out.push(s.sources);
        }
        out
    }

    /// What [`Suggestion::encode`] wrote (a truncated tail is dropped).
    pub fn decode(bytes: &[u8]) -> Vec<Suggestion> {
        bytes
            .chunks_exact(9)
            .filter_map(|c| {
                Some(Suggestion {
                    account: Id::from_be_slice(c.get(..8)?)?,
                    sources: *c.get(8)?,
                })
            })
            .collect()
    }
}

/// Friends of friends of `viewer`: every account followed by someone in `following` (the
/// accounts `viewer` follows), with how many of them follow it (the overlap), leaving out
/// `viewer`, the accounts it follows and `excluded`. Most overlap first, then by id.
/// `their_following` yields, for each account `viewer` follows, whom it follows.
pub fn friends_of_friends<'a>(
    viewer: Id,
    following: &[Id],
    their_following: impl IntoIterator<Item = &'a [Id]>,
    excluded: &HashSet<Id>,
) -> Vec<(Id, u32)> {
    let followed: HashSet<Id> = following.iter().copied().collect();
    let mut overlap: HashMap<Id, u32> = HashMap::new();
    for list in their_following {
        for &c in list {
            if c != viewer && !followed.contains(&c) && !excluded.contains(&c) {
                *overlap.entry(c).or_default() += 1;
            }
        }
    }
    let mut ranked: Vec<(Id, u32)> = overlap.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

/// The final order of candidates that passed every check: friends of friends by overlap,
/// ties broken by more followers, then the global ones in their own order; one entry per
/// account (sources merged), at most `max`.
pub fn merge(friends: &[(Id, u32, u64)], global: &[Suggestion], max: usize) -> Vec<Suggestion> {
    let mut friends = friends.to_vec();
    friends.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    let mut out: Vec<Suggestion> = Vec::with_capacity(max);
    let mut at: HashMap<Id, usize> = HashMap::new();
    let fof = friends.iter().map(|&(account, _, _)| Suggestion {
        account,
        sources: Source::FriendsOfFriends.bit(),
    });
    for s in fof.chain(global.iter().copied()) {
        if let Some(&i) = at.get(&s.account) {
            if let Some(existing) = out.get_mut(i) {
                existing.sources |= s.sources;
            }
            continue;
        }
        if out.len() >= max {
            continue;
        }
        at.insert(s.account, out.len());
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_midnights_newest_first() {
        // 2026-11-29T10:37:00Z
        let now = 1_795_862_220_000;
        let days = history_days(now);
        assert_eq!(days[0], 1_795_824_000);
        assert_eq!(days[0] % 86_400, 0);
        assert_eq!(days[1], days[0] - 86_400);
        assert_eq!(days[6], days[0] - 6 * 86_400);
        assert_eq!(day_of(now), days[0]);
    }

    #[test]
    fn weights_halve_every_half_life() {
        let h = 1_000;
        assert!((decayed(5_000, 5_000, h) - 1.0).abs() < 1e-12);
        assert!((decayed(5_000, 6_000, h) - 0.5).abs() < 1e-12);
        assert!((decayed(5_000, 8_000, h) - 0.125).abs() < 1e-12);
        assert!((decayed(9_000, 8_000, h) - 1.0).abs() < 1e-12, "no growth");
    }

    #[test]
    fn friends_of_friends_rank_by_overlap_and_leave_out_the_excluded() {
        let (me, a, b, c) = (Id(1), Id(2), Id(3), Id(4));
        let (x, y, z, blocked) = (Id(10), Id(11), Id(12), Id(13));
        let lists: Vec<Vec<Id>> = vec![
            vec![me, b, x, y, blocked], // whom a follows
            vec![x, y, z],              // whom b follows
            vec![x, c],                 // whom c follows (c follows itself? no: c is followed)
        ];
        let excluded: HashSet<Id> = [blocked].into_iter().collect();
        let ranked = friends_of_friends(me, &[a, b, c], lists.iter().map(Vec::as_slice), &excluded);
        assert_eq!(ranked, vec![(x, 3), (y, 2), (z, 1)]);
    }

    #[test]
    fn merging_keeps_overlap_order_merges_sources_and_caps() {
        let fof = [(Id(5), 1, 100), (Id(6), 2, 0), (Id(7), 1, 500)];
        let global = [
            Suggestion {
                account: Id(7),
                sources: Source::MostFollowed.bit(),
            },
            Suggestion {
                account: Id(8),
                sources: Source::MostFollowed.bit() | Source::MostInteractions.bit(),
            },
            Suggestion {
                account: Id(9),
                sources: Source::MostInteractions.bit(),
            },
        ];
        let merged = merge(&fof, &global, 4);
        let ids: Vec<Id> = merged.iter().map(|s| s.account).collect();
        assert_eq!(ids, vec![Id(6), Id(7), Id(5), Id(8)]);
        assert_eq!(
            merged[1].source_names(),
            vec!["friends_of_friends", "most_followed"]
        );
        assert_eq!(merged[1].legacy_source(), "past_interactions");
        assert_eq!(
            merged[3].source_names(),
            vec!["most_followed", "most_interactions"]
        );
        assert_eq!(merged[3].legacy_source(), "global");
        assert_eq!(Suggestion::decode(&Suggestion::encode(&merged)), merged);
    }
}
