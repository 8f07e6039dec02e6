//! Signed checkpoints: the log proving itself to someone who does not trust the
//! database. The hash chain alone shows that rows were edited, but not that the whole
//! log was rewritten with every hash recomputed; a checkpoint, the chain head at a
//! position signed with a key that is not in the database, does. A checkpoint is made
//! every interval when the log grew, and on demand; each is stored (`audit_checkpoints`)
//! and may be appended to a file or standard output for an operator to ship elsewhere.
//!
//! - [`note`]: the signed bytes (C2SP signed note) and the key;
//! - [`Checkpointer`]: making them, periodically on one server at a time;
//! - [`check_stored`]: every stored checkpoint against the current log, for
//!   `/audit/verify`; the offline verifier is `promptos audit verify` (`cli::audit`).

pub mod note;

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
pub use note::{verifier_key_id, verify, Checkpoint, CheckpointError, CheckpointKey};
use promptos_store::checkpoints::{self, StoredCheckpoint};
use promptos_store::{Db, EventLog};
use serde::Serialize;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Key of the PostgreSQL advisory lock held by the server that signs periodically.
const CHECKPOINT_LOCK_KEY: i64 = 0x5052_4f4d_5054_0005;

/// Where retired keys' public keys are kept: one verifier key per line, beside the key.
pub fn retired_keys_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".retired");
    PathBuf::from(name)
}

/// Reads verifier keys, one per line (blank lines and `#` comments skipped).
pub fn read_verifier_keys(text: &str) -> Result<Vec<String>, CheckpointError> {
    let keys: Vec<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
    for k in &keys {
        note::parse_verifier_key(k).map_err(|e| CheckpointError::BadKey(format!("{k:?}: {e}")))?;
    }
    Ok(keys)
}

/// Signs and keeps checkpoints with the server's key.
pub struct Checkpointer {
    db: Db,
    key: CheckpointKey,
    /// Verifier keys of retired signing keys (still trusted for old checkpoints).
    retired: Vec<String>,
    origin: Option<String>,
    log: Option<PathBuf>,
    interval: Duration,
    /// One checkpoint at a time in this process.
    making: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer").field("key", &self.key).finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// The checkpointer `args` configure, or `None` when no key file is given.
    pub fn load(db: Db, args: &crate::config::CheckpointArgs) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(path) = &args.signing_key_file else { return Ok(None) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the signing key {} (PROMPTOS_SIGNING_KEY_FILE)", path.display()))?;
        let key = CheckpointKey::from_private_text(&text)
            .with_context(|| format!("{} is not a signing key made by `promptos keygen`", path.display()))?;
        let retired_path = retired_keys_path(path);
        let retired = match std::fs::read_to_string(&retired_path) {
            Ok(text) => read_verifier_keys(&text).with_context(|| format!("in {}", retired_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", retired_path.display())),
        };
        tracing::info!(key = %key.verifier_key(), retired = retired.len(), "signing checkpoints");
        Ok(Some(Arc::new(Self {
            db,
            key,
            retired,
            origin: args.log_origin.clone(),
            log: args.checkpoint_log.clone(),
            interval: args.checkpoint_interval.max(Duration::from_secs(1)),
            making: tokio::sync::Mutex::new(()),
        })))
    }

    /// The signing key's verifier key.
    pub fn verifier_key(&self) -> String {
        self.key.verifier_key()
    }

    /// The signing key's id (hex).
    pub fn key_id(&self) -> String {
        self.key.key_id()
    }

    /// Retired keys' verifier keys.
    pub fn retired(&self) -> &[String] {
        &self.retired
    }

    /// Every key a stored checkpoint may be signed with: this one first.
    pub fn trusted(&self) -> Vec<String> {
        std::iter::once(self.verifier_key()).chain(self.retired.iter().cloned()).collect()
    }

    /// Signs the log's head now, unless this key already signed it (then that
    /// checkpoint). `None` while the log is empty.
    pub async fn checkpoint(&self) -> anyhow::Result<Option<StoredCheckpoint>> {
        let _one = self.making.lock().await;
        let position = self.db.head().await?;
        if position == 0 {
            return Ok(None);
        }
        let key_id = self.key.key_id();
        if let Some(done) = checkpoints::list(&self.db, Some(position + 1), 1)
            .await?
            .into_iter()
            .find(|c| c.position == position && c.key_id == key_id)
        {
            return Ok(Some(done));
        }
        let head_hash = checkpoints::hash_at(&self.db, position).await?.context("the log's head has no hash")?;
        let origin = match &self.origin {
            Some(origin) => origin.clone(),
            None => {
                let first = checkpoints::hash_at(&self.db, 1).await?.unwrap_or_default();
                format!("promptos/{}", &first[..first.len().min(16)])
            }
        };
        // The note's time has whole seconds; keep the stored time identical to it.
        let time = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_else(Utc::now);
        let checkpoint = Checkpoint { origin, position, head_hash, time };
        let stored = StoredCheckpoint {
            note: self.key.sign(&checkpoint)?,
            position,
            head_hash: checkpoint.head_hash,
            origin: checkpoint.origin,
            signed_at: time.to_rfc3339_opts(SecondsFormat::Secs, true),
            key_id,
            verifier_key: self.key.verifier_key(),
        };
        if checkpoints::insert(&self.db, &stored).await? {
            tracing::info!(position, key_id = %stored.key_id, "signed a checkpoint");
            self.ship(&stored);
        }
        Ok(Some(stored))
    }

    /// Appends the checkpoint to the checkpoint log, if one is configured.
    fn ship(&self, c: &StoredCheckpoint) {
        let Some(path) = &self.log else { return };
        let line = serde_json::json!({
            "position": c.position, "head_hash": c.head_hash, "origin": c.origin,
            "time": c.signed_at, "key_id": c.key_id, "note": c.note,
        })
        .to_string();
        let written = if path.as_os_str() == "-" {
            writeln!(std::io::stdout().lock(), "{line}")
        } else {
            std::fs::OpenOptions::new().create(true).append(true).open(path).and_then(|mut f| writeln!(f, "{line}"))
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %path.display(), "cannot append to the checkpoint log");
        }
    }

    /// Signs every interval when the log grew, on one server at a time (PostgreSQL). A
    /// key that has not signed the head yet (a new or rotated key) signs at once.
    pub fn start(self: Arc<Self>) {
        tokio::spawn(async move {
            let _leadership = self.db.lead(CHECKPOINT_LOCK_KEY, "checkpoint signer").await;
            loop {
                if let Err(e) = self.checkpoint().await {
                    tracing::warn!(error = %e, "could not sign a checkpoint; retrying at the next interval");
                }
                tokio::time::sleep(self.interval).await;
            }
        });
    }
}

/// One stored checkpoint that does not hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckpointFailure {
    pub position: i64,
    pub key_id: String,
    pub reason: String,
}

