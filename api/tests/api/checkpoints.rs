//! Signed checkpoints: a log that proves itself to someone who does not trust the
//! database. The attacker here can write to the database (and so recompute every
//! hash), but does not hold the signing key.

use crate::helpers::*;
use promptos_store::{Backend, EventLog};
use promptos_testkit::{both_backends, scratch, temp_dir};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn promptos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promptos")).args(args).env("PROMPTOS_LOG", "warn").output().expect("run promptos")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `promptos keygen --out <dir>/signing.key`.
fn keygen(dir: &Path, rotate: bool) -> PathBuf {
    let key = dir.join("signing.key");
    let mut args = vec!["keygen", "--out", key.to_str().unwrap(), "--name", "audit.example"];
    if rotate {
        args.push("--rotate");
    }
    let out = promptos(&args);
    assert!(out.status.success(), "{}", text(&out));
    key
}

/// The server with a signing key; periodic checkpoints far apart, so the test decides
/// when they are made (a key that has not signed the head signs at start).
async fn app_with_key(scratch: promptos_testkit::Scratch, key: &Path, log: Option<&Path>) -> TestApp {
    let (key, log) = (key.to_owned(), log.map(Path::to_owned));
    spawn_app_on(scratch, move |args| {
        args.checkpoints.signing_key_file = Some(key);
        args.checkpoints.checkpoint_interval = std::time::Duration::from_secs(3600);
        args.checkpoints.checkpoint_log = log;
    })
    .await
}

async fn some_history(app: &TestApp, name: &str) {
    app.create_prompt(name).await;
    app.create_version(name, "1.0.0", "Hello {{ name }}").await;
    app.create_version(name, "1.1.0", "Hi {{ name }}").await;
    expect_status(app.deploy(name, "production", "1.1.0").await, StatusCode::OK).await;
}

async fn checkpoint_now(app: &TestApp) -> Value {
    let made = expect_status(app.post("/audit/checkpoints", serde_json::json!({})).await, StatusCode::CREATED).await;
    assert_eq!(made["position"], app.event_count().await, "{made}");
    made
}

