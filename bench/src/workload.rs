//! Workload mixes: which operation a synthetic user does next, and who does it.
//!
//! - `dsb-mixed`: DeathStarBench's social-network mix, 60% home-timeline reads at a random
//!   depth, 30% account-timeline reads, 10% posts of 256 random characters with mentions
//!   and links; users uniform.
//! - `twitter`: reads (home timeline, 20 statuses) and posts at `read:write` (default 50:1),
//!   users drawn from a Zipf over a seeded permutation of the accounts, so a few users do
//!   most of the work (and they are not simply the most-followed ones).
//! - `read-only`, `write-only`: home reads only, posts only; users uniform.
//!
//! The `celebrity` workload is not a mix (one account posts, its followers are watched);
//! it lives in the runner.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::dist::Zipf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    DsbMixed,
    Twitter,
    ReadOnly,
    WriteOnly,
    Celebrity,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::DsbMixed => "dsb-mixed",
            Workload::Twitter => "twitter",
            Workload::ReadOnly => "read-only",
            Workload::WriteOnly => "write-only",
            Workload::Celebrity => "celebrity",
        }
    }
}

/// One operation of a mix. Users are indexes into the seeded users of the state file.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `GET /api/v1/timelines/home?limit=`
    HomeRead { user: usize, limit: u32 },
    /// `GET /api/v1/accounts/:id/statuses?limit=20` of `target`, as `user`.
    AccountRead { user: usize, target: usize },
    /// `POST /api/v1/statuses`
    Post { user: usize, text: String },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::HomeRead { .. } => "home_read",
            Op::AccountRead { .. } => "account_read",
            Op::Post { .. } => "post",
        }
    }
}

/// Draws operations for one workload over `users` accounts.
#[derive(Clone, Debug)]
pub struct Mix {
    workload: Workload,
    users: usize,
    /// Chance that an operation of the `twitter` mix is a post.
    write_share: f64,
    /// The `twitter` mix's activity: Zipf rank → user.
    activity: Option<(Zipf, Vec<usize>)>,
    /// Usernames mentioned in posts.
    usernames: Vec<String>,
}

