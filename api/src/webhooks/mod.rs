//! Webhooks: delivering the log's events, signed, to the tools a team already uses.
//!
//! - [`crypto`]: the signing secrets, sealed in the log, and the signatures;
//! - [`guard`]: which URLs and addresses a webhook may reach;
//! - [`queue`] and [`dispatch`]: sending what the projector put in the outbox.

pub mod crypto;
pub mod dispatch;
pub mod guard;
pub mod queue;

/// The key that seals webhook secrets: `PROMPTOS_WEBHOOK_KEY`, or one generated once and
/// kept in the database (two servers starting together agree on one).
pub async fn sealing_key(db: &promptos_store::Db, configured: Option<&str>) -> anyhow::Result<crypto::SealingKey> {
    let encoded = match configured {
        Some(k) => k.to_owned(),
        None => {
            promptos_store::secrets::server_secret(db, "webhook-sealing-key", &crypto::SealingKey::generate_base64())
                .await?
        }
    };
    crypto::SealingKey::from_base64(&encoded).map_err(|e| anyhow::anyhow!("PROMPTOS_WEBHOOK_KEY: {e}"))
}
