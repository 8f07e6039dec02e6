//! The secrets of webhooks: generated here, sealed with the server's key before they go
//! into the log, opened to sign deliveries as the Standard Webhooks specification says
//! (<https://www.standardwebhooks.com>): `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "<id>.<timestamp>.<body>">`, keyed with the base64 part of `whsec_…`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use promptos_core::webhook::SealedSecret;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// Bytes of a generated signing secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;
const PREFIX: &str = "whsec_";

/// A signing secret in the clear: shown once to the admin who created it, otherwise only
/// inside the server. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

impl SigningSecret {
    /// A new random secret, `whsec_` and the base64 of 32 random bytes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        SystemRandom::new().fill(&mut bytes).expect("the system's random source works");
        Self(format!("{PREFIX}{}", B64.encode(bytes)))
    }

    /// A secret as written, `whsec_<base64>`.
    pub fn parse(s: &str) -> Option<Self> {
        let key = B64.decode(s.strip_prefix(PREFIX)?).ok()?;
        (key.len() >= 24 && key.len() <= 64).then(|| Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        B64.decode(&self.0[PREFIX.len()..]).expect("a secret is built from valid base64")
    }

    /// `v1,<signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.key());
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", B64.encode(ctx.sign().as_ref()))
    }
}

/// Why a sealed secret could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the webhook secret was sealed with key {found}, but this server has key {have}; \
         set PROMPTOS_WEBHOOK_KEY to the key of the server that created it"
    )]
    OtherKey { found: String, have: String },
    #[error("the sealed webhook secret is damaged")]
    Damaged,
}

/// The server's key for sealing webhook secrets (AES-256-GCM).
pub struct SealingKey {
    key: LessSafeKey,
    id: String,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealingKey({})", self.id)
    }
}

impl SealingKey {
    /// A random key, as base64 (what `PROMPTOS_WEBHOOK_KEY` holds).
    pub fn generate_base64() -> String {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).expect("the system's random source works");
        B64.encode(bytes)
    }

    /// The key from its base64 form (32 bytes).
    pub fn from_base64(s: &str) -> Result<Self, String> {
        let bytes = B64.decode(s.trim()).map_err(|_| "the webhook key is not base64".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!("the webhook key must be 32 bytes (got {})", bytes.len()));
        }
        let id = hex::encode(&Sha256::digest(&bytes)[..8]);
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("a 32-byte key"));
        Ok(Self { key, id })
    }

    /// Names the key without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn seal(&self, secret: &SigningSecret) -> SealedSecret {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).expect("the system's random source works");
        let mut data = secret.0.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(self.id.as_bytes()), &mut data)
            .expect("sealing a short secret cannot fail");
        SealedSecret { key_id: self.id.clone(), nonce: B64.encode(nonce), ciphertext: B64.encode(data) }
    }

    pub fn open(&self, sealed: &SealedSecret) -> Result<SigningSecret, SealError> {
        if sealed.key_id != self.id {
            return Err(SealError::OtherKey { found: sealed.key_id.clone(), have: self.id.clone() });
        }
        let nonce: [u8; NONCE_LEN] =
            B64.decode(&sealed.nonce).ok().and_then(|n| n.try_into().ok()).ok_or(SealError::Damaged)?;
        let mut data = B64.decode(&sealed.ciphertext).map_err(|_| SealError::Damaged)?;
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(self.id.as_bytes()), &mut data)
            .map_err(|_| SealError::Damaged)?;
        let text = std::str::from_utf8(plain).map_err(|_| SealError::Damaged)?;
        SigningSecret::parse(text).ok_or(SealError::Damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_specification_s_example() {
        // The example of the Standard Webhooks specification.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_intact() {
        let key = SealingKey::from_base64(&SealingKey::generate_base64()).unwrap();
        let secret = SigningSecret::generate();
        assert!(secret.expose().starts_with("whsec_") && SigningSecret::parse(secret.expose()).is_some());
        let sealed = key.seal(&secret);
        assert!(!sealed.ciphertext.contains(&secret.expose()[6..]));
        assert_eq!(key.open(&sealed).unwrap(), secret);
        let other = SealingKey::from_base64(&SealingKey::generate_base64()).unwrap();
        assert!(matches!(other.open(&sealed), Err(SealError::OtherKey { .. })));
        let mut tampered = sealed.clone();
        tampered.ciphertext = B64.encode(b"not what was sealed, not what was sealed");
        assert!(matches!(key.open(&tampered), Err(SealError::Damaged)));
        assert!(!format!("{secret:?}").contains("whsec_"));
    }
}
