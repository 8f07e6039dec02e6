//! `promptos users …` and `promptos api-keys …`: managing access from the machine that
//! holds the database (for example to recover a lost admin password).

use crate::auth::{keys, passwords};
use crate::commands::Commands;
use crate::config::DatabaseArgs;
use clap::{Args, Subcommand};
use promptos_core::access::{ApiKeyCommand, UserCommand};
use promptos_core::events::{api_key_stream, user_stream};
use promptos_core::names::{EnvironmentName, Role, Username};
use promptos_core::prompt::Context;
use promptos_projector::projector::{Projector, ProjectorOptions};
use promptos_projector::queries;
use promptos_store::{Db, Metadata, Writer};
use std::io::BufRead;

/// Events written from the command line name this actor.
const CLI_ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. Prints a generated password unless --password-stdin is given.
    Create {
        username: String,
        /// viewer, editor or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Change a user's role.
    SetRole { username: String, role: String },
    /// Disable a user: their tokens stop working.
    Disable { username: String },
    /// Set a new password (generated and printed unless --password-stdin).
    ResetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a read-only API key for applications; the key is printed once.
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// Environments the key may read, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        environments: Vec<String>,
    },
    /// List API keys (never the keys themselves).
    List,
    /// Revoke a key by its id: it stops working at once.
    Revoke { key_id: String },
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, Args)]
pub struct ApiKeysArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Environments that exist, comma-separated (as for `serve`).
    #[arg(
        long,
        env = "PROMPTOS_ENVIRONMENTS",
        value_delimiter = ',',
        default_value = "development,staging,production"
    )]
    pub known_environments: Vec<String>,
    #[command(subcommand)]
    pub command: ApiKeysCommand,
}

struct Session {
    db: Db,
    commands: Commands,
}

impl Session {
    async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        let db = super::open(args).await?;
        let writer = Writer::start(db.clone());
        Ok(Self { commands: Commands::new(db.clone(), writer, Context::default()), db })
    }

    /// Brings the read models up to date, so what we print includes our change even when
    /// no server is running. Safe beside a running projector (compare-and-set).
    async fn project(&self) -> anyhow::Result<()> {
        Projector::new(self.db.clone(), ProjectorOptions::default()).catch_up().await?;
        Ok(())
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((passwords::generate(), true));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    passwords::check_policy(&password).map_err(anyhow::Error::msg)?;
    Ok((password, false))
}

fn domain(e: crate::commands::CommandError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub async fn users(args: UsersArgs) -> anyhow::Result<i32> {
    let session = Session::open(&args.db).await?;
    let meta = Metadata::new(CLI_ACTOR);
    let users = &session.commands.users;
    match args.command {
        UsersCommand::Create { username, role, password_stdin } => {
            let username = Username::parse(&username)?;
            let role = Role::parse(&role)?;
            let (password, generated) = read_password(password_stdin)?;
            let password_hash = passwords::hash(password.clone()).await?;
            let command = UserCommand::Create { username: username.clone(), role, password_hash };
            users.execute(user_stream(&username), command, meta).await.map_err(domain)?;
            println!("created user {username} ({role})");
            if generated {
                println!("password: {password}\n(shown only this once)");
            }
        }
        UsersCommand::List => {
            session.project().await?;
            println!("{:<32} {:<8} {:<9} created", "username", "role", "status");
            for u in queries::users(&session.db).await? {
                let status = if u.disabled { "disabled" } else { "active" };
                println!("{:<32} {:<8} {:<9} {} by {}", u.username, u.role, status, u.created_at, u.created_by);
            }
            return Ok(0);
        }
        UsersCommand::SetRole { username, role } => {
            let username = Username::parse(&username)?;
            let role = Role::parse(&role)?;
            users.execute(user_stream(&username), UserCommand::ChangeRole { role }, meta).await.map_err(domain)?;
            println!("{username} is now {role}");
        }
        UsersCommand::Disable { username } => {
            let username = Username::parse(&username)?;
            users.execute(user_stream(&username), UserCommand::Disable, meta).await.map_err(domain)?;
            println!("{username} is disabled");
        }
        UsersCommand::ResetPassword { username, password_stdin } => {
            let username = Username::parse(&username)?;
            let (password, generated) = read_password(password_stdin)?;
            let command = UserCommand::ChangePassword { password_hash: passwords::hash(password.clone()).await? };
            users.execute(user_stream(&username), command, meta).await.map_err(domain)?;
            println!("password of {username} changed; their older tokens no longer work");
            if generated {
                println!("password: {password}\n(shown only this once)");
            }
        }
    }
    session.project().await?;
    Ok(0)
}

pub async fn api_keys(args: ApiKeysArgs) -> anyhow::Result<i32> {
    let session = Session::open(&args.db).await?;
    let meta = Metadata::new(CLI_ACTOR);
    match args.command {
        ApiKeysCommand::Create { name, environments } => {
            let name = name.trim().to_owned();
            anyhow::ensure!(
                !name.is_empty() && name.chars().count() <= 100,
                "give the key a name of 1 to 100 characters"
            );
            let mut envs = Vec::new();
            for e in environments {
                let env = EnvironmentName::parse(e.trim())?;
                anyhow::ensure!(
                    args.known_environments.iter().any(|k| k == env.as_str()),
                    "unknown environment {env}; known: {}",
                    args.known_environments.join(", ")
                );
                envs.push(env);
            }
            let (key_id, key) = keys::generate();
            let command =
                ApiKeyCommand::Create { key_id: key_id.clone(), name, environments: envs, key_hash: keys::hash(&key) };
            session.commands.api_keys.execute(api_key_stream(&key_id), command, meta).await.map_err(domain)?;
            println!("created API key {key_id}\nkey: {key}\n(shown only this once; send it as `Authorization: Bearer <key>`)");
        }
        ApiKeysCommand::List => {
            session.project().await?;
            println!("{:<14} {:<24} {:<32} status", "key_id", "name", "environments");
            for k in queries::api_keys(&session.db).await? {
                let envs: Vec<String> = serde_json::from_str(&k.environments).unwrap_or_default();
                let status = match &k.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".into(),
                };
                println!("{:<14} {:<24} {:<32} {status}", k.key_id, k.name, envs.join(","));
            }
            return Ok(0);
        }
        ApiKeysCommand::Revoke { key_id } => {
            anyhow::ensure!(
                key_id.len() == 12 && key_id.bytes().all(|b| b.is_ascii_hexdigit()),
                "API key {key_id:?} not found"
            );
            session
                .commands
                .api_keys
                .execute(api_key_stream(&key_id), ApiKeyCommand::Revoke, meta)
                .await
                .map_err(domain)?;
            println!("API key {key_id} revoked");
        }
    }
    session.project().await?;
    Ok(0)
}
