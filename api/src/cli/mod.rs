//! The `promptos` command line.

mod access;
mod audit;

use crate::config::{DatabaseArgs, ProjectorArgs, ServeArgs};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use promptos_projector::projector::{Projector, ProjectorOptions, Wakeup};
use promptos_store::{Backend, Db, EventLog};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// PromptOS: prompts as versioned, deployable assets, kept in an append-only event log.
#[derive(Debug, Parser)]
#[command(name = "promptos", version = crate::build_info::LONG_VERSION, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (with the projector in-process unless --no-projector).
    Serve(ServeArgs),
    /// Run only the projector, for scale-out beside API servers started with
    /// --no-projector. Several may run; one projects at a time.
    Projector(ProjectorArgs),
    /// Create or upgrade the database schema and exit.
    Migrate(DatabaseArgs),
    /// Rebuild every read model from the event log.
    Rebuild(DatabaseArgs),
    /// Check the hash chain and that the read models equal a fresh replay. Exits 1 and
    /// names the first wrong event if not.
    Verify(VerifyArgs),
    /// Write the whole event log as JSON Lines (positions and hashes included).
    Export(ExportArgs),
    /// Load an export into an empty database (SQLite or PostgreSQL) and rebuild its read
    /// models: a restore, or a move from SQLite to PostgreSQL. The whole file is checked
    /// (positions, back-links, hashes) before anything is written.
    Import(ImportArgs),
    /// Manage users: create, list, set-role, disable, reset-password.
    Users(access::UsersArgs),
    /// Manage API keys for applications: create, list, revoke.
    ApiKeys(access::ApiKeysArgs),
    /// Make the Ed25519 key that signs checkpoints of the log
    /// (PROMPTOS_SIGNING_KEY_FILE), or rotate it.
    Keygen(audit::KeygenArgs),
    /// For auditors: check an exported log against signed checkpoints, offline.
    Audit(audit::AuditArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also check the stored signed checkpoints against these verifier keys (one per
    /// line, `GET /audit/public-key?format=text`).
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// File to write; `-` for standard output.
    #[arg(long, short, default_value = "-")]
    pub output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// JSON Lines file written by `promptos export`; `-` for standard input.
    #[arg(long, short, default_value = "-")]
    pub input: PathBuf,
}

/// Events written per transaction while importing.
const IMPORT_CHUNK: usize = 10_000;

/// Reads an export: every line a stored event, in order, each continuing the chain.
fn read_export(input: &std::path::Path) -> anyhow::Result<Vec<promptos_store::StoredEvent>> {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{msg:>10} {pos} events ({per_sec})").expect("valid template"));
    spinner.set_message("check");
    let mut events = Vec::new();
    audit::walk_export(input, |e| {
        events.push(e);
        spinner.set_position(events.len() as u64);
    })?;
    spinner.finish_and_clear();
    Ok(events)
}

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROMPTOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // A log line that cannot be written (stderr closed by whoever started the process)
    // is dropped; it must not take the server down.
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).log_internal_errors(false).init();
}

