//! Sets of keys seen so far (`setl_id`, `feedetl_sn`, ...), held as 128-bit hashes so that
//! a hundred million keys fit in memory (the chance of two different keys colliding is about
//! 10⁻²³ at that size), sharded so that a chunk's keys are inserted in parallel while the
//! first occurrence of a key always wins, whatever the thread count.

use rayon::prelude::*;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

const SHARDS: usize = 64;

/// The keys are xxh3 hashes already: the set uses their high 64 bits as they are (the shard
/// is chosen by the low bits) instead of hashing them again with SipHash, which was a quarter
/// of the ingest time.
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by u128 keys; any input still gets a usable hash.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = (i >> 64) as u64;
    }
}

type KeyBuild = BuildHasherDefault<KeyHasher>;

/// The 128-bit hash of a key.
pub fn hash(key: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key.as_bytes())
}

/// A set of key hashes.
pub struct KeySet {
    shards: Vec<HashSet<u128, KeyBuild>>,
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet { shards: (0..SHARDS).map(|_| HashSet::default()).collect() }
    }
}

impl KeySet {
    fn shard(h: u128) -> usize {
        (h as usize) % SHARDS
    }

    /// Inserts the keys in order; returns for each whether it was new (not seen before and
    /// not earlier in `keys`). `None` keys (rows already rejected) are skipped and reported
    /// as new: they are judged elsewhere.
    pub fn insert_all(&mut self, keys: &[Option<u128>]) -> Vec<bool> {
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); SHARDS];
        for (i, k) in keys.iter().enumerate() {
            if let Some(h) = k {
                by_shard[Self::shard(*h)].push(i);
            }
        }
        let results: Vec<Vec<(usize, bool)>> = self
            .shards
            .par_iter_mut()
            .zip(by_shard.par_iter())
            .map(|(set, idx)| idx.iter().map(|&i| (i, set.insert(keys[i].unwrap_or_default()))).collect())
            .collect();
        let mut out = vec![true; keys.len()];
        for (i, new) in results.into_iter().flatten() {
            out[i] = new;
        }
        out
    }

    pub fn insert(&mut self, h: u128) -> bool {
        self.shards[Self::shard(h)].insert(h)
    }

    pub fn contains(&self, h: u128) -> bool {
        self.shards[Self::shard(h)].contains(&h)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrence_wins_within_and_across_calls() {
        let mut s = KeySet::default();
        let k = |x: &str| Some(hash(x));
        assert_eq!(s.insert_all(&[k("a"), k("b"), k("a"), None]), vec![true, true, false, true]);
        assert_eq!(s.insert_all(&[k("b"), k("c")]), vec![false, true]);
        assert!(s.contains(hash("c")));
        assert_eq!(s.len(), 3);
    }
}