/// What checking the stored checkpoints found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointReport {
    /// False when the server has no signing key: nothing was checked.
    pub enabled: bool,
    pub ok: bool,
    pub checked: usize,
    /// The newest valid checkpoint: position, time and key.
    pub latest: Option<LatestCheckpoint>,
    /// The first failures (at most 10), oldest first.
    pub failures: Vec<CheckpointFailure>,
    /// What this result proves, in a sentence.
    pub statement: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatestCheckpoint {
    pub position: i64,
    pub time: String,
    pub key_id: String,
}

/// Checks every stored checkpoint against the current log with `trusted` verifier keys
/// (the server's own and retired keys, never the keys stored beside the checkpoints);
/// `None` when checkpoints are off.
pub async fn check_stored(db: &Db, trusted: Option<&[String]>) -> Result<CheckpointReport, sqlx::Error> {
    let Some(trusted) = trusted else {
        return Ok(CheckpointReport {
            enabled: false,
            ok: true,
            checked: 0,
            latest: None,
            failures: Vec::new(),
            statement: "Checkpoints are off (no PROMPTOS_SIGNING_KEY_FILE): the hash chain shows edited rows, \
                        but not a rewrite of the whole log by someone who can write to the database."
                .into(),
        });
    };
    let rows = checkpoints::all_with_log_hash(db).await?;
    let head = db.head().await?;
    let mut failures = Vec::new();
    let mut latest = None;
    for (row, log_hash) in &rows {
        match check_one(row, log_hash.as_deref(), head, trusted) {
            Ok(()) => {
                latest = Some(LatestCheckpoint {
                    position: row.position,
                    time: row.signed_at.clone(),
                    key_id: row.key_id.clone(),
                })
            }
            Err(reason) => {
                failures.push(CheckpointFailure { position: row.position, key_id: row.key_id.clone(), reason })
            }
        }
    }
    let ok = failures.is_empty();
    let statement = match (&latest, ok) {
        (_, false) => format!(
            "{} of {} checkpoints do not match the log: it was changed after they were signed.",
            failures.len(),
            rows.len()
        ),
        (None, true) => "No checkpoint has been signed yet.".to_owned(),
        (Some(l), true) => format!(
            "Events 1 to {} are exactly those signed at {} by key {}: they cannot have been changed since \
             without the signing key, even by someone who can write to the database.",
            l.position, l.time, l.key_id
        ),
    };
    failures.truncate(10);
    Ok(CheckpointReport { enabled: true, ok, checked: rows.len(), latest, failures, statement })
}

fn check_one(row: &StoredCheckpoint, log_hash: Option<&str>, head: i64, trusted: &[String]) -> Result<(), String> {
    let key = trusted.iter().find(|k| verifier_key_id(k) == Some(row.key_id.as_str())).ok_or_else(|| {
        format!("signed by key {}, which this server does not trust (neither its key nor a retired one)", row.key_id)
    })?;
    let signed = verify(&row.note, key).map_err(|e| e.to_string())?;
    if signed.position != row.position {
        return Err(format!("the note says position {}, the row {}", signed.position, row.position));
    }
    match log_hash {
        None => Err(format!("the log no longer holds position {} (it ends at {head})", signed.position)),
        Some(hash) if hash != signed.head_hash => Err(format!(
            "the log's hash at position {} is {hash}, but the checkpoint signed at {} says {}: events at or \
             before position {} were changed after it was signed",
            signed.position,
            signed.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            signed.head_hash,
            signed.position
        )),
        Some(_) => Ok(()),
    }
}
