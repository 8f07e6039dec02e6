//! The web UI as the server serves it from a folder (`PROMPTOS_UI_DIR`), and which build
//! is running. The UI built into the binary is tested in a real browser (ui/e2e), with
//! the release binary started from an empty folder.

use crate::helpers::*;
use promptos_store::Backend;
use promptos_testkit::TempDir;
use reqwest::header;
use reqwest::StatusCode;

/// A built UI as scripts/build-ui lays it out: index.html, and assets under a hash.
fn built_ui() -> TempDir {
    let dir = promptos_testkit::temp_dir();
    std::fs::create_dir_all(dir.path().join("assets/0123456789abcdef/pkg")).unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>PromptOS</title>").unwrap();
    std::fs::write(dir.path().join("assets/0123456789abcdef/pkg/app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("assets/0123456789abcdef/boot.js"), "import init from './pkg/app.js';").unwrap();
    dir
}

#[tokio::test]
async fn a_ui_folder_is_served_with_revalidated_pages_and_immutable_assets() {
    let dir = built_ui();
    let ui_dir = dir.path().to_path_buf();
    let app = spawn_app_with(Backend::Sqlite, move |a| a.ui_dir = Some(ui_dir)).await;

    let index = app.http.get(app.url("/ui/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(index.headers()[header::CACHE_CONTROL], "no-cache");
    assert_eq!(index.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let etag = index.headers()[header::ETAG].clone();
    let again = app.http.get(app.url("/ui/")).header(header::IF_NONE_MATCH, etag.clone()).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A page of the app, deep-linked: index.html again.
    let deep = app.http.get(app.url("/ui/prompts/greeting/history")).send().await.unwrap();
    assert_eq!(deep.status(), StatusCode::OK);
    assert_eq!(deep.headers()[header::ETAG], etag);

    let wasm = app.http.get(app.url("/ui/assets/0123456789abcdef/pkg/app.wasm")).send().await.unwrap();
    assert_eq!(wasm.status(), StatusCode::OK);
    assert_eq!(wasm.headers()[header::CONTENT_TYPE], "application/wasm");
    assert_eq!(wasm.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(&wasm.bytes().await.unwrap()[..4], b"\0asm");
    let js = app.http.get(app.url("/ui/assets/0123456789abcdef/boot.js")).send().await.unwrap();
    assert_eq!(js.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");

    // A missing asset is a 404, never the app's HTML under a script's name.
    let missing = app.http.get(app.url("/ui/assets/fedcba9876543210/boot.js")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(!missing.text().await.unwrap().contains("<title>"));
    // Nothing outside the folder, nor hidden files, can be reached.
    std::fs::write(dir.path().join(".secret"), "no").unwrap();
    for path in ["/ui/assets/..%2f..%2f..%2fetc/passwd", "/ui/assets/../.secret", "/ui/.secret"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_ne!(r.text().await.unwrap(), "no", "{path}");
    }

    for root in ["/", "/ui"] {
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url(root))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT, "{root}");
        assert_eq!(r.headers()[header::LOCATION], "/ui/");
    }
}

#[tokio::test]
async fn a_ui_folder_without_a_built_ui_is_refused_at_start_with_the_command_that_builds_it() {
    let empty = promptos_testkit::temp_dir();
    let scratch = promptos_testkit::scratch(Backend::Sqlite).await;
    let mut args = promptos_api::config::ServeArgs::for_database(&scratch.url);
    args.ui_dir = Some(empty.path().to_path_buf());
    let error = promptos_api::AppState::start(&args).await.err().expect("refused");
    let message = format!("{error:#}");
    assert!(message.contains("PROMPTOS_UI_DIR") && message.contains("scripts/build-ui"), "{message}");
}

#[tokio::test]
async fn healthz_names_the_version_and_the_commit_it_was_built_from() {
    let app = spawn_app(Backend::Sqlite).await;
    let health = expect_status(app.http.get(app.url("/healthz")).send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["commit"], head_commit());
}

#[test]
fn version_prints_the_version_and_the_commit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_promptos")).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), format!("promptos {} (commit {})", env!("CARGO_PKG_VERSION"), head_commit()));
}

/// The commit checked out now, which the build recorded (it rebuilds when HEAD moves).
fn head_commit() -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git is installed");
    assert!(out.status.success(), "the tests run in a git checkout");
    let commit = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(commit.len(), 40, "{commit}");
    commit
}
