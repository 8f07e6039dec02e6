//! The `promptos` binary itself: help, rebuild and verify (including tampering).

use crate::helpers::*;
use promptos_testkit::both_backends;
use reqwest::StatusCode;
use std::process::Command;

fn promptos(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_promptos"))
        .args(args)
        .env("PROMPTOS_DATABASE_URL", database_url)
        .env("PROMPTOS_LOG", "warn")
        .output()
        .expect("run promptos")
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["projector", "--help"],
        vec!["migrate", "--help"],
        vec!["rebuild", "--help"],
        vec!["verify", "--help"],
        vec!["export", "--help"],
        vec!["import", "--help"],
        vec!["keygen", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "verify", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_promptos")).args(&cmd).output().unwrap();
        assert!(out.status.success(), "{cmd:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: promptos"), "{cmd:?}: {text}");
        let no_database =
            matches!(cmd[0], "keygen" | "audit") || (cmd.len() == 2 && matches!(cmd[0], "users" | "api-keys"));
        if cmd.len() >= 2 && cmd[0] != "--help" && !no_database {
            assert!(text.contains("--database-url") && text.contains("PROMPTOS_DATABASE_URL"), "{cmd:?}: {text}");
        }
    }
}

both_backends!(rebuild_then_verify_passes_and_an_edited_row_is_named, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("audited").await;
    app.create_version("audited", "v1", "Hello {{ who }}").await;
    expect_status(app.deploy("audited", "production", "v1").await, StatusCode::OK).await;
    let url = app.scratch.url.clone();
    let total = app.event_count().await;

    let out = promptos(&url, &["rebuild"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("rebuilt from {total} events")));
    let out = promptos(&url, &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("intact ({total} events)")) && text.contains("equal to a fresh replay"), "{text}");

    let export = promptos(&url, &["export"]);
    assert!(export.status.success());
    assert_eq!(String::from_utf8_lossy(&export.stdout).lines().count() as i64, total);

    let all = promptos_store::EventLog::read_after(&app.db, 0, 100).await.unwrap();
    let victim = all.into_iter().find(|e| e.event_type == "VersionCreated").unwrap();
    let disable = match app.db.backend() {
        promptos_store::Backend::Sqlite => "DROP TRIGGER events_are_append_only_update",
        promptos_store::Backend::Postgres => "ALTER TABLE events DISABLE TRIGGER events_are_append_only",
    };
    app.db.execute(disable).await.unwrap();
    let tamper =
        format!("UPDATE events SET payload = replace(payload, 'Hello', 'Hacked') WHERE position = {}", victim.position);
    app.db.execute(&tamper).await.unwrap();
    let out = promptos(&url, &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("BROKEN at position {}", victim.position)) && text.contains(&victim.event_id),
        "{text}"
    );
    let api = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(api["ok"], false);
    assert_eq!(api["chain"]["first_bad"]["position"], victim.position);
});

