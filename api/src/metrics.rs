//! `GET /metrics`: what operators watch, in the Prometheus text format, so production
//! shows the figures the benchmarks measure. Request counts and latency histograms per
//! route; projector lag in positions and seconds; the read cache's hit ratio; change-feed
//! publish failures; connected SSE clients; resident memory.
//!
//! On the API's own address it needs a credential like every endpoint (an API key will
//! do, so a scraper needs no user). `--metrics-bind` serves it without one on a separate
//! address, for a network only the scraper reaches.

use crate::app::AppState;
use crate::auth::Caller;
use crate::http::error::ApiResult;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::time::Instant;

/// Latency buckets in seconds: from a cached read (well under a millisecond) to a slow
/// LLM call.
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

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
            registry,
            requests,
            latency,
        };
        m.registry.register(Box::new(m.requests.clone())).expect("registered once");
        m.registry.register(Box::new(m.latency.clone())).expect("registered once");
        for c in [&m.cache_hits, &m.cache_misses, &m.publish_failures] {
            m.registry.register(Box::new(c.clone())).expect("registered once");
        }
        for g in [&m.log_head, &m.projected, &m.lag_events, &m.sse_clients, &m.resident_memory] {
            m.registry.register(Box::new(g.clone())).expect("registered once");
        }
        for g in [&m.lag_seconds, &m.cache_hit_ratio] {
            m.registry.register(Box::new(g.clone())).expect("registered once");
        }
        m
    }

    /// Counts and times one request.
    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.requests.with_label_values(&[route, method, status.as_str()]).inc();
        self.latency.with_label_values(&[route, method]).observe(seconds);
    }

    /// Reads the current figures and renders them.
    pub async fn render(&self, state: &AppState) -> String {
        let projected = state.follower.visible();
        self.projected.set(projected);
        match promptos_projector::queries::lag(&state.db, projected).await {
            Ok(lag) => {
                self.log_head.set(lag.head);
                self.lag_events.set(lag.head - projected);
                self.lag_seconds.set(lag.oldest_unprojected_age_seconds);
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the log head for /metrics"),
        }
        let (hits, misses) = state.caches.deployed_stats();
        catch_up(&self.cache_hits, hits);
        catch_up(&self.cache_misses, misses);
        self.cache_hit_ratio.set(if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 });
        catch_up(&self.publish_failures, promptos_projector::publisher::publish_failures());
        self.sse_clients.set(state.follower.subscribers() as i64);
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

/// Middleware: counts and times every request by its route template (not its path, so
/// prompt names do not multiply the series).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Both are cheap clones (a shared string and a method), not copies.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = crate::gate::guarded(&state, request, next).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state.metrics.observe(route, method.as_str(), response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// Prometheus metrics (text format). Any credential may read them, API keys included.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 401, body = crate::http::error::ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    Ok(text(state.metrics.render(&state).await))
}

/// The same without a credential, for the separate `--metrics-bind` address.
pub fn open_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move { text(state.metrics.render(&state).await) }),
        )
        .with_state(state)
}
