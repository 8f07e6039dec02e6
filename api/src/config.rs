//! Configuration: one clap struct per command; every option also reads an environment
//! variable.

use clap::Args;
use promptos_core::names::EnvironmentName;
use std::net::SocketAddr;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://promptos.db";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.0-flash";
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
pub const DEFAULT_BEDROCK_MODEL: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";

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
    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Webhooks: sealing their secrets, and delivering (where the projector runs).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Webhooks")]
pub struct WebhookArgs {
    /// Base64 of 32 bytes that seals webhook signing secrets in the log. When unset, one
    /// is generated and kept in the database. Give every server (and `promptos
    /// projector`) the same key, and keep it with your backups.
    #[arg(long, env = "PROMPTOS_WEBHOOK_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub webhook_key: Option<Secret>,

    /// Allow webhooks to loopback, private and link-local addresses, and plain http://
    /// (on-premises installs and tests).
    #[arg(long, env = "PROMPTOS_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// Waits before the 2nd, 3rd, … attempt of a failing delivery (each ±20 %); the last
    /// repeats.
    #[arg(long, env = "PROMPTOS_WEBHOOK_RETRY_SCHEDULE", value_delimiter = ',',
        default_value = "5s,5m,30m,2h,5h,10h", value_parser = parse_duration)]
    pub webhook_retry_schedule: Vec<std::time::Duration>,

    /// A delivery failing this long after its event is given up, and its webhook disabled.
    #[arg(long, env = "PROMPTOS_WEBHOOK_GIVE_UP_AFTER", default_value = "1d", value_parser = parse_duration)]
    pub webhook_give_up_after: std::time::Duration,

    /// Seconds a receiver has to answer a delivery.
    #[arg(long, env = "PROMPTOS_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,
}

impl WebhookArgs {
    pub fn delivery(&self) -> crate::webhooks::dispatch::DeliverySettings {
        crate::webhooks::dispatch::DeliverySettings {
            allow_private: self.webhook_allow_private,
            timeout: std::time::Duration::from_secs(self.webhook_timeout_secs.max(1)),
            retry_schedule: self.webhook_retry_schedule.clone(),
            give_up_after: self.webhook_give_up_after,
        }
    }
}

/// Signed checkpoints of the log (`GET /audit/checkpoints`): off without a key.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Signed checkpoints")]
pub struct CheckpointArgs {
    /// The Ed25519 key that signs checkpoints, made by `promptos keygen`. Keep it out of
    /// the database and its backups: whoever holds it can vouch for any log. Retired
    /// keys' public keys are read from `<file>.retired` when it exists.
    #[arg(long, env = "PROMPTOS_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<std::path::PathBuf>,

    /// How often a checkpoint is signed when the log grew.
    #[arg(long, env = "PROMPTOS_CHECKPOINT_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub checkpoint_interval: std::time::Duration,

    /// Also append every checkpoint as a JSON line to this file (`-`: standard output),
    /// for shipping somewhere the database's writers cannot reach.
    #[arg(long, env = "PROMPTOS_CHECKPOINT_LOG")]
    pub checkpoint_log: Option<std::path::PathBuf>,

    /// The log's name in its checkpoints (default: `promptos/` and the start of the first
    /// event's hash, which no other log shares).
    #[arg(long, env = "PROMPTOS_LOG_ORIGIN")]
    pub log_origin: Option<String>,
}

/// Test cases, evaluations, the deploy gate and the playground.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Evaluations and the deploy gate")]
pub struct EvaluationArgs {
    /// Environments where a version goes live only with a passing evaluation of it, run
    /// on the prompt's current test cases, comma-separated (e.g. `production`). An admin
    /// may override with a reason, recorded in the log.
    #[arg(long, env = "PROMPTOS_GATED_ENVIRONMENTS", value_delimiter = ',', value_parser = parse_environment)]
    pub gated_environments: Vec<EnvironmentName>,

