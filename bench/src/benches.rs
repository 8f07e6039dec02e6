//! The benchmarks of the suite, each returning rows of the table.

use crate::load::{self, percentile, Rng};
use crate::procs::{BareServer, Nats, Server};
use crate::seed::{self, prompt_name, Shape};
use crate::Bench;
use anyhow::{bail, Context, Result};
use futures::StreamExt;
use promptos_projector::rebuild;
use promptos_store::{Backend, Db};
use serde_json::json;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How big and how long; `smoke()` only checks that everything runs.
pub struct Sizes {
    pub smoke: bool,
    read_prompts: usize,
    read_connections: usize,
    read_duration: Duration,
    write_clients: Vec<usize>,
    write_duration: Duration,
    rebuild_events: usize,
    memory_prompts: usize,
    memory_versions: usize,
    memory_duration: Duration,
    sse_subscribers: usize,
    sdk_subscribers: usize,
    fanout_deploys: usize,
    sdk_gets: usize,
    sdk_deploys: usize,
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

fn row(sizes: &Sizes, id: &'static str, what: String, result: String, target: &str, met: bool) -> Row {
    Row { id, what, result, target: target.to_owned(), met: (!sizes.smoke).then_some(met) }
}

pub async fn run_all(selected: &[Bench], sizes: &Sizes, postgres_url: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for bench in selected {
        eprintln!("== {bench:?}");
        let started = Instant::now();
        let mut new = match bench {
            Bench::Read => read(sizes).await,
            Bench::Write => write(sizes, postgres_url).await,
            Bench::Rebuild => rebuild_and_start(sizes, postgres_url).await,
            Bench::Memory => memory(sizes).await,
            Bench::Fanout => fanout(sizes).await,
            Bench::Sdk => sdk(sizes).await,
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

/// A fresh database for one benchmark: a SQLite file in a temporary directory, or a
/// PostgreSQL database dropped at the end.
struct Database {
    url: String,
    dir: Option<std::path::PathBuf>,
    postgres: Option<(String, String)>,
}

impl Database {
    async fn create(backend: Backend, postgres_url: &str) -> Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("promptos-bench-{suffix}"));
                std::fs::create_dir_all(&dir)?;
                Ok(Self {
                    url: format!("sqlite://{}", dir.join("promptos.db").display()),
                    dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                use sqlx::{Connection, Executor};
                let name = format!("promptos_bench_{suffix}");
                let mut conn = sqlx::PgConnection::connect(postgres_url)
                    .await
                    .with_context(|| format!("PostgreSQL at {postgres_url} (set --postgres-url)"))?;
                conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
                let (prefix, _) = postgres_url.rsplit_once('/').context("a database URL with a path")?;
                Ok(Self { url: format!("{prefix}/{name}"), dir: None, postgres: Some((postgres_url.to_owned(), name)) })
            }
        }
    }

    async fn connect(&self) -> Result<Db> {
        Ok(Db::connect_and_migrate(&self.url).await?)
    }

    async fn remove(self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = &self.postgres {
            use sqlx::{Connection, Executor};
            if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
                let _ = conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
            }
        }
    }
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

/// Seeds `shape` into a fresh database and builds its read models.
async fn seeded(backend: Backend, postgres_url: &str, shape: Shape) -> Result<(Database, usize)> {
    let database = Database::create(backend, postgres_url).await?;
    let db = database.connect().await?;
    let n = seed::generate(&db, shape).await?;
    rebuild::rebuild(&db, |_, _| {}).await?;
    db.close().await;
    Ok((database, n))
}

// ---------------------------------------------------------------------------------------
// #1 read path

fn reads(
    base: String,
    key: String,
    names: Arc<Vec<String>>,
) -> impl Fn(usize) -> Box<dyn FnMut(u64) -> futures::future::BoxFuture<'static, Result<(), String>> + Send> {
    move |c| {
        let (client, base, key, names) = (load::client(), base.clone(), key.clone(), names.clone());
        let mut rng = Rng::new(c as u64 + 1);
        Box::new(move |_| {
            let url = format!("{base}/prompts/{}/deployed/?environment=production", names[rng.below(names.len())]);
            let request = client.get(url).header("X-API-Key", &key);
            Box::pin(async move {
                let r = request.send().await.map_err(|e| e.to_string())?;
                let status = r.status();
                r.bytes().await.map_err(|e| e.to_string())?;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {status}"))
                }
            })
        })
    }
}

