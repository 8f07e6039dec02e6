//! The SDK against a real server process and a real nats-server.

mod common;

use common::*;
use minijinja::context;
use promptos_sdk::{Change, Error, Prompts};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const HOURS: Duration = Duration::from_secs(10 * 3600);
const PUSH_DEADLINE: Duration = Duration::from_secs(10);

async fn current(prompts: &Prompts, name: &str) -> String {
    prompts.get(name, "production", context! { who => "Alex" }).await.unwrap_or_else(|e| format!("error: {e}"))
}

async fn deploy_reaches_a_running_sdk(prompts: Prompts, server: &Server) {
    assert_eq!(current(&prompts, "greeting").await, "Hello Alex v1");
    server.deploy("greeting", "production", "v2").await;
    // The TTL is hours: only the push can make this true.
    eventually(PUSH_DEADLINE, "the deploy to reach the SDK", || async {
        current(&prompts, "greeting").await == "Hello Alex v2"
    })
    .await;
    server
        .post("/deployments/rollback", serde_json::json!({"prompt_name": "greeting", "environment": "production"}))
        .await;
    eventually(PUSH_DEADLINE, "the rollback to reach the SDK", || async {
        current(&prompts, "greeting").await == "Hello Alex v1"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_reaches_a_running_sdk_over_nats_without_a_ttl_wait() {
    let nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("greeting", "Hello {{ who }}", 2, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(key).nats_url(nats.url()).ttl(HOURS).build().await.unwrap();
    deploy_reaches_a_running_sdk(prompts, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_reaches_a_running_sdk_over_sse_without_a_ttl_wait() {
    let server = Server::start(None).await;
    server.prompt("greeting", "Hello {{ who }}", 2, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(key).ttl(HOURS).build().await.unwrap();
    deploy_reaches_a_running_sdk(prompts, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_converges_after_nats_is_restarted() {
    let mut nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("greeting", "Hello {{ who }}", 3, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(key).nats_url(nats.url()).ttl(HOURS).build().await.unwrap();
    assert_eq!(current(&prompts, "greeting").await, "Hello Alex v1");
    nats.stop();
    // Writes go on while NATS is down; the message for v2 cannot be delivered now.
    server.deploy("greeting", "production", "v2").await;
    nats.resume();
    eventually(Duration::from_secs(30), "the SDK to converge after NATS came back", || async {
        current(&prompts, "greeting").await == "Hello Alex v2"
    })
    .await;
    // And the feed works again afterwards.
    server.deploy("greeting", "production", "v3").await;
    eventually(PUSH_DEADLINE, "a deploy after the restart to arrive", || async {
        current(&prompts, "greeting").await == "Hello Alex v3"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_down_the_sdk_serves_the_last_known_text_and_a_snapshot_lets_a_new_one_start() {
    let mut server = Server::start(None).await;
    server.prompt("greeting", "Hello {{ who }}", 1, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let dir = promptos_testkit::temp_dir();
    let snapshot = dir.path().join("prompts.json");
    let prompts =
        Prompts::connect(&server.base).api_key(&key).ttl(HOURS).snapshot_file(&snapshot).build().await.unwrap();
    assert_eq!(current(&prompts, "greeting").await, "Hello Alex v1");
    assert!(!prompts.is_stale());
    eventually(PUSH_DEADLINE, "the snapshot to be written", || async {
        std::fs::read_to_string(&snapshot).is_ok_and(|s| s.contains("Hello {{ who }} v1"))
    })
    .await;

    server.stop();
    eventually(PUSH_DEADLINE, "the SDK to notice the server is gone", || async { prompts.is_stale() }).await;
    assert_eq!(current(&prompts, "greeting").await, "Hello Alex v1", "the last known text is served");

    // A new process starts while the server is still down.
    let fresh = Prompts::connect(&server.base).api_key(&key).snapshot_file(&snapshot).build().await.unwrap();
    assert_eq!(current(&fresh, "greeting").await, "Hello Alex v1");
    assert!(fresh.is_stale());
    let err = fresh.get("never-seen", "production", context! {}).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");

    server.resume().await;
    eventually(PUSH_DEADLINE, "the SDK to be current again", || async {
        current(&fresh, "greeting").await == "Hello Alex v1" && !fresh.is_stale()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staleness_is_told_per_prompt_until_the_server_confirms_it() {
    let mut server = Server::start(None).await;
    server.prompt("greeting", "Hello {{ who }}", 1, &["production"]).await;
    server.prompt("farewell", "Bye {{ who }}", 1, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let dir = promptos_testkit::temp_dir();
    let snapshot = dir.path().join("prompts.json");
    let first = Prompts::connect(&server.base).api_key(&key).ttl(HOURS).snapshot_file(&snapshot).build().await.unwrap();
    assert_eq!(current(&first, "greeting").await, "Hello Alex v1");
    assert_eq!(current(&first, "farewell").await, "Bye Alex v1");
    assert!(!first.is_prompt_stale("greeting", "production"));
    eventually(PUSH_DEADLINE, "the snapshot to hold both prompts", || async {
        std::fs::read_to_string(&snapshot).is_ok_and(|s| s.contains("Hello {{ who }}") && s.contains("Bye {{ who }}"))
    })
    .await;

    // A second process starts from the snapshot while the server is up: what it loaded
    // is stale until the server confirms it, one prompt at a time. (Without a change
    // feed: a feed that connects revalidates everything cached at once.)
    let second = Prompts::connect(&server.base)
        .api_key(&key)
        .ttl(HOURS)
        .snapshot_file(&snapshot)
        .without_change_feed()
        .build()
        .await
        .unwrap();
    assert!(!second.is_stale());
    assert!(second.is_prompt_stale("greeting", "production"));
    assert!(second.is_prompt_stale("farewell", "production"));
    assert_eq!(current(&second, "greeting").await, "Hello Alex v1");
    assert!(!second.is_prompt_stale("greeting", "production"), "confirmed by the server");
    assert!(second.is_prompt_stale("farewell", "production"), "not asked for yet");

    server.stop();
    assert_eq!(current(&second, "farewell").await, "Bye Alex v1", "the last known text is served");
    assert!(second.is_stale(), "the server could not be reached");
    assert!(second.is_prompt_stale("greeting", "production"), "nothing can be confirmed now");
    assert!(second.is_prompt_stale("farewell", "production"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_costs_one_timeout_not_one_per_call() {
    let server = Server::start(None).await;
    server.prompt("greeting", "Hello {{ who }}", 1, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let dir = promptos_testkit::temp_dir();
    let snapshot = dir.path().join("prompts.json");
    let first = Prompts::connect(&server.base).api_key(&key).snapshot_file(&snapshot).build().await.unwrap();
    assert_eq!(current(&first, "greeting").await, "Hello Alex v1");
    eventually(PUSH_DEADLINE, "the snapshot to be written", || async {
        std::fs::read_to_string(&snapshot).is_ok_and(|s| s.contains("Hello {{ who }} v1"))
    })
    .await;

    // Accepts connections, never answers: each request waits for the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let timeout = Duration::from_secs(2);
    let client = Prompts::connect(format!("http://{}", silent.local_addr().unwrap()))
        .api_key(&key)
        .snapshot_file(&snapshot)
        .request_timeout(timeout)
        .without_change_feed()
        .build()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(current(&client, "greeting").await, "Hello Alex v1", "the snapshot's text after one attempt");
    assert!(started.elapsed() >= timeout, "the first call did try the server");
    assert!(client.is_prompt_stale("greeting", "production"));
    let started = std::time::Instant::now();
    for _ in 0..10 {
        assert_eq!(current(&client, "greeting").await, "Hello Alex v1");
    }
    assert!(
        started.elapsed() < timeout / 2,
        "later calls serve the last known text without waiting: {:?}",
        started.elapsed()
    );
}

/// Several processes may share one snapshot path: each writes through a temporary file
/// of its own, so another writer's (or a crashed one's) leftover never blocks or
/// corrupts this one's snapshot, and a reader always finds a whole file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_sharing_a_snapshot_path_never_leave_a_file_that_cannot_be_read() {
    let server = Server::start(None).await;
    let key = server.api_key(&["production"]).await;
    for i in 0..40 {
        server.prompt(&format!("p{i}"), &format!("{} {{{{ who }}}}", "words ".repeat(500)), 1, &["production"]).await;
    }
    let dir = promptos_testkit::temp_dir();
    let snapshot = dir.path().join("prompts.json");
    // What another writer left at the temporary name a shared scheme would use.
    std::fs::create_dir(dir.path().join("prompts.tmp")).unwrap();
    std::fs::create_dir(dir.path().join("prompts.json.tmp")).unwrap();
    let mut writers = Vec::new();
    for _ in 0..2 {
        let p = Prompts::connect(&server.base).api_key(&key).ttl(HOURS).snapshot_file(&snapshot).build().await.unwrap();
        writers.push(p);
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (snapshot, stop) = (snapshot.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(bytes) = std::fs::read(&snapshot) {
                    serde_json::from_slice::<serde_json::Value>(&bytes).expect("a whole snapshot file");
                    reads += 1;
                }
            }
            reads
        })
    };
    // Each round changes what both cache, so both write their snapshot again.
    for _ in 0..15 {
        for p in &writers {
            p.prefetch("production").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    eventually(PUSH_DEADLINE, "the snapshot to hold every prompt", || async {
        std::fs::read_to_string(&snapshot).is_ok_and(|s| s.matches("\"prompt_name\"").count() == 40)
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0, "the reader read the snapshot");
    let leftovers: Vec<_> = std::fs::read_dir(&dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") && !n.starts_with("prompts."))
        .collect();
    assert!(leftovers.is_empty() || leftovers.len() <= 2, "temporary files pile up: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_or_repeated_change_messages_never_bring_back_an_older_version() {
    let nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("greeting", "Hello {{ who }}", 2, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(key).nats_url(nats.url()).ttl(HOURS).build().await.unwrap();
    let seen: Arc<Mutex<Vec<Change>>> = Arc::default();
    let log = seen.clone();
    prompts.on_change(move |c| log.lock().unwrap().push(c.clone()));
    assert_eq!(current(&prompts, "greeting").await, "Hello Alex v1");
    let v2 = server.deploy("greeting", "production", "v2").await;
    let v2_position = v2["position"].as_i64().unwrap();
    eventually(PUSH_DEADLINE, "v2", || async { current(&prompts, "greeting").await == "Hello Alex v2" }).await;

    // Replay the old deployment's message and repeat the new one, out of order.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let old = Change {
        position: v2_position - 1,
        event_id: "old".into(),
        event_type: "VersionDeployed".into(),
        prompt: "greeting".into(),
        environment: "production".into(),
        version_string: Some("v1".into()),
        at: "2020-01-01T00:00:00.000000Z".into(),
    };
    let repeat =
        Change { position: v2_position, version_string: Some("v2".into()), event_id: "again".into(), ..old.clone() };
    for c in [&repeat, &old, &repeat] {
        client.publish("promptos.changes.production.greeting", serde_json::to_vec(c).unwrap().into()).await.unwrap();
    }
    client.flush().await.unwrap();
    eventually(PUSH_DEADLINE, "the SDK to receive the replayed messages", || async {
        seen.lock().unwrap().iter().filter(|c| c.event_id == "again" || c.event_id == "old").count() == 3
    })
    .await;
    assert_eq!(current(&prompts, "greeting").await, "Hello Alex v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_variables_are_named_prefetch_warms_and_keys_are_scoped() {
    let server = Server::start(None).await;
    server.prompt("greeting", "Hello {{ who }}", 1, &["production", "staging"]).await;
    server.prompt("farewell", "Bye {{ who }}", 1, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(&key).ttl(HOURS).build().await.unwrap();
    assert_eq!(prompts.prefetch("production").await.unwrap(), 2);
    let err = prompts.get("greeting", "production", context! {}).await.unwrap_err();
    assert_eq!(err, Error::MissingVariable { prompt: "greeting".into(), name: "who".into() });
    let t = prompts.get_template("farewell", "production").await.unwrap();
    assert_eq!((t.version_string.as_str(), t.prompt_text.as_deref()), ("v1", Some("Bye {{ who }} v1")));
    let err = prompts.get("greeting", "staging", context! { who => "x" }).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");
    let err = prompts.get("nope", "production", context! {}).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let lenient = Prompts::connect(&server.base).api_key(&key).lenient().build().await.unwrap();
    assert_eq!(lenient.get("greeting", "production", context! {}).await.unwrap(), "Hello  v1");
}

#[test]
fn the_blocking_client_works_without_a_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, key) = rt.block_on(async {
        let server = Server::start(None).await;
        server.prompt("greeting", "Hello {{ who }}", 1, &["production"]).await;
        let key = server.api_key(&["production"]).await;
        (server, key)
    });
    let prompts = promptos_sdk::blocking::Prompts::build(Prompts::connect(&server.base).api_key(key)).unwrap();
    assert_eq!(prompts.get("greeting", "production", context! { who => "Alex" }).unwrap(), "Hello Alex v1");
    drop(prompts);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_could_not_be_published_while_nats_was_down_is_published_when_it_is_back() {
    let mut nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("greeting", "Hello {{ who }}", 2, &["production"]).await;
    // The server's own SQLite file, read as any SQLite client would.
    let db = sqlx::SqlitePool::connect(&server.scratch.url).await.unwrap();
    let checkpoint = |name: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT position FROM projector_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    eventually(PUSH_DEADLINE, "the feed to catch up", || async {
        checkpoint("change_feed").await == checkpoint("read_models").await
    })
    .await;
    nats.stop();
    let deployed = server.deploy("greeting", "production", "v2").await;
    let position = deployed["position"].as_i64().unwrap();
    assert!(checkpoint("read_models").await >= position, "writes go on while NATS is down");
    // Give the publisher time to try (and fail) before NATS returns.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(checkpoint("change_feed").await < position, "nothing is marked published while NATS is down");
    nats.resume();
    eventually(Duration::from_secs(30), "the backlog to be published", || async {
        checkpoint("change_feed").await >= position
    })
    .await;
}