    /// Percent of an evaluation's cases that must pass for the gate to open.
    #[arg(long, env = "PROMPTOS_GATE_PASS_RATE", default_value_t = 100,
        value_parser = clap::value_parser!(u8).range(1..=100))]
    pub gate_pass_rate: u8,

    /// Cost guard: the most test cases one evaluation runs (a prompt with more is refused).
    #[arg(long, env = "PROMPTOS_EVAL_MAX_CASES", default_value_t = 100)]
    pub eval_max_cases: usize,

    /// Cost guard: the most tokens (in and out, judges included) one evaluation may use;
    /// cases not run when it is reached fail with that reason.
    #[arg(long, env = "PROMPTOS_EVAL_MAX_TOKENS", default_value_t = 500_000)]
    pub eval_max_tokens: u64,

    /// Cases of one evaluation sent to the provider at once.
    #[arg(long, env = "PROMPTOS_EVAL_CONCURRENCY", default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=64))]
    pub eval_concurrency: u16,

    /// Playground runs one user may start per minute.
    #[arg(long, env = "PROMPTOS_PLAYGROUND_RUNS_PER_MINUTE", default_value_t = 20)]
    pub playground_runs_per_minute: u32,

    /// Cost guard: tokens one user's playground runs may use per hour.
    #[arg(long, env = "PROMPTOS_PLAYGROUND_TOKENS_PER_HOUR", default_value_t = 200_000)]
    pub playground_tokens_per_hour: u64,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,

    #[command(flatten)]
    pub feed: FeedArgs,

    #[command(flatten)]
    pub webhooks: WebhookArgs,

    #[command(flatten)]
    pub checkpoints: CheckpointArgs,

    #[command(flatten)]
    pub evaluations: EvaluationArgs,

    /// Address and port to listen on.
    #[arg(long, env = "PROMPTOS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Also serve `/metrics` without a credential on this address (e.g. 10.0.0.5:9090),
    /// for a network only the Prometheus scraper reaches. On the main address it always
    /// needs a credential.
    #[arg(long, env = "PROMPTOS_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

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

    /// Environments where a change needs an approved change request, as
    /// `environment:approvals`, comma-separated (e.g. `production:1,eu-production:2`).
    /// A direct deploy, rollback or split there answers 409.
    #[arg(long, env = "PROMPTOS_APPROVALS", value_delimiter = ',', value_parser = parse_approvals)]
    pub approvals: Vec<(EnvironmentName, u8)>,

    /// Whether an admin may bypass a change request with `"force": true` (recorded in
    /// the log as forced). `false` makes change requests the only way.
    #[arg(long, env = "PROMPTOS_APPROVALS_ALLOW_FORCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub approvals_allow_force: bool,

    /// How long a change request stays open before it expires: a number with `d`, `h`,
    /// `m` or `s` (e.g. `7d`, `36h`).
    #[arg(long, env = "PROMPTOS_CHANGE_REQUEST_TTL", default_value = "7d", value_parser = parse_duration)]
    pub change_request_ttl: std::time::Duration,

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

    /// A client must send a request's headers within this many seconds of connecting or
    /// of its previous response; slow or idle connections are closed after it.
    #[arg(long, env = "PROMPTOS_HEADER_TIMEOUT_SECS", default_value_t = 30)]
    pub header_timeout_secs: u64,

    /// A request body that has not fully arrived within this many seconds is answered
    /// with 408 and dropped (a stalled or deliberately slow upload cannot hold a
    /// connection).
    #[arg(long, env = "PROMPTOS_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,

    /// Serve the web UI from this folder instead of the copy built into the binary: for
    /// working on the UI (`scripts/build-ui` writes `ui/dist`). It must hold a built UI.
    #[arg(long, env = "PROMPTOS_UI_DIR")]
    pub ui_dir: Option<std::path::PathBuf>,

    /// Entries in the in-memory cache of deployed prompts.
    #[arg(long, env = "PROMPTOS_CACHE_CAPACITY", default_value_t = 100_000)]
    pub cache_capacity: u64,

    #[command(flatten)]
    pub llm: LlmArgs,
}

/// LLM providers for prompt optimisation. A provider is offered when its required
/// settings are present; keys are never logged or returned.
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = "LLM providers (prompt optimisation)")]
pub struct LlmArgs {
    /// OpenAI API key; enables the `openai` provider.
    #[arg(long, env = "PROMPTOS_LLM_OPENAI_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub llm_openai_api_key: Option<Secret>,
    #[arg(long, env = "PROMPTOS_LLM_OPENAI_BASE_URL", default_value = DEFAULT_OPENAI_BASE_URL)]
    pub llm_openai_base_url: String,
    #[arg(long, env = "PROMPTOS_LLM_OPENAI_MODEL", default_value = DEFAULT_OPENAI_MODEL)]
    pub llm_openai_model: String,

    /// Azure OpenAI resource endpoint (`https://NAME.openai.azure.com`); with the key and
    /// deployment it enables the `azure` provider.
    #[arg(long, env = "PROMPTOS_LLM_AZURE_ENDPOINT")]
    pub llm_azure_endpoint: Option<String>,
    #[arg(long, env = "PROMPTOS_LLM_AZURE_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub llm_azure_api_key: Option<Secret>,
    /// The Azure deployment name (Azure's "model").
    #[arg(long, env = "PROMPTOS_LLM_AZURE_DEPLOYMENT")]
    pub llm_azure_deployment: Option<String>,
    #[arg(long, env = "PROMPTOS_LLM_AZURE_API_VERSION", default_value = DEFAULT_AZURE_API_VERSION)]
    pub llm_azure_api_version: String,

