//! Faults: the server killed with SIGKILL in the middle of writes loses no write it
//! acknowledged and leaves nothing half-written, on SQLite and on PostgreSQL.

use crate::helpers::*;
use promptos_testkit::both_backends;
use promptos_testkit::scratch;
use reqwest::StatusCode;
use serde_json::json;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WRITERS: usize = 16;
const KILLS: usize = 20;

fn start(database_url: &str, port: u16) -> Child {
    serve_process(database_url, port, &[])
}

async fn ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not come back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A deterministic sequence of kill delays (xorshift), so a failure can be replayed.
fn delays(seed: u64) -> impl Iterator<Item = Duration> {
    let mut x = seed;
    std::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Duration::from_millis(30 + x % 300)
    })
}

both_backends!(acknowledged_writes_survive_sigkill_under_load, |backend| async move {
    let scratch = scratch(backend).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    let mut server = Some(start(&scratch.url, port));
    ready(&http, &base).await;
    let form = [("username", "admin"), ("password", ADMIN_PASSWORD)];
    let login = http.post(format!("{base}/auth/token")).form(&form).send().await.unwrap();
    let token = expect_status(login, StatusCode::OK).await["access_token"].as_str().unwrap().to_owned();
    for w in 0..WRITERS {
        let r = http.post(format!("{base}/prompts/")).bearer_auth(&token).json(&json!({"name": format!("crash-{w}")}));
        expect_status(r.send().await.unwrap(), StatusCode::CREATED).await;
    }

    // (prompt, version) of every version creation the server acknowledged with 201.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    for (round, delay) in delays(0x5eed).take(KILLS).enumerate() {
        if server.is_none() {
            server = Some(start(&scratch.url, port));
            ready(&http, &base).await;
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (http, base, token, acked) = (http.clone(), base.clone(), token.clone(), acked.clone());
                tokio::spawn(async move {
                    for n in 0.. {
                        let (prompt, version) = (format!("crash-{w}"), format!("r{round}-n{n}"));
                        let body = json!({"version_string": version, "text": format!("Hello {{{{ who }}}} {n}")});
                        let sent =
                            http.post(format!("{base}/prompts/{prompt}/versions/")).bearer_auth(&token).json(&body);
                        match sent.send().await {
                            Ok(r) if r.status() == StatusCode::CREATED => acked.lock().unwrap().push((prompt, version)),
                            Ok(r) => panic!("a write was refused while the server was up: {}", r.status()),
                            Err(_) => return, // the server is gone: this write was never acknowledged
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(delay).await;
        // SIGKILL: no shutdown, no flush; whatever was acknowledged must be durable.
        drop(server.take());
        for w in writers {
            if let Err(e) = w.await {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }

    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > KILLS * WRITERS, "the writers got writes through between kills ({} acked)", acked.len());
    let _server = start(&scratch.url, port);
    ready(&http, &base).await;
    for (prompt, version) in &acked {
        let r = http.get(format!("{base}/prompts/{prompt}/versions/{version}")).bearer_auth(&token).send().await;
        assert_eq!(r.unwrap().status(), StatusCode::OK, "acknowledged {prompt} {version} was lost");
    }
    // Nothing half-written: the chain is intact and the read models equal a replay.
    let verify = Command::new(env!("CARGO_BIN_EXE_promptos"))
        .args(["verify"])
        .env("PROMPTOS_DATABASE_URL", &scratch.url)
        .env("PROMPTOS_LOG", "error")
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
});

/// Reads until the server closes the connection; returns what it sent and when it closed.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> (String, Instant) {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        match read.expect("the server closed the connection within 10 s") {
            Ok(0) | Err(_) => return (String::from_utf8_lossy(&received).into_owned(), Instant::now()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let scratch = scratch(promptos_store::Backend::Sqlite).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let _server = promptos_process(&scratch.url, &["serve", "--bind", &bind, "--header-timeout-secs", "1"]);
    let http = reqwest::Client::new();
    ready(&http, &format!("http://{bind}")).await;

    // Headers that never finish: the connection is closed, not held.
    let mut slow = tokio::net::TcpStream::connect(&bind).await.unwrap();
    let opened = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: promptos\r\n").await.unwrap();
    let (_, closed) = until_closed(&mut slow).await;
    assert!(closed - opened >= Duration::from_millis(900), "closed after {:?}", closed - opened);

    // A kept-alive connection that goes idle after an answer is closed too.
    let mut idle = tokio::net::TcpStream::connect(&bind).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: promptos\r\n\r\n").await.unwrap();
    let (answer, _) = until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Ordinary requests are unaffected.
    let r = http.get(format!("http://{bind}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_stalled_request_body_gets_408_and_writes_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(promptos_store::Backend::Sqlite, |a| a.body_timeout_secs = 1).await;
    let before = app.event_count().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /prompts/ HTTP/1.1\r\nHost: promptos\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"name\": ",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Then nothing more: the server gives up on the body rather than wait for ever.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("body_timeout") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed without an answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(app.event_count().await, before, "the stalled request wrote nothing");
    // Whole bodies are unaffected.
    assert_eq!(app.create_prompt("after-stall").await["name"], "after-stall");
}