async fn get_text(app: &TestApp, path: &str) -> String {
    let r = app.http.get(app.url(path)).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

fn export(url: &str, to: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_promptos"))
        .args(["export", "--output", to.to_str().unwrap()])
        .env("PROMPTOS_DATABASE_URL", url)
        .env("PROMPTOS_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

fn verify_offline(export: &Path, checkpoint: &Path, key: &Path) -> Output {
    promptos(&[
        "audit",
        "verify",
        "--export",
        export.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--public-key",
        key.to_str().unwrap(),
    ])
}

/// What someone with write access to the database can do: change an old event and
/// recompute every later hash, so that the chain is intact again.
async fn rewrite_history(db: &promptos_store::Db, position: i64) {
    let disable = match db.backend() {
        Backend::Sqlite => "DROP TRIGGER events_are_append_only_update",
        Backend::Postgres => "ALTER TABLE events DISABLE TRIGGER events_are_append_only",
    };
    db.execute(disable).await.unwrap();
    let mut events = db.read_after(0, 10_000).await.unwrap();
    let mut prev = events[position as usize - 2].hash.clone();
    for e in events.iter_mut().skip(position as usize - 1) {
        if e.position == position {
            assert!(e.payload.contains("Hello"), "{}", e.payload);
            e.payload = e.payload.replace("Hello", "Obey");
        }
        e.prev_hash = prev;
        e.hash = e.expected_hash();
        prev = e.hash.clone();
        promptos_store::on_pool!(db, pool => {
            sqlx::query("UPDATE events SET payload = $1, prev_hash = $2, hash = $3 WHERE position = $4")
                .bind(&e.payload)
                .bind(&e.prev_hash)
                .bind(&e.hash)
                .bind(e.position)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .unwrap();
    }
}

both_backends!(a_consistent_rewrite_of_history_is_caught_online_and_offline, |backend| async move {
    let dir = temp_dir();
    let key = keygen(dir.path(), false);
    let app = app_with_key(scratch(backend).await, &key, None).await;
    some_history(&app, "greeting").await;
    let checkpoint = checkpoint_now(&app).await;
    let position = checkpoint["position"].as_i64().unwrap();
    let (cp, public, before) = (dir.path().join("cp.txt"), dir.path().join("key.pub"), dir.path().join("before.jsonl"));
    std::fs::write(&cp, get_text(&app, "/audit/checkpoints/latest?format=text").await).unwrap();
    std::fs::write(&public, get_text(&app, "/audit/public-key?format=text").await).unwrap();
    export(&app.scratch.url, &before);
    let honest = verify_offline(&before, &cp, &public);
    assert!(honest.status.success(), "{}", text(&honest));
    assert!(text(&honest).contains(&format!("events 1 to {position} are exactly those")), "{}", text(&honest));
    let verified = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!((verified["ok"].as_bool(), verified["checkpoints"]["ok"].as_bool()), (Some(true), Some(true)));
    assert_eq!(verified["checkpoints"]["latest"]["position"], position, "{verified}");

    // The first version's text ("Hello …") is changed, and every hash after it redone.
    let victim = app.db.read_after(0, 100).await.unwrap().into_iter().find(|e| e.event_type == "VersionCreated");
    rewrite_history(&app.db, victim.unwrap().position).await;
    assert!(app.db.verify_chain(|_| {}).await.unwrap().first_bad.is_none(), "the chain alone cannot tell");

    let verified = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verified["ok"], false, "{verified}");
    let failure = &verified["checkpoints"]["failures"][0];
    assert_eq!(failure["position"], position, "{verified}");
    assert!(failure["reason"].as_str().unwrap().contains("were changed after it was signed"), "{verified}");

    let after = dir.path().join("after.jsonl");
    export(&app.scratch.url, &after);
    let caught = verify_offline(&after, &cp, &public);
    assert_eq!(caught.status.code(), Some(1), "{}", text(&caught));
    let said = text(&caught);
    assert!(said.contains("export: an intact hash chain"), "the export's own chain holds: {said}");
    assert!(said.contains(&format!("at position {position} the export's hash is")), "{said}");
    assert!(said.contains(checkpoint["head_hash"].as_str().unwrap()), "{said}");
});

both_backends!(an_honest_export_verifies_offline_across_a_key_rotation, |backend| async move {
    let dir = temp_dir();
    let key = keygen(dir.path(), false);
    let scratch = scratch(backend).await;
    let url = scratch.url.clone();
    // The first server is a process, so that it can be stopped before the restart (on
    // PostgreSQL it holds the periodic signer's lock while it runs).
    let key_arg = key.to_str().unwrap();
    let (child, first) = serve_app(&scratch, &["--signing-key-file", key_arg, "--checkpoint-interval", "1h"]).await;
    some_history(&first, "greeting").await;
    let old = checkpoint_now(&first).await;
    let old_keys = get_text(&first, "/audit/public-key?format=text").await;
    drop(child);

    let rotated = keygen(dir.path(), true);
    let retired = std::fs::read_to_string(dir.path().join("signing.key.retired")).unwrap();
    assert_eq!(retired, old_keys, "the retired file keeps the old public key");
    // The server restarted with the new key signs the head at once, from that position.
    let second = app_with_key(scratch, &rotated, None).await;
    let first_new = wait_for_checkpoint_by_another_key(&second, &old).await;
    assert_eq!(first_new["position"], old["position"], "the new key signs from the head it found");
    some_history(&second, "farewell").await;
    let new = checkpoint_now(&second).await;
    assert_ne!(new["key_id"], old["key_id"]);

    let keys = expect_status(second.get("/audit/public-key").await, StatusCode::OK).await;
    assert_eq!(keys["current"]["key_id"], new["key_id"], "{keys}");
    assert_eq!(keys["current"]["first_position"], old["position"], "{keys}");
    assert_eq!(keys["retired"][0]["key_id"], old["key_id"], "{keys}");
    assert_eq!(keys["retired"][0]["last_position"], old["position"], "{keys}");

    let (all, public, exported) =
        (dir.path().join("all.json"), dir.path().join("keys.pub"), dir.path().join("e.jsonl"));
    let page = get_text(&second, "/audit/checkpoints").await;
    // Each key signed at its start and on demand (the two coincide when nothing was
    // appended in between).
    let count = serde_json::from_str::<Value>(&page).unwrap()["items"].as_array().unwrap().len();
    assert!((3..=4).contains(&count), "{page}");
    std::fs::write(&all, page).unwrap();
    std::fs::write(&public, get_text(&second, "/audit/public-key?format=text").await).unwrap();
    export(&url, &exported);
    let out = verify_offline(&exported, &all, &public);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).matches(": ok: ").count(), count, "{}", text(&out));

    // Without the retired key, the old checkpoint cannot be verified.
    let only_new = dir.path().join("new.pub");
    std::fs::copy(rotated.with_extension("key.pub"), &only_new).unwrap();
    let out = verify_offline(&exported, &all, &only_new);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not signed by any of the given public keys"), "{}", text(&out));

    let verified = expect_status(second.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verified["checkpoints"]["ok"], true, "{verified}");
    assert_eq!(verified["checkpoints"]["checked"], count, "{verified}");
});

async fn wait_for_checkpoint_by_another_key(app: &TestApp, other: &Value) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = expect_status(app.get("/audit/checkpoints").await, StatusCode::OK).await;
        if let Some(c) = page["items"].as_array().unwrap().iter().find(|c| c["key_id"] != other["key_id"]) {
            return c.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the new key signed nothing: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_checkpoint_log_ships_every_checkpoint_and_verifies_offline() {
    let dir = temp_dir();
    let key = keygen(dir.path(), false);
    let log = dir.path().join("checkpoints.jsonl");
    let app = app_with_key(scratch(Backend::Sqlite).await, &key, Some(&log)).await;
    some_history(&app, "greeting").await;
    let made = checkpoint_now(&app).await;
    let shipped = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(shipped.lines().last().unwrap()).unwrap();
    assert_eq!((&last["position"], &last["note"]), (&made["position"], &made["note"]), "{shipped}");
    let public = dir.path().join("signing.key.pub");
    let exported = dir.path().join("e.jsonl");
    export(&app.scratch.url, &exported);
    let out = verify_offline(&exported, &log, &public);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn without_a_key_checkpoints_are_off_and_say_so() {
    let app = spawn_app(Backend::Sqlite).await;
    let verified = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verified["checkpoints"]["enabled"], false, "{verified}");
    assert!(verified["checkpoints"]["statement"].as_str().unwrap().contains("PROMPTOS_SIGNING_KEY_FILE"));
    assert_eq!(verified["ok"], true);
    let off = expect_status(app.get("/audit/checkpoints").await, StatusCode::NOT_FOUND).await;
    assert!(off["error"]["message"].as_str().unwrap().contains("PROMPTOS_SIGNING_KEY_FILE"), "{off}");
    expect_status(app.post("/audit/checkpoints", serde_json::json!({})).await, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn keygen_writes_a_private_file_and_never_overwrites_a_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let key = keygen(dir.path(), false);
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let public = std::fs::read_to_string(dir.path().join("signing.key.pub")).unwrap();
    assert!(public.starts_with("audit.example+"), "{public}");
    let again = promptos(&["keygen", "--out", key.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(text(&again).contains("--rotate"), "{}", text(&again));
    // A server pointed at something that is not a key does not start.
    let not_a_key = dir.path().join("key.pub");
    std::fs::write(&not_a_key, &public).unwrap();
    let scratch = scratch(Backend::Sqlite).await;
    let mut args = promptos_api::config::ServeArgs::for_database(&scratch.url);
    args.checkpoints.signing_key_file = Some(not_a_key);
    let refused = promptos_api::startup::Application::build(&args).await.err().expect("the server refuses to start");
    assert!(format!("{refused:#}").contains("is not a signing key made by `promptos keygen`"), "{refused:#}");
}
