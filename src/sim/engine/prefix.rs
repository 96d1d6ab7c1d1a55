//! The prefix cache: prompts are cut into blocks of `block_size` tokens
//! (words), each block named by a hash chained over every block before it,
//! so two prompts share cache entries exactly as long as they share a
//! prefix. A bounded set of block hashes with first-in-first-out eviction
//! stands in for vLLM's LRU over freed blocks.

use std::collections::{HashSet, VecDeque};

/// Chained hashes of the full blocks of a prompt's words.
pub(crate) fn block_hashes<'a>(words: impl Iterator<Item = &'a str>, block_size: u32) -> Vec<u64> {
    let block_size = block_size.max(1) as usize;
    let mut hashes = Vec::new();
    let mut hash = FNV_OFFSET;
    let mut in_block = 0;
    for word in words {
        hash = fnv(hash, word.as_bytes());
        hash = fnv(hash, b" ");
        in_block += 1;
        if in_block == block_size {
            hashes.push(hash);
            in_block = 0;
        }
    }
    hashes
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a: stable across platforms and versions (the cache's behaviour must
/// not change with a dependency).
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Cached blocks, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct PrefixCache {
    capacity: usize,
    present: HashSet<u64>,
    order: VecDeque<u64>,
}

impl PrefixCache {
    pub fn new(capacity: usize) -> PrefixCache {
        PrefixCache {
            capacity,
            present: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// How many leading blocks of `hashes` are cached.
    pub fn hits(&self, hashes: &[u64]) -> usize {
        hashes
            .iter()
            .take_while(|h| self.present.contains(h))
            .count()
    }

    /// Remembers the blocks of a prompt whose KV was computed.
    pub fn insert(&mut self, hashes: &[u64]) {
        if self.capacity == 0 {
            return;
        }
        for &hash in hashes {
            if self.present.insert(hash) {
                self.order.push_back(hash);
            }
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.present.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(text: &str) -> Vec<u64> {
        block_hashes(text.split_whitespace(), 2)
    }

    #[test]
    fn only_full_blocks_are_hashed_and_the_chain_depends_on_the_prefix() {
        assert_eq!(hashes("a b c").len(), 1);
        assert_eq!(hashes("a b c d").len(), 2);
        assert_eq!(hashes("a b c d")[0], hashes("a b x y")[0]);
        assert_ne!(hashes("a b c d")[1], hashes("x y c d")[1]);
    }

    #[test]
    fn hits_count_the_shared_prefix_and_eviction_is_bounded() {
        let mut cache = PrefixCache::new(3);
        cache.insert(&hashes("a b c d e f"));
        assert_eq!(cache.hits(&hashes("a b c d x y")), 2);
        assert_eq!(cache.hits(&hashes("x y c d e f")), 0);
        cache.insert(&hashes("p q"));
        assert_eq!(cache.hits(&hashes("a b")), 0, "the oldest block went");
        assert_eq!(cache.hits(&hashes("p q")), 1);
        assert!(cache.present.len() <= 3 && cache.order.len() <= 3);
    }
}