async fn read(s: &Sizes) -> Result<Vec<Row>> {
    let shape = Shape { prompts: s.read_prompts, versions: 2, extra_deploys: 0 };
    let (database, _) = seeded(Backend::Sqlite, "", shape).await?;
    let server = Server::start(&database.url, None).await?;
    let key = server.api_key(&["production"]).await?;
    let names: Arc<Vec<String>> = Arc::new((0..s.read_prompts).map(prompt_name).collect());
    // The yardstick answers with the bytes the server sends for one of these prompts.
    let sample = server.http.get(format!("{}/prompts/{}/deployed/?environment=production", server.base, names[0]));
    let body = sample.header("X-API-Key", &key).send().await?.error_for_status()?.bytes().await?;
    let body_file = std::env::temp_dir().join(format!("promptos-bench-body-{}.json", std::process::id()));
    std::fs::write(&body_file, &body)?;
    let bare = BareServer::start(&body_file).await?;

    let warm = Duration::from_millis(if s.smoke { 100 } else { 2000 });
    let (c, d) = (s.read_connections, s.read_duration);
    load::run(c, warm, reads(server.base.clone(), key.clone(), names.clone())).await?;
    let ours = load::run(c, d, reads(server.base.clone(), key.clone(), names.clone())).await?;
    load::run(c, warm, reads(bare.base.clone(), key.clone(), names.clone())).await?;
    let theirs = load::run(c, d, reads(bare.base.clone(), key.clone(), names.clone())).await?;
    let _ = std::fs::remove_file(&body_file);
    if ours.failed > 0 {
        bail!("{} reads failed: {}", ours.failed, ours.first_failure.unwrap_or_default());
    }
    let ratio = ours.per_second() / theirs.per_second();
    let result = format!(
        "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms; bare axum {:.0} req/s, p99 {:.2} ms; **{:.0} %** of bare",
        ours.per_second(),
        ours.ms(0.5),
        ours.ms(0.99),
        theirs.per_second(),
        theirs.ms(0.99),
        ratio * 100.0
    );
    let what = format!(
        "read path `GET /prompts/{{name}}/deployed/`, API key, {c} connections, {} s, {} prompts, uniform keys (SQLite)",
        d.as_secs_f64(),
        s.read_prompts
    );
    drop(server);
    database.remove().await;
    Ok(vec![row(s, "1", what, result, "≥ 50 % of bare axum; p99 ≤ 5 ms", ratio >= 0.5 && ours.ms(0.99) <= 5.0)])
}

// ---------------------------------------------------------------------------------------
// #2 write path

/// Deploys to `environment`, each connection on its own prompt, switching between two
/// versions so that every deploy changes something (and appends an event).
async fn deploy_load(
    server: &Server,
    clients: usize,
    duration: Duration,
    names: Arc<Vec<String>>,
    environment: &'static str,
    versions: (&'static str, &'static str),
    live: Arc<Vec<AtomicU8>>,
) -> Result<load::Load> {
    let (base, token) = (server.base.clone(), server.token.clone());
    let load = load::run(clients, duration, |c| {
        let (client, base, token, names, live) =
            (load::client(), base.clone(), token.clone(), names.clone(), live.clone());
        move |_| {
            let next = if live[c].load(Ordering::Relaxed) == 1 { 2 } else { 1 };
            let version = if next == 1 { versions.0 } else { versions.1 };
            let body = json!({"prompt_name": names[c], "environment": environment, "version_string": version});
            let request = client.post(format!("{base}/deployments/")).bearer_auth(&token).json(&body);
            let live = live.clone();
            async move {
                let r = request.send().await.map_err(|e| e.to_string())?;
                let status = r.status();
                let text = r.text().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("HTTP {status}: {text}"));
                }
                live[c].store(next, Ordering::Relaxed);
                Ok(())
            }
        }
    })
    .await?;
    if load.failed > 0 {
        bail!("{} deploys failed: {}", load.failed, load.first_failure.clone().unwrap_or_default());
    }
    Ok(load)
}

