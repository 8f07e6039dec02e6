//! Rules that span prompts are decided where appends are serialised, against the exact
//! log, not against read models that may lag; includes are bounded and agree with
//! minijinja.

use crate::changes::read_changes;
use crate::helpers::*;
use promptos_testkit::both_backends;
use promptos_testkit::scratch;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn delete(app: &TestApp, name: &str, token: &str) -> reqwest::Response {
    app.send(Method::DELETE, &format!("/prompts/{name}"), Some(token), None).await
}

async fn split(app: &TestApp, name: &str, env: &str, versions: &[&str]) -> reqwest::Response {
    let weight = 100 / versions.len();
    let variants: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"version_string": v, "weight": if i == 0 { 100 - weight * (versions.len() - 1) } else { weight }}))
        .collect();
    app.post("/deployments/split", json!({"prompt_name": name, "environment": env, "variants": variants})).await
}

both_backends!(
    an_include_used_only_by_an_experiment_variant_is_seen_by_caches_feeds_and_deletes,
    |backend| async move {
        let app = spawn_app(backend).await;
        app.create_prompt("persona").await;
        app.create_version("persona", "v1", "You are Ava.").await;
        app.create_version("persona", "v2", "You are Bea.").await;
        expect_status(app.deploy("persona", "staging", "v1").await, StatusCode::OK).await;
        app.create_prompt("bot").await;
        app.create_version("bot", "v1", "Plain hello.").await;
        app.create_version("bot", "v2", "{% include \"persona\" %} Hello.").await;
        expect_status(app.deploy("bot", "staging", "v1").await, StatusCode::OK).await;
        expect_status(split(&app, "bot", "staging", &["v1", "v2"]).await, StatusCode::CREATED).await;

        let variant_text = |answer: &Value| {
            answer["experiment"]["variants"][1]["prompt_text"].as_str().map(str::to_owned).unwrap_or_default()
        };
        let resolved = "/prompts/bot/deployed/?environment=staging&resolve=true";
        let before = expect_status(app.get(resolved).await, StatusCode::OK).await;
        assert_eq!(variant_text(&before), "You are Ava. Hello.", "{before}");

        // Redeploying persona tells bot's subscribers and refreshes bot's cached answer.
        let stream = app
            .http
            .get(app.url("/changes/stream?environment=staging&prompt=bot"))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        let feed = tokio::spawn(read_changes(stream, 1));
        expect_status(app.deploy("persona", "staging", "v2").await, StatusCode::OK).await;
        let changes = feed.await.unwrap();
        assert_eq!((changes[0]["type"].as_str(), changes[0]["prompt"].as_str()), (Some("IncludeChanged"), Some("bot")));
        let after = expect_status(app.get(resolved).await, StatusCode::OK).await;
        assert_eq!(variant_text(&after), "You are Bea. Hello.", "the cached answer was evicted: {after}");

        // And persona cannot be deleted from under the variant.
        let e = expect_error(delete(&app, "persona", &app.token).await, StatusCode::CONFLICT, "still_included").await;
        assert!(e["message"].as_str().unwrap().contains("bot (staging)"), "{e}");
        expect_status(app.get(resolved).await, StatusCode::OK).await;
    }
);

both_backends!(stopping_an_experiment_by_reverting_checks_the_reverted_versions_includes, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("footer").await;
    app.create_version("footer", "v1", "Thanks!").await;
    expect_status(app.deploy("footer", "staging", "v1").await, StatusCode::OK).await;
    app.create_prompt("faq").await;
    app.create_version("faq", "v1", "Q? {% include \"footer\" %}").await;
    app.create_version("faq", "v2", "Q?").await;
    app.create_version("faq", "v3", "Q!").await;
    expect_status(app.deploy("faq", "staging", "v1").await, StatusCode::OK).await;
    expect_status(split(&app, "faq", "staging", &["v2", "v3"]).await, StatusCode::CREATED).await;
    // Nothing served includes footer any more: it may go.
    expect_status(delete(&app, "footer", &app.token).await, StatusCode::OK).await;
    // Reverting would serve v1 again, whose include is gone.
    let r = app
        .post(
            "/deployments/split/stop",
            json!({"prompt_name": "faq", "environment": "staging", "version_string": "v1"}),
        )
        .await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "include_missing").await;
    assert_eq!(e["field"], "version_string");
    let live = expect_status(app.get("/prompts/faq/deployed/?environment=staging").await, StatusCode::OK).await;
    assert_eq!(live["experiment"]["variants"].as_array().unwrap().len(), 2, "the experiment still runs: {live}");
});

