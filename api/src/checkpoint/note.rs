//! The checkpoint's bytes: the head of the hash chain at a position, signed with an Ed25519 key kept outside the database, in the C2SP
//! signed-note format (<https://c2sp.org/signed-note>) that Go's checksum database and
//! Sigstore use, with a checkpoint body after <https://c2sp.org/tlog-checkpoint>:
//!
//! ```text
//! <origin>
//! <position>
//! <head hash, base64>
//! time <RFC 3339>
//!
//! — <key name> <base64 of key id (4 bytes) and signature (64 bytes)>
//! ```
//!
//! The key id is the first four bytes of SHA-256 over the key name, a newline, the
//! algorithm byte 0x01 (Ed25519) and the public key. A verifier key is written
//! `<name>+<key id, hex>+<base64 of 0x01 and the public key>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

const ED25519_ALG: u8 = 0x01;
const DASH: &str = "\u{2014} ";

/// What a checkpoint states: the log `origin` held `position` events, the last with
/// `head_hash` (hex, as the log stores it), at `time`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub position: i64,
    pub head_hash: String,
    pub time: DateTime<Utc>,
}

/// Why a checkpoint was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint is malformed: {0}")]
    Malformed(String),
    #[error("the verifier key is malformed: {0}")]
    BadKey(String),
    #[error("no signature by key {0} on the checkpoint")]
    NotSigned(String),
    #[error("the signature by key {0} does not verify")]
    BadSignature(String),
}

impl Checkpoint {
    /// The signed text: origin, position, head hash (base64), then a time line.
    pub fn body(&self) -> Result<String, CheckpointError> {
        let hash =
            hex::decode(&self.head_hash).map_err(|_| CheckpointError::Malformed("the head hash is not hex".into()))?;
        Ok(format!(
            "{}\n{}\n{}\ntime {}\n",
            self.origin,
            self.position,
            B64.encode(hash),
            self.time.to_rfc3339_opts(SecondsFormat::Secs, true)
        ))
    }

    fn parse(body: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
        let lines: Vec<&str> = body.strip_suffix('\n').ok_or_else(|| bad("no final newline"))?.split('\n').collect();
        let [origin, position, hash, time] = lines.as_slice() else { return Err(bad("expected four lines")) };
        let time = time.strip_prefix("time ").ok_or_else(|| bad("no time line"))?;
        Ok(Self {
            origin: (*origin).to_owned(),
            position: position.parse().map_err(|_| bad("the position is not a number"))?,
            head_hash: hex::encode(B64.decode(hash).map_err(|_| bad("the head hash is not base64"))?),
            time: DateTime::parse_from_rfc3339(time).map_err(|_| bad("the time is not RFC 3339"))?.with_timezone(&Utc),
        })
    }
}

fn key_id(name: &str, public: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_ALG]);
    h.update(public);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// An Ed25519 key that signs checkpoints, under a name.
pub struct CheckpointKey {
    name: String,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointKey({})", self.verifier_key())
    }
}

impl CheckpointKey {
    /// The key from its 32-byte seed.
    pub fn from_seed(name: &str, seed: &[u8]) -> Result<Self, CheckpointError> {
        if name.is_empty() || name.contains(['+', ' ', '\n']) {
            return Err(CheckpointError::BadKey("a key name is non-empty, without spaces, '+' or newlines".into()));
        }
        let seed: [u8; 32] = seed.try_into().map_err(|_| CheckpointError::BadKey("not a 32-byte seed".into()))?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| CheckpointError::BadKey("not a 32-byte seed".into()))?;
        Ok(Self { name: name.to_owned(), seed, pair })
    }

    /// A new random key.
    pub fn generate(name: &str) -> Result<Self, CheckpointError> {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| CheckpointError::BadKey("the system has no randomness".into()))?;
        Self::from_seed(name, &seed)
    }

    /// The key's file text, `PRIVATE+KEY+<name>+<key id>+<base64 of 0x01 and the seed>`
    /// (the signer-key format of Go's `golang.org/x/mod/sumdb/note`).
    pub fn private_text(&self) -> String {
        let mut encoded = vec![ED25519_ALG];
        encoded.extend_from_slice(&self.seed);
        format!("PRIVATE+KEY+{}+{}+{}\n", self.name, self.key_id(), B64.encode(encoded))
    }

    /// Reads [`Self::private_text`] back.
    pub fn from_private_text(text: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::BadKey(m.to_owned());
        let rest = text.trim().strip_prefix("PRIVATE+KEY+").ok_or_else(|| bad("not a PromptOS signing key file"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(encoded)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected PRIVATE+KEY+name+id+key"));
        };
        let encoded = B64.decode(encoded).map_err(|_| bad("the key is not base64"))?;
        let Some((&ED25519_ALG, seed)) = encoded.split_first() else { return Err(bad("not an Ed25519 key")) };
        let key = Self::from_seed(name, seed)?;
        if key.key_id() != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(key)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, hex (8 digits).
    pub fn key_id(&self) -> String {
        hex::encode(key_id(&self.name, self.pair.public_key().as_ref()))
    }

    /// `<name>+<key id>+<base64 of 0x01 and the public key>`: what verifiers are given.
    pub fn verifier_key(&self) -> String {
        let public = self.pair.public_key().as_ref();
        let mut encoded = vec![ED25519_ALG];
        encoded.extend_from_slice(public);
        format!("{}+{}+{}", self.name, hex::encode(key_id(&self.name, public)), B64.encode(encoded))
    }

    /// The signed note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, CheckpointError> {
        let body = checkpoint.body()?;
        let mut signature = key_id(&self.name, self.pair.public_key().as_ref()).to_vec();
        signature.extend_from_slice(self.pair.sign(body.as_bytes()).as_ref());
        Ok(format!("{body}\n{DASH}{} {}\n", self.name, B64.encode(signature)))
    }
}