async fn write(s: &Sizes, postgres_url: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let most = *s.write_clients.iter().max().unwrap_or(&1);
    for backend in [Backend::Sqlite, Backend::Postgres] {
        // v1 live in staging everywhere; the load switches between v1 and v2.
        let shape = Shape { prompts: most, versions: 2, extra_deploys: 0 };
        let (database, _) = seeded(backend, postgres_url, shape).await?;
        let server = Server::start(&database.url, None).await?;
        let names: Arc<Vec<String>> = Arc::new((0..most).map(prompt_name).collect());
        // The generated log leaves v2 live everywhere.
        let live: Arc<Vec<AtomicU8>> = Arc::new((0..most).map(|_| AtomicU8::new(2)).collect());
        let mut parts = Vec::new();
        let mut at_most = None;
        for &clients in &s.write_clients {
            let load =
                deploy_load(&server, clients, s.write_duration, names.clone(), "staging", ("v1", "v2"), live.clone())
                    .await?;
            parts.push(format!(
                "{clients} client{}: {:.0}/s, p99 {:.1} ms",
                if clients == 1 { "" } else { "s" },
                load.per_second(),
                load.ms(0.99)
            ));
            if clients == most {
                at_most = Some((load.per_second(), load.ms(0.99)));
            }
        }
        let (rate, p99) = at_most.unwrap_or_default();
        let floor = if backend == Backend::Sqlite { 500.0 } else { 1000.0 };
        let target = format!("≥ {floor:.0}/s at 64 clients; p99 ≤ 50 ms");
        let what =
            format!("write path: deploys, {} s per run ({})", s.write_duration.as_secs_f64(), backend_name(backend));
        rows.push(row(s, "2", what, parts.join("; "), &target, rate >= floor && p99 <= 50.0));
        drop(server);
        database.remove().await;
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// #3 rebuild and #4 start-up

async fn rebuild_and_start(s: &Sizes, postgres_url: &str) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let prompts = (s.rebuild_events / 50).max(10);
        let shape = Shape::about(s.rebuild_events, prompts, 10);
        let database = Database::create(backend, postgres_url).await?;
        let db = database.connect().await?;
        let t = Instant::now();
        let events = seed::generate(&db, shape).await?;
        eprintln!("   seeded {events} events into {} in {:.1} s", backend_name(backend), t.elapsed().as_secs_f64());
        let t = Instant::now();
        rebuild::rebuild(&db, |_, _| {}).await?;
        let took = t.elapsed();
        let rate = events as f64 / took.as_secs_f64();
        rows.push(row(
            s,
            "3",
            format!("projection rebuild, {events} events, {prompts} prompts ({})", backend_name(backend)),
            format!("{:.1} s: **{rate:.0} events/s**", took.as_secs_f64()),
            "≥ 100,000 events/s",
            rate >= 100_000.0,
        ));
        db.close().await;

        // Start-up on the same database, three times (the first also creates the admin).
        let mut times = Vec::new();
        for _ in 0..3 {
            let server = Server::start(&database.url, None).await?;
            times.push(server.ready_after);
            let live = server.get(&format!("/prompts/{}/deployed/?environment=production", prompt_name(0))).await?;
            if live["prompt_text"].as_str().is_none() {
                bail!("the read models are not served after start-up: {live}");
            }
        }
        let slowest = *times.iter().max().unwrap_or(&Duration::ZERO);
        let list: Vec<String> = times.iter().map(|t| format!("{:.0} ms", t.as_secs_f64() * 1000.0)).collect();
        rows.push(row(
            s,
            "4",
            format!("start-up: `serve` to `/readyz` 200 on {events} events ({})", backend_name(backend)),
            format!("{} (three starts)", list.join(", ")),
            "≤ 1 s",
            slowest <= Duration::from_secs(1),
        ));
        database.remove().await;
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// #5 memory

async fn memory(s: &Sizes) -> Result<Vec<Row>> {
    let (prompts, versions) = (s.memory_prompts, s.memory_versions);
    let shape = Shape { prompts, versions, extra_deploys: 0 };
    let (database, events) = seeded(Backend::Sqlite, "", shape).await?;
    let server = Server::start(&database.url, None).await?;
    let key = server.api_key(&["production"]).await?;
    let names: Arc<Vec<String>> = Arc::new((0..prompts).map(prompt_name).collect());
    let (idle, _) = server.memory_mb()?;
    let reads =
        load::run(s.read_connections, s.memory_duration, reads(server.base.clone(), key, names.clone())).await?;
    let writers = 64.min(prompts);
    let newest = format!("v{versions}");
    let previous = format!("v{}", versions - 1);
    let live: Arc<Vec<AtomicU8>> = Arc::new((0..writers).map(|_| AtomicU8::new(2)).collect());
    let versions_pair: (&'static str, &'static str) = (previous.leak(), newest.leak());
    let writes =
        deploy_load(&server, writers, s.memory_duration, names.clone(), "development", versions_pair, live).await?;
    let (now, peak) = server.memory_mb()?;
    let (anon, file) = server.memory_split_mb()?;
    let result = format!(
        "RSS {now:.0} MB ({anon:.0} MB heap and stacks, {file:.0} MB mapped files) after {} reads and {} deploys \
         (peak {peak:.0} MB, idle {idle:.0} MB)",
        reads.ok, writes.ok
    );
    let what =
        format!("memory: {prompts} prompts × {versions} versions ({events} events), after #1- and #2-style load");
    drop(server);
    database.remove().await;
    Ok(vec![row(s, "5", what, result, "≤ 100 MB", peak <= 100.0)])
}

// ---------------------------------------------------------------------------------------
// #6 fan-out and #7 SDK

/// Where observers report: (observer, position, when seen).
type Seen = tokio::sync::mpsc::UnboundedSender<(usize, i64, Instant)>;

async fn sse_observer(id: usize, url: String, key: String, seen: Seen, connected: Seen) -> Result<()> {
    let client = load::client();
    let r = client.get(url).header("X-API-Key", key).send().await?.error_for_status()?;
    let _ = connected.send((id, 0, Instant::now()));
    let mut events = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
    while let Some(event) = events.next().await {
        let event = event?;
        if let Ok(position) = event.id.parse::<i64>() {
            let _ = seen.send((id, position, Instant::now()));
        }
    }
    Ok(())
}

/// Deploys `deploys` times, switching between v1 and v2 (`v1_live` says which is live
/// now); after each, waits until all `observers` saw its position. Returns the delays
/// from sending each deploy to each observer seeing it.
async fn deploy_and_observe(
    server: &Server,
    name: &str,
    deploys: usize,
    observers: usize,
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, i64, Instant)>,
    v1_live: &mut bool,
) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(deploys * observers);
    for i in 0..deploys {
        let version = if *v1_live { "v2" } else { "v1" };
        *v1_live = !*v1_live;
        let start = Instant::now();
        let answer = server.deploy(name, "production", version).await?;
        let position = answer["position"].as_i64().context("a position")?;
        let mut waiting: std::collections::HashSet<usize> = (0..observers).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some((id, p, at))) = tokio::time::timeout(left, seen.recv()).await else {
                bail!("deploy {i}: {} observer(s) never saw position {position}", waiting.len());
            };
            if p == position && waiting.remove(&id) {
                samples.push(at.saturating_duration_since(start));
            }
        }
    }
    samples.sort();
    Ok(samples)
}

