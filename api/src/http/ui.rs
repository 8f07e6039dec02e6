//! The web UI at `/ui/`: the files `scripts/build-ui` wrote into `ui/dist`, built into
//! the binary (or read from `PROMPTOS_UI_DIR` while developing the UI).
//!
//! `scripts/build-ui` puts everything but `index.html` under `assets/<content hash>/`, so
//! those files never change under their name and are cached for a year (`immutable`);
//! `index.html`, which names the current hash, is revalidated on every load
//! (`no-cache` with an `ETag`). Any other path under `/ui/` answers `index.html`, so a
//! deep link survives a reload.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use tower_http::set_header::SetResponseHeaderLayer;

/// One file of the UI as the build embedded it.
#[derive(Debug)]
pub struct EmbeddedAsset {
    pub path: &'static str,
    /// Hex of the first bytes of the content's SHA-256.
    pub etag: &'static str,
    pub identity: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub br: Option<&'static [u8]>,
}

/// The UI files built into this binary, sorted by path; empty when it was built without
/// the UI.
static EMBEDDED: &[EmbeddedAsset] = include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// Where the UI comes from.
#[derive(Debug, Clone)]
pub enum UiSource {
    /// Files built into the binary (`built_in()`: those of `ui/dist` at build time).
    Embedded(&'static [EmbeddedAsset]),
    /// A folder read on every request (`PROMPTOS_UI_DIR`), for working on the UI.
    Dir(PathBuf),
}

impl UiSource {
    /// `PROMPTOS_UI_DIR` when given (it must hold a built UI), else the embedded files.
    pub fn new(dir: Option<PathBuf>) -> anyhow::Result<Self> {
        match dir {
            Some(dir) => {
                anyhow::ensure!(
                    dir.join("index.html").is_file(),
                    "PROMPTOS_UI_DIR is {}, which holds no index.html: build the UI there with scripts/build-ui, \
                     or unset PROMPTOS_UI_DIR to serve the UI built into this binary",
                    dir.display()
                );
                Ok(Self::Dir(dir))
            }
            None => Ok(Self::built_in()),
        }
    }

    /// The UI built into this binary (none when it was built without one).
    pub fn built_in() -> Self {
        Self::Embedded(EMBEDDED)
    }

    /// Whether there is a UI to serve.
    pub fn available(&self) -> bool {
        match self {
            Self::Embedded(files) => !files.is_empty(),
            Self::Dir(_) => true,
        }
    }

    async fn find(&self, path: &str) -> Option<Asset> {
        match self {
            Self::Embedded(files) => {
                let a = &files[files.binary_search_by(|a| a.path.cmp(path)).ok()?];
                Some(Asset { etag: Cow::Borrowed(a.etag), identity: Cow::Borrowed(a.identity), gzip: a.gzip, br: a.br })
            }
            Self::Dir(dir) => {
                // Only plain names: no `..`, no absolute paths, no hidden files.
                let safe =
                    path.split('/').all(|part| !part.is_empty() && !part.starts_with('.') && !part.contains('\\'));
                if !safe {
                    return None;
                }
                let bytes = tokio::fs::read(dir.join(path)).await.ok()?;
                let etag = hex(&Sha256::digest(&bytes)[..12]);
                Some(Asset { etag: Cow::Owned(etag), identity: Cow::Owned(bytes), gzip: None, br: None })
            }
        }
    }
}

struct Asset {
    etag: Cow<'static, str>,
    identity: Cow<'static, [u8]>,
    gzip: Option<&'static [u8]>,
    br: Option<&'static [u8]>,
}

/// The UI's routes: `/` and `/ui` lead to `/ui/`.
pub fn router(source: UiSource) -> Router {
    let source = Arc::new(source);
    Router::new()
        .route("/ui/", get(index))
        .route("/ui/{*path}", get(file))
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui", get(|| async { Redirect::temporary("/ui/") }))
        .with_state(source)
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
}

/// The UI's Content-Security-Policy: its own files only, WebAssembly allowed, no inline
/// script or style, no framing.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

async fn index(State(source): State<Arc<UiSource>>, headers: HeaderMap) -> Response {
    serve(&source, "index.html", &headers).await
}

async fn file(State(source): State<Arc<UiSource>>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&source, &path, &headers).await
}

async fn serve(source: &UiSource, path: &str, headers: &HeaderMap) -> Response {
    if !source.available() {
        return not_built();
    }
    if let Some(asset) = source.find(path).await {
        let cache = if path.starts_with("assets/") { IMMUTABLE } else { REVALIDATE };
        return respond(asset, content_type(path), cache, headers);
    }
    // A missing asset is a 404 (a page that asks for it must not get HTML back); any
    // other path is a page of the single-page app.
    if path.starts_with("assets/") {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, REVALIDATE)], "no such file in the web UI\n")
            .into_response();
    }
    match source.find("index.html").await {
        Some(index) => respond(index, content_type("index.html"), REVALIDATE, headers),
        None => not_built(),
    }
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