    /// Google Gemini API key; enables the `gemini` provider.
    #[arg(long, env = "PROMPTOS_LLM_GEMINI_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub llm_gemini_api_key: Option<Secret>,
    #[arg(long, env = "PROMPTOS_LLM_GEMINI_MODEL", default_value = DEFAULT_GEMINI_MODEL)]
    pub llm_gemini_model: String,
    #[arg(
        long,
        env = "PROMPTOS_LLM_GEMINI_BASE_URL",
        default_value = DEFAULT_GEMINI_BASE_URL
    )]
    pub llm_gemini_base_url: String,

    /// AWS region of Amazon Bedrock; with AWS credentials it enables the `bedrock` provider.
    #[arg(long, env = "PROMPTOS_LLM_BEDROCK_REGION")]
    pub llm_bedrock_region: Option<String>,
    #[arg(long, env = "PROMPTOS_LLM_BEDROCK_MODEL", default_value = DEFAULT_BEDROCK_MODEL)]
    pub llm_bedrock_model: String,
    /// Bedrock runtime endpoint (default `https://bedrock-runtime.REGION.amazonaws.com`).
    #[arg(long, env = "PROMPTOS_LLM_BEDROCK_ENDPOINT")]
    pub llm_bedrock_endpoint: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true, value_parser = parse_secret)]
    pub aws_access_key_id: Option<Secret>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub aws_secret_access_key: Option<Secret>,
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub aws_session_token: Option<Secret>,

    /// Base URL of any OpenAI-compatible server (Ollama `http://127.0.0.1:11434/v1`,
    /// vLLM, LM Studio); with a model it enables the `compatible` provider.
    #[arg(long, env = "PROMPTOS_LLM_COMPATIBLE_BASE_URL")]
    pub llm_compatible_base_url: Option<String>,
    #[arg(long, env = "PROMPTOS_LLM_COMPATIBLE_MODEL")]
    pub llm_compatible_model: Option<String>,
    /// Sent as a bearer token when set.
    #[arg(long, env = "PROMPTOS_LLM_COMPATIBLE_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub llm_compatible_api_key: Option<Secret>,

    /// The provider used when a request names none (default: the first configured of
    /// openai, azure, gemini, bedrock, compatible).
    #[arg(long, env = "PROMPTOS_LLM_DEFAULT_PROVIDER")]
    pub llm_default_provider: Option<String>,
    /// How long one call to a provider may take, in seconds.
    #[arg(long, env = "PROMPTOS_LLM_TIMEOUT_SECS", default_value_t = 60)]
    pub llm_timeout_secs: u64,
    /// Retries after a timeout, 429 or 5xx (with growing pauses).
    #[arg(long, env = "PROMPTOS_LLM_MAX_RETRIES", default_value_t = 2)]
    pub llm_max_retries: u32,
}

/// A credential: its `Debug` never shows the value, so it cannot leak into a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.trim().to_owned()))
}

fn parse_environment(s: &str) -> Result<EnvironmentName, String> {
    EnvironmentName::parse(s.trim()).map_err(|e| e.message)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?}: write a number and a unit, e.g. 7d, 36h, 30m or 90s"))?;
    let ms = match unit {
        "d" => n * 86_400_000,
        "h" => n * 3_600_000,
        "m" => n * 60_000,
        "s" => n * 1_000,
        "ms" => n,
        _ => return Err(format!("{s:?}: the unit must be d, h, m, s or ms (e.g. 7d)")),
    };
    if ms == 0 || ms > 10 * 365 * 86_400_000 {
        return Err(format!("{s:?}: must be more than nothing and at most 10 years"));
    }
    Ok(std::time::Duration::from_millis(ms))
}

fn parse_approvals(s: &str) -> Result<(EnvironmentName, u8), String> {
    let (env, n) = s.split_once(':').ok_or_else(|| format!("{s:?}: write environment:approvals, e.g. production:1"))?;
    let n: u8 = n.trim().parse().map_err(|_| format!("{s:?}: the number of approvals must be 1 to 10"))?;
    if !(1..=10).contains(&n) {
        return Err(format!("{s:?}: the number of approvals must be 1 to 10"));
    }
    Ok((parse_environment(env)?, n))
}

impl ServeArgs {
    /// Settings for tests and embedding: the given database, a random local port, and
    /// every other option at the default `promptos serve` has (clap's own, read the same
    /// way, so the two cannot drift; `PROMPTOS_*` variables in the environment apply).
    pub fn for_database(database_url: &str) -> Self {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            args: ServeArgs,
        }
        <Serve as clap::Parser>::try_parse_from(["promptos", "--database-url", database_url, "--bind", "127.0.0.1:0"])
            .expect("the defaults parse")
            .args
    }
}
