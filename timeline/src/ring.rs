//! Consistent hashing of users onto Redis shards.
//!
//! Each shard owns `virtual_nodes` points on a 64-bit ring, placed by hashing
//! `"<shard>#<i>"`; a user belongs to the shard of the first point at or after the hash of
//! the user id (wrapping around). Adding a shard therefore moves only the users whose
//! nearest point is now one of the new shard's (about 1/N of them), and removing one moves
//! only its own users.
//!
//! The hash is 64-bit FNV-1a followed by the MurmurHash3 `fmix64` finaliser, written out
//! here rather than taken from std: `std::hash::DefaultHasher`'s algorithm is explicitly
//! unspecified and may change between Rust releases, which would silently move every user
//! to another shard after a compiler upgrade. FNV-1a alone mixes its last input bytes only
//! into the higher bits (and the points of one shard differ only in their last bytes), so
//! the finaliser spreads them over the whole word. The golden values in the tests pin the
//! function down.
//!
//! A shard is identified on the ring by its URL without the user-info part, so rotating a
//! Redis password does not reshuffle users (and no password is hashed or logged).

use starling_schema::Id;

/// Users mapped onto shards by consistent hashing with virtual nodes.
#[derive(Clone, Debug)]
pub struct Ring {
    /// `(point, shard index)`, sorted.
    points: Vec<(u64, usize)>,
    names: Vec<String>,
}

impl Ring {
    /// A ring over `shards` (URLs or any stable names), `virtual_nodes` points each (at least
    /// one). Shard `i` of the result is `shards[i]`.
    pub fn new<S: AsRef<str>>(shards: &[S], virtual_nodes: u32) -> Ring {
        let names: Vec<String> = shards.iter().map(|s| ring_name(s.as_ref())).collect();
        let per_shard = virtual_nodes.max(1);
        let mut points = Vec::with_capacity(names.len() * per_shard as usize);
        for (index, name) in names.iter().enumerate() {
            for i in 0..per_shard {
                points.push((hash64(format!("{name}#{i}").as_bytes()), index));
            }
        }
        // Ties (vanishingly rare) are broken by shard name, never by list position, so
        // the ring does not depend on the order the shards are listed in.
        points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| names[a.1].cmp(&names[b.1])));
        Ring { points, names }
    }

    /// The shard that holds `user`'s timeline. `0` for an empty ring.
    pub fn shard_of(&self, user: Id) -> usize {
        let h = hash64(&user.to_be_bytes());
        let at = self.points.partition_point(|(p, _)| *p < h);
        self.points
            .get(at)
            .or_else(|| self.points.first())
            .map_or(0, |(_, shard)| *shard)
    }

    /// The shard that holds an arbitrary key (a rate-limit bucket, ...).
    pub fn shard_of_key(&self, key: &[u8]) -> usize {
        let h = hash64(key);
        let at = self.points.partition_point(|(p, _)| *p < h);
        self.points
            .get(at)
            .or_else(|| self.points.first())
            .map_or(0, |(_, shard)| *shard)
    }

    pub fn shard_count(&self) -> usize {
        self.names.len()
    }

    /// How shard `i` is named on the ring: its URL without credentials.
    pub fn shard_name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }
}

/// A shard URL without its user-info (`redis://user:pass@host` → `redis://host`).
pub(crate) fn ring_name(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest.to_owned(),
    }
}

