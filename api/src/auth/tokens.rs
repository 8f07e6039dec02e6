//! Access tokens: HS256 JWTs signed with `PROMPTOS_JWT_SECRET`, or with a random secret
//! generated once and kept in the database so tokens survive restarts.

use super::passwords::random_bytes;
use jsonwebtoken::{decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use promptos_store::Db;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Username.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Log position of the user's current password when the token was issued; a token
    /// issued before a password change no longer works.
    pub pwp: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
}

#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub lifetime: Duration,
}

impl Tokens {
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    pub fn issue(&self, username: &str, password_position: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: username.to_owned(),
            iat: now,
            exp: now + self.lifetime.as_secs() as i64,
            pwp: password_position,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    /// Signs other claims with the same key, for `audience` (never accepted as an access
    /// token: those have no audience and need claims these lack).
    pub fn sign_for<T: Serialize>(&self, claims: &T) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    /// Checks claims signed by [`Tokens::sign_for`] for `audience`.
    pub fn verify_for<T: serde::de::DeserializeOwned>(&self, token: &str, audience: &str) -> Result<T, TokenError> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        decode::<T>(token, &self.decoding, &validation).map(|d| d.claims).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })
    }
}

/// The signing secret: the configured one, or the one kept in the database (created on
/// first use; two servers starting together agree on whichever was inserted first).
pub async fn signing_secret(db: &Db, configured: Option<&str>) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = configured.filter(|s| !s.is_empty()) {
        anyhow::ensure!(secret.len() >= 32, "PROMPTOS_JWT_SECRET must be at least 32 characters long");
        return Ok(secret.as_bytes().to_vec());
    }
    let candidate = hex::encode(random_bytes::<32>());
    let value = promptos_store::secrets::server_secret(db, "jwt_signing_key", &candidate).await?;
    Ok(value.into_bytes())
}
