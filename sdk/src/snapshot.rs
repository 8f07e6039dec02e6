//! Persisting known prompts so an application can start while the server is down.

use crate::client::{Inner, Prompts};
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
pub(crate) async fn load(prompts: &Prompts, path: &Path) {
    let Ok(bytes) = tokio::fs::read(path).await else { return };
    let file: SnapshotFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable prompt snapshot");
            return;
        }
    };
    for saved in file.entries {
        match Compiled::new(saved.template, saved.etag, prompts.inner.strict) {
            Ok(compiled) => prompts.store_loaded(compiled).await,
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
        let tmp = path.with_extension("tmp");
        let written = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = written.await {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the prompt snapshot");
        }
    }
}