/// FNV-1a (64-bit) finished with MurmurHash3's `fmix64`. Stable forever: changing it moves
/// users between shards.
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    fmix64(h)
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: u64 = 100_000;

    fn urls(ports: &[u16]) -> Vec<String> {
        ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Realistic user ids: time-ordered, minted a few per millisecond on a few nodes.
    fn users() -> impl Iterator<Item = Id> {
        (0..USERS).map(|i| {
            let ms = 1_700_000_000_000 + i / 3;
            Id((ms << 16) | ((i % 3) << 8) | (i % 7))
        })
    }

    fn fnv1a(bytes: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    #[test]
    fn the_hash_is_pinned_down() {
        // Published FNV-1a test vectors, then the finaliser on top.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(hash64(b"a"), fmix64(0xaf63_dc4c_8601_ec8c));
        assert_eq!(fmix64(0), 0);
        // Golden values: if these change, every deployment reshuffles its users.
        assert_eq!(hash64(b""), GOLDEN_EMPTY);
        assert_eq!(hash64(&Id(1).to_be_bytes()), GOLDEN_ID_1);
        let ring = Ring::new(&urls(&[6379, 6380, 6381]), 160);
        let mapped: Vec<usize> = [1u64, 2, 3, 42, 99, 1 << 40, 111_222_333_444, u64::MAX]
            .iter()
            .map(|u| ring.shard_of(Id(*u)))
            .collect();
        assert_eq!(mapped, GOLDEN_MAPPING);
    }

    // Computed by an independent implementation (Python), not by this code.
    const GOLDEN_EMPTY: u64 = 0xefd0_1f60_ba99_2926;
    const GOLDEN_ID_1: u64 = 0x0d4a_d0eb_39c5_0357;
    const GOLDEN_MAPPING: [usize; 8] = [0, 1, 0, 2, 1, 0, 2, 0];

    #[test]
    fn mapping_is_deterministic_and_independent_of_listing_order() {
        let a = Ring::new(&urls(&[6379, 6380, 6381]), 160);
        let b = Ring::new(&urls(&[6379, 6380, 6381]), 160);
        let reversed = Ring::new(&urls(&[6381, 6380, 6379]), 160);
        for user in users() {
            let shard = a.shard_of(user);
            assert_eq!(shard, b.shard_of(user));
            assert_eq!(
                a.shard_name(shard),
                reversed.shard_name(reversed.shard_of(user))
            );
        }
    }

    #[test]
    fn every_shard_gets_a_fair_share() {
        let ring = Ring::new(&urls(&[6379, 6380, 6381]), 160);
        let mut counts = [0u64; 3];
        for user in users() {
            counts[ring.shard_of(user)] += 1;
        }
        let fair = USERS as f64 / 3.0;
        for (shard, n) in counts.iter().enumerate() {
            let off = (*n as f64 - fair).abs() / fair;
            assert!(
                off <= 0.25,
                "shard {shard} has {n} users, fair is {fair:.0}: {counts:?}"
            );
        }
    }

    #[test]
    fn adding_a_shard_moves_about_a_quarter_and_only_to_it() {
        let three = Ring::new(&urls(&[6379, 6380, 6381]), 160);
        let four = Ring::new(&urls(&[6379, 6380, 6381, 6382]), 160);
        let mut moved = 0u64;
        for user in users() {
            let before = three.shard_of(user);
            let after = four.shard_of(user);
            if before != after {
                assert_eq!(after, 3, "{user} moved between old shards");
                moved += 1;
            }
        }
        let share = moved as f64 / USERS as f64;
        assert!((0.15..=0.35).contains(&share), "moved {share:.3}");
    }

    #[test]
    fn removing_a_shard_moves_only_its_users() {
        let three = Ring::new(&urls(&[6379, 6380, 6381]), 160);
        let two = Ring::new(&urls(&[6379, 6381]), 160);
        let mut moved = 0u64;
        for user in users() {
            let before = three.shard_name(three.shard_of(user));
            let after = two.shard_name(two.shard_of(user));
            if before != after {
                assert_eq!(before, Some("redis://127.0.0.1:6380"));
                moved += 1;
            }
        }
        assert!(moved > 0);
    }

    #[test]
    fn credentials_do_not_move_users() {
        assert_eq!(
            ring_name("redis://:secret@10.0.0.1:6379/0"),
            "redis://10.0.0.1:6379/0"
        );
        assert_eq!(ring_name("redis://u:p@h:1"), "redis://h:1");
        assert_eq!(ring_name("redis://h:1/a@b"), "redis://h:1/a@b");
        assert_eq!(ring_name("h:1"), "h:1");
        let plain = Ring::new(&["redis://a:1", "redis://b:1"], 64);
        let secret = Ring::new(&["redis://:x@a:1", "redis://:y@b:1"], 64);
        for user in users().take(1000) {
            assert_eq!(plain.shard_of(user), secret.shard_of(user));
        }
    }

    #[test]
    fn a_single_shard_takes_everyone() {
        let ring = Ring::new(&["redis://a:1"], 1);
        assert!(users().take(1000).all(|u| ring.shard_of(u) == 0));
        assert_eq!(Ring::new::<&str>(&[], 160).shard_of(Id(5)), 0);
    }
}
