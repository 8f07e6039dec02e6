//! A forwarding HTTP proxy in front of the real server, for ordering tests: it passes
//! every request on, but can hold one answer back until the test releases it (so that
//! an answer arrives late, after a change made meanwhile), or answer 502 as if the
//! server were down. Nothing is invented: every answer is the real server's.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

pub struct Proxy {
    pub url: String,
    state: Arc<ProxyState>,
}

struct ProxyState {
    target: String,
    http: reqwest::Client,
    hold: Mutex<Option<Hold>>,
    down: AtomicBool,
}

struct Hold {
    path: String,
    arrived: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// An answer held back: [`Held::arrived`] once the server has answered, and sent on
/// when [`Held::release`] is called.
pub struct Held {
    arrived: Option<oneshot::Receiver<()>>,
    release: Option<oneshot::Sender<()>>,
}

impl Held {
    pub async fn arrived(&mut self) {
        self.arrived.take().expect("awaited once").await.expect("the proxy is running");
    }

    pub fn release(&mut self) {
        let _ = self.release.take().expect("released once").send(());
    }
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let state = Arc::new(ProxyState {
            target: target.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            hold: Mutex::new(None),
            down: AtomicBool::new(false),
        });
        let app = axum::Router::new().fallback(forward).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Proxy { url, state }
    }

    /// Holds back the answer to the next request whose path contains `path`.
    pub fn hold_next(&self, path: &str) -> Held {
        let (arrived_tx, arrived) = oneshot::channel();
        let (release, release_rx) = oneshot::channel();
        *self.state.hold.lock().unwrap() =
            Some(Hold { path: path.to_owned(), arrived: arrived_tx, release: release_rx });
        Held { arrived: Some(arrived), release: Some(release) }
    }

    /// From now on, answers 502 to everything, as a gateway to a server that is down.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if state.down.load(Ordering::SeqCst) {
        return (StatusCode::BAD_GATEWAY, "the server is down").into_response();
    }
    let path = uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let hold = {
        let mut hold = state.hold.lock().unwrap();
        match hold.as_ref() {
            Some(h) if path.contains(&h.path) => hold.take(),
            _ => None,
        }
    };
    let mut request = state.http.request(method, format!("{}{path}", state.target)).body(body);
    for (name, value) in headers.iter().filter(|(n, _)| *n != "host") {
        request = request.header(name, value);
    }
    let answer = match request.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = answer.status();
    let answer_headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    if let Some(hold) = hold {
        let _ = hold.arrived.send(());
        let _ = hold.release.await;
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in answer_headers.iter().filter(|(n, _)| *n != "content-length" && *n != "transfer-encoding") {
        response.headers_mut().insert(name, value.clone());
    }
    response
}
