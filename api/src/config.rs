//! Configuration: one clap struct per command; every option also reads an environment
//! variable.

use clap::Args;
use promptos_core::names::EnvironmentName;
use std::net::SocketAddr;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://promptos.db";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://path/to/file.db` (embedded default) or
    /// `postgres://user:password@host/db`.
    #[arg(long, env = "PROMPTOS_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// Options of the projector, in `serve` and in `promptos projector`.
#[derive(Debug, Clone, Args)]
pub struct FeedArgs {
    /// NATS server to publish the change feed on (`nats://127.0.0.1:4222`). Without it
    /// the change feed is still served as Server-Sent Events by the API.
    #[arg(long, env = "PROMPTOS_NATS_URL")]
    pub nats_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ProjectorArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(flatten)]
    pub feed: FeedArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,

    #[command(flatten)]
    pub feed: FeedArgs,

    /// Address and port to listen on.
    #[arg(long, env = "PROMPTOS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Environments prompts can be deployed to, comma-separated.
    #[arg(
        long,
        env = "PROMPTOS_ENVIRONMENTS",
        value_delimiter = ',',
        default_value = "development,staging,production",
        value_parser = parse_environment
    )]
    pub environments: Vec<EnvironmentName>,

    /// Environments only admins may deploy to or roll back, comma-separated.
    #[arg(
        long,
        env = "PROMPTOS_PROTECTED_ENVIRONMENTS",
        value_delimiter = ',',
        default_value = "production",
        value_parser = parse_environment
    )]
    pub protected_environments: Vec<EnvironmentName>,

    /// Secret that signs access tokens (at least 32 characters). When unset, a random
    /// secret is generated once and kept in the database.
    #[arg(long, env = "PROMPTOS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// How long an access token stays valid, in seconds (default 8 hours).
    #[arg(long, env = "PROMPTOS_TOKEN_LIFETIME_SECS", default_value_t = 8 * 3600)]
    pub token_lifetime_secs: u64,

    /// Password for the `admin` user created when the database has no user yet. When
    /// unset, a strong password is generated and printed once.
    #[arg(long, env = "PROMPTOS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Do not run the projector in this process (run `promptos projector` apart).
    #[arg(long, env = "PROMPTOS_NO_PROJECTOR")]
    pub no_projector: bool,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "PROMPTOS_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// How long a write waits for the read models to include it before answering, in
    /// milliseconds (read-your-writes).
    #[arg(long, env = "PROMPTOS_CONSISTENCY_TIMEOUT_MS", default_value_t = 5000)]
    pub consistency_timeout_ms: u64,

    /// Folder with the built web UI (`scripts/build-ui` writes `ui/dist`), served at
    /// `/ui/`.
    #[arg(long, env = "PROMPTOS_UI_DIR", default_value = "ui/dist")]
    pub ui_dir: std::path::PathBuf,

    /// Entries in the in-memory cache of deployed prompts.
    #[arg(long, env = "PROMPTOS_CACHE_CAPACITY", default_value_t = 100_000)]
    pub cache_capacity: u64,
}

fn parse_environment(s: &str) -> Result<EnvironmentName, String> {
    EnvironmentName::parse(s.trim()).map_err(|e| e.message)
}

impl ServeArgs {
    /// Settings for tests and embedding: the given database, a random local port.
    pub fn for_database(database_url: &str) -> Self {
        Self {
            db: DatabaseArgs { database_url: database_url.to_owned() },
            feed: FeedArgs { nats_url: None },
            bind: "127.0.0.1:0".parse().expect("valid address"),
            environments: EnvironmentName::defaults(),
            protected_environments: vec![EnvironmentName::parse("production").expect("valid")],
            jwt_secret: None,
            token_lifetime_secs: 8 * 3600,
            admin_password: None,
            no_projector: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            consistency_timeout_ms: 5000,
            cache_capacity: 10_000,
            ui_dir: "ui/dist".into(),
        }
    }
}
