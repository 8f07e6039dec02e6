use crate::helpers::*;
use promptos_testkit::both_backends;
use reqwest::StatusCode;

both_backends!(fifty_concurrent_deploys_to_one_prompt_lose_nothing, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("busy").await;
    for i in 0..50 {
        app.create_version("busy", &format!("v{i}"), &format!("text {i}")).await;
    }
    let before = app.event_count().await;
    let deploys = (0..50).map(|i| {
        let app = &app;
        async move { app.deploy("busy", "production", &format!("v{i}")).await.status() }
    });
    let statuses = futures::future::join_all(deploys).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    assert_eq!(app.event_count().await, before + 50, "every deploy is one event");

    let events = promptos_store::EventLog::read_stream(&app.db, "prompt:busy", 0).await.unwrap();
    let versions: Vec<i64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=events.len() as i64).collect::<Vec<_>>(), "stream versions are contiguous");
    // Each deploy names the version it replaced: the chain of replacements is unbroken.
    let deploys: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "VersionDeployed")
        .map(|e| {
            let p: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
            (p["version_string"].as_str().unwrap().to_owned(), p["previous_version_string"].as_str().map(str::to_owned))
        })
        .collect();
    assert_eq!(deploys.len(), 50);
    for pair in deploys.windows(2) {
        assert_eq!(pair[1].1.as_deref(), Some(pair[0].0.as_str()));
    }
    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
});

both_backends!(concurrent_creates_of_one_name_yield_exactly_one_prompt, |backend| async move {
    let app = spawn_app(backend).await;
    let before = app.event_count().await;
    let attempts = (0..20).map(|_| {
        let app = &app;
        async move { app.post("/prompts/", serde_json::json!({"name": "unique"})).await.status() }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 19, "{statuses:?}");
    assert_eq!(app.event_count().await, before + 1);
});
