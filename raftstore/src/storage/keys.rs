//! On-disk key layout: column family names and the byte encodings of their keys.
//!
//! Every ordered key is big-endian so that RocksDB's bytewise order is the
//! numeric order:
//!
//! | CF          | key                                  | value                          |
//! |-------------|--------------------------------------|--------------------------------|
//! | `default`   | `format`                             | [`FORMAT`]                     |
//! | `logs`      | `index_be8`                          | postcard `Entry`               |
//! | `raft_meta` | `vote`, `committed`, `last_purged`   | postcard                       |
//! | `kv`        | `user_key ‖ 0x00 ‖ revision_be8`     | postcard [`StoredVersion`]     |
//! | `revs`      | `revision_be8`                       | postcard `Vec<Bytes>` (keys)   |
//! | `sm_meta`   | `applied`, `membership`, `revision`, `compacted` | postcard           |
//!
//! User keys never contain NUL ([`crate::command::Command::validate`]), so the
//! `0x00` separator keeps every version of one key contiguous and sorts a key
//! before every longer key it is a prefix of: the order of encoded keys is the
//! order of user keys, then of revisions.
//!
//! [`StoredVersion`]: super::mvcc::StoredVersion

/// Column family of the Raft log.
pub(crate) const CF_LOGS: &str = "logs";
/// Column family of the vote, committed and last purged log ids.
pub(crate) const CF_RAFT_META: &str = "raft_meta";
/// Column family of every retained version of every key.
pub(crate) const CF_KV: &str = "kv";
/// Column family of the keys changed at each retained revision (watch history).
pub(crate) const CF_REVS: &str = "revs";
/// Column family of the state machine's own metadata.
pub(crate) const CF_SM_META: &str = "sm_meta";
/// Every column family besides `default`.
pub(crate) const ALL_CFS: [&str; 5] = [CF_LOGS, CF_RAFT_META, CF_KV, CF_REVS, CF_SM_META];
/// The column families that make up the state machine (what a snapshot holds).
pub(crate) const SM_CFS: [&str; 3] = [CF_KV, CF_REVS, CF_SM_META];

/// Key of the format marker in the `default` column family.
pub(crate) const FORMAT_KEY: &[u8] = b"format";
/// The format this build writes and reads.
pub(crate) const FORMAT: &[u8] = b"capstan-store-v1";

/// `raft_meta` key of the vote.
pub(crate) const META_VOTE: &[u8] = b"vote";
/// `raft_meta` key of the committed log id.
pub(crate) const META_COMMITTED: &[u8] = b"committed";
/// `raft_meta` key of the last purged log id.
pub(crate) const META_LAST_PURGED: &[u8] = b"last_purged";

/// `sm_meta` key of the last applied log id.
pub(crate) const SM_APPLIED: &[u8] = b"applied";
/// `sm_meta` key of the last applied membership.
pub(crate) const SM_MEMBERSHIP: &[u8] = b"membership";
/// `sm_meta` key of the current revision.
pub(crate) const SM_REVISION: &[u8] = b"revision";
/// `sm_meta` key of the compacted revision.
pub(crate) const SM_COMPACTED: &[u8] = b"compacted";

/// Separator between a user key and its revision in `kv`.
const SEP: u8 = 0;

/// A log index or a revision as an ordered key.
pub(crate) fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Decodes an 8-byte big-endian key.
pub(crate) fn from_be(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// The `kv` key of `key` at `revision`.
pub(crate) fn version_key(key: &[u8], revision: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 9);
    k.extend_from_slice(key);
    k.push(SEP);
    k.extend_from_slice(&be(revision));
    k
}

/// Splits a `kv` key into the user key and the revision.
pub(crate) fn split_version_key(k: &[u8]) -> Option<(&[u8], u64)> {
    if k.len() < 10 {
        return None;
    }
    let (user, rest) = k.split_at(k.len() - 9);
    if rest[0] != SEP {
        return None;
    }
    Some((user, from_be(&rest[1..])?))
}

/// The smallest `kv` key of any version of `key`.
pub(crate) fn versions_start(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(SEP);
    k
}

/// The smallest `kv` key above every version of `key` (exclusive bound).
pub(crate) fn versions_end(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.extend_from_slice(key);
    k.push(SEP + 1);
    k
}

/// The smallest byte string greater than every string starting with
/// `prefix`, or `None` when there is none (empty or all-`0xff` prefix).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keys_sort_by_key_then_revision() {
        let mut keys = [
            version_key(b"ab", 1),
            version_key(b"a", 300),
            version_key(b"a", 2),
            version_key(b"a\x01", 1),
            version_key(b"b", 0),
        ];
        keys.sort();
        let decoded: Vec<_> = keys
            .iter()
            .map(|k| {
                let (u, r) = split_version_key(k).unwrap();
                (u.to_vec(), r)
            })
            .collect();
        assert_eq!(
            decoded,
            vec![
                (b"a".to_vec(), 2),
                (b"a".to_vec(), 300),
                (b"a\x01".to_vec(), 1),
                (b"ab".to_vec(), 1),
                (b"b".to_vec(), 0),
            ]
        );
        assert!(versions_start(b"a") < version_key(b"a", 0));
        assert!(versions_end(b"a") > version_key(b"a", u64::MAX));
        assert!(versions_end(b"a") <= version_key(b"a\x01", 0));
    }

    #[test]
    fn prefix_end_is_exclusive_upper_bound() {
        assert_eq!(prefix_end(b"/a"), Some(b"/b".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
