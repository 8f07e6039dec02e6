//! Building the application: one function that `promptos serve` and the tests both call.

use crate::commands::Commands;
use crate::config::ServeArgs;
use crate::follower::Follower;
use crate::http::deployed::{new_cache, DeployedCache};
use promptos_core::names::EnvironmentName;
use promptos_core::prompt::Context;
use promptos_projector::projector::{Projector, ProjectorOptions, Wakeup};
use promptos_projector::{Db, Writer};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct Settings {
    pub environments: Vec<EnvironmentName>,
    pub consistency_timeout: Duration,
    pub max_body_bytes: usize,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub commands: Commands,
    pub follower: Follower,
    pub deployed: DeployedCache,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Connects, migrates, starts the writer, the projector (unless disabled) and the
    /// follower.
    pub async fn start(args: &ServeArgs) -> anyhow::Result<Self> {
        let db = Db::connect_and_migrate(&args.db.database_url).await?;
        Self::start_with(db, args).await
    }

    pub async fn start_with(db: Db, args: &ServeArgs) -> anyhow::Result<Self> {
        let writer = Writer::start(db.clone());
        let in_process = if args.no_projector {
            None
        } else {
            let projector = Projector::new(db.clone(), ProjectorOptions::default());
            let progress = projector.progress();
            tokio::spawn(projector.run(Wakeup::InProcess(writer.appended())));
            Some(progress)
        };
        let deployed = new_cache(args.cache_capacity);
        let follower = Follower::start(
            db.clone(),
            deployed.clone(),
            args.environments.clone(),
            in_process,
        )
        .await?;
        let context = Context {
            environments: args.environments.clone(),
        };
        Ok(Self {
            commands: Commands::new(db.clone(), writer, context),
            db,
            follower,
            deployed,
            settings: Arc::new(Settings {
                environments: args.environments.clone(),
                consistency_timeout: Duration::from_millis(args.consistency_timeout_ms),
                max_body_bytes: args.max_body_bytes,
            }),
        })
    }

    /// Waits until the read models include `position`, so that the client who made a
    /// write can read it back at once. Returns false if the wait timed out (the write is
    /// durable either way).
    pub async fn settle(&self, position: i64) -> bool {
        let settled = self
            .follower
            .wait_for(position, self.settings.consistency_timeout)
            .await;
        if !settled {
            tracing::warn!(
                position,
                "read models did not catch up within the consistency timeout"
            );
        }
        settled
    }
}
