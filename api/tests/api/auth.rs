//! Authentication and access control, walked endpoint by endpoint.

use crate::helpers::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use promptos_testkit::both_backends;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Nobody,
    Malformed,
    ForgedSecret,
    Expired,
    Viewer,
    Editor,
    Admin,
    KeyInScope,
    KeyOutOfScope,
    RevokedKey,
    DisabledUser,
}

use Who::*;

const EVERYONE: &[Who] = &[
    Nobody,
    Malformed,
    ForgedSecret,
    Expired,
    Viewer,
    Editor,
    Admin,
    KeyInScope,
    KeyOutOfScope,
    RevokedKey,
    DisabledUser,
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    Public,
    /// Any valid credential.
    Anyone,
    /// Users of at least this level; API keys refused.
    Viewers,
    Editors,
    Admins,
    /// Users, and API keys scoped to staging.
    StagingReaders,
    /// Users only (keys in the matrix are scoped to staging or development).
    ProductionReaders,
}

fn expected(rule: Rule, who: Who) -> StatusCode {
    let invalid = matches!(who, Nobody | Malformed | ForgedSecret | Expired | RevokedKey | DisabledUser);
    if rule == Rule::Public {
        return StatusCode::OK;
    }
    if invalid {
        return StatusCode::UNAUTHORIZED;
    }
    let allowed = match (rule, who) {
        (Rule::Anyone, _) => true,
        (Rule::Viewers, Viewer | Editor | Admin) => true,
        (Rule::Editors, Editor | Admin) => true,
        (Rule::Admins, Admin) => true,
        (Rule::StagingReaders, Viewer | Editor | Admin | KeyInScope) => true,
        (Rule::ProductionReaders, Viewer | Editor | Admin) => true,
        _ => false,
    };
    if allowed {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    }
}

