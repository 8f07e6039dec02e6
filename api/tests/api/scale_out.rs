//! The scale-out layout: API servers without a projector, and projector processes apart.

use crate::helpers::*;
use promptos_testkit::both_backends;
use promptos_testkit::scratch;
use reqwest::StatusCode;
use serde_json::json;

both_backends!(an_api_server_reads_its_writes_through_a_projector_in_another_process, |backend| async move {
    let scratch = scratch(backend).await;
    // Two projectors: on PostgreSQL one stands by; on SQLite they take turns safely.
    promptos_store::Db::connect_and_migrate(&scratch.url).await.unwrap();
    let _p1 = promptos_process(&scratch.url, &["projector"]);
    let _p2 = promptos_process(&scratch.url, &["projector"]);
    let app = spawn_app_on(scratch, |a| {
        a.no_projector = true;
        // A write that is not projected in time would fail the reads below.
        a.consistency_timeout_ms = 10_000;
    })
    .await;
    let created = app.create_prompt("apart").await;
    assert_eq!(created["name"], "apart");
    app.create_version("apart", "v1", "Hello {{ who }}").await;
    expect_status(app.deploy("apart", "staging", "v1").await, StatusCode::OK).await;
    assert_eq!(app.deployed_text("apart", "staging").await.as_deref(), Some("Hello {{ who }}"));
    app.create_version("apart", "v2", "Hi {{ who }}").await;
    expect_status(app.deploy("apart", "staging", "v2").await, StatusCode::OK).await;
    assert_eq!(app.deployed_text("apart", "staging").await.as_deref(), Some("Hi {{ who }}"), "the cache follows");
    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
});

const SHARED_PROMPTS: usize = 3;
const WRITERS_PER_SERVER: usize = 4;
const ROUNDS: usize = 20;