// A delete of an included prompt racing a deploy of a version that includes it: at
// most one of the two may succeed, every time.
both_backends!(a_delete_racing_a_deploy_that_includes_it_never_both_succeed, |backend| async move {
    let app = spawn_app(backend).await;
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..30 {
        let (persona, bot) = (format!("persona-{round}"), format!("bot-{round}"));
        app.create_prompt(&persona).await;
        app.create_version(&persona, "v1", "You are Ava.").await;
        expect_status(app.deploy(&persona, "staging", "v1").await, StatusCode::OK).await;
        app.create_prompt(&bot).await;
        app.create_version(&bot, "v1", &format!("{{% include \"{persona}\" %}} Hi.")).await;
        let (deleted, deployed) = tokio::join!(delete(&app, &persona, &app.token), app.deploy(&bot, "staging", "v1"));
        let (deleted, deployed) = (deleted.status(), deployed.status());
        assert!(
            !(deleted == StatusCode::OK && deployed == StatusCode::OK),
            "round {round}: the delete and the deploy both succeeded"
        );
        assert!(
            deleted == StatusCode::OK || deleted == StatusCode::CONFLICT,
            "round {round}: delete answered {deleted}"
        );
        assert!(
            deployed == StatusCode::OK || deployed == StatusCode::UNPROCESSABLE_ENTITY,
            "round {round}: deploy answered {deployed}"
        );
        *outcomes.entry((deleted.as_u16(), deployed.as_u16())).or_insert(0) += 1;
        if deployed == StatusCode::OK {
            let r = app.get(&format!("/prompts/{bot}/deployed/?environment=staging&resolve=true")).await;
            assert_eq!(expect_status(r, StatusCode::OK).await["prompt_text"], "You are Ava. Hi.");
        }
    }
    println!("(delete, deploy) outcomes over 30 rounds: {outcomes:?}");
    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
});

both_backends!(include_fan_out_and_nesting_are_bounded, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("leaf").await;
    app.create_version("leaf", "v1", "tiny").await;
    app.create_version("leaf", "v2", &"x".repeat(2048)).await;
    expect_status(app.deploy("leaf", "staging", "v2").await, StatusCode::OK).await;
    let tags = |name: &str, n: usize| format!("{{% include \"{name}\" %}}").repeat(n);

    // 8,000 tags of a 2 KB leaf would resolve to 16 MB.
    app.create_prompt("wide").await;
    let r = app.post("/prompts/wide/versions/", json!({"version_string": "v1", "text": tags("leaf", 8000)})).await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "template_syntax").await;
    assert!(e["message"].as_str().unwrap().contains("the limit is 64"), "{e}");

    // Nesting multiplies: 60 × 60 × 2 KB is 7 MB.
    app.create_prompt("mid").await;
    app.create_version("mid", "v1", &tags("leaf", 60)).await;
    expect_status(app.deploy("mid", "staging", "v1").await, StatusCode::OK).await;
    app.create_prompt("top").await;
    let r = app.post("/prompts/top/versions/", json!({"version_string": "v1", "text": tags("mid", 60)})).await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "include_too_large").await;
    assert!(e["message"].as_str().unwrap().contains("the limit is 1048576 bytes"), "{e}");
    assert_eq!(e["field"], "text");
    // With a tiny leaf it fits; growing the leaf where top is served is then refused.
    expect_status(app.deploy("leaf", "staging", "v1").await, StatusCode::OK).await;
    app.create_version("top", "v1", &tags("mid", 60)).await;
    expect_status(app.deploy("top", "staging", "v1").await, StatusCode::OK).await;
    let e =
        expect_error(app.deploy("leaf", "staging", "v2").await, StatusCode::UNPROCESSABLE_ENTITY, "include_too_large")
            .await;
    assert!(e["message"].as_str().unwrap().contains("\"top\""), "{e}");
    let top =
        expect_status(app.get("/prompts/top/deployed/?environment=staging&resolve=true").await, StatusCode::OK).await;
    assert_eq!(top["prompt_text"].as_str().unwrap(), "tiny".repeat(3600));
});