async fn open(args: &DatabaseArgs) -> anyhow::Result<Db> {
    let db = Db::connect_and_migrate(&args.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", promptos_store::redact_url(&args.database_url)))?;
    Ok(db)
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => serve(args).await.map(|_| 0),
        Command::Users(args) => access::users(args).await,
        Command::ApiKeys(args) => access::api_keys(args).await,
        Command::Keygen(args) => audit::keygen(&args),
        Command::Audit(args) => match &args.command {
            audit::AuditCommand::Verify(args) => audit::verify_offline(args),
        },
        Command::Projector(args) => {
            let db = open(&args.db).await?;
            tracing::info!(database = %db.redacted_url(), "projector starting");
            let wakeup = match db.backend() {
                Backend::Postgres => Wakeup::Listen,
                Backend::Sqlite => Wakeup::Poll(Duration::from_millis(100)),
            };
            let key = std::sync::Arc::new(
                crate::webhooks::sealing_key(&db, args.webhooks.webhook_key.as_ref().map(|k| k.expose())).await?,
            );
            let projector =
                Projector::new(db.clone(), ProjectorOptions::default()).with_change_feed(args.feed.nats_url);
            // This process sends the webhooks its projector enqueues.
            let commands = crate::commands::Commands::new(
                db.clone(),
                promptos_store::Writer::start(db.clone()),
                promptos_core::prompt::Context::default(),
            );
            let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
            crate::webhooks::dispatch::Dispatcher::new(db, commands, key, args.webhooks.delivery(), metrics)
                .start(projector.progress(), std::sync::Arc::default());
            tokio::select! {
                _ = projector.run(wakeup) => {}
                _ = shutdown_signal() => tracing::info!("projector stopping"),
            }
            Ok(0)
        }
        Command::Migrate(args) => {
            let db = open(&args).await?;
            println!("database {} is up to date", db.redacted_url());
            Ok(0)
        }
        Command::Rebuild(args) => {
            let db = open(&args).await?;
            let total = db.head().await?;
            let bar = bar(total as u64, "rebuild");
            let position = promptos_projector::rebuild::rebuild(&db, |done, _| bar.set_position(done as u64)).await?;
            bar.finish();
            println!("read models rebuilt from {position} events");
            Ok(0)
        }
        Command::Verify(args) => {
            let db = open(&args.db).await?;
            let total = db.head().await?;
            let chain_bar = bar(total as u64, "chain");
            let report = promptos_projector::verify::verify(&db, |phase, done, t| {
                if phase == "chain" {
                    chain_bar.set_position(done as u64);
                } else {
                    chain_bar.set_message("replay");
                    chain_bar.set_length(t as u64);
                    chain_bar.set_position(done as u64);
                }
            })
            .await?;
            chain_bar.finish_and_clear();
            let trusted = match &args.public_key {
                Some(path) => Some(crate::checkpoint::read_verifier_keys(
                    &std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
                )?),
                None => None,
            };
            let checkpoints = crate::checkpoint::check_stored(&db, trusted.as_deref()).await?;
            if args.json {
                let mut out = serde_json::to_value(&report)?;
                out["checkpoints"] = serde_json::to_value(&checkpoints)?;
                out["ok"] = (report.ok && checkpoints.ok).into();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                match &report.chain.first_bad {
                    None => println!("hash chain: intact ({} events)", report.chain.events_checked),
                    Some(bad) => println!(
                        "hash chain: BROKEN at position {} (event {}): {}",
                        bad.position, bad.event_id, bad.reason
                    ),
                }
                match &report.read_models.first_difference {
                    None => println!(
                        "read models: equal to a fresh replay (up to position {})",
                        report.read_models.checkpoint
                    ),
                    Some(d) => println!(
                        "read models: DIFFER from a replay in {} {} (event at position {})\n  expected: {}\n  found:    {}",
                        d.table,
                        d.key,
                        d.position.map_or_else(|| "?".into(), |p| p.to_string()),
                        d.expected,
                        d.found
                    ),
                }
                if checkpoints.enabled {
                    println!("checkpoints: {} checked: {}", checkpoints.checked, checkpoints.statement);
                    for f in &checkpoints.failures {
                        println!("  position {} (key {}): {}", f.position, f.key_id, f.reason);
                    }
                }
            }
            Ok(if report.ok && checkpoints.ok { 0 } else { 1 })
        }
        Command::Import(args) => {
            let events = read_export(&args.input)?;
            let db = open(&args.db).await?;
            let present = db.head().await?;
            anyhow::ensure!(
                present == 0,
                "import needs an empty database; {} already holds {present} events",
                db.redacted_url()
            );
            let write_bar = bar(events.len() as u64, "import");
            for chunk in events.chunks(IMPORT_CHUNK) {
                let head = db.import(chunk).await.with_context(|| {
                    format!(
                        "import stopped; the database holds events 1 to {} of {} (a consistent prefix). \
                         Empty it and run the import again",
                        chunk[0].position - 1,
                        events.len()
                    )
                })?;
                write_bar.set_position(head as u64);
            }
            write_bar.finish_and_clear();
            let rebuild_bar = bar(events.len() as u64, "rebuild");
            promptos_projector::rebuild::rebuild(&db, |done, _| rebuild_bar.set_position(done as u64)).await?;
            rebuild_bar.finish_and_clear();
            println!("imported {} events into {} and rebuilt its read models", events.len(), db.redacted_url());
            Ok(0)
        }
        Command::Export(args) => {
            let db = open(&args.db).await?;
            let total = db.head().await?;
            let to_stdout = args.output.as_os_str() == "-";
            let mut out: Box<dyn Write> = if to_stdout {
                Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
            } else {
                Box::new(std::io::BufWriter::new(
                    std::fs::File::create(&args.output)
                        .with_context(|| format!("cannot create {}", args.output.display()))?,
                ))
            };
            let bar = bar(total as u64, "export");
            let mut after = 0;
            loop {
                let batch = db.read_after(after, 5000).await?;
                let Some(last) = batch.last() else { break };
                after = last.position;
                for e in &batch {
                    serde_json::to_writer(&mut out, e)?;
                    out.write_all(b"\n")?;
                }
                bar.set_position(after as u64);
            }
            out.flush()?;
            bar.finish_and_clear();
            eprintln!("exported {after} events");
            Ok(0)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (app, bootstrap) = crate::startup::Application::build(&args).await?;
    if let Some(password) = bootstrap.generated_admin_password {
        // Printed once, to the console only: never through the log.
        eprintln!(
            "\n================================================================\n\
             PromptOS created the first user.\n  username: admin\n  password: {password}\n\
             It is shown only this once. Log in and change it, or reset it with\n  \
             promptos users reset-password admin\n\
             ================================================================\n"
        );
    }
    app.run_until(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