/// A verifier key's name and Ed25519 public key, checked against its key id.
pub fn parse_verifier_key(verifier_key: &str) -> Result<(&str, Vec<u8>), CheckpointError> {
    let bad_key = |m: &str| CheckpointError::BadKey(m.to_owned());
    let mut parts = verifier_key.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad_key("expected name+id+key"));
    };
    let key = B64.decode(key).map_err(|_| bad_key("the key is not base64"))?;
    let Some((&ED25519_ALG, public)) = key.split_first() else { return Err(bad_key("not an Ed25519 key")) };
    if public.len() != 32 || hex::encode(key_id(name, public)) != id {
        return Err(bad_key("the key id does not match the key"));
    }
    Ok((name, public.to_vec()))
}

/// The key id (hex) a verifier key names, if it is well-formed.
pub fn verifier_key_id(verifier_key: &str) -> Option<&str> {
    verifier_key.trim().split('+').nth(1)
}

/// Checks a signed note against a verifier key and returns what it states.
pub fn verify(note: &str, verifier_key: &str) -> Result<Checkpoint, CheckpointError> {
    let (name, public) = parse_verifier_key(verifier_key)?;
    let public = public.as_slice();
    let (body, signatures) = note
        .split_once("\n\n")
        .ok_or_else(|| CheckpointError::Malformed("no blank line before the signatures".into()))?;
    let body = format!("{body}\n");
    for line in signatures.lines() {
        let Some(rest) = line.strip_prefix(DASH) else { continue };
        let Some((signer, signature)) = rest.split_once(' ') else { continue };
        let Ok(signature) = B64.decode(signature) else { continue };
        if signer != name || signature.len() != 68 || signature[..4] != key_id(name, public) {
            continue;
        }
        UnparsedPublicKey::new(&ED25519, public)
            .verify(body.as_bytes(), &signature[4..])
            .map_err(|_| CheckpointError::BadSignature(name.to_owned()))?;
        return Checkpoint::parse(&body);
    }
    Err(CheckpointError::NotSigned(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed() -> (CheckpointKey, Checkpoint) {
        let key = CheckpointKey::from_seed("promptos.example", &[7u8; 32]).unwrap();
        let checkpoint = Checkpoint {
            origin: "promptos.example/log".into(),
            position: 42,
            head_hash: "00".repeat(31) + "2a",
            time: DateTime::parse_from_rfc3339("2026-12-05T09:00:00Z").unwrap().with_timezone(&Utc),
        };
        (key, checkpoint)
    }

    #[test]
    fn the_format_is_fixed_by_a_golden_vector() {
        let (key, checkpoint) = fixed();
        let note = key.sign(&checkpoint).unwrap();
        assert_eq!(note, GOLDEN_NOTE, "the signed-note bytes changed:\n{note}");
        assert_eq!(key.verifier_key(), GOLDEN_KEY);
    }

    #[test]
    fn a_note_verifies_with_its_key_and_nothing_else() {
        let (key, checkpoint) = fixed();
        let note = key.sign(&checkpoint).unwrap();
        assert_eq!(verify(&note, &key.verifier_key()).unwrap(), checkpoint);
        let rewritten = note.replace("\n42\n", "\n43\n");
        assert_eq!(
            verify(&rewritten, &key.verifier_key()),
            Err(CheckpointError::BadSignature("promptos.example".into()))
        );
        let other = CheckpointKey::from_seed("promptos.example", &[8u8; 32]).unwrap();
        assert!(matches!(verify(&note, &other.verifier_key()), Err(CheckpointError::NotSigned(_))));
        assert!(matches!(verify(&note, "promptos.example+00000000+AQ=="), Err(CheckpointError::BadKey(_))));
    }

    #[test]
    fn a_key_file_reads_back_as_the_same_key_and_a_damaged_one_is_refused() {
        let (key, _) = fixed();
        let text = key.private_text();
        assert!(text.starts_with("PRIVATE+KEY+promptos.example+8b20337c+"), "{text}");
        let back = CheckpointKey::from_private_text(&text).unwrap();
        assert_eq!(back.verifier_key(), GOLDEN_KEY);
        assert_eq!(verifier_key_id(GOLDEN_KEY), Some("8b20337c"));
        let wrong_id = text.replace("+8b20337c+", "+00000000+");
        assert!(matches!(CheckpointKey::from_private_text(&wrong_id), Err(CheckpointError::BadKey(_))));
        assert!(CheckpointKey::from_private_text(GOLDEN_KEY).is_err(), "a public key is not a signing key");
        let fresh = CheckpointKey::generate("x").unwrap();
        assert_ne!(fresh.verifier_key(), CheckpointKey::generate("x").unwrap().verifier_key());
    }

    const GOLDEN_KEY: &str = "promptos.example+8b20337c+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs";
    const GOLDEN_NOTE: &str = "promptos.example/log\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACo=\ntime 2026-12-05T09:00:00Z\n\n\
        — promptos.example iyAzfG/6r9oq9snndW07LvTl1cogWBEYobxZX5tAadrHkeY4xN0KzEstxzOPgHNO0oIxFYvQUfoYm01sUbT1Co1nmgM=\n";
}
