//! Large logs, fast: events made by the domain's own types, chained and hashed as the
//! writer would, and bulk-imported (`EventLog::import`) in large transactions. Loading a
//! million events through the HTTP API would take longer than the benchmarks.

use anyhow::Result;
use chrono::{Duration as Span, Utc};
use promptos_core::events::*;
use promptos_core::names::*;
use promptos_store::{format_timestamp, Db, EventLog, StoredEvent, GENESIS_HASH};
use uuid::Uuid;

const ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];
const CHUNK: usize = 100_000;

/// The shape of a generated log.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub prompts: usize,
    pub versions: usize,
    /// Deploys per prompt after the first deploy of its last version to every environment.
    pub extra_deploys: usize,
}

impl Shape {
    /// Prompts of `versions` versions, with enough deploys for about `events` events.
    pub fn about(events: usize, prompts: usize, versions: usize) -> Self {
        let base = 1 + versions + ENVIRONMENTS.len();
        let extra_deploys = (events / prompts).saturating_sub(base);
        Self { prompts, versions, extra_deploys }
    }
}

/// The name of generated prompt `i`.
pub fn prompt_name(i: usize) -> String {
    format!("prompt-{i:06}")
}

struct Chain {
    position: i64,
    prev: String,
    at: chrono::DateTime<Utc>,
    metadata: String,
    out: Vec<StoredEvent>,
}

impl Chain {
    fn push(&mut self, stream_id: &str, stream_version: i64, event: Event) {
        self.position += 1;
        self.at += Span::microseconds(10);
        let mut e = StoredEvent {
            position: self.position,
            stream_id: stream_id.to_owned(),
            stream_version,
            event_id: Uuid::now_v7().to_string(),
            event_type: event.event_type().to_owned(),
            payload: event.payload_json(),
            metadata: self.metadata.clone(),
            recorded_at: format_timestamp(self.at),
            prev_hash: std::mem::take(&mut self.prev),
            hash: String::new(),
        };
        e.hash = e.expected_hash();
        self.prev = e.hash.clone();
        self.out.push(e);
    }
}

/// Writes a log of `shape` into an empty database; returns the number of events.
pub async fn generate(db: &Db, shape: Shape) -> Result<usize> {
    let mut chain = Chain {
        position: 0,
        prev: GENESIS_HASH.to_owned(),
        at: Utc::now() - Span::days(30),
        metadata: serde_json::json!({"actor": "user:bench"}).to_string(),
        out: Vec::with_capacity(CHUNK + 64),
    };
    let environments: Vec<EnvironmentName> =
        ENVIRONMENTS.iter().map(|e| EnvironmentName::parse(e).expect("a valid name")).collect();
    let versions: Vec<VersionString> =
        (1..=shape.versions).map(|i| VersionString::parse(&format!("v{i}")).expect("a valid version")).collect();
    let mut written = 0;
    for p in 0..shape.prompts {
        let name = PromptName::parse(&prompt_name(p))?;
        let stream = prompt_stream(&name);
        let prompt_id = Uuid::new_v4();
        let mut sv = 1;
        chain.push(
            &stream,
            sv,
            Event::PromptCreated(PromptCreated {
                prompt_id,
                name: name.clone(),
                description: Description::parse("Generated for the benchmarks")?,
            }),
        );
        for v in &versions {
            sv += 1;
            let text =
                format!("Hello {{{{ customer_name }}}}, this is {name} {v}. How can I help with {{{{ topic }}}}?");
            chain.push(
                &stream,
                sv,
                Event::VersionCreated(VersionCreated::plain_text(
                    prompt_id,
                    name.clone(),
                    v.clone(),
                    text,
                    vec!["customer_name".into(), "topic".into()],
                )),
            );
        }
        let mut live: Vec<Option<VersionString>> = vec![None; environments.len()];
        let last = versions.len() - 1;
        for d in 0..environments.len() + shape.extra_deploys {
            let e = d % environments.len();
            // First every environment gets the newest version, then they move around.
            let version =
                if d < environments.len() { versions[last].clone() } else { versions[d % versions.len()].clone() };
            let version =
                if live[e].as_ref() == Some(&version) { versions[(d + 1) % versions.len()].clone() } else { version };
            sv += 1;
            chain.push(
                &stream,
                sv,
                Event::VersionDeployed(VersionDeployed {
                    prompt_id,
                    name: name.clone(),
                    environment: environments[e].clone(),
                    version_string: version.clone(),
                    previous_version_string: live[e].replace(version),
                    gate: None,
                }),
            );
        }
        if chain.out.len() >= CHUNK {
            db.import(&chain.out).await?;
            written += chain.out.len();
            chain.out.clear();
        }
    }
    db.import(&chain.out).await?;
    written += chain.out.len();
    Ok(written)
}
