//! Building the application: one function that `promptos serve` and the tests both call.

use crate::auth::{passwords, throttle::LoginThrottle, tokens, Auth};
use crate::caches::Caches;
use crate::commands::Commands;
use crate::config::ServeArgs;
use crate::follower::Follower;
use crate::optimize::{goals, Optimizer};
use promptos_core::access::UserCommand;
use promptos_core::evaluation::GatePolicy;
use promptos_core::events::user_stream;
use promptos_core::names::{EnvironmentName, Role, Username};
use promptos_core::prompt::Context;
use promptos_projector::projector::{Projector, ProjectorOptions, Wakeup};
use promptos_projector::queries;
use promptos_store::{Db, Metadata, Writer};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct Settings {
    pub protected_environments: Vec<EnvironmentName>,
    /// Approvals change requests need, and how long they stay open.
    pub change_requests: crate::change_requests::Policy,
    /// Whether admins may bypass a policy with `force`.
    pub allow_force: bool,
    /// Whether webhooks may go to private addresses and plain http://.
    pub webhook_allow_private: bool,
    pub consistency_timeout: Duration,
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    /// Where the web UI is served from.
    pub ui: crate::http::ui::UiSource,
    /// The evaluations' cost guard and pace.
    pub evaluations: EvaluationLimits,
}

/// What one evaluation may run and spend (`PROMPTOS_EVAL_*`).
#[derive(Debug, Clone, Copy)]
pub struct EvaluationLimits {
    pub max_cases: usize,
    pub max_tokens: u64,
    pub concurrency: usize,
}

/// Shared by every handler: one pointer, so the per-request clone axum makes of its state
/// is one reference count, not one per field (the clones and drops of a field-by-field
/// state were a third of the read path's profile; BENCHMARKS.md, #1).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points to.
pub struct Shared {
    pub db: Db,
    pub commands: Commands,
    pub follower: Follower,
    /// What running SDK instances report they serve.
    pub fleet: crate::fleet::Fleet,
    pub caches: Caches,
    pub auth: Arc<Auth>,
    pub settings: Arc<Settings>,
    pub optimizer: Arc<Optimizer>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub gate: Arc<crate::gate::DbGate>,
    pub verify: Arc<crate::caches::VerifyCache>,
    /// Seals webhook signing secrets before they reach the log.
    pub webhook_key: Arc<crate::webhooks::crypto::SealingKey>,
    /// Wakes this process's webhook dispatcher (a test ping, a redelivery).
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Signs checkpoints of the log; `None` without a signing key.
    pub checkpointer: Option<Arc<crate::checkpoint::Checkpointer>>,
    /// The evaluations this process runs, for their progress streams.
    pub runs: Arc<crate::evaluation::run::Runs>,
    /// The playground's per-user allowance.
    pub playground: Arc<crate::evaluation::playground::Limiter>,
}

/// What start-up did that the operator must know about.
#[derive(Debug, Default)]
pub struct Bootstrap {
    /// Set when this start created the first user with a generated password.
    pub generated_admin_password: Option<String>,
}

impl AppState {
    /// Connects, migrates, starts the writer, the projector (unless disabled) and the
    /// follower, and creates the first admin if there is no user yet.
    pub async fn start(args: &ServeArgs) -> anyhow::Result<(Self, Bootstrap)> {
        let db = Db::connect_and_migrate(&args.db.database_url).await?;
        Self::start_with(db, args).await
    }