impl Mix {
    /// `read_per_write` and `zipf` matter to `twitter` only; `seed` fixes who is active.
    pub fn new(
        workload: Workload,
        usernames: Vec<String>,
        read_per_write: f64,
        zipf: f64,
        seed: u64,
    ) -> anyhow::Result<Mix> {
        let users = usernames.len();
        anyhow::ensure!(users > 0, "the workload needs seeded users");
        anyhow::ensure!(
            workload != Workload::Celebrity,
            "the celebrity workload is not a mix"
        );
        anyhow::ensure!(
            read_per_write >= 0.0 && read_per_write.is_finite(),
            "reads per write must be >= 0"
        );
        let activity = if workload == Workload::Twitter {
            let mut order: Vec<usize> = (0..users).collect();
            order.shuffle(
                &mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed ^ 0x5a5a),
            );
            Some((Zipf::new(users, zipf)?, order))
        } else {
            None
        };
        Ok(Mix {
            workload,
            users,
            write_share: 1.0 / (1.0 + read_per_write),
            activity,
            usernames,
        })
    }

    fn user<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match &self.activity {
            Some((zipf, order)) => order[zipf.sample(rng)],
            None => rng.gen_range(0..self.users),
        }
    }

    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> Op {
        let user = self.user(rng);
        match self.workload {
            Workload::DsbMixed => {
                let roll: f64 = rng.r#gen();
                if roll < 0.6 {
                    // DeathStarBench reads a random window of the timeline; here a page of
                    // random depth up to Mastodon's largest page.
                    Op::HomeRead {
                        user,
                        limit: rng.gen_range(1..=40),
                    }
                } else if roll < 0.9 {
                    Op::AccountRead {
                        user,
                        target: rng.gen_range(0..self.users),
                    }
                } else {
                    Op::Post {
                        user,
                        text: post_text(rng, &self.usernames, 256),
                    }
                }
            }
            Workload::Twitter => {
                if rng.gen_bool(self.write_share) {
                    Op::Post {
                        user,
                        text: post_text(rng, &self.usernames, 256),
                    }
                } else {
                    Op::HomeRead { user, limit: 20 }
                }
            }
            Workload::ReadOnly | Workload::Celebrity => Op::HomeRead { user, limit: 20 },
            Workload::WriteOnly => Op::Post {
                user,
                text: post_text(rng, &self.usernames, 256),
            },
        }
    }
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// `chars` characters: random words with one to two mentions of seeded users and one
/// link, as DeathStarBench's compose-post does.
pub fn post_text<R: Rng + ?Sized>(rng: &mut R, usernames: &[String], chars: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    for _ in 0..rng.gen_range(1..=2) {
        if let Some(name) = usernames.get(rng.gen_range(0..usernames.len().max(1))) {
            parts.push(format!("@{name}"));
        }
    }
    let slug: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    parts.push(format!("http://example.org/{slug}"));
    let mut text = parts.join(" ");
    while text.chars().count() < chars {
        text.push(' ');
        let word = rng.gen_range(3..=9);
        for _ in 0..word {
            text.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
        }
    }
    text.chars()
        .take(chars)
        .collect::<String>()
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("u{i}")).collect()
    }

    fn shares(mix: &Mix, n: usize) -> (f64, f64, f64) {
        let mut rng = StdRng::seed_from_u64(11);
        let (mut h, mut a, mut p) = (0, 0, 0);
        for _ in 0..n {
            match mix.next(&mut rng) {
                Op::HomeRead { limit, .. } => {
                    assert!((1..=40).contains(&limit));
                    h += 1
                }
                Op::AccountRead { .. } => a += 1,
                Op::Post { .. } => p += 1,
            }
        }
        let n = n as f64;
        (h as f64 / n, a as f64 / n, p as f64 / n)
    }

    #[test]
    fn dsb_mix_is_60_30_10() {
        let mix = Mix::new(Workload::DsbMixed, names(100), 0.0, 0.0, 1).unwrap();
        let (h, a, p) = shares(&mix, 100_000);
        assert!((h - 0.6).abs() < 0.01 && (a - 0.3).abs() < 0.01 && (p - 0.1).abs() < 0.01);
    }

    #[test]
    fn twitter_mix_has_the_ratio_and_skew() {
        let mix = Mix::new(Workload::Twitter, names(1000), 50.0, 1.0, 1).unwrap();
        let (h, a, p) = shares(&mix, 102_000);
        assert_eq!(a, 0.0);
        assert!((p - 1.0 / 51.0).abs() < 0.002, "write share {p}");
        assert!((h + p - 1.0).abs() < 1e-9);
        // The most active user does about 1/H(1000) ≈ 13% of the work; a uniform draw 0.1%.
        let mut rng = StdRng::seed_from_u64(5);
        let mut counts = vec![0u32; 1000];
        for _ in 0..50_000 {
            let user = match mix.next(&mut rng) {
                Op::HomeRead { user, .. } | Op::Post { user, .. } => user,
                Op::AccountRead { .. } => unreachable!(),
            };
            counts[user] += 1;
        }
        let top = *counts.iter().max().unwrap() as f64 / 50_000.0;
        assert!((0.11..0.16).contains(&top), "top user share {top}");
    }

    #[test]
    fn read_only_and_write_only() {
        let r = Mix::new(Workload::ReadOnly, names(10), 0.0, 0.0, 1).unwrap();
        assert_eq!(shares(&r, 1000).0, 1.0);
        let w = Mix::new(Workload::WriteOnly, names(10), 0.0, 0.0, 1).unwrap();
        assert_eq!(shares(&w, 1000).2, 1.0);
        assert!(Mix::new(Workload::Celebrity, names(10), 0.0, 0.0, 1).is_err());
        assert!(Mix::new(Workload::ReadOnly, vec![], 0.0, 0.0, 1).is_err());
    }

    #[test]
    fn post_text_has_mentions_and_a_link() {
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..100 {
            let t = post_text(&mut rng, &names(50), 256);
            assert!(t.chars().count() <= 256 && t.chars().count() >= 250, "{t}");
            assert!(t.starts_with("@u"));
            assert!(t.contains(" http://example.org/"));
        }
    }
}
