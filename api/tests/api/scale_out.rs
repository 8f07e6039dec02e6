//! The scale-out layout: API servers without a projector, and projector processes apart.

use crate::helpers::*;
use promptos_projector::both_backends;
use promptos_projector::testing::scratch;
use reqwest::StatusCode;

both_backends!(an_api_server_reads_its_writes_through_a_projector_in_another_process, |backend| async move {
    let scratch = scratch(backend).await;
    // Two projectors: on PostgreSQL one stands by; on SQLite they take turns safely.
    promptos_projector::Db::connect_and_migrate(&scratch.url).await.unwrap();
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
