//! Listening to the change feed, over NATS or the server's Server-Sent Events.

use crate::cache::Inner;
#[cfg(not(feature = "nats"))]
use crate::error::Error;
use crate::error::Result;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A change to what an environment serves, as published on NATS
/// (`promptos.changes.<environment>.<prompt>`) and on `GET /changes/stream`: the wire
/// contract's change message, shared with the server.
///
/// ```
/// let change: promptos_sdk::Change = serde_json::from_str(r#"{
///     "position": 42, "event_id": "0b6c…", "type": "VersionDeployed", "prompt": "greeting",
///     "environment": "production", "version_string": "v2", "at": "2026-01-31T12:00:00.000000Z"
/// }"#).unwrap();
/// assert_eq!(change.version_string.as_deref(), Some("v2"));
/// ```
pub use promptos_core::wire::ChangeMessage as Change;

/// NATS subject the SDK subscribes to: every environment, every prompt.
///
/// ```
/// assert_eq!(promptos_sdk::SUBJECT, "promptos.changes.>");
/// ```
pub const SUBJECT: &str = promptos_core::wire::SUBJECT_ALL;

fn client(weak: &Weak<Inner>) -> Option<Arc<Inner>> {
    weak.upgrade()
}

pub(crate) fn start(inner: &Arc<Inner>, nats_url: Option<String>) -> Result<()> {
    let weak = Arc::downgrade(inner);
    let task = match nats_url {
        #[cfg(feature = "nats")]
        Some(url) => tokio::spawn(nats(weak, url)),
        #[cfg(not(feature = "nats"))]
        Some(_) => return Err(Error::Config("this build of promptos-sdk has no NATS support (feature `nats`)".into())),
        None => tokio::spawn(sse(weak)),
    };
    *inner.feed_task.lock().expect("feed task lock") = Some(task.abort_handle());
    Ok(())
}

#[cfg(feature = "nats")]
async fn nats(weak: Weak<Inner>, url: String) {
    let (connected_tx, mut connected) = tokio::sync::mpsc::unbounded_channel();
    let options = async_nats::ConnectOptions::new().retry_on_initial_connect().event_callback(move |event| {
        let tx = connected_tx.clone();
        async move {
            match event {
                async_nats::Event::Connected => {
                    let _ = tx.send(());
                }
                async_nats::Event::Disconnected => {
                    tracing::warn!("NATS disconnected; the SDK will revalidate when it is back")
                }
                _ => {}
            }
        }
    });
    let nats = match options.connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up the NATS client; relying on the TTL");
            return;
        }
    };
    let mut subscription = match nats.subscribe(SUBJECT).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot subscribe to the change feed; relying on the TTL");
            return;
        }
    };
    loop {
        tokio::select! {
            message = subscription.next() => {
                let Some(message) = message else { return };
                let Some(prompts) = client(&weak) else { return };
                match serde_json::from_slice::<Change>(&message.payload) {
                    Ok(change) => prompts.apply(change).await,
                    Err(e) => tracing::warn!(error = %e, "ignoring a malformed change message"),
                }
            }
            Some(()) = connected.recv() => {
                // Messages may have been missed while disconnected.
                let Some(prompts) = client(&weak) else { return };
                prompts.revalidate_all().await;
            }
        }
    }
}

async fn sse(weak: Weak<Inner>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(prompts) = client(&weak) else { return };
        let last = prompts.last_position.load(std::sync::atomic::Ordering::Relaxed);
        let mut request = prompts
            .http
            .get(format!("{}/changes/stream", prompts.base))
            // The stream stays open; the server sends keep-alives.
            .timeout(Duration::from_secs(365 * 24 * 3600));
        if last > 0 {
            request = request.header("Last-Event-ID", last.to_string());
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                backoff = Duration::from_millis(100);
                prompts.stale.store(false, std::sync::atomic::Ordering::Relaxed);
                // What is cached may predate the stream: fetched before this first
                // connection was up, or changed while a previous one was down.
                prompts.revalidate_all().await;
                drop(prompts);
                let mut events = response.bytes_stream().eventsource();
                while let Some(event) = events.next().await {
                    let Ok(event) = event else { break };
                    if event.event != "change" {
                        continue;
                    }
                    let Some(prompts) = client(&weak) else { return };
                    match serde_json::from_str::<Change>(&event.data) {
                        Ok(change) => prompts.apply(change).await,
                        Err(e) => tracing::warn!(error = %e, "ignoring a malformed change event"),
                    }
                }
                tracing::warn!("change feed (SSE) ended; reconnecting");
                if let Some(inner) = weak.upgrade() {
                    // Until we are back, answers may be older than what is deployed.
                    inner.stale.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), "change feed (SSE) refused; retrying");
            }
            Err(e) => tracing::debug!(error = %e, "change feed (SSE) unreachable; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