fn latency_summary(samples: &[Duration]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} observations)",
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
        samples.len()
    )
}

async fn fanout(s: &Sizes) -> Result<Vec<Row>> {
    let nats = Nats::start().await?;
    let database = Database::create(Backend::Sqlite, "").await?;
    let server = Server::start(&database.url, Some(&nats.url)).await?;
    server.prompt("fanout", 2, &["production"]).await?;
    let key = server.api_key(&["production"]).await?;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let (connected_tx, mut connected) = tokio::sync::mpsc::unbounded_channel();
    let url = format!("{}/changes/stream?environment=production", server.base);
    let mut tasks = Vec::new();
    for id in 0..s.sse_subscribers {
        tasks.push(tokio::spawn(sse_observer(id, url.clone(), key.clone(), seen_tx.clone(), connected_tx.clone())));
    }
    for _ in 0..s.sse_subscribers {
        tokio::time::timeout(Duration::from_secs(60), connected.recv()).await?.context("an SSE subscriber")?;
    }
    let ttl = Duration::from_secs(3600);
    let mut sdks = Vec::new();
    for i in 0..s.sdk_subscribers {
        let id = s.sse_subscribers + i;
        let sdk =
            promptos_sdk::Prompts::connect(&server.base).api_key(&key).nats_url(&nats.url).ttl(ttl).build().await?;
        let tx = seen_tx.clone();
        sdk.on_change(move |c| {
            let _ = tx.send((id, c.position, Instant::now()));
        });
        sdk.get("fanout", "production", json!({"customer_name": "Ada", "topic": "refunds"})).await?;
        sdks.push(sdk);
    }
    let observers = s.sse_subscribers + s.sdk_subscribers;
    // One deploy everyone must see first: proves every subscription is live.
    let mut v1_live = true;
    deploy_and_observe(&server, "fanout", 1, observers, &mut seen, &mut v1_live).await?;
    let samples = deploy_and_observe(&server, "fanout", s.fanout_deploys, observers, &mut seen, &mut v1_live).await?;
    let p99 = percentile(&samples, 0.99);
    for t in tasks {
        t.abort();
    }
    drop(sdks);
    drop(server);
    database.remove().await;
    Ok(vec![row(
        s,
        "6",
        format!(
            "fan-out: {} SSE subscribers + {} NATS-subscribed SDKs, {} deploys, from sending the deploy",
            s.sse_subscribers, s.sdk_subscribers, s.fanout_deploys
        ),
        latency_summary(&samples),
        "p99 ≤ 50 ms",
        p99 <= Duration::from_millis(50),
    )])
}