fn respond(asset: Asset, content_type: &'static str, cache: &'static str, request: &HeaderMap) -> Response {
    let accepted = AcceptEncoding::parse(request);
    let (body, encoding, suffix): (Cow<'static, [u8]>, Option<&'static str>, &str) =
        match (asset.br.filter(|_| accepted.br), asset.gzip.filter(|_| accepted.gzip)) {
            (Some(br), _) => (Cow::Borrowed(br), Some("br"), "-br"),
            (None, Some(gzip)) => (Cow::Borrowed(gzip), Some("gzip"), "-gz"),
            (None, None) => (asset.identity, None, ""),
        };
    // Each encoding is a representation of its own, with an ETag of its own.
    let etag = format!("\"{}{suffix}\"", asset.etag);
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex is a valid header value"));
    if not_modified(request, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(encoding) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    (headers, body).into_response()
}

/// `If-None-Match` names this representation (weak comparison, as RFC 9110 asks for GET).
fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|list| list.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag))
}

/// Which compressed forms the client takes (`q=0` refuses one).
#[derive(Debug, Default, PartialEq)]
struct AcceptEncoding {
    br: bool,
    gzip: bool,
}

impl AcceptEncoding {
    fn parse(headers: &HeaderMap) -> Self {
        let mut accepted = Self::default();
        for value in headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()) {
            for item in value.split(',') {
                let mut parts = item.split(';').map(str::trim);
                let coding = parts.next().unwrap_or("").to_ascii_lowercase();
                let refused =
                    parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()).is_some_and(|q| q <= 0.0));
                match coding.as_str() {
                    "br" => accepted.br = !refused,
                    "gzip" | "x-gzip" => accepted.gzip = !refused,
                    _ => {}
                }
            }
        }
        accepted
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        Some("otf") => "font/otf",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// What a binary built without the UI answers under `/ui/`: a page that says so, never
/// a JSON 404.
fn not_built() -> Response {
    let page = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>PromptOS: no web UI in this build</title></head>\n\
                <body><h1>This PromptOS server was built without its web UI</h1>\n\
                <p>The HTTP API works: see <a href=\"/docs\">/docs</a>.</p>\n\
                <p>To get the UI, build it in a checkout and then the server: <code>scripts/build-ui</code>, then \
                <code>cargo build --release --bin promptos</code> (or run <code>scripts/run</code>, which does both). \
                While working on the UI, <code>PROMPTOS_UI_DIR=ui/dist</code> serves a built UI from that folder.</p>\n\
                </body></html>\n";
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, REVALIDATE)],
        page,
    )
        .into_response()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    static FIXTURE: &[EmbeddedAsset] = &[
        EmbeddedAsset {
            path: "assets/00ff/app.js",
            etag: "aa",
            identity: b"plain",
            gzip: Some(b"gz"),
            br: Some(b"br"),
        },
        EmbeddedAsset { path: "index.html", etag: "bb", identity: b"<!doctype html>", gzip: None, br: None },
    ];

    async fn get(source: UiSource, path: &str, accept_encoding: &str) -> Response {
        let request = Request::get(path).header(header::ACCEPT_ENCODING, accept_encoding).body(Body::empty()).unwrap();
        router(source).oneshot(request).await.unwrap()
    }

    async fn body(r: Response) -> Vec<u8> {
        axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap().to_vec()
    }

    #[tokio::test]
    async fn embedded_files_are_sent_in_the_best_encoding_the_client_takes() {
        let br = get(UiSource::Embedded(FIXTURE), "/ui/assets/00ff/app.js", "gzip, br").await;
        assert_eq!(br.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(br.headers()[header::ETAG], "\"aa-br\"");
        assert_eq!(br.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(body(br).await, b"br");
        let gzip = get(UiSource::Embedded(FIXTURE), "/ui/assets/00ff/app.js", "gzip, br;q=0").await;
        assert_eq!(gzip.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(body(gzip).await, b"gz");
        let plain = get(UiSource::Embedded(FIXTURE), "/ui/assets/00ff/app.js", "identity").await;
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        assert_eq!(body(plain).await, b"plain");
    }

    #[tokio::test]
    async fn a_binary_without_the_ui_answers_a_page_that_says_so_not_json() {
        for path in ["/ui/", "/ui/prompts/x", "/ui/assets/00ff/app.js"] {
            let r = get(UiSource::Embedded(&[]), path, "").await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
            assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
            let page = String::from_utf8(body(r).await).unwrap();
            assert!(page.contains("built without its web UI") && page.contains("scripts/build-ui"), "{page}");
        }
    }

    fn accept(value: &str) -> AcceptEncoding {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        AcceptEncoding::parse(&headers)
    }

    #[test]
    fn accept_encoding_honours_q_zero_and_case() {
        assert_eq!(accept("gzip, deflate, br, zstd"), AcceptEncoding { br: true, gzip: true });
        assert_eq!(accept("GZIP;q=0.5"), AcceptEncoding { br: false, gzip: true });
        assert_eq!(accept("br;q=0, gzip"), AcceptEncoding { br: false, gzip: true });
        assert_eq!(accept("identity"), AcceptEncoding::default());
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\", W/\"abc-br\""));
        assert!(not_modified(&headers, "\"abc-br\""));
        assert!(!not_modified(&headers, "\"abc\""), "another encoding is another representation");
    }
}
