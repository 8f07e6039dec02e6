//! API keys: `pos_<key id>_<secret>`. Only the SHA-256 of the whole key is stored.

use super::passwords::random_bytes;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "pos_";

/// A new key: (key id, the key to show once).
pub fn generate() -> (String, String) {
    let key_id = hex::encode(random_bytes::<6>());
    let secret = hex::encode(random_bytes::<32>());
    let key = format!("{PREFIX}{key_id}_{secret}");
    (key_id, key)
}

/// The key id inside a key, if it has the shape of one.
pub fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && secret.len() == 64 && id.bytes().chain(secret.bytes()).all(|b| b.is_ascii_hexdigit()))
        .then_some(id)
}

pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Compares two equal-length strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_keys_parse_back_to_their_id() {
        let (id, key) = super::generate();
        assert_eq!(super::key_id(&key), Some(id.as_str()));
        assert_eq!(super::key_id("pos_short_x"), None);
        assert_eq!(super::key_id("Bearer something"), None);
        assert!(super::constant_time_eq(&super::hash(&key), &super::hash(&key)));
    }
}