both_backends!(templates_that_minijinja_would_load_differently_are_refused, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("bot").await;
    for (text, why) in [
        ("{%include(\"missing\")%}", "form PromptOS resolves"),
        ("{% import \"macros\" as m %}{{ m.hi() }}", "import is not supported"),
        ("{% from \"macros\" import hi %}", "import is not supported"),
        ("{% extends \"base\" %}", "extends is not supported"),
    ] {
        let r = app.post("/prompts/bot/versions/", json!({"version_string": "v1", "text": text})).await;
        let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "template_syntax").await;
        assert!(e["message"].as_str().unwrap().contains(why), "{text}: {e}");
        assert_eq!(e["line"], 1, "{e}");
    }
    assert_eq!(app.event_count().await, 2, "nothing but the admin and the prompt was written");
});

// The black-box case: an API server with no projector anywhere, so the read models
// never see the writes. The write side still refuses what it must.
both_backends!(with_no_projector_running_the_write_side_still_refuses, |backend| async move {
    let scratch = scratch(backend).await;
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let started = |base: String| {
        let http = http.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
                assert!(Instant::now() < deadline, "{base} did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let login = |base: String, user: &'static str, password: &'static str| {
        let http = http.clone();
        async move {
            let r = http.post(format!("{base}/auth/token")).form(&[("username", user), ("password", password)]);
            expect_status(r.send().await.unwrap(), StatusCode::OK).await["access_token"].as_str().unwrap().to_owned()
        }
    };
    // First with a projector: the users exist in the read models (logins read them).
    let first = port();
    let base = format!("http://127.0.0.1:{first}");
    let server = serve_process(&scratch.url, first, &[]);
    started(base.clone()).await;
    let admin = login(base.clone(), "admin", ADMIN_PASSWORD).await;
    let r = http.post(format!("{base}/users/")).bearer_auth(&admin);
    let body = json!({"username": "eddie", "role": "editor", "password": "eddie-password-123"});
    expect_status(r.json(&body).send().await.unwrap(), StatusCode::CREATED).await;
    drop(server);

    // Then without one: every write below is in the log only.
    let second = port();
    let base = format!("http://127.0.0.1:{second}");
    let _server = serve_process(&scratch.url, second, &["--no-projector", "--consistency-timeout-ms", "50"]);
    started(base.clone()).await;
    let editor = login(base.clone(), "eddie", "eddie-password-123").await;
    let call = |method: Method, path: &str, token: &str, body: Option<Value>| {
        let mut r = http.request(method, format!("{base}{path}")).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    for (name, text) in [("greeting", "Hello."), ("persona", "You are Ava."), ("bot", "{% include \"persona\" %}")] {
        let r = call(Method::POST, "/prompts/", &admin, Some(json!({"name": name}))).await.unwrap();
        expect_status(r, StatusCode::CREATED).await;
        let body = json!({"version_string": "v1", "text": text});
        let r = call(Method::POST, &format!("/prompts/{name}/versions/"), &admin, Some(body)).await.unwrap();
        expect_status(r, StatusCode::CREATED).await;
    }
    let deploy = |name: &str| json!({"prompt_name": name, "environment": "production", "version_string": "v1"});
    let r = call(Method::POST, "/deployments/", &admin, Some(deploy("greeting"))).await.unwrap();
    expect_status(r, StatusCode::OK).await;
    let r = call(Method::GET, "/prompts/greeting/deployed/?environment=production", &admin, None).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "the read models have not seen the deploy");

    // An editor may not take a prompt out of production, seen or not.
    let r = call(Method::DELETE, "/prompts/greeting", &editor, None).await.unwrap();
    let e = expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(e["message"].as_str().unwrap().contains("production"), "{e}");
    // A version whose include is not live in production cannot go live there.
    let r = call(Method::POST, "/deployments/", &admin, Some(deploy("bot"))).await.unwrap();
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "include_missing").await;
    assert!(e["message"].as_str().unwrap().contains("not deployed in \"production\""), "{e}");
    // Nor a version including a prompt that does not exist be created.
    let body = json!({"version_string": "v2", "text": "{% include \"nobody\" %}"});
    let r = call(Method::POST, "/prompts/bot/versions/", &admin, Some(body)).await.unwrap();
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "include_missing").await;
});

