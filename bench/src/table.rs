//! The suite's table: how big each benchmark runs, and one row per figure.

use std::time::Duration;

/// How big and how long; `smoke()` only checks that everything runs.
pub struct Sizes {
    pub smoke: bool,
    pub(crate) read_prompts: usize,
    pub(crate) read_connections: usize,
    pub(crate) read_duration: Duration,
    pub(crate) write_clients: Vec<usize>,
    pub(crate) write_duration: Duration,
    pub(crate) rebuild_events: usize,
    pub(crate) memory_prompts: usize,
    pub(crate) memory_versions: usize,
    pub(crate) memory_duration: Duration,
    pub(crate) sse_subscribers: usize,
    pub(crate) sdk_subscribers: usize,
    pub(crate) fanout_deploys: usize,
    pub(crate) sdk_gets: usize,
    pub(crate) sdk_deploys: usize,
    pub(crate) fleet_instances: usize,
    pub(crate) fleet_deploys: usize,
    pub(crate) webhook_deploys: usize,
}

impl Sizes {
    pub fn full() -> Self {
        Self {
            smoke: false,
            read_prompts: 1000,
            read_connections: 32,
            read_duration: Duration::from_secs(20),
            write_clients: vec![1, 16, 64],
            write_duration: Duration::from_secs(10),
            rebuild_events: 1_000_000,
            memory_prompts: 10_000,
            memory_versions: 10,
            memory_duration: Duration::from_secs(10),
            sse_subscribers: 1000,
            sdk_subscribers: 100,
            fanout_deploys: 100,
            sdk_gets: 1_000_000,
            sdk_deploys: 500,
            fleet_instances: 100,
            fleet_deploys: 100,
            webhook_deploys: 1000,
        }
    }

    pub fn smoke() -> Self {
        Self {
            smoke: true,
            read_prompts: 20,
            read_connections: 4,
            read_duration: Duration::from_millis(500),
            write_clients: vec![1, 4],
            write_duration: Duration::from_millis(500),
            rebuild_events: 2_000,
            memory_prompts: 50,
            memory_versions: 3,
            memory_duration: Duration::from_millis(500),
            sse_subscribers: 10,
            sdk_subscribers: 3,
            fanout_deploys: 3,
            sdk_gets: 1000,
            sdk_deploys: 5,
            fleet_instances: 3,
            fleet_deploys: 3,
            webhook_deploys: 5,
        }
    }
}

/// One line of the table.
pub struct Row {
    pub id: &'static str,
    pub what: String,
    pub result: String,
    pub target: String,
    /// None when there is no target to meet (or in a smoke run).
    pub met: Option<bool>,
}

pub(crate) fn row(sizes: &Sizes, id: &'static str, what: String, result: String, target: &str, met: bool) -> Row {
    Row { id, what, result, target: target.to_owned(), met: (!sizes.smoke).then_some(met) }
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| # | benchmark | result | target | met |\n|---|---|---|---|---|\n");
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        out.push_str(&format!("| {} | {} | {} | {} | {met} |\n", r.id, r.what, r.result, r.target));
    }
    out
}

/// The table with the machine and the date, as BENCHMARKS.md records it.
pub fn markdown(table: &str, sizes: &Sizes) -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<f64>().ok()))
        .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned())))
        .unwrap_or_default();
    let kind = if sizes.smoke { " (smoke run: tiny sizes, figures meaningless)" } else { "" };
    format!(
        "Run on {} — {cores} cores, {memory}, {os}; everything on loopback{kind}.\n\n{table}",
        chrono::Utc::now().format("%Y-%m-%d")
    )
}

// ---------------------------------------------------------------------------------------
// Databases
