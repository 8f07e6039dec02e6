//! `promptos-bench`: the PromptOS benchmark suite. It starts what it measures (`promptos
//! serve` on SQLite and on PostgreSQL, `nats-server`) on loopback, runs each benchmark
//! and prints one table with the targets. `scripts/bench` builds it in release mode and
//! runs it; `--smoke` runs every benchmark at tiny sizes so they do not rot (CI).

mod benches;
mod database;
mod fleet;
mod load;
mod procs;
mod propagation;
mod seed;
mod table;
mod webhooks;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "promptos-bench",
    version,
    about = "Runs the PromptOS benchmarks and prints one table of figures and targets"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Tiny sizes and short runs: checks that every benchmark still works (figures are
    /// meaningless).
    #[arg(long)]
    smoke: bool,
    /// Run only these benchmarks (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Bench>,
    /// PostgreSQL server for the PostgreSQL runs; a scratch database is created on it
    /// and dropped afterwards.
    #[arg(long, env = "PROMPTOS_TEST_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Also write the table, with the machine and the date, to this Markdown file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// (Internal) a bare axum server that answers every request with the bytes of a file:
    /// the read path's yardstick.
    #[command(hide = true)]
    BareServer {
        #[arg(long)]
        bind: String,
        #[arg(long)]
        body: PathBuf,
    },
    /// (Internal) writes #3's log (`events` events, one prompt per 50) into an empty
    /// database, for profiling `promptos rebuild` on it.
    #[command(hide = true)]
    Seed {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
    },
}

/// The benchmarks, in the order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Bench {
    /// #1: `GET /prompts/{name}/deployed/` with an API key, against a bare axum handler.
    Read,
    /// #2: deploy commands at 1, 16 and 64 concurrent clients, SQLite and PostgreSQL.
    Write,
    /// #3 and #4: rebuilding the read models from a large log, and `serve` start-up on it.
    Rebuild,
    /// #5: server memory after read and write load on 10,000 prompts × 10 versions.
    Memory,
    /// #6: deploy-to-observed latency for many SSE subscribers and NATS-subscribed SDKs.
    Fanout,
    /// #7: the SDK's cached `get` and its deploy propagation.
    Sdk,
    /// #8: deploy commit → the server knowing every SDK instance applied it.
    Fleet,
    /// #9: deploy commit → a local receiver has the signed webhook delivery.
    Webhooks,
}

impl Bench {
    const ALL: [Bench; 8] = [
        Bench::Read,
        Bench::Write,
        Bench::Rebuild,
        Bench::Memory,
        Bench::Fanout,
        Bench::Sdk,
        Bench::Fleet,
        Bench::Webhooks,
    ];
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(Command::BareServer { bind, body }) = cli.command {
        return runtime.block_on(procs::serve_bare(&bind, &body));
    }
    if let Some(Command::Seed { database_url, events }) = cli.command {
        return runtime.block_on(benches::seed_only(&database_url, events));
    }
    let selected: Vec<Bench> = if cli.only.is_empty() {
        Bench::ALL.to_vec()
    } else {
        Bench::ALL.into_iter().filter(|b| cli.only.contains(b)).collect()
    };
    let sizes = if cli.smoke { table::Sizes::smoke() } else { table::Sizes::full() };
    let rows = runtime.block_on(run_all(&selected, &sizes, &cli.postgres_url))?;
    let table = table::table(&rows);
    println!("\n{table}");
    if let Some(path) = cli.markdown {
        std::fs::write(&path, table::markdown(&table, &sizes))?;
        println!("written to {}", path.display());
    }
    let missed = rows.iter().filter(|r| r.met == Some(false)).count();
    if missed > 0 && !cli.smoke {
        println!("{missed} target(s) missed");
    }
    Ok(())
}

pub async fn run_all(selected: &[Bench], sizes: &table::Sizes, postgres_url: &str) -> Result<Vec<table::Row>> {
    let mut rows = Vec::new();
    for bench in selected {
        eprintln!("== {bench:?}");
        let started = Instant::now();
        let mut new = match bench {
            Bench::Read => crate::benches::read(sizes).await,
            Bench::Write => crate::benches::write(sizes, postgres_url).await,
            Bench::Rebuild => crate::benches::rebuild_and_start(sizes, postgres_url).await,
            Bench::Memory => crate::benches::memory(sizes).await,
            Bench::Fanout => crate::propagation::fanout(sizes).await,
            Bench::Sdk => crate::propagation::sdk(sizes).await,
            Bench::Fleet => crate::fleet::fleet(sizes).await,
            Bench::Webhooks => crate::webhooks::webhooks(sizes).await,
        }
        .with_context(|| format!("benchmark {bench:?}"))?;
        for r in &new {
            eprintln!("   {} {}: {}", r.id, r.what, r.result);
        }
        eprintln!("   ({:.1} s)", started.elapsed().as_secs_f64());
        rows.append(&mut new);
    }
    Ok(rows)
}
