//! The figures `GET /metrics` serves (`crate::http::metrics`): what operators watch, in the Prometheus text format, so production
//! shows the figures the benchmarks measure. Request counts and latency histograms per
//! route; projector lag in positions and seconds; the read cache's hit ratio; change-feed
//! publish failures; connected SSE clients; resident memory.
//!
//! On the API's own address it needs a credential like every endpoint (an API key will
//! do, so a scraper needs no user). `--metrics-bind` serves it without one on a separate
//! address, for a network only the scraper reaches.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds: from a cached read (well under a millisecond) to a slow
/// LLM call.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What the server knows at the moment of a scrape, besides the registry's own counts.
pub struct Figures {
    /// The position the read models include.
    pub projected: i64,
    /// The log's head and how old the oldest unprojected event is, when they could be read.
    pub lag: Option<promptos_projector::queries::Lag>,
    /// Deployed-prompt cache (hits, misses) since start.
    pub cache: (u64, u64),
    pub sse_clients: usize,
    /// Live SDK instances per environment and application, when they could be read.
    pub fleet: Option<Vec<FleetCount>>,
}

/// Live SDK instances of one application in one environment.
pub struct FleetCount {
    pub environment: String,
    /// Empty for instances without an `app_name`.
    pub app: String,
    pub instances: i64,
    /// Of those, the ones serving something other than what is deployed.
    pub behind: i64,
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    log_head: IntGauge,
    projected: IntGauge,
    lag_events: IntGauge,
    lag_seconds: prometheus::Gauge,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    cache_hit_ratio: prometheus::Gauge,
    publish_failures: IntCounter,
    sse_clients: IntGauge,
    resident_memory: IntGauge,
    fleet_instances: prometheus::IntGaugeVec,
    fleet_behind: prometheus::IntGaugeVec,
    convergence: prometheus::Histogram,
    webhook_deliveries: IntCounterVec,
    webhook_queue_depth: IntGauge,
    webhook_oldest_pending: prometheus::Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("promptos".into()), None).expect("a valid prefix");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered, by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Time to answer an HTTP request, by route and method")
                .buckets(BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let float = |name: &str, help: &str| prometheus::Gauge::new(name, help).expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let m = Self {
            log_head: gauge("log_head_position", "Position of the newest event in the log"),
            projected: gauge("projector_position", "Log position the read models (and this server's caches) include"),
            lag_events: gauge("projector_lag_events", "Events in the log not yet in the read models"),
            lag_seconds: float(
                "projector_lag_seconds",
                "Age of the oldest event not yet in the read models (0 when caught up)",
            ),
            cache_hits: counter("read_cache_hits_total", "Deployed-prompt reads answered from memory"),
            cache_misses: counter("read_cache_misses_total", "Deployed-prompt reads that went to the database"),
            cache_hit_ratio: float("read_cache_hit_ratio", "Share of deployed-prompt reads answered from memory"),
            publish_failures: counter(
                "change_feed_publish_failures_total",
                "Failed attempts to publish the change feed on NATS (each is retried)",
            ),
            sse_clients: gauge("sse_clients", "Connected change-feed (Server-Sent Events) clients"),
            resident_memory: gauge("resident_memory_bytes", "Resident memory of this process"),
            fleet_instances: prometheus::IntGaugeVec::new(
                Opts::new("fleet_instances", "Live SDK instances, by environment and application"),
                &["environment", "app"],
            )
            .expect("valid metric"),
            fleet_behind: prometheus::IntGaugeVec::new(
                Opts::new("fleet_instances_behind", "Live SDK instances serving something other than what is deployed"),
                &["environment", "app"],
            )
            .expect("valid metric"),
            convergence: prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "fleet_convergence_seconds",
                    "Commit of a change to the first report of an instance serving it",
                )
                .buckets(BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            webhook_deliveries: IntCounterVec::new(
                Opts::new(
                    "webhook_deliveries_total",
                    "Webhook delivery attempts, by outcome (delivered, retried, failed)",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            webhook_queue_depth: gauge("webhook_queue_depth", "Webhook deliveries waiting to be sent"),
            webhook_oldest_pending: float(
                "webhook_oldest_pending_seconds",
                "Age of the oldest webhook delivery waiting to be sent (0 when none waits)",
            ),
            registry,
            requests,
            latency,
        };
        m.registry.register(Box::new(m.requests.clone())).expect("registered once");
        m.registry.register(Box::new(m.latency.clone())).expect("registered once");
        m.registry.register(Box::new(m.fleet_instances.clone())).expect("registered once");
        m.registry.register(Box::new(m.fleet_behind.clone())).expect("registered once");
        m.registry.register(Box::new(m.convergence.clone())).expect("registered once");
        m.registry.register(Box::new(m.webhook_deliveries.clone())).expect("registered once");
        for c in [&m.cache_hits, &m.cache_misses, &m.publish_failures] {
            m.registry.register(Box::new(c.clone())).expect("registered once");
        }
        for g in [&m.log_head, &m.projected, &m.lag_events, &m.sse_clients, &m.resident_memory, &m.webhook_queue_depth]
        {
            m.registry.register(Box::new(g.clone())).expect("registered once");
        }
        for g in [&m.lag_seconds, &m.cache_hit_ratio, &m.webhook_oldest_pending] {
            m.registry.register(Box::new(g.clone())).expect("registered once");
        }
        m
    }

    /// Counts and times one request.
    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.requests.with_label_values(&[route, method, status.as_str()]).inc();
        self.latency.with_label_values(&[route, method]).observe(seconds);
    }

    /// Counts how long a change took to reach one SDK instance.
    pub fn observe_convergence(&self, seconds: f64) {
        self.convergence.observe(seconds);
    }

    /// Counts one webhook delivery attempt by what came of it.
    pub fn webhook_delivery(&self, outcome: &str) {
        self.webhook_deliveries.with_label_values(&[outcome]).inc();
    }

    /// The webhook outbox as the dispatcher last saw it.
    pub fn webhook_queue(&self, depth: i64, oldest_pending_ms: i64) {
        self.webhook_queue_depth.set(depth);
        self.webhook_oldest_pending.set(oldest_pending_ms as f64 / 1000.0);
    }

    /// Renders the registry with the current `figures`.
    pub fn render(&self, figures: Figures) -> String {
        self.projected.set(figures.projected);
        if let Some(lag) = figures.lag {
            self.log_head.set(lag.head);
            self.lag_events.set(lag.head - figures.projected);
            self.lag_seconds.set(lag.oldest_unprojected_age_seconds);
        }
        let (hits, misses) = figures.cache;
        catch_up(&self.cache_hits, hits);
        catch_up(&self.cache_misses, misses);
        self.cache_hit_ratio.set(if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 });
        catch_up(&self.publish_failures, promptos_projector::publisher::publish_failures());
        self.sse_clients.set(figures.sse_clients as i64);
        if let Some(fleet) = figures.fleet {
            self.fleet_instances.reset();
            self.fleet_behind.reset();
            for c in fleet {
                self.fleet_instances.with_label_values(&[c.environment.as_str(), c.app.as_str()]).set(c.instances);
                self.fleet_behind.with_label_values(&[c.environment.as_str(), c.app.as_str()]).set(c.behind);
            }
        }
        self.resident_memory.set(resident_memory_bytes());
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("metrics encode");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Moves a counter up to a total kept elsewhere (counters only go up).
fn catch_up(counter: &IntCounter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

fn resident_memory_bytes() -> i64 {
    // /proc/self/statm: sizes in pages; the second is the resident set.
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<i64>().ok()))
        .unwrap_or(0);
    pages * 4096
}