/// Two API servers and one projector, all separate processes on one PostgreSQL, with
/// concurrent writes through both servers: every acknowledged write is in the log
/// exactly once, nothing else is, and both servers end up serving the same live text.
#[tokio::test]
async fn two_servers_and_one_projector_on_one_postgres_agree() {
    use std::time::{Duration, Instant};
    let scratch = scratch(promptos_store::Backend::Postgres).await;
    let db = promptos_store::Db::connect_and_migrate(&scratch.url).await.unwrap();
    let _projector = promptos_process(&scratch.url, &["projector"]);
    let ports: Vec<u16> =
        (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let _servers: Vec<Child> = ports.iter().map(|p| serve_process(&scratch.url, *p, &["--no-projector"])).collect();
    let bases: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    for base in &bases {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            assert!(Instant::now() < deadline, "{base} did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let form = [("username", "admin"), ("password", ADMIN_PASSWORD)];
    let login = http.post(format!("{}/auth/token", bases[0])).form(&form).send().await.unwrap();
    let token = expect_status(login, StatusCode::OK).await["access_token"].as_str().unwrap().to_owned();
    for p in 0..SHARED_PROMPTS {
        let r = http.post(format!("{}/prompts/", bases[p % 2])).bearer_auth(&token);
        expect_status(
            r.json(&serde_json::json!({"name": format!("shared-{p}")})).send().await.unwrap(),
            StatusCode::CREATED,
        )
        .await;
    }

    // Each writer creates versions of the shared prompts and deploys them through its
    // server, and reads the live text through the other one (filling its cache).
    let mut writers = Vec::new();
    for (s, base) in bases.iter().enumerate() {
        for w in 0..WRITERS_PER_SERVER {
            let (http, token, base, other) = (http.clone(), token.clone(), base.clone(), bases[1 - s].clone());
            writers.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 0..ROUNDS {
                    let prompt = format!("shared-{}", (w + n) % SHARED_PROMPTS);
                    let version = format!("s{s}-w{w}-n{n}");
                    let body =
                        serde_json::json!({"version_string": version, "text": format!("{version} {{{{ who }}}}")});
                    let r = http.post(format!("{base}/prompts/{prompt}/versions/")).bearer_auth(&token).json(&body);
                    let r = r.send().await.unwrap();
                    match r.status() {
                        StatusCode::CREATED => acked.push((prompt.clone(), version.clone())),
                        StatusCode::CONFLICT => continue,
                        other => panic!("creating {prompt} {version}: {other}: {}", r.text().await.unwrap()),
                    }
                    let body =
                        serde_json::json!({"prompt_name": prompt, "environment": "staging", "version_string": version});
                    let r =
                        http.post(format!("{base}/deployments/")).bearer_auth(&token).json(&body).send().await.unwrap();
                    assert!(
                        matches!(r.status(), StatusCode::OK | StatusCode::CONFLICT),
                        "deploying {prompt} {version}: {}",
                        r.status()
                    );
                    let r = http.get(format!("{other}/prompts/{prompt}/deployed/?environment=staging"));
                    assert_eq!(r.bearer_auth(&token).send().await.unwrap().status(), StatusCode::OK);
                }
                acked
            }));
        }
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(acked.len() > WRITERS_PER_SERVER * ROUNDS, "most writes went through ({})", acked.len());

    // Exactly once: one VersionCreated event per acknowledged version, and no other.
    let rows: Vec<(String, String)> = promptos_store::on_pool!(db, pool => {
        sqlx::query_as("SELECT stream_id, payload FROM events WHERE event_type = 'VersionCreated'").fetch_all(pool).await
    })
    .unwrap();
    let mut logged: Vec<(String, String)> = rows
        .into_iter()
        .map(|(stream, payload)| {
            let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
            (stream.trim_start_matches("prompt:").to_owned(), payload["version_string"].as_str().unwrap().to_owned())
        })
        .collect();
    logged.sort();
    acked.sort();
    assert_eq!(logged, acked, "the log holds exactly the acknowledged versions");

    // Both servers' caches converge on what the read models say is live.
    for p in 0..SHARED_PROMPTS {
        let prompt = format!("shared-{p}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = http.get(format!("{}/prompts/{prompt}/deployments/", bases[0])).bearer_auth(&token).send().await;
            let live = expect_status(r.unwrap(), StatusCode::OK).await["current"]["staging"]["version_string"].clone();
            let mut texts = Vec::new();
            for base in &bases {
                let r = http.get(format!("{base}/prompts/{prompt}/deployed/?environment=staging")).bearer_auth(&token);
                texts.push(expect_status(r.send().await.unwrap(), StatusCode::OK).await["prompt_text"].clone());
            }
            let expected = format!("{} {{{{ who }}}}", live.as_str().unwrap());
            if texts.iter().all(|t| t.as_str() == Some(expected.as_str())) {
                break;
            }
            assert!(Instant::now() < deadline, "{prompt}: servers serve {texts:?}, the read models say {live}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let verify = expect_status(
        http.get(format!("{}/audit/verify", bases[1])).bearer_auth(&token).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(verify["ok"], true, "{verify}");
}

/// Polls `GET /prompts/{name}` until `done` holds for its answer, for at most 30 s.
async fn until_prompt(app: &TestApp, name: &str, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = app.get(&format!("/prompts/{name}")).await;
        if r.status() == StatusCode::OK && done(&r.json::<serde_json::Value>().await.unwrap()) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what} within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

both_backends!(a_write_answers_with_its_own_change_while_the_projector_lags, |backend| async move {
    let scratch = scratch(backend).await;
    promptos_store::Db::connect_and_migrate(&scratch.url).await.unwrap();
    let url = scratch.url.clone();
    let projector = promptos_process(&url, &["projector"]);
    let app = spawn_app_on(scratch, |a| {
        a.no_projector = true;
        a.consistency_timeout_ms = 200;
    })
    .await;
    app.create_prompt("lagging").await;
    until_prompt(&app, "lagging", "the projector projects the new prompt", |p| p["name"] == "lagging").await;
    drop(projector); // From here on the read models lag behind the log.

    let r = app
        .send(
            reqwest::Method::PATCH,
            "/prompts/lagging",
            Some(&app.token.clone()),
            Some(json!({"description": "Now described"})),
        )
        .await;
    let answered = expect_status(r, StatusCode::OK).await;
    assert_eq!(answered["description"], "Now described", "{answered}");
    let r = app
        .send(
            reqwest::Method::PUT,
            "/prompts/lagging/tags",
            Some(&app.token.clone()),
            Some(json!({"tags": ["team:support"]})),
        )
        .await;
    let answered = expect_status(r, StatusCode::OK).await;
    assert_eq!(
        (answered["description"].as_str(), answered["tags"].clone()),
        (Some("Now described"), json!(["team:support"]))
    );
    // A prompt the read models have not seen at all yet.
    let created = app.create_prompt("unseen").await;
    assert_eq!(created["name"], "unseen", "created prompts answer from their event");
    let r = app
        .send(
            reqwest::Method::PATCH,
            "/prompts/unseen",
            Some(&app.token.clone()),
            Some(json!({"description": "Described before it was projected"})),
        )
        .await;
    let answered = expect_status(r, StatusCode::OK).await;
    assert_eq!(answered["description"], "Described before it was projected", "{answered}");
    assert_eq!(app.get("/prompts/unseen").await.status(), StatusCode::NOT_FOUND, "not projected yet");
    let stale = expect_status(app.get("/prompts/lagging").await, StatusCode::OK).await;
    assert_eq!(stale["description"], "test prompt", "the read models really lag: {stale}");

    // A projector catches up, and reads agree with what the writes answered.
    let _projector = promptos_process(&url, &["projector"]);
    until_prompt(&app, "lagging", "the read models catch up", |p| p["tags"] == json!(["team:support"])).await;
    let caught_up = expect_status(app.get("/prompts/lagging").await, StatusCode::OK).await;
    assert_eq!(caught_up["description"], "Now described");
    until_prompt(&app, "unseen", "the unseen prompt is projected", |p| {
        p["description"] == "Described before it was projected"
    })
    .await;
    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
});
