//! Stable hashes and the key layout shared by the adapters.

use sha2::{Digest, Sha256};

/// How many partitions one app's records are spread over in DynamoDB, so that a big app never
/// makes one partition key hot.
pub const PARTITION_BUCKETS: u64 = 16;

/// FNV-1a, 64 bits: a small hash that is stable across processes, versions and machines.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The SHA-256 of some bytes, as lowercase hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The DynamoDB partition key of a record: the app plus a hash bucket of the record's key.
pub fn partition_key(app_id: &str, key: &str) -> String {
    format!("{app_id}#{:02}", stable_hash(key) % PARTITION_BUCKETS)
}

/// The partition key of the user-timeline index: the app's length first, so that no app and
/// user can spell another pair's key (`a` with `b#c` and `a#b` with `c` stay apart).
pub fn user_key(app_id: &str, user_id: &str) -> String {
    format!("{}#{app_id}#{user_id}", app_id.len())
}

/// The sort key of the user-timeline index: the event time, zero-padded so that it sorts as text,
/// then the record key.
pub fn user_sort_key(ts: i64, key: &str) -> String {
    format!("{ts:015}#{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_fnv1a() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(stable_hash(""), 0xcbf29ce484222325);
        assert_eq!(stable_hash("a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn user_keys_never_collide_across_apps() {
        assert_ne!(user_key("a", "b#c"), user_key("a#b", "c"));
        assert_eq!(user_key("app", "u"), "3#app#u");
    }

    #[test]
    fn partition_keys_spread_one_app() {
        let buckets: std::collections::HashSet<_> = (0..200)
            .map(|i| partition_key("app", &format!("e{i}")))
            .collect();
        assert_eq!(buckets.len() as u64, PARTITION_BUCKETS);
    }
}
