//! The `promptos` binary itself: help, rebuild and verify (including tampering).

use crate::helpers::*;
use promptos_projector::both_backends;
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
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_promptos")).args(&cmd).output().unwrap();
        assert!(out.status.success(), "{cmd:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: promptos"), "{cmd:?}: {text}");
        if cmd.len() == 2 && cmd[0] != "--help" {
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

    let all = promptos_projector::log::read_after(&app.db, 0, 100).await.unwrap();
    let victim = all.into_iter().find(|e| e.event_type == "VersionCreated").unwrap();
    let disable = match app.db.backend {
        promptos_projector::Backend::Sqlite => "DROP TRIGGER events_are_append_only_update",
        promptos_projector::Backend::Postgres => "ALTER TABLE events DISABLE TRIGGER events_are_append_only",
    };
    sqlx::query(disable).execute(&app.db.pool).await.unwrap();
    sqlx::query("UPDATE events SET payload = replace(payload, 'Hello', 'Hacked') WHERE position = $1")
        .bind(victim.position)
        .execute(&app.db.pool)
        .await
        .unwrap();
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