/// The follower derives change messages for each batch it reads; when that fails (a
/// passing database error), it tries the batch again instead of moving past it, so no
/// subscriber misses the change and no includer keeps a stale answer.
#[tokio::test]
async fn a_batch_whose_changes_could_not_be_derived_is_retried_not_skipped() {
    let scratch = scratch(promptos_store::Backend::Sqlite).await;
    let armed = promptos_testkit::temp_dir();
    let switch = armed.path().join("fail-now");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_promptos"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--consistency-timeout-ms", "300"])
            .env("PROMPTOS_DATABASE_URL", &scratch.url)
            .env("PROMPTOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PROMPTOS_LOG", "error")
            .env("PROMPTOS_FAILPOINT", format!("follower.changes:while:{}", switch.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = http.post(format!("{base}/auth/token")).form(&[("username", "admin"), ("password", ADMIN_PASSWORD)]);
    let token =
        expect_status(r.send().await.unwrap(), StatusCode::OK).await["access_token"].as_str().unwrap().to_owned();
    let post = |path: &str, body: Value| http.post(format!("{base}{path}")).bearer_auth(&token).json(&body).send();
    let deploy = |name: &str, v: &str| json!({"prompt_name": name, "environment": "staging", "version_string": v});
    for (name, versions) in
        [("persona", vec!["You are Ava.", "You are Bea."]), ("bot", vec!["{% include \"persona\" %} Hi."])]
    {
        expect_status(post("/prompts/", json!({"name": name})).await.unwrap(), StatusCode::CREATED).await;
        for (i, text) in versions.iter().enumerate() {
            let body = json!({"version_string": format!("v{}", i + 1), "text": text});
            expect_status(post(&format!("/prompts/{name}/versions/"), body).await.unwrap(), StatusCode::CREATED).await;
        }
    }
    expect_status(post("/deployments/", deploy("persona", "v1")).await.unwrap(), StatusCode::OK).await;
    expect_status(post("/deployments/", deploy("bot", "v1")).await.unwrap(), StatusCode::OK).await;
    let resolved = format!("{base}/prompts/bot/deployed/?environment=staging&resolve=true");
    let text = |answer: Value| answer["prompt_text"].as_str().unwrap_or_default().to_owned();
    let read = || http.get(&resolved).bearer_auth(&token).send();
    assert_eq!(text(expect_status(read().await.unwrap(), StatusCode::OK).await), "You are Ava. Hi.");
    let stream = http.get(format!("{base}/changes/stream?environment=staging&prompt=bot")).bearer_auth(&token);
    let feed = tokio::spawn(read_changes(stream.send().await.unwrap(), 1));

    // While deriving changes fails, the deploy is in the log but the follower holds.
    std::fs::write(&switch, "").unwrap();
    expect_status(post("/deployments/", deploy("persona", "v2")).await.unwrap(), StatusCode::OK).await;
    std::fs::remove_file(&switch).unwrap();

    let changes = feed.await.unwrap();
    assert_eq!((changes[0]["type"].as_str(), changes[0]["prompt"].as_str()), (Some("IncludeChanged"), Some("bot")));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = text(expect_status(read().await.unwrap(), StatusCode::OK).await);
        if now == "You are Bea. Hi." {
            break;
        }
        assert!(Instant::now() < deadline, "bot still serves {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// Verification reads the whole log, so callers cannot make the server do it back to
// back: an unchanged log's check is reused for a few seconds, and any write makes the
// next call check again.
both_backends!(verifying_an_unchanged_log_again_reuses_the_last_check, |backend| async move {
    let app = spawn_app(backend).await;
    let first = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    let again = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(again["checked_at"], first["checked_at"], "the same check answered twice");
    app.create_prompt("moved").await;
    let after = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_ne!(after["checked_at"], first["checked_at"], "a write makes the next call check again");
    assert_eq!(after["chain"]["events_checked"].as_i64(), Some(app.event_count().await));
});