    pub async fn start_with(db: Db, args: &ServeArgs) -> anyhow::Result<(Self, Bootstrap)> {
        anyhow::ensure!(
            args.protected_environments.iter().all(|p| args.environments.contains(p)),
            "every protected environment must also be listed in PROMPTOS_ENVIRONMENTS"
        );
        if let Some((env, _)) = args.approvals.iter().find(|(env, _)| !args.environments.contains(env)) {
            anyhow::bail!("PROMPTOS_APPROVALS names {env}, which is not listed in PROMPTOS_ENVIRONMENTS");
        }
        if let Some(env) = args.evaluations.gated_environments.iter().find(|e| !args.environments.contains(e)) {
            anyhow::bail!("PROMPTOS_GATED_ENVIRONMENTS names {env}, which is not listed in PROMPTOS_ENVIRONMENTS");
        }
        // With an LLM provider configured, the optimiser's meta-prompts live in `system`,
        // an environment only admins change.
        let optimizer = Arc::new(Optimizer::new(&args.llm));
        let mut environments = args.environments.clone();
        let mut protected_environments = args.protected_environments.clone();
        if optimizer.configured() {
            let system = EnvironmentName::parse(goals::SYSTEM_ENVIRONMENT).expect("valid environment");
            if !environments.contains(&system) {
                environments.push(system.clone());
                protected_environments.push(system);
            }
        }
        let ui = crate::http::ui::UiSource::new(args.ui_dir.clone())?;
        let checkpointer = crate::checkpoint::Checkpointer::load(db.clone(), &args.checkpoints)?;
        let writer = Writer::start(db.clone());
        // The write side's catalog is folded from the log in the background, so the
        // start is not held up by a long log.
        writer.prepare();
        let in_process = if args.no_projector {
            None
        } else {
            let projector =
                Projector::new(db.clone(), ProjectorOptions::default()).with_change_feed(args.feed.nats_url.clone());
            let progress = projector.progress();
            tokio::spawn(projector.run(Wakeup::InProcess(writer.appended())));
            Some(progress)
        };
        let caches = Caches::new(args.cache_capacity);
        let projected = in_process.clone();
        let webhook_key =
            Arc::new(crate::webhooks::sealing_key(&db, args.webhooks.webhook_key.as_ref().map(|k| k.expose())).await?);
        let follower = Follower::start(db.clone(), caches.clone(), environments.clone(), in_process).await?;
        let secret = tokens::signing_secret(&db, args.jwt_secret.as_deref()).await?;
        let gate = GatePolicy {
            environments: args.evaluations.gated_environments.clone(),
            pass_rate: args.evaluations.gate_pass_rate,
        };
        let context = Context { environments, protected_environments: protected_environments.clone(), gate };
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let fleet = crate::fleet::Fleet::start(db.clone(), metrics.clone(), follower.subscribe_internal());
        let state = Self(Arc::new(Shared {
            commands: Commands::new(db.clone(), writer, context),
            gate: crate::gate::DbGate::new(db.clone()),
            db,
            follower,
            fleet,
            caches,
            auth: Arc::new(Auth {
                tokens: tokens::Tokens::new(&secret, Duration::from_secs(args.token_lifetime_secs)),
                throttle: LoginThrottle::default(),
            }),
            settings: Arc::new(Settings {
                protected_environments,
                change_requests: crate::change_requests::Policy {
                    approvals: args.approvals.iter().cloned().collect(),
                    ttl: chrono::Duration::from_std(args.change_request_ttl)?,
                },
                allow_force: args.approvals_allow_force,
                webhook_allow_private: args.webhooks.webhook_allow_private,
                consistency_timeout: Duration::from_millis(args.consistency_timeout_ms),
                max_body_bytes: args.max_body_bytes,
                body_timeout: Duration::from_secs(args.body_timeout_secs),
                ui,
                evaluations: EvaluationLimits {
                    max_cases: args.evaluations.eval_max_cases,
                    max_tokens: args.evaluations.eval_max_tokens,
                    concurrency: usize::from(args.evaluations.eval_concurrency),
                },
            }),
            optimizer,
            metrics,
            verify: Arc::default(),
            webhook_key,
            webhook_wake: Arc::default(),
            checkpointer,
            runs: Arc::default(),
            playground: Arc::new(crate::evaluation::playground::Limiter::new(
                args.evaluations.playground_runs_per_minute,
                args.evaluations.playground_tokens_per_hour,
            )),
        }));
        let bootstrap = state.bootstrap_admin(args.admin_password.clone()).await?;
        if state.optimizer.configured() {
            goals::seed(&state).await?;
        }
        crate::change_requests::scheduler::start(state.db.clone(), state.commands.clone());
        if let Some(checkpointer) = &state.checkpointer {
            checkpointer.clone().start();
        }
        // Webhooks go out from the process that runs the projector (whose batches wake
        // the dispatcher); with --no-projector, `promptos projector` sends them.
        if let Some(projected) = projected {
            let settings = args.webhooks.delivery();
            crate::webhooks::dispatch::Dispatcher::new(
                state.db.clone(),
                state.commands.clone(),
                state.webhook_key.clone(),
                settings,
                state.metrics.clone(),
            )
            .start(projected, state.webhook_wake.clone());
        }
        Ok((state, bootstrap))
    }

    /// Creates `admin` when no user was ever created. Two servers starting together on
    /// one database race on the `user:admin` stream; exactly one wins.
    async fn bootstrap_admin(&self, configured: Option<String>) -> anyhow::Result<Bootstrap> {
        if queries::any_user_ever(&self.db).await? {
            return Ok(Bootstrap::default());
        }
        let (password, generated) = match configured.filter(|p| !p.is_empty()) {
            Some(p) => {
                passwords::check_policy(&p).map_err(|e| anyhow::anyhow!("PROMPTOS_ADMIN_PASSWORD: {e}"))?;
                (p, false)
            }
            None => (passwords::generate(), true),
        };
        let username = Username::parse("admin").expect("valid username");
        let command = UserCommand::Create {
            username: username.clone(),
            role: Role::Admin,
            password_hash: passwords::hash(password.clone()).await?,
        };
        match self.commands.users.execute(user_stream(&username), command, Metadata::new("system")).await {
            Ok(outcome) => {
                self.settle(outcome.position).await;
                Ok(Bootstrap { generated_admin_password: generated.then_some(password) })
            }
            // Another server created it first.
            Err(crate::commands::CommandError::Domain(promptos_core::DomainError::UserExists(_))) => {
                Ok(Bootstrap::default())
            }
            Err(e) => Err(anyhow::anyhow!("cannot create the first user: {e}")),
        }
    }

    /// Waits until the read models include `position`, so that the client who made a
    /// write can read it back at once. Returns false if the wait timed out (the write is
    /// durable either way).
    pub async fn settle(&self, position: i64) -> bool {
        let settled = self.follower.wait_for(position, self.settings.consistency_timeout).await;
        if !settled {
            tracing::warn!(position, "read models did not catch up within the consistency timeout");
        }
        settled
    }
}
