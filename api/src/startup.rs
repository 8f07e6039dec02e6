//! Starting the server: one function that `promptos serve` and the tests both call, so
//! the tests run exactly the server users run (its state, its router, its HTTP stack).

use crate::app::{AppState, Bootstrap};
use crate::config::ServeArgs;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::time::Duration;

/// A started server, bound to its address(es), not yet answering.
pub struct Application {
    pub state: AppState,
    listener: tokio::net::TcpListener,
    metrics: Option<tokio::net::TcpListener>,
    header_timeout: Duration,
}

impl Application {
    /// Connects and migrates the database, starts the writer, projector and follower,
    /// creates the first admin if there is no user yet, and binds the listeners.
    pub async fn build(args: &ServeArgs) -> anyhow::Result<(Self, Bootstrap)> {
        let (state, bootstrap) = AppState::start(args).await?;
        tracing::info!(database = %state.db.redacted_url(), projector = !args.no_projector, "database ready");
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let metrics = match args.metrics_bind {
            Some(bind) => Some(
                tokio::net::TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("cannot listen on {bind} (--metrics-bind)"))?,
            ),
            None => None,
        };
        let header_timeout = Duration::from_secs(args.header_timeout_secs);
        Ok((Self { state, listener, metrics, header_timeout }, bootstrap))
    }

    /// The address the API answers on (the port chosen when `--bind` said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Answers requests until `shutdown`, then lets open requests finish.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let addr = self.local_addr();
        if let Some(metrics) = self.metrics {
            tracing::info!("metrics without a credential on http://{}/metrics", metrics.local_addr()?);
            let open = crate::http::metrics::open_router(self.state.clone());
            tokio::spawn(serve_http(metrics, open, self.header_timeout, std::future::pending()));
        }
        let ui = match &self.state.settings.ui {
            ui if !ui.available() => "no web UI in this build (scripts/build-ui, then rebuild)".to_owned(),
            crate::http::ui::UiSource::Dir(dir) => format!("web UI at http://{addr}/ui/ (from {})", dir.display()),
            _ => format!("web UI at http://{addr}/ui/"),
        };
        tracing::info!(
            "PromptOS {} listening on http://{addr} — {ui}; API docs at http://{addr}/docs",
            crate::build_info::LONG_VERSION
        );
        serve_http(self.listener, crate::http::router(self.state), self.header_timeout, shutdown).await;
        Ok(())
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown`, then lets open requests finish.
///
/// Written out instead of `axum::serve` because that builds hyper's connections without a
/// timer, which leaves hyper's header-read timeout off: a client that sends its headers
/// slowly, or keeps a connection idle, would hold it forever. Here a request's headers
/// must arrive within `header_timeout` of connecting or of the previous response.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.map(axum::body::Body::new)
        });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended");
                    }
                }
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}
