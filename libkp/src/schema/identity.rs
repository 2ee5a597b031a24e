//! Environment identity (docs/hash-contract.md): `env_id` is the blake3 of the
//! canonical JSON of the lock without its `env_id` and `short_id`;
//! `short_id` is the first 12 hex digits of `env_id`.

use super::canonical;
use super::lock::Lock;

pub const SHORT_ID_LEN: usize = 12;

/// The exact bytes `env_id` hashes: `kp-resolve --canonical` prints them, so
/// `b3sum` can check an identity with no Karapace code at all.
pub fn canonical_lock(lock: &Lock) -> String {
    canonical::to_string(&lock.hashed_value())
}

pub fn env_id(lock: &Lock) -> String {
    blake3::hash(canonical_lock(lock).as_bytes()).to_hex().to_string()
}

pub fn short_id(env_id: &str) -> String {
    env_id[..SHORT_ID_LEN.min(env_id.len())].to_string()
}