fn token_with(secret: &str, sub: &str, exp_offset: i64, pwp: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": sub, "iat": now - 7200, "exp": now + exp_offset, "pwp": pwp});
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

async fn password_position(app: &TestApp, user: &str) -> i64 {
    promptos_projector::queries::user(&app.db, user).await.unwrap().unwrap().password_position
}

both_backends!(every_endpoint_checks_every_kind_of_credential, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("p").await;
    app.create_version("p", "v1", "Hello {{ who }}").await;
    app.create_version("p", "v2", "Hi {{ who }}").await;
    for env in ["staging", "production"] {
        expect_status(app.deploy("p", env, "v1").await, StatusCode::OK).await;
    }
    let viewer = app.user_token("vera", "viewer").await;
    let editor = app.user_token("eddie", "editor").await;
    let disabled = app.user_token("dora", "viewer").await;
    expect_status(app.post("/users/dora/disable", json!({})).await, StatusCode::OK).await;
    let (_, in_scope) = app.api_key(&["staging"]).await;
    let (_, out_of_scope) = app.api_key(&["development"]).await;
    let (revoked_id, revoked) = app.api_key(&["staging"]).await;
    let r = app.send(Method::DELETE, &format!("/api-keys/{revoked_id}"), Some(&app.token), None).await;
    expect_status(r, StatusCode::OK).await;
    let admin_pwp = password_position(&app, "admin").await;
    let credential = |who: Who| -> Option<String> {
        match who {
            Nobody => None,
            Malformed => Some("not-a-token".into()),
            ForgedSecret => Some(token_with("another-secret-of-at-least-32-characters", "admin", 3600, admin_pwp)),
            Expired => Some(token_with(JWT_SECRET, "admin", -3600, admin_pwp)),
            Viewer => Some(viewer.clone()),
            Editor => Some(editor.clone()),
            Admin => Some(app.token.clone()),
            KeyInScope => Some(in_scope.clone()),
            KeyOutOfScope => Some(out_of_scope.clone()),
            RevokedKey => Some(revoked.clone()),
            DisabledUser => Some(disabled.clone()),
        }
    };

    for (i, who) in EVERYONE.iter().enumerate() {
        // Things each credential may try to change, made by the admin beforehand.
        app.create_prompt(&format!("doomed-{i}")).await;
        app.create_version(&format!("doomed-{i}"), "v1", "x").await;
        let (throwaway_key, _) = app.api_key(&["staging"]).await;
        app.user_token(&format!("target-{i}"), "viewer").await;

        type Case = (Method, String, Option<Value>, Rule);
        let cases: Vec<Case> = vec![
            (Method::GET, "/healthz".into(), None, Rule::Public),
            (Method::GET, "/readyz".into(), None, Rule::Public),
            (Method::GET, "/openapi.json".into(), None, Rule::Public),
            (Method::GET, "/auth/me".into(), None, Rule::Anyone),
            (Method::GET, "/prompts/".into(), None, Rule::Viewers),
            (Method::GET, "/prompts/p".into(), None, Rule::Viewers),
            (Method::GET, "/prompts/p/versions/".into(), None, Rule::Viewers),
            (Method::GET, "/prompts/p/versions/v1".into(), None, Rule::Viewers),
            (Method::GET, "/prompts/p/deployments/".into(), None, Rule::Viewers),
            (Method::GET, "/prompts/p/history".into(), None, Rule::Viewers),
            (Method::GET, "/events".into(), None, Rule::Viewers),
            (Method::GET, "/environments".into(), None, Rule::Viewers),
            (Method::GET, "/audit/verify".into(), None, Rule::Viewers),
            (Method::GET, "/prompts/p/deployed/?environment=staging".into(), None, Rule::StagingReaders),
            (Method::GET, "/prompts/p/deployed/?environment=production".into(), None, Rule::ProductionReaders),
            (Method::GET, "/deployed/?environment=staging".into(), None, Rule::StagingReaders),
            (Method::GET, "/events/export".into(), None, Rule::Admins),
            (Method::GET, "/users/".into(), None, Rule::Admins),
            (Method::GET, "/users/admin".into(), None, Rule::Admins),
            (Method::GET, "/api-keys/".into(), None, Rule::Admins),
            (Method::POST, "/prompts/".into(), Some(json!({"name": format!("new-{i}")})), Rule::Editors),
            (Method::PATCH, "/prompts/p".into(), Some(json!({"description": format!("by {i}")})), Rule::Editors),
            (
                Method::POST,
                "/prompts/p/versions/".into(),
                Some(json!({"version_string": format!("w{i}"), "text": "t"})),
                Rule::Editors,
            ),
            (
                Method::POST,
                "/deployments/".into(),
                Some(json!({"prompt_name": "p", "environment": "staging", "version_string": "v2"})),
                Rule::Editors,
            ),
            (
                Method::POST,
                "/deployments/".into(),
                Some(
                    json!({"prompt_name": format!("doomed-{i}"), "environment": "production", "version_string": "v1"}),
                ),
                Rule::Admins,
            ),
            (
                Method::POST,
                "/deployments/rollback".into(),
                Some(json!({"prompt_name": "p", "environment": "production", "to_version_string": "v2"})),
                Rule::Admins,
            ),
            (Method::DELETE, format!("/prompts/new-{i}"), None, Rule::Editors),
            (
                Method::POST,
                "/users/".into(),
                Some(json!({"username": format!("made-by-{i}"), "role": "viewer"})),
                Rule::Admins,
            ),
            (Method::PATCH, format!("/users/target-{i}"), Some(json!({"role": "editor"})), Rule::Admins),
            (Method::POST, format!("/users/target-{i}/password"), Some(json!({})), Rule::Admins),
            (Method::POST, format!("/users/target-{i}/disable"), Some(json!({})), Rule::Admins),
            (Method::POST, "/api-keys/".into(), Some(json!({"name": "x", "environments": ["staging"]})), Rule::Admins),
            (Method::DELETE, format!("/api-keys/{throwaway_key}"), None, Rule::Admins),
        ];
        for (method, path, body, rule) in cases {
            let before = app.event_count().await;
            let r = app.send(method.clone(), &path, credential(*who).as_deref(), body).await;
            let status = r.status();
            let text = r.text().await.unwrap();
            let want = expected(rule, *who);
            if want == StatusCode::OK {
                assert!(status.is_success(), "{who:?} {method} {path}: expected success, got {status}: {text}");
            } else {
                assert_eq!(status, want, "{who:?} {method} {path}: {text}");
                let error: Value = serde_json::from_str(&text).unwrap();
                let code = if want == StatusCode::UNAUTHORIZED { "unauthorized" } else { "forbidden" };
                assert_eq!(error["error"]["code"], code, "{who:?} {method} {path}: {text}");
                assert_eq!(app.event_count().await, before, "{who:?} {method} {path} was refused but appended");
                if let Some(c) = credential(*who) {
                    assert!(!text.contains(&c), "an error repeats the credential");
                }
            }
        }
    }
});