async fn sdk(s: &Sizes) -> Result<Vec<Row>> {
    let nats = Nats::start().await?;
    let database = Database::create(Backend::Sqlite, "").await?;
    let server = Server::start(&database.url, Some(&nats.url)).await?;
    // The SDK's criterion bench's template: 1 KB with three variables.
    let filler = "Answer politely, concisely and in the customer's language. ".repeat(16);
    let text = format!("Hello {{{{ customer_name }}}}, I am {{{{ agent }}}} from {{{{ team }}}}. {filler}");
    server.post("/prompts/", json!({"name": "sdk-get"})).await?;
    server.post("/prompts/sdk-get/versions/", json!({"version_string": "v1", "text": text})).await?;
    server.deploy("sdk-get", "production", "v1").await?;
    server.prompt("sdk-propagation", 2, &["production"]).await?;
    let key = server.api_key(&["production"]).await?;
    let ttl = Duration::from_secs(3600);
    let over_nats =
        promptos_sdk::Prompts::connect(&server.base).api_key(&key).nats_url(&nats.url).ttl(ttl).build().await?;
    let over_sse = promptos_sdk::Prompts::connect(&server.base).api_key(&key).ttl(ttl).build().await?;

    use promptos_sdk::minijinja::context;
    over_nats
        .get("sdk-get", "production", context! { customer_name => "Alex", agent => "Robin", team => "Support" })
        .await?;
    let t = Instant::now();
    for _ in 0..s.sdk_gets {
        let text = over_nats
            .get("sdk-get", "production", context! { customer_name => "Alex", agent => "Robin", team => "Support" })
            .await?;
        std::hint::black_box(text);
    }
    let per_call = t.elapsed().as_secs_f64() * 1e6 / s.sdk_gets as f64;

    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    for (id, sdk) in [&over_nats, &over_sse].into_iter().enumerate() {
        let tx = tx.clone();
        sdk.on_change(move |c| {
            let _ = tx.send((id, c.position, Instant::now()));
        });
        sdk.get("sdk-propagation", "production", json!({"customer_name": "Ada", "topic": "refunds"})).await?;
    }
    // v1 was live; this makes v2 live and proves both subscriptions work.
    deploy_and_observe(&server, "sdk-propagation", 1, 2, &mut seen, &mut true).await?;
    // Each deploy's two observations, split by feed.
    let (mut nats_samples, mut sse_samples) = (Vec::new(), Vec::new());
    for i in 0..s.sdk_deploys {
        let version = if i % 2 == 0 { "v1" } else { "v2" };
        for (id, d) in deploy_and_observe_split(&server, version, &mut seen).await? {
            if id == 0 {
                nats_samples.push(d)
            } else {
                sse_samples.push(d)
            }
        }
    }
    nats_samples.sort();
    sse_samples.sort();
    drop((over_nats, over_sse));
    drop(server);
    database.remove().await;
    Ok(vec![
        row(
            s,
            "7",
            "SDK: cached `get`, ~1 KB template, 3 variables, rendering included".into(),
            format!("{per_call:.2} µs per call ({} calls)", s.sdk_gets),
            "≤ 1 µs",
            per_call <= 1.0,
        ),
        row(
            s,
            "7",
            format!("SDK: deploy response → subscribed SDK has the new version, {} deploys, over NATS", s.sdk_deploys),
            latency_summary(&nats_samples),
            "p99 ≤ 10 ms",
            percentile(&nats_samples, 0.99) <= Duration::from_millis(10),
        ),
        row(
            s,
            "7",
            format!("the same over SSE, {} deploys", s.sdk_deploys),
            latency_summary(&sse_samples),
            "p99 ≤ 10 ms",
            percentile(&sse_samples, 0.99) <= Duration::from_millis(10),
        ),
    ])
}

/// One deploy of `sdk-propagation`, timed from its response to each of two SDKs.
async fn deploy_and_observe_split(
    server: &Server,
    version: &str,
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, i64, Instant)>,
) -> Result<Vec<(usize, Duration)>> {
    let answer = server.deploy("sdk-propagation", "production", version).await?;
    let answered = Instant::now();
    let position = answer["position"].as_i64().context("a position")?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((id, p, at))) = tokio::time::timeout(left, seen.recv()).await else {
            bail!("an SDK never saw position {position}");
        };
        if p == position && !out.iter().any(|(i, _)| *i == id) {
            out.push((id, at.saturating_duration_since(answered)));
        }
    }
    Ok(out)
}
