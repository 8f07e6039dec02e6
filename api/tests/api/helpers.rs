use promptos_api::config::ServeArgs;
use promptos_store::{Backend, Db};
use promptos_testkit::{scratch, Scratch};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const JWT_SECRET: &str = "a-test-signing-secret-of-32-chars-or-more";

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub db: Db,
    pub scratch: Scratch,
    /// The bootstrap admin's access token, sent by `get`/`post` and the typed helpers.
    pub token: String,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    spawn_app_on(scratch(backend).await, configure).await
}

/// Starts the app on an existing scratch database.
pub async fn spawn_app_on(scratch: Scratch, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let mut args = ServeArgs::for_database(&scratch.url);
    args.admin_password = Some(ADMIN_PASSWORD.into());
    args.jwt_secret = Some(JWT_SECRET.into());
    configure(&mut args);
    let external_projector = args.no_projector;
    // The server users run: the same start-up, router and HTTP stack as `promptos serve`.
    let (server, _) = promptos_api::startup::Application::build(&args).await.expect("app starts");
    let db = server.state.db.clone();
    let base = format!("http://{}", server.local_addr());
    tokio::spawn(server.run_until(std::future::pending()));
    let mut app = TestApp { base, http: reqwest::Client::new(), db, scratch, token: String::new() };
    if external_projector {
        // The admin can log in once a projector in another process has projected it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let form = [("grant_type", "password"), ("username", "admin"), ("password", ADMIN_PASSWORD)];
        while app.http.post(app.url("/auth/token")).form(&form).send().await.unwrap().status() != StatusCode::OK {
            assert!(std::time::Instant::now() < deadline, "no projector projected the first admin");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    app.token = app.login("admin", ADMIN_PASSWORD).await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.http.post(self.url(path)).bearer_auth(&self.token).json(&body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).bearer_auth(&self.token).send().await.unwrap()
    }

    /// A request with the given credential (or none), as `Authorization: Bearer`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        credential: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut r = self.http.request(method, self.url(path));
        if let Some(c) = credential {
            r = r.bearer_auth(c);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    /// Logs in with the password grant (form-encoded, as OAuth2 clients send it).
    pub async fn login(&self, username: &str, password: &str) -> String {
        let form = [("grant_type", "password"), ("username", username), ("password", password)];
        let r = self.http.post(self.url("/auth/token")).form(&form).send().await.unwrap();
        let body = expect_status(r, StatusCode::OK).await;
        assert_eq!(body["token_type"], "bearer");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Creates a user with the given role and returns a token for them.
    pub async fn user_token(&self, username: &str, role: &str) -> String {
        let password = format!("{username}-password-123");
        let r = self.post("/users/", json!({"username": username, "role": role, "password": password})).await;
        expect_status(r, StatusCode::CREATED).await;
        self.login(username, &password).await
    }

    /// Creates an API key for the environments and returns (key id, key).
    pub async fn api_key(&self, environments: &[&str]) -> (String, String) {
        let r = self.post("/api-keys/", json!({"name": "test app", "environments": environments})).await;
        let body = expect_status(r, StatusCode::CREATED).await;
        (body["key_id"].as_str().unwrap().to_owned(), body["key"].as_str().unwrap().to_owned())
    }

    pub async fn create_prompt(&self, name: &str) -> Value {
        let r = self.post("/prompts/", json!({"name": name, "description": "test prompt"})).await;
        expect_status(r, StatusCode::CREATED).await
    }

    pub async fn create_version(&self, name: &str, version: &str, text: &str) -> Value {
        let r =
            self.post(&format!("/prompts/{name}/versions/"), json!({"version_string": version, "text": text})).await;
        expect_status(r, StatusCode::CREATED).await
    }

    pub async fn deploy(&self, name: &str, env: &str, version: &str) -> Response {
        self.post("/deployments/", json!({"prompt_name": name, "environment": env, "version_string": version})).await
    }

    pub async fn deployed_text(&self, name: &str, env: &str) -> Option<String> {
        let r = self.get(&format!("/prompts/{name}/deployed/?environment={env}")).await;
        if r.status() == StatusCode::NOT_FOUND {
            return None;
        }
        let v = expect_status(r, StatusCode::OK).await;
        Some(v["prompt_text"].as_str().unwrap().to_owned())
    }

    /// Number of events in the log, read straight from the database.
    pub async fn event_count(&self) -> i64 {
        promptos_store::EventLog::head(&self.db).await.unwrap()
    }
}

/// Asserts the status and returns the JSON body, showing the body on failure.
pub async fn expect_status(r: Response, status: StatusCode) -> Value {
    let got = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text}"))
    }
}

/// Asserts an error response in the shared shape and returns its `error` object.
pub async fn expect_error(r: Response, status: StatusCode, code: &str) -> Value {
    let body = expect_status(r, status).await;
    let error = body["error"].clone();
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    error
}

/// A `promptos` child process, killed when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn promptos_process(database_url: &str, args: &[&str]) -> Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_promptos"))
        .args(args)
        .env("PROMPTOS_DATABASE_URL", database_url)
        .env("PROMPTOS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start promptos");
    Child(child)
}

/// `promptos serve` as a process on `port`, with the tests' first-admin password and
/// signing secret (so a token from one process is good at another), and `extra` flags.
pub fn serve_process(database_url: &str, port: u16, extra: &[&str]) -> Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_promptos"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("PROMPTOS_DATABASE_URL", database_url)
        .env("PROMPTOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("PROMPTOS_JWT_SECRET", JWT_SECRET)
        .env("PROMPTOS_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start promptos serve");
    Child(child)
}

/// `promptos serve` as a process on the scratch database with `extra` flags, as a
/// [`TestApp`] logged in as the admin once it answers.
pub async fn serve_app(scratch: &Scratch, extra: &[&str]) -> (Child, TestApp) {
    use std::time::{Duration, Instant};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = serve_process(&scratch.url, port, extra);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
        assert!(Instant::now() < deadline, "{base} did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let db = Db::connect_and_migrate(&scratch.url).await.unwrap();
    let mut app = TestApp { base, http, db, scratch: scratch.beside(), token: String::new() };
    app.token = app.login("admin", ADMIN_PASSWORD).await;
    (child, app)
}
