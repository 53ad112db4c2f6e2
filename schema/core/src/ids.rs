//! Time-ordered 64-bit ids in Mastodon's layout: `(unix_ms << 16) | low16`.
//!
//! The low 16 bits hold the node id (high [`NODE_BITS`] of them) and a per-millisecond
//! sequence (low [`SEQ_BITS`]), so two nodes never mint the same id. Within a node ids are
//! strictly increasing even if the wall clock steps back: the generator never goes below the
//! last millisecond it used, and when a millisecond's sequence runs out it borrows the next one.
//!
//! Restarts: the generator only hands out ids below a *lease* (a millisecond that the owner
//! has persisted). A restarted node starts at `max(now, persisted lease)`, so even a clock that
//! stepped back across the restart cannot make it reuse an id. Persisting the lease is the
//! caller's job (the store does it); [`IdGenerator::next_at`] says when a new lease is needed.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Bits of the low 16 that carry the node id.
pub const NODE_BITS: u32 = 8;
/// Bits of the low 16 that carry the per-millisecond sequence.
pub const SEQ_BITS: u32 = 16 - NODE_BITS;
/// Largest node id that fits.
pub const MAX_NODE_ID: u16 = (1 << NODE_BITS) - 1;
const SEQ_MAX: u16 = (1 << SEQ_BITS) - 1;

/// How far ahead of the clock a lease reaches, and when it is renewed.
pub const LEASE_MS: u64 = 10_000;
const LEASE_RENEW_BELOW_MS: u64 = 5_000;

/// A Starling id: accounts, posts, notifications, apps. Ordered by creation time.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Id(pub u64);

impl Id {
    pub const MIN: Id = Id(0);
    pub const MAX: Id = Id(u64::MAX);

    /// The first id that could have been minted at `unix_ms` (any node).
    pub fn floor_of_ms(unix_ms: u64) -> Id {
        Id(unix_ms << 16)
    }

    /// Milliseconds since the Unix epoch at which the id was minted.
    pub fn unix_ms(self) -> u64 {
        self.0 >> 16
    }

    /// The node that minted this id.
    pub fn node(self) -> u16 {
        // Masked to NODE_BITS, so it fits.
        ((self.0 >> SEQ_BITS) & u64::from(MAX_NODE_ID)) as u16
    }

    pub fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    pub fn from_be_slice(bytes: &[u8]) -> Option<Id> {
        let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
        Some(Id(u64::from_be_bytes(arr)))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Id {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<u64>().map(Id)
    }
}

/// Milliseconds since the Unix epoch by the wall clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the generator needs before it can mint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mint {
    /// Here is an id.
    Id(Id),
    /// Persist a lease reaching at least this millisecond, call [`IdGenerator::extend_lease`],
    /// then ask again.
    NeedLease(u64),
}

#[derive(Debug)]
struct State {
    last_ms: u64,
    seq: u16,
    lease_until: u64,
}

/// Mints ids for one node. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct IdGenerator {
    node: u16,
    state: Mutex<State>,
}

#[derive(Debug, thiserror::Error)]
#[error("node id {0} does not fit in {NODE_BITS} bits (max {MAX_NODE_ID})")]
pub struct NodeIdOutOfRange(pub u32);

impl IdGenerator {
    /// `persisted_lease` is the lease last persisted by this node (0 for a new node). Ids start
    /// above it, so a restart never reissues an id even if the clock went back.
    pub fn new(node: u32, persisted_lease: u64) -> Result<Self, NodeIdOutOfRange> {
        let node = u16::try_from(node)
            .ok()
            .filter(|n| *n <= MAX_NODE_ID)
            .ok_or(NodeIdOutOfRange(node))?;
        Ok(IdGenerator {
            node,
            state: Mutex::new(State {
                // The next mint uses at least the millisecond after the old lease.
                last_ms: persisted_lease,
                seq: SEQ_MAX,
                lease_until: persisted_lease,
            }),
        })
    }

    pub fn node(&self) -> u16 {
        self.node
    }

    /// Mint by the wall clock.
    pub fn next(&self) -> Mint {
        self.next_at(now_ms())
    }

    /// Mint as if the wall clock read `now_ms` (tests drive the clock through this).
    pub fn next_at(&self, now_ms: u64) -> Mint {
        let mut st = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (ms, seq) = if now_ms > st.last_ms {
            (now_ms, 0)
        } else if st.seq < SEQ_MAX {
            (st.last_ms, st.seq + 1)
        } else {
            (st.last_ms + 1, 0)
        };
        if ms >= st.lease_until {
            return Mint::NeedLease(ms + LEASE_MS);
        }
        st.last_ms = ms;
        st.seq = seq;
        Mint::Id(Id((ms << 16)
            | (u64::from(self.node) << SEQ_BITS)
            | u64::from(seq)))
    }