both_backends!(an_editor_cannot_deploy_to_production_but_an_admin_can, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("p").await;
    app.create_version("p", "v1", "Hello").await;
    let editor = app.user_token("eddie", "editor").await;
    let before = app.event_count().await;
    let body = json!({"prompt_name": "p", "environment": "production", "version_string": "v1"});
    let r = app.send(Method::POST, "/deployments/", Some(&editor), Some(body.clone())).await;
    let e = expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(e["message"].as_str().unwrap().contains("protected"), "{e}");
    assert_eq!(app.event_count().await, before, "the log is unchanged");
    // Editors may deploy where it is not protected.
    let r = app
        .send(
            Method::POST,
            "/deployments/",
            Some(&editor),
            Some(json!({"prompt_name": "p", "environment": "staging", "version_string": "v1"})),
        )
        .await;
    expect_status(r, StatusCode::OK).await;

    let r = app.send(Method::POST, "/deployments/", Some(&app.token), Some(body)).await;
    expect_status(r, StatusCode::OK).await;
    let deploys =
        expect_status(app.get("/events?type=VersionDeployed&environment=production").await, StatusCode::OK).await;
    assert_eq!(deploys["items"][0]["actor"], "user:admin");
    let events = expect_status(app.get("/events?actor=user:eddie").await, StatusCode::OK).await;
    assert_eq!(events["items"].as_array().unwrap().len(), 1, "only the staging deploy is the editor's");
});

both_backends!(a_password_change_voids_only_that_users_older_tokens, |backend| async move {
    let app = spawn_app(backend).await;
    let alice_old = app.user_token("alice", "editor").await;
    let bob = app.user_token("bob", "viewer").await;
    let (_, key) = app.api_key(&["staging"]).await;
    let me = |c: String| {
        let app = &app;
        async move { app.send(Method::GET, "/auth/me", Some(&c), None).await.status() }
    };
    // Changing one's own password needs the current one.
    let r = app
        .send(
            Method::POST,
            "/users/alice/password",
            Some(&alice_old),
            Some(json!({"password": "a-brand-new-passphrase"})),
        )
        .await;
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    let r = app
        .send(
            Method::POST,
            "/users/alice/password",
            Some(&alice_old),
            Some(json!({"current_password": "alice-password-123", "password": "a-brand-new-passphrase"})),
        )
        .await;
    expect_status(r, StatusCode::OK).await;
    assert_eq!(me(alice_old.clone()).await, StatusCode::UNAUTHORIZED, "alice's old token is void");
    let alice_new = app.login("alice", "a-brand-new-passphrase").await;
    assert_eq!(me(alice_new).await, StatusCode::OK);
    assert_eq!(me(bob).await, StatusCode::OK, "other users keep their sessions");
    assert_eq!(me(key).await, StatusCode::OK, "API keys are untouched");
    assert_eq!(me(app.token.clone()).await, StatusCode::OK);
    let r = app
        .http
        .post(app.url("/auth/token"))
        .form(&[("username", "alice"), ("password", "alice-password-123")])
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // A viewer cannot change someone else's password.
    let viewer = app.user_token("victor", "viewer").await;
    let r = app
        .send(Method::POST, "/users/alice/password", Some(&viewer), Some(json!({"password": "another-passphrase-1"})))
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;
});