both_backends!(a_tampered_user_row_is_named_by_verify_without_showing_the_password_hash, |backend| async move {
    let app = spawn_app(backend).await;
    app.user_token("eddie", "editor").await;
    let hash: String = promptos_store::on_pool!(app.db, pool => {
        sqlx::query_scalar("SELECT password_hash FROM rm_users WHERE username = 'eddie'").fetch_one(pool).await
    })
    .unwrap();
    // Someone with database access makes eddie an admin behind the log's back.
    app.db.execute("UPDATE rm_users SET role = 'admin' WHERE username = 'eddie'").await.unwrap();
    let out = promptos(&app.scratch.url, &["verify", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["read_models"]["first_difference"]["table"], "rm_users", "{text}");
    assert!(!text.contains(&hash), "the report must not show the password hash");
    let api = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(api["read_models"]["ok"], false);
});

fn promptos_with_stdin(database_url: &str, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_promptos"))
        .args(args)
        .env("PROMPTOS_DATABASE_URL", database_url)
        .env("PROMPTOS_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

both_backends!(users_and_keys_managed_from_the_command_line_work_over_http, |backend| async move {
    let app = spawn_app(backend).await;
    let url = app.scratch.url.clone();
    let out = promptos_with_stdin(
        &url,
        &["users", "create", "carla", "--role", "editor", "--password-stdin"],
        "carla-secret-pass\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = app.login("carla", "carla-secret-pass").await;
    let me = expect_status(app.send(reqwest::Method::GET, "/auth/me", Some(&token), None).await, StatusCode::OK).await;
    assert_eq!(me["role"], "editor");

    let out = promptos(&url, &["users", "reset-password", "carla"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let generated = text.lines().find_map(|l| l.strip_prefix("password: ")).unwrap().trim().to_owned();
    app.login("carla", &generated).await;
    let list = promptos(&url, &["users", "list"]);
    let listing = String::from_utf8_lossy(&list.stdout);
    assert!(listing.contains("carla") && listing.contains("editor") && listing.contains("admin"), "{listing}");

    app.create_prompt("p").await;
    app.create_version("p", "v1", "Hello").await;
    expect_status(app.deploy("p", "staging", "v1").await, StatusCode::OK).await;
    let out = promptos(&url, &["api-keys", "create", "--name", "shop", "--environments", "staging"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    let key = text.lines().find_map(|l| l.strip_prefix("key: ")).unwrap().trim().to_owned();
    let key_id = text.lines().find_map(|l| l.strip_prefix("created API key ")).unwrap().trim().to_owned();
    let path = "/prompts/p/deployed/?environment=staging";
    expect_status(app.send(reqwest::Method::GET, path, Some(&key), None).await, StatusCode::OK).await;
    let out = promptos(&url, &["api-keys", "revoke", &key_id]);
    assert!(out.status.success());
    // The server learns of changes made by another process within its follower's tick.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = app.send(reqwest::Method::GET, path, Some(&key), None).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "revocation never reached the server");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let events = expect_status(app.get("/events?actor=cli").await, StatusCode::OK).await;
    let types: Vec<_> =
        events["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["UserCreated", "PasswordChanged", "ApiKeyCreated", "ApiKeyRevoked"]);
});

/// Every item of a paged listing, following `next_cursor`.
async fn all_pages(app: &TestApp, path: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=100&cursor={c}"),
            None => format!("{path}{sep}limit=100"),
        };
        let page = expect_status(app.get(&url).await, StatusCode::OK).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// 50 prompts × (1 creation, 20 versions, 79 deploys): 5,000 events.
async fn five_thousand_events(url: &str) {
    use promptos_core::events::*;
    use promptos_core::names::*;
    use promptos_store::{AppendRequest, Db, Metadata, Writer};
    let db = Db::connect_and_migrate(url).await.unwrap();
    let writer = Writer::start(db);
    let environments = ["development", "staging", "production"];
    for p in 0..50 {
        let name = PromptName::parse(&format!("moved-{p:02}")).unwrap();
        let prompt_id = uuid::Uuid::new_v4();
        let mut events = vec![Event::PromptCreated(PromptCreated {
            prompt_id,
            name: name.clone(),
            description: Description::parse("moved between databases").unwrap(),
        })];
        for v in 1..=20 {
            events.push(Event::VersionCreated(VersionCreated::plain_text(
                prompt_id,
                name.clone(),
                VersionString::parse(&format!("v{v}")).unwrap(),
                format!("Hello {{{{ who }}}}, version {v} of {name}"),
                vec!["who".into()],
            )));
        }
        let mut live: [Option<VersionString>; 3] = [None, None, None];
        for d in 0..79 {
            let e = d % 3;
            let version = VersionString::parse(&format!("v{}", d % 20 + 1)).unwrap();
            events.push(Event::VersionDeployed(VersionDeployed {
                prompt_id,
                name: name.clone(),
                environment: EnvironmentName::parse(environments[e]).unwrap(),
                version_string: version.clone(),
                previous_version_string: live[e].replace(version),
                gate: None,
            }));
        }
        let request = AppendRequest {
            stream_id: prompt_stream(&name),
            expected_version: 0,
            events,
            metadata: Metadata::new("user:admin"),
        };
        writer.append(request).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_log_moves_to_postgres_with_export_and_import() {
    use promptos_store::Backend;
    use promptos_testkit::scratch;
    let sqlite = scratch(Backend::Sqlite).await;
    five_thousand_events(&sqlite.url).await;
    let source = spawn_app_on(sqlite, |_| {}).await;
    assert_eq!(source.event_count().await, 5001, "5,000 events and the first admin");

    let dir = promptos_testkit::temp_dir();
    let file = dir.path().join("log.jsonl");
    let out = promptos(&source.scratch.url, &["export", "-o", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let postgres = scratch(Backend::Postgres).await;
    let out = promptos(&postgres.url, &["import", "-i", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 5001 events"));
    // A second import into the same database is refused and writes nothing.
    let again = promptos(&postgres.url, &["import", "-i", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("needs an empty database"));

    // The same verdict from `promptos verify` on both.
    let verdict = |url: &str| {
        let out = promptos(url, &["verify", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (report["ok"].clone(), report["chain"].clone(), report["read_models"]["first_difference"].clone())
    };
    assert_eq!(verdict(&postgres.url), verdict(&source.scratch.url));
    assert_eq!(verdict(&postgres.url).1["events_checked"], 5001);

    // The same answers from the API, served from PostgreSQL.
    let target = spawn_app_on(postgres, |_| {}).await;
    assert_eq!(target.event_count().await, 5001, "no second admin is created: the log has one");
    let prompts = all_pages(&target, "/prompts/").await;
    assert_eq!(prompts.len(), 50);
    assert_eq!(prompts, all_pages(&source, "/prompts/").await);
    let events = all_pages(&target, "/events").await;
    assert_eq!(events.len(), 5001);
    assert_eq!(events, all_pages(&source, "/events").await);
    let audit = expect_status(target.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(audit["ok"], true, "{audit}");
    assert_eq!(
        target.deployed_text("moved-07", "production").await,
        source.deployed_text("moved-07", "production").await
    );
}
