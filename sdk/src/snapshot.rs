//! Persisting known prompts so an application can start while the server is down.

use crate::cache::Inner;
use crate::template::{Compiled, Template};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    version: u32,
    entries: Vec<Saved>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    #[serde(flatten)]
    template: Template,
    etag: Option<String>,
}

/// Loads the snapshot into the cache. Its entries are treated as old, so the first
/// `get` revalidates them (and serves them if the server is down).
pub(crate) async fn load(inner: &Inner, path: &Path) {
    let Ok(bytes) = tokio::fs::read(path).await else { return };
    let file: SnapshotFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable prompt snapshot");
            return;
        }
    };
    for saved in file.entries {
        match Compiled::new(saved.template, saved.etag, inner.strict) {
            Ok(compiled) => inner.store_loaded(compiled).await,
            Err(e) => tracing::warn!(error = %e, "ignoring a snapshot entry"),
        }
    }
}

/// Writes the snapshot whenever the cache changed, until the client is dropped.
pub(crate) async fn keep_writing(weak: Weak<Inner>, path: PathBuf) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(inner) = weak.upgrade() else { return };
        if !inner.snapshot_dirty.swap(false, Ordering::Relaxed) {
            continue;
        }
        let entries: Vec<Saved> = inner
            .cache
            .iter()
            .map(|(_, e)| Saved { template: e.compiled.template.clone(), etag: e.compiled.etag.clone() })
            .collect();
        drop(inner);
        let bytes = serde_json::to_vec(&SnapshotFile { version: 1, entries }).expect("plain data serializes");
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&target, &bytes)).await;
        if let Err(e) = written.map_err(std::io::Error::other).and_then(|r| r) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the prompt snapshot");
        }
    }
}

/// Replaces `path` with `bytes` so that a reader (or a crash) sees the old file or the
/// new one, never a mix: the bytes go to a temporary file of this writer's own in the
/// same folder (several processes may share one snapshot path), reach the disk, and
/// then take the place of the old file in one rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "snapshot".into());
    let unique =
        format!(".{name}.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let tmp = path.with_file_name(unique);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself reaches the disk with the folder.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