both_backends!(a_key_works_at_once_and_stops_at_once_when_revoked, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("greeting").await;
    app.create_version("greeting", "v1", "Hello {{ name }}").await;
    expect_status(app.deploy("greeting", "staging", "v1").await, StatusCode::OK).await;
    let r = app.post("/api-keys/", json!({"name": "web shop", "environments": ["staging"]})).await;
    let created = expect_status(r, StatusCode::CREATED).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    let path = "/prompts/greeting/deployed/?environment=staging";
    let r = app.send(Method::GET, path, Some(&key), None).await;
    assert_eq!(expect_status(r, StatusCode::OK).await["prompt_text"], "Hello {{ name }}");
    // X-API-Key works too.
    let r = app.http.get(app.url(path)).header("x-api-key", &key).send().await.unwrap();
    expect_status(r, StatusCode::OK).await;
    // The key is never shown again.
    let listed = expect_status(app.get("/api-keys/").await, StatusCode::OK).await;
    assert!(!listed.to_string().contains(&key));
    let events = expect_status(app.get("/events?type=ApiKeyCreated").await, StatusCode::OK).await;
    assert_eq!(events["items"][0]["payload"]["key_hash"], "[redacted]");

    let r = app.send(Method::DELETE, &format!("/api-keys/{key_id}"), Some(&app.token), None).await;
    let revoked = expect_status(r, StatusCode::OK).await;
    assert_eq!(revoked["revoked_by"], "user:admin");
    let r = app.send(Method::GET, path, Some(&key), None).await;
    let e = expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(e["message"].as_str().unwrap().contains("revoked"));
});

both_backends!(role_changes_and_disabling_apply_to_existing_tokens_at_once, |backend| async move {
    let app = spawn_app(backend).await;
    let token = app.user_token("erin", "editor").await;
    let create = |name: &str| json!({"name": name});
    let r = app.send(Method::POST, "/prompts/", Some(&token), Some(create("one"))).await;
    expect_status(r, StatusCode::CREATED).await;
    expect_status(
        app.send(Method::PATCH, "/users/erin", Some(&app.token), Some(json!({"role": "viewer"}))).await,
        StatusCode::OK,
    )
    .await;
    let r = app.send(Method::POST, "/prompts/", Some(&token), Some(create("two"))).await;
    expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    expect_status(app.post("/users/erin/disable", json!({})).await, StatusCode::OK).await;
    let r = app.send(Method::GET, "/prompts/", Some(&token), None).await;
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app
        .http
        .post(app.url("/auth/token"))
        .form(&[("username", "erin"), ("password", "erin-password-123")])
        .send()
        .await
        .unwrap();
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let history = expect_status(app.get("/events?type=UserRoleChanged").await, StatusCode::OK).await;
    assert_eq!(history["items"][0]["payload"]["previous_role"], "editor");
    assert_eq!(history["items"][0]["actor"], "user:admin");
});