    /// The lease to persist proactively, if the current one is running short.
    pub fn lease_wanted(&self, now_ms: u64) -> Option<u64> {
        let st = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let base = now_ms.max(st.last_ms);
        (st.lease_until.saturating_sub(base) < LEASE_RENEW_BELOW_MS).then_some(base + LEASE_MS)
    }

    /// Record that a lease up to `until_ms` is persisted.
    pub fn extend_lease(&self, until_ms: u64) {
        let mut st = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        st.lease_until = st.lease_until.max(until_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mint(g: &IdGenerator, now: u64) -> Id {
        loop {
            match g.next_at(now) {
                Mint::Id(id) => return id,
                Mint::NeedLease(until) => g.extend_lease(until),
            }
        }
    }

    #[test]
    fn layout_is_mastodons() {
        let g = IdGenerator::new(5, 0).unwrap();
        let id = mint(&g, 1_700_000_000_123);
        assert_eq!(id.unix_ms(), 1_700_000_000_123);
        assert_eq!(id.node(), 5);
        // Mastodon.py's datetime cursor: (secs << 16) * 1000 sorts with our ids.
        let cursor = (1_700_000_000u64 << 16) * 1000;
        assert!(cursor <= id.0);
        assert_eq!(
            Id::floor_of_ms(1_700_000_000_123).0,
            1_700_000_000_123 << 16
        );
    }

    #[test]
    fn monotonic_within_a_millisecond_and_across_overflow() {
        let g = IdGenerator::new(1, 0).unwrap();
        let mut last = Id(0);
        for _ in 0..(3 * (SEQ_MAX as usize + 1)) {
            let id = mint(&g, 1_000_000);
            assert!(id > last, "{id:?} after {last:?}");
            last = id;
        }
        // Sequence exhaustion borrowed later milliseconds.
        assert!(last.unix_ms() >= 1_000_002);
    }

    #[test]
    fn clock_stepping_back_never_goes_backwards() {
        let g = IdGenerator::new(1, 0).unwrap();
        let a = mint(&g, 2_000_000);
        let b = mint(&g, 1_000_000);
        let c = mint(&g, 1_500_000);
        assert!(a < b && b < c);
    }

    #[test]
    fn nodes_never_collide() {
        let g1 = IdGenerator::new(1, 0).unwrap();
        let g2 = IdGenerator::new(2, 0).unwrap();
        let mut all = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(all.insert(mint(&g1, 5_000_000)));
            assert!(all.insert(mint(&g2, 5_000_000)));
        }
    }

    #[test]
    fn restart_with_clock_behind_starts_above_the_lease() {
        let g = IdGenerator::new(3, 0).unwrap();
        let mut lease = 0;
        let before = loop {
            match g.next_at(9_000_000) {
                Mint::Id(id) => break id,
                Mint::NeedLease(until) => {
                    lease = until;
                    g.extend_lease(until);
                }
            }
        };
        assert!(lease > before.unix_ms());
        // Restart: the clock now reads an hour earlier.
        let g = IdGenerator::new(3, lease).unwrap();
        let after = mint(&g, 9_000_000 - 3_600_000);
        assert!(after > before);
        assert!(after.unix_ms() > lease);
    }

    #[test]
    fn no_id_without_a_lease() {
        let g = IdGenerator::new(0, 0).unwrap();
        assert_eq!(g.next_at(100), Mint::NeedLease(100 + LEASE_MS));
        g.extend_lease(100 + LEASE_MS);
        assert!(matches!(g.next_at(100), Mint::Id(_)));
        // Renewal is asked for before the lease runs out.
        assert_eq!(g.lease_wanted(100), None);
        assert_eq!(
            g.lease_wanted(100 + LEASE_MS - 10),
            Some(100 + 2 * LEASE_MS - 10)
        );
    }

    #[test]
    fn node_id_range_is_checked() {
        assert!(IdGenerator::new(u32::from(MAX_NODE_ID), 0).is_ok());
        assert!(IdGenerator::new(u32::from(MAX_NODE_ID) + 1, 0).is_err());
    }

    #[test]
    fn ids_parse_and_print_as_decimal() {
        let id: Id = "109876543210".parse().unwrap();
        assert_eq!(id.to_string(), "109876543210");
        assert_eq!(Id::from_be_slice(&id.to_be_bytes()), Some(id));
        assert!("abc".parse::<Id>().is_err());
    }
}
