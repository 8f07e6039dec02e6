//! Audit across prompts: what was live everywhere at a moment, what changed between
//! two moments, and the event log's filters.

use crate::helpers::*;
use promptos_testkit::{both_backends, scratch};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn enc(t: &str) -> String {
    t.replace('+', "%2B")
}

/// `count` prompts written straight to the log, each with v1 and v2 and v1 live in
/// production (half of them after a first deploy of v2, so their history has a
/// rollback to v1).
async fn many_prompts(url: &str, count: usize) {
    use promptos_core::events::*;
    use promptos_core::names::*;
    use promptos_store::{AppendRequest, Db, Metadata, Writer};
    let writer = Writer::start(Db::connect_and_migrate(url).await.unwrap());
    let production = EnvironmentName::parse("production").unwrap();
    for p in 0..count {
        let name = PromptName::parse(&format!("p-{p:04}")).unwrap();
        let prompt_id = uuid::Uuid::new_v4();
        let version = |v: &str| VersionString::parse(v).unwrap();
        let deploy = |v: &str, previous: Option<&str>| {
            Event::VersionDeployed(VersionDeployed {
                prompt_id,
                name: name.clone(),
                environment: production.clone(),
                version_string: version(v),
                previous_version_string: previous.map(version),
                gate: None,
            })
        };
        let mut events = vec![Event::PromptCreated(PromptCreated {
            prompt_id,
            name: name.clone(),
            description: Description::parse("time travel").unwrap(),
        })];
        for v in ["v1", "v2"] {
            let text = format!("{v} of {name}");
            events.push(Event::VersionCreated(VersionCreated::plain_text(
                prompt_id,
                name.clone(),
                version(v),
                text,
                vec![],
            )));
        }
        if p % 2 == 0 {
            events.extend([deploy("v2", None), deploy("v1", Some("v2"))]);
        } else {
            events.push(deploy("v1", None));
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

async fn split(app: &TestApp, name: &str, weights: [u8; 2]) {
    let variants =
        json!([{"version_string": "v1", "weight": weights[0]}, {"version_string": "v2", "weight": weights[1]}]);
    let body = json!({"prompt_name": name, "environment": "production", "variants": variants});
    let r = app.post("/deployments/split", body).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn delete(app: &TestApp, name: &str) {
    let r = app.send(Method::DELETE, &format!("/prompts/{name}"), Some(&app.token), None).await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

both_backends!(what_was_live_across_a_thousand_prompts_equals_each_prompts_own_time_travel, |backend| async move {
    let scratch = scratch(backend).await;
    many_prompts(&scratch.url, 1000).await;
    let moment = now();
    let app = spawn_app_on(scratch, |_| {}).await;
    // After the moment: redeploys, experiments, deletions, a name created again, new prompts.
    for p in (0..1000).step_by(25) {
        expect_status(app.deploy(&format!("p-{p:04}"), "production", "v2").await, StatusCode::OK).await;
    }
    for p in (1..1000).step_by(50) {
        split(&app, &format!("p-{p:04}"), [70, 30]).await;
    }
    for p in (3..1000).step_by(100) {
        delete(&app, &format!("p-{p:04}")).await;
    }
    app.create_prompt("p-0003").await;
    app.create_version("p-0003", "v9", "born again").await;
    expect_status(app.deploy("p-0003", "production", "v9").await, StatusCode::OK).await;
    app.create_prompt("late").await;
    app.create_version("late", "v1", "late").await;
    expect_status(app.deploy("late", "production", "v1").await, StatusCode::OK).await;

    for at in [moment.clone(), now()] {
        let all = expect_status(
            app.get(&format!("/deployed/?environment=production&as_of={}", enc(&at))).await,
            StatusCode::OK,
        )
        .await;
        let items = all["items"].as_array().unwrap();
        let expected = if at == moment { 1000 } else { 1000 - 10 + 2 };
        assert_eq!(items.len(), expected, "prompts live at {at}");
        for item in items {
            let name = item["prompt_name"].as_str().unwrap();
            let one = app.get(&format!("/prompts/{name}/deployed/?environment=production&as_of={}", enc(&at))).await;
            assert_eq!(&expect_status(one, StatusCode::OK).await, item, "{name} at {at}");
        }
        if at == moment {
            assert!(items.iter().all(|i| i["version_string"] == "v1" && i["experiment"].is_null()));
            // A prompt deleted since answers as it was.
            let p3 = items.iter().find(|i| i["prompt_name"] == "p-0003").unwrap();
            assert_eq!(p3["prompt_text"], "v1 of p-0003");
        }
    }
    // The same prompts, named by their single-prompt time travel at the moment: nothing
    // live then is missing from the list.
    let gone = app.get(&format!("/prompts/late/deployed/?environment=production&as_of={}", enc(&moment))).await;
    expect_status(gone, StatusCode::NOT_FOUND).await;
});

both_backends!(a_diff_between_two_moments_names_each_change_and_the_events_behind_it, |backend| async move {
    let app = spawn_app(backend).await;
    for name in ["answer", "ask", "bye", "same"] {
        app.create_prompt(name).await;
        app.create_version(name, "v1", &format!("{name} one")).await;
        app.create_version(name, "v2", &format!("{name} two")).await;
        expect_status(app.deploy(name, "production", "v1").await, StatusCode::OK).await;
    }
    let from = now();
    expect_status(app.deploy("answer", "production", "v2").await, StatusCode::OK).await;
    split(&app, "ask", [50, 50]).await;
    delete(&app, "bye").await;
    app.create_prompt("hello").await;
    app.create_version("hello", "v1", "hello").await;
    expect_status(app.deploy("hello", "production", "v1").await, StatusCode::OK).await;

    let diff = expect_status(
        app.get(&format!("/audit/diff?environment=production&from={}", enc(&from))).await,
        StatusCode::OK,
    )
    .await;
    let changes: Vec<(&str, &str)> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["prompt_name"].as_str().unwrap(), c["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [("answer", "version_changed"), ("ask", "split_changed"), ("bye", "removed"), ("hello", "added")],
        "{diff}"
    );
    let types = |i: usize| -> Vec<String> {
        diff["changes"][i]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(types(0), ["VersionDeployed"], "{diff}");
    assert_eq!(types(1), ["ExperimentStarted"], "{diff}");
    assert!(types(2).contains(&"PromptDeleted".to_owned()), "{diff}");
    assert_eq!(types(3), ["VersionDeployed"], "{diff}");
    assert_eq!(diff["changes"][0]["before"]["version_string"], "v1");
    assert_eq!(diff["changes"][0]["after"]["version_string"], "v2");
    assert!(diff["changes"][2]["after"].is_null() && diff["changes"][3]["before"].is_null());

    // From a moment to the same moment: nothing changed. A bad moment is a clear 400.
    let none = app.get(&format!("/audit/diff?environment=production&from={0}&to={0}", enc(&from))).await;
    assert_eq!(expect_status(none, StatusCode::OK).await["changes"], json!([]));
    let bad = app.get("/audit/diff?environment=production&from=yesterday").await;
    let error = expect_status(bad, StatusCode::BAD_REQUEST).await;
    assert_eq!(error["error"]["field"], "from", "{error}");
});

both_backends!(
    the_event_log_filters_by_several_types_actor_and_time_and_the_export_takes_the_same,
    |backend| async move {
        let app = spawn_app(backend).await;
        let editor = app.user_token("eddie", "editor").await;
        app.create_prompt("a").await;
        app.create_version("a", "v1", "one").await;
        let start = now();
        let by_editor = |path: &str, body: Value| app.http.post(app.url(path)).bearer_auth(&editor).json(&body).send();
        by_editor("/prompts/a/versions/", json!({"version_string": "v2", "text": "two"})).await.unwrap();
        expect_status(app.deploy("a", "staging", "v1").await, StatusCode::OK).await;
        let r =
            by_editor("/deployments/", json!({"prompt_name": "a", "environment": "staging", "version_string": "v2"}))
                .await
                .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());

        let page = expect_status(
            app.get(&format!("/events?type=VersionCreated,VersionDeployed&actor=user:eddie&from={}", enc(&start)))
                .await,
            StatusCode::OK,
        )
        .await;
        let found: Vec<(&str, &str)> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["type"].as_str().unwrap(), e["actor"].as_str().unwrap()))
            .collect();
        assert_eq!(found, [("VersionCreated", "user:eddie"), ("VersionDeployed", "user:eddie")], "{page}");

        let export = app
            .http
            .get(app.url(&format!(
                "/events/export?type=VersionCreated,VersionDeployed&actor=user:eddie&from={}",
                enc(&start)
            )))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        assert_eq!(export.status(), StatusCode::OK);
        let lines: Vec<Value> =
            export.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let positions: Vec<&Value> = lines.iter().map(|l| &l["position"]).collect();
        let expected: Vec<&Value> = page["items"].as_array().unwrap().iter().map(|e| &e["position"]).collect();
        assert_eq!(positions, expected);
        // Unfiltered it is still the whole log (a backup).
        let all = app.http.get(app.url("/events/export")).bearer_auth(&app.token).send().await.unwrap();
        assert_eq!(all.text().await.unwrap().lines().count() as i64, app.event_count().await);
    }
);