both_backends!(failed_logins_are_throttled_and_reveal_nothing, |backend| async move {
    let app = spawn_app(backend).await;
    app.user_token("frank", "viewer").await;
    let login = |user: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(app.url("/auth/token"))
                .json(&json!({"username": user, "password": password}))
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let existing = login("frank", "wrong-password-1").await;
    let missing = login("nobody-at-all", "wrong-password-1").await;
    assert_eq!(existing, missing, "a wrong password and an unknown user look the same");
    assert_eq!(existing.0, StatusCode::UNAUTHORIZED);
    for _ in 0..4 {
        assert_eq!(login("frank", "wrong-password-1").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = login("frank", "frank-password-123").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits: {body}");
    assert!(body.contains("too_many_attempts"));
    for _ in 0..4 {
        login("ghost", "wrong-password-1").await;
    }
    assert_eq!(login("ghost", "wrong-password-1").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login("ghost", "wrong-password-1").await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "unknown users are throttled alike"
    );
});

both_backends!(parallel_guesses_are_counted_before_checking_and_never_lock_the_owner_out, |backend| async move {
    let app = spawn_app(backend).await;
    let frank = app.user_token("frank", "viewer").await;
    // A client that connects from another loopback address, as another machine would.
    let from = |ip: [u8; 4]| reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).build().unwrap();
    let stranger = from([127, 0, 0, 2]);
    let guesses = (0..40).map(|i| {
        let (http, url) = (stranger.clone(), app.url("/auth/token"));
        async move {
            let body = json!({"username": "frank", "password": format!("guess-number-{i}")});
            http.post(url).json(&body).send().await.unwrap().status()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, refused), (5, 35), "only the free attempts reach the password check: {statuses:?}");

    // The stranger keeps guessing now and then; frank logs in from his own address.
    let owner = from([127, 0, 0, 3]);
    let r = owner.post(app.url("/auth/token")).json(&json!({"username": "frank", "password": "frank-password-123"}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK, "the owner is not locked out from another address");

    // A password change checks the current password under the same throttle.
    let change = |current: String| {
        let r = owner.post(app.url("/users/frank/password")).bearer_auth(&frank);
        r.json(&json!({"current_password": current, "password": "a-new-password-456"})).send()
    };
    for i in 0..5 {
        let r = change(format!("wrong-current-{i}")).await.unwrap();
        expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    }
    let r = change("frank-password-123".into()).await.unwrap();
    let e = expect_error(r, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert!(e["message"].as_str().unwrap().contains("try again"), "{e}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_prints_a_generated_admin_password_exactly_once() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let scratch = promptos_testkit::scratch(promptos_store::Backend::Sqlite).await;
    // Starts `promptos serve`, returns (stderr lines up to "listening", base URL).
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_promptos"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("PROMPTOS_DATABASE_URL", &scratch.url)
            .env_remove("PROMPTOS_ADMIN_PASSWORD")
            .env_remove("PROMPTOS_JWT_SECRET")
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let base = loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "server exited: {lines:?}");
            if let Some(i) = line.find("listening on http://") {
                let addr = line[i + "listening on ".len()..].split_whitespace().next().unwrap().to_owned();
                break addr;
            }
            lines.push(line);
        };
        (child, lines, base)
    };
    let (mut first, lines, base) = start();
    let passwords: Vec<&String> = lines.iter().filter(|l| l.contains("password:")).collect();
    assert_eq!(passwords.len(), 1, "{lines:?}");
    let password = passwords[0].split("password:").nth(1).unwrap().trim().to_owned();
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/auth/token"))
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the printed password logs in");
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, lines, _) = start();
    assert!(lines.iter().all(|l| !l.contains("password")), "printed again: {lines:?}");
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test]
async fn the_ui_has_a_content_security_policy_and_no_response_is_sniffed_or_cross_origin() {
    let dir = promptos_testkit::temp_dir();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>PromptOS</title>").unwrap();
    let ui_dir = dir.path().to_path_buf();
    let app = spawn_app_with(promptos_store::Backend::Sqlite, move |a| a.ui_dir = Some(ui_dir)).await;
    let r = app.http.get(app.url("/ui/prompts/x/history")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_owned();
    for part in ["default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // API answers are not sniffed either, and carry no CORS permission for other origins.
    let r = app
        .http
        .get(app.url("/prompts/"))
        .bearer_auth(&app.token)
        .header("Origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/prompts/"))
        .header("Origin", "https://elsewhere.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
}
