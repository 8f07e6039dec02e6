//! Test cases, evaluation runs and the deploy gate, against a local fake of an
//! OpenAI-compatible provider that answers by what it is asked.

use crate::fake_llm::*;
use crate::helpers::*;
use promptos_api::config::{Secret, ServeArgs};
use promptos_core::names::EnvironmentName;
use promptos_store::Backend;
use promptos_testkit::both_backends;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The answer the fake gives to a rendered prompt: what follows `ANSWER:` in it, so each
/// test case chooses its own answer through its variables. A judge's request (it holds
/// `RUBRIC:`) passes when the rubric says `lenient` and fails otherwise.
fn by_content(r: &Received) -> Reply {
    let asked: String = r.body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if asked.contains("RUBRIC:") {
        let verdict = if asked.contains("lenient") { "pass" } else { "fail" };
        let reply = json!({"verdict": verdict, "reasoning": format!("the judge says {verdict}")}).to_string();
        return openai_reply(&reply);
    }
    if asked.contains("SLOW") {
        return Reply::slow(Duration::from_secs(5));
    }
    let answer = asked.split_once("ANSWER:").map_or("no answer scripted", |(_, a)| a.trim());
    openai_reply(answer)
}

fn provider(fake: &FakeLlm) -> impl FnOnce(&mut ServeArgs) + '_ {
    move |args| {
        args.llm.llm_compatible_base_url = Some(fake.url.clone());
        args.llm.llm_compatible_model = Some("local-model".into());
        args.llm.llm_compatible_api_key = Some(Secret::new("sk-local"));
        args.llm.llm_timeout_secs = 1;
        args.llm.llm_max_retries = 0;
        args.evaluations.gated_environments = vec![EnvironmentName::parse("production").unwrap()];
    }
}

async fn app(backend: Backend, fake: &FakeLlm) -> TestApp {
    fake.respond(by_content);
    let app = spawn_app_with(backend, provider(fake)).await;
    app.create_prompt("bot").await;
    app.create_version("bot", "v1", "Reply to {{ customer }}. ANSWER: {{ answer }}").await;
    app.create_version("bot", "v2", "Answer {{ customer }} briefly. ANSWER: {{ answer }}").await;
    app
}

async fn add_case(app: &TestApp, name: &str, answer: &str, expectations: Value) -> Value {
    let body = json!({"name": name, "variables": {"customer": "Ada", "answer": answer}, "expectations": expectations});
    expect_status(app.post("/prompts/bot/test-cases/", body).await, StatusCode::CREATED).await
}

/// Starts an evaluation of `version` and waits for it to complete.
async fn evaluate(app: &TestApp, version: &str) -> Value {
    let r = app.post(&format!("/prompts/bot/versions/{version}/evaluations"), json!({})).await;
    let started = expect_status(r, StatusCode::ACCEPTED).await;
    assert_eq!(started["status"], "running");
    let id = started["evaluation_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = expect_status(app.get(&format!("/evaluations/{id}")).await, StatusCode::OK).await;
        if run["status"] == "completed" {
            return run;
        }
        assert!(Instant::now() < deadline, "the evaluation did not complete: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn outcome<'a>(run: &'a Value, case: &str) -> &'a Value {
    run["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["case_name"] == case)
        .unwrap_or_else(|| panic!("{case} in {run}"))
}

both_backends!(
    every_expectation_kind_passes_and_fails_with_a_reason_and_the_judge_keeps_its_reasoning,
    |backend| async move {
        let fake = FakeLlm::start().await;
        let app = app(backend, &fake).await;
        let cases = [
            (
                "contains passes",
                "Your REFUND is on its way",
                json!([{"kind": "contains", "value": "refund", "case_insensitive": true}]),
            ),
            ("contains fails", "We will call you", json!([{"kind": "contains", "value": "refund"}])),
            (
                "not_contains fails",
                "Sorry about that",
                json!([{"kind": "not_contains", "value": "sorry", "case_insensitive": true}]),
            ),
            ("regex passes", "Order #12345 shipped", json!([{"kind": "regex", "pattern": "#\\d{5}"}])),
            ("max_chars fails", "far too long an answer", json!([{"kind": "max_chars", "max": 5}])),
            ("is_json passes", "{\"ok\": true}", json!([{"kind": "is_json"}])),
            (
                "json_schema fails",
                "{\"sentiment\": \"meh\"}",
                json!([{"kind": "json_schema", "schema": {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]}}}}]),
            ),
            ("equals passes", "Yes", json!([{"kind": "equals", "value": "yes", "case_insensitive": true}])),
            ("judge passes", "Hello Ada", json!([{"kind": "judge", "rubric": "be lenient: greets the customer"}])),
            ("judge fails", "Hello Ada", json!([{"kind": "judge", "rubric": "answers in French"}])),
        ];
        for (name, answer, expectations) in &cases {
            add_case(&app, name, answer, expectations.clone()).await;
        }
        let run = evaluate(&app, "v1").await;
        assert_eq!((run["passed"].as_i64(), run["total"].as_i64()), (Some(5), Some(10)), "{run}");
        for (name, ..) in &cases {
            let o = outcome(&run, name);
            assert_eq!(o["passed"].as_bool(), Some(name.ends_with("passes")), "{o}");
            assert!(!o["checks"][0]["reason"].as_str().unwrap().is_empty(), "{o}");
        }
        assert_eq!(outcome(&run, "max_chars fails")["checks"][0]["reason"], "22 characters (at most 5)");
        assert!(outcome(&run, "json_schema fails")["checks"][0]["reason"].as_str().unwrap().contains("/sentiment"));
        assert_eq!(outcome(&run, "judge passes")["checks"][0]["reason"], "the judge says pass");
        assert_eq!(outcome(&run, "judge fails")["checks"][0]["reason"], "the judge says fail");
        assert_eq!(outcome(&run, "regex passes")["answer_excerpt"], "Order #12345 shipped");
        assert!(run["input_tokens"].as_i64().unwrap() > 0, "usage is counted: {run}");
        assert_eq!((run["provider"].as_str(), run["model"].as_str()), (Some("compatible"), Some("local-model")));
        assert_eq!(run["version_hash"].as_str().unwrap().len(), 64);

        // The run is in the log: started and completed, with every case's outcome.
        let log =
            expect_status(app.get("/events?type=EvaluationStarted,EvaluationCompleted").await, StatusCode::OK).await;
        let types: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["EvaluationStarted", "EvaluationCompleted"]);
        let completed = &log["items"][1]["payload"];
        assert_eq!(completed["outcomes"].as_array().unwrap().len(), 10);
        assert_eq!(completed["version_hash"], run["version_hash"]);
    }
);

both_backends!(
    a_gated_production_deploy_needs_a_fresh_passing_evaluation_of_that_exact_version,
    |backend| async move {
        let fake = FakeLlm::start().await;
        let app = app(backend, &fake).await;
        let envs = expect_status(app.get("/environments").await, StatusCode::OK).await;
        let production = envs["items"].as_array().unwrap().iter().find(|e| e["name"] == "production").unwrap().clone();
        assert_eq!(production["gate_pass_rate"], 100);

        // No evaluation at all.
        add_case(&app, "greets", "Hello Ada", json!([{"kind": "contains", "value": "Ada"}])).await;
        let failing =
            add_case(&app, "short", "Hello Ada, how are you today?", json!([{"kind": "max_chars", "max": 10}])).await;
        let e =
            expect_error(app.deploy("bot", "production", "v2").await, StatusCode::CONFLICT, "evaluation_gate_closed")
                .await;
        assert!(e["message"].as_str().unwrap().contains("v2 has not been evaluated"), "{e}");
        assert_eq!(e["cases"], json!(["greets", "short"]));
        // A failing evaluation: the failing case is named.
        let run = evaluate(&app, "v2").await;
        assert_eq!(run["passed"], 1);
        let e =
            expect_error(app.deploy("bot", "production", "v2").await, StatusCode::CONFLICT, "evaluation_gate_closed")
                .await;
        assert_eq!(e["cases"], json!(["short"]), "{e}");
        // Fix the case; a passing run of another version does not count for v2.
        let id = failing["case_id"].as_str().unwrap();
        let fixed = json!({"name": "short", "variables": {"customer": "Ada", "answer": "Hi Ada"}, "expectations": [{"kind": "max_chars", "max": 10}]});
        let r = app
            .http
            .put(app.url(&format!("/prompts/bot/test-cases/{id}")))
            .bearer_auth(&app.token)
            .json(&fixed)
            .send()
            .await
            .unwrap();
        expect_status(r, StatusCode::OK).await;
        assert_eq!(evaluate(&app, "v1").await["passed"], 2);
        expect_error(app.deploy("bot", "production", "v2").await, StatusCode::CONFLICT, "evaluation_gate_closed").await;
        // A passing run of v2, then a test case changes: it no longer counts.
        let passed = evaluate(&app, "v2").await;
        assert_eq!((passed["passed"].as_i64(), passed["current"].as_bool()), (Some(2), Some(true)));
        let extra = add_case(&app, "polite", "Hello Ada", json!([{"kind": "contains", "value": "Hello"}])).await;
        let e =
            expect_error(app.deploy("bot", "production", "v2").await, StatusCode::CONFLICT, "evaluation_gate_closed")
                .await;
        assert!(e["message"].as_str().unwrap().contains("before the test cases last changed"), "{e}");
        let old = expect_status(
            app.get(&format!("/evaluations/{}", passed["evaluation_id"].as_str().unwrap())).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(old["current"], false);
        // A fresh passing run opens the gate, and the deploy records which run allowed it.
        let fresh = evaluate(&app, "v2").await;
        assert_eq!(fresh["passed"], 3);
        let gate = expect_status(app.get("/prompts/bot/gate").await, StatusCode::OK).await;
        assert_eq!(gate["versions"][0]["version_string"], "v2");
        assert_eq!(
            (gate["versions"][0]["open"].as_bool(), gate["versions"][0]["reason"].as_str()),
            (Some(true), Some("evaluation passed 3/3"))
        );
        expect_status(app.deploy("bot", "production", "v2").await, StatusCode::OK).await;
        let log = expect_status(app.get("/events?type=VersionDeployed").await, StatusCode::OK).await;
        let deployed = &log["items"].as_array().unwrap().last().unwrap()["payload"];
        assert_eq!(
            deployed["gate"],
            json!({"by": "evaluation", "evaluation_id": fresh["evaluation_id"], "passed": 3, "total": 3})
        );

        // An editor may not override; an admin may, and the reason is recorded.
        let editor = app.user_token("eve", "editor").await;
        let body = json!({"prompt_name": "bot", "environment": "production", "version_string": "v1", "gate_override": "incident 42"});
        let r = app.http.post(app.url("/deployments/")).bearer_auth(&editor).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r = app
            .http
            .delete(app.url(&format!("/prompts/bot/test-cases/{}", extra["case_id"].as_str().unwrap())))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        expect_status(r, StatusCode::NO_CONTENT).await;
        expect_status(app.post("/deployments/", body).await, StatusCode::OK).await;
        let log = expect_status(app.get("/events?type=VersionDeployed").await, StatusCode::OK).await;
        let overridden = &log["items"].as_array().unwrap().last().unwrap()["payload"];
        assert_eq!(overridden["gate"], json!({"by": "override", "reason": "incident 42"}));
        // Ungated environments need nothing.
        expect_status(app.deploy("bot", "staging", "v1").await, StatusCode::OK).await;
    }
);

both_backends!(
    a_provider_timing_out_on_some_cases_fails_them_with_the_reason_and_the_run_completes,
    |backend| async move {
        let fake = FakeLlm::start().await;
        let app = app(backend, &fake).await;
        add_case(&app, "answers", "Hello Ada", json!([{"kind": "contains", "value": "Ada"}])).await;
        add_case(&app, "times out", "SLOW", json!([{"kind": "contains", "value": "Ada"}])).await;
        let run = evaluate(&app, "v1").await;
        assert_eq!((run["passed"].as_i64(), run["total"].as_i64()), (Some(1), Some(2)), "{run}");
        let slow = outcome(&run, "times out");
        assert!(slow["error"].as_str().unwrap().contains("did not answer within 1 s"), "{slow}");
        assert_eq!(outcome(&run, "answers")["passed"], true);
    }
);

both_backends!(test_cases_refuse_what_cannot_be_checked_and_render_checks_need_no_provider, |backend| async move {
    let fake = FakeLlm::start().await;
    let app = app(backend, &fake).await;
    let bad = json!({"name": "broken", "variables": {}, "expectations": [{"kind": "is_json"}, {"kind": "regex", "pattern": "(unclosed"}]});
    let e = expect_error(
        app.post("/prompts/bot/test-cases/", bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert!(e["message"].as_str().unwrap().starts_with("expectations[1]: the pattern does not compile"), "{e}");
    let unknown = json!({"name": "x", "expectations": [{"kind": "sounds_nice"}]});
    expect_status(app.post("/prompts/bot/test-cases/", unknown).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    add_case(&app, "greets", "Hi", json!([{"kind": "contains", "value": "Hi"}])).await;
    let again = json!({"name": "greets", "expectations": []});
    expect_error(app.post("/prompts/bot/test-cases/", again).await, StatusCode::CONFLICT, "test_case_exists").await;
    // A case without the `answer` variable does not render; the check says which and why.
    let r = app
        .post(
            "/prompts/bot/test-cases/",
            json!({"name": "missing var", "variables": {"customer": "Ada"}, "expectations": []}),
        )
        .await;
    expect_status(r, StatusCode::CREATED).await;
    let checks = expect_status(app.get("/prompts/bot/versions/v1/checks").await, StatusCode::OK).await;
    assert_eq!(checks["ok"], false);
    let missing = checks["items"].as_array().unwrap().iter().find(|i| i["case_name"] == "missing var").unwrap();
    assert!(missing["error"].as_str().unwrap().contains("a variable has no value"), "{missing}");
    assert!(fake.received().is_empty(), "render checks call no provider");
    let events = app.event_count().await;
    let r = app
        .post(
            "/playground/render",
            json!({"prompt_name": "bot", "version_string": "v2", "variables": {"customer": "Ada", "answer": "x"}}),
        )
        .await;
    let rendered = expect_status(r, StatusCode::OK).await;
    assert_eq!(rendered["text"], "Answer Ada briefly. ANSWER: x");
    assert_eq!(app.event_count().await, events, "the playground records nothing");
});

both_backends!(the_cost_guard_stops_a_run_that_spends_its_tokens_and_refuses_too_many_cases, |backend| async move {
    let fake = FakeLlm::start().await;
    fake.respond(by_content);
    let app = spawn_app_with(backend, |args| {
        provider(&fake)(args);
        args.evaluations.eval_max_tokens = 1;
        args.evaluations.eval_concurrency = 1;
        args.evaluations.eval_max_cases = 3;
    })
    .await;
    app.create_prompt("bot").await;
    app.create_version("bot", "v1", "Reply to {{ customer }}. ANSWER: {{ answer }}").await;
    for name in ["a", "b", "c"] {
        add_case(&app, name, "Hello Ada", json!([{"kind": "contains", "value": "Ada"}])).await;
    }
    let run = evaluate(&app, "v1").await;
    assert_eq!((run["passed"].as_i64(), run["total"].as_i64()), (Some(1), Some(3)), "{run}");
    assert!(run["stopped"].as_str().unwrap().contains("token budget"), "{run}");
    assert!(outcome(&run, "c")["error"].as_str().unwrap().starts_with("not run"), "{run}");
    add_case(&app, "d", "Hello", json!([])).await;
    let r = app.post("/prompts/bot/versions/v1/evaluations", json!({})).await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert!(e["message"].as_str().unwrap().contains("PROMPTOS_EVAL_MAX_CASES"), "{e}");
});

/// Reads server-sent events from `r` until `stop` says the last one came; each as
/// (event name, JSON data).
async fn read_events(r: reqwest::Response, stop: impl Fn(&str) -> bool) -> Vec<(String, Value)> {
    use futures::StreamExt;
    let mut body = r.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        while let Some(at) = buffer.find("\n\n") {
            let block: String = buffer.drain(..at + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event:")).map(|n| n.trim().to_owned());
            let data = block.lines().find_map(|l| l.strip_prefix("data:")).map(|d| d.trim().to_owned());
            if let (Some(name), Some(data)) = (name, data) {
                let last = stop(&name);
                out.push((name, serde_json::from_str(&data).unwrap()));
                if last {
                    return out;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("events arrive in time");
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("the stream stays open").unwrap()));
    }
}

both_backends!(a_run_streams_its_progress_and_two_runs_compare_case_by_case, |backend| async move {
    let fake = FakeLlm::start().await;
    let app = app(backend, &fake).await;
    add_case(&app, "greets", "Hello Ada", json!([{"kind": "contains", "value": "Hello"}])).await;
    let short = add_case(&app, "short", "Hello Ada, how are you?", json!([{"kind": "max_chars", "max": 12}])).await;
    let v1 = evaluate(&app, "v1").await;
    // Following a run: a `case` event per case, then `completed` (a finished run too).
    let r = app.get(&format!("/evaluations/{}/events", v1["evaluation_id"].as_str().unwrap())).await;
    let events = read_events(r, |name| name == "completed").await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["case", "case", "completed"]);
    assert_eq!(events[1].1["done"], 2);
    assert_eq!(events[2].1, json!({"type": "completed", "passed": 1, "total": 2, "stopped": null}));
    // A live run's stream, opened as soon as it starts, ends with its completion too.
    let id = short["case_id"].as_str().unwrap();
    let fixed = json!({"name": "short", "variables": {"customer": "Ada", "answer": "Hi Ada"}, "expectations": [{"kind": "max_chars", "max": 12}]});
    let r = app
        .http
        .put(app.url(&format!("/prompts/bot/test-cases/{id}")))
        .bearer_auth(&app.token)
        .json(&fixed)
        .send()
        .await
        .unwrap();
    expect_status(r, StatusCode::OK).await;
    let started =
        expect_status(app.post("/prompts/bot/versions/v2/evaluations", json!({})).await, StatusCode::ACCEPTED).await;
    let r = app.get(&format!("/evaluations/{}/events", started["evaluation_id"].as_str().unwrap())).await;
    let live = read_events(r, |name| name == "completed").await;
    assert_eq!(live.last().unwrap().1["passed"], 2, "{live:?}");
    let v2 = expect_status(
        app.get(&format!("/evaluations/{}", started["evaluation_id"].as_str().unwrap())).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(v2["status"], "completed");
    let cmp = format!(
        "/evaluations/compare?base={}&head={}",
        v1["evaluation_id"].as_str().unwrap(),
        started["evaluation_id"].as_str().unwrap()
    );
    let cmp = expect_status(app.get(&cmp).await, StatusCode::OK).await;
    let changes: Vec<(&str, &str)> = cmp["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["case_name"].as_str().unwrap(), c["change"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("greets", "passing"), ("short", "fixed")]);
    let listed = expect_status(app.get("/prompts/bot/evaluations/?version_string=v1").await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["current"], false, "the case changed since");
});

both_backends!(
    the_playground_streams_the_first_token_before_the_provider_finishes_and_limits_each_user,
    |backend| async move {
        let fake = FakeLlm::start().await;
        let gate = Gate::new();
        fake.reply([Reply::openai_stream(&["Hello ", "Ada, ", "your refund is on its way."], (20, 9))
            .held_after_first_piece(&gate)]);
        let app = spawn_app_with(backend, |args| {
            provider(&fake)(args);
            args.evaluations.playground_runs_per_minute = 2;
        })
        .await;
        app.create_prompt("bot").await;
        app.create_version("bot", "v1", "Answer {{ customer }} about refunds.").await;
        let events = app.event_count().await;
        let body = json!({"prompt_name": "bot", "version_string": "v1", "variables": {"customer": "Ada"},
        "expectations": [{"kind": "contains", "value": "refund"}]});
        let r = app.post("/playground/run", body.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        // The provider holds the rest of its answer until the first piece reached us.
        let first = read_events(r, |name| name == "delta").await;
        assert_eq!(first[0].0, "rendered");
        assert_eq!(first[0].1["text"], "Answer Ada about refunds.");
        assert_eq!(first[1], ("delta".to_owned(), json!({"text": "Hello "})));
        gate.release();
        fake.respond(|_| Reply::openai_stream(&["Hi", "!"], (5, 2)));
        let r = app.post("/playground/run", body.clone()).await;
        let all = read_events(r, |name| name == "done" || name == "error").await;
        let (name, done) = all.last().unwrap();
        assert_eq!(name, "done", "{all:?}");
        assert_eq!((done["text"].as_str(), done["input_tokens"].as_u64()), (Some("Hi!"), Some(5)));
        assert_eq!(done["checks"][0]["passed"], false);
        let sent = &fake.received()[0].body;
        assert_eq!((sent["stream"].as_bool(), sent["model"].as_str()), (Some(true), Some("local-model")));
        // The third run in a minute is refused, with when to try again.
        let r = app.post("/playground/run", body).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers().contains_key("retry-after"));
        assert_eq!(app.event_count().await, events, "playground runs are not audit events");
        // Viewers may render but not run.
        let viewer = app.user_token("vera", "viewer").await;
        let r = app
            .http
            .post(app.url("/playground/run"))
            .bearer_auth(&viewer)
            .json(&json!({"prompt_name": "bot", "version_string": "v1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
);

both_backends!(
    a_change_request_for_a_gated_environment_meets_the_gate_when_opened_and_when_applied,
    |backend| async move {
        let fake = FakeLlm::start().await;
        let app = app(backend, &fake).await;
        add_case(&app, "greets", "Hello Ada", json!([{"kind": "contains", "value": "Ada"}])).await;
        let request = json!({"environment": "production", "title": "Ship v2", "description": "",
        "changes": [{"action": "deploy", "prompt_name": "bot", "version_string": "v2"}]});
        let e = expect_error(
            app.post("/change-requests/", request.clone()).await,
            StatusCode::CONFLICT,
            "evaluation_gate_closed",
        )
        .await;
        assert!(e["message"].as_str().unwrap().contains("has not been evaluated"), "{e}");
        evaluate(&app, "v2").await;
        let opened = expect_status(app.post("/change-requests/", request).await, StatusCode::CREATED).await;
        let id = opened["id"].as_str().unwrap();
        // A case added after approval closes the gate again: applying is refused.
        let other = app.user_token("ann", "admin").await;
        let r = app
            .http
            .post(app.url(&format!("/change-requests/{id}/approve")))
            .bearer_auth(&other)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        expect_status(r, StatusCode::OK).await;
        add_case(&app, "polite", "Hello Ada", json!([{"kind": "contains", "value": "Hello"}])).await;
        let r = app
            .http
            .post(app.url(&format!("/change-requests/{id}/apply")))
            .bearer_auth(&other)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        expect_error(r, StatusCode::CONFLICT, "evaluation_gate_closed").await;
        evaluate(&app, "v2").await;
        let r = app
            .http
            .post(app.url(&format!("/change-requests/{id}/apply")))
            .bearer_auth(&other)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        expect_status(r, StatusCode::OK).await;
        assert_eq!(
            app.deployed_text("bot", "production").await.unwrap(),
            "Answer {{ customer }} briefly. ANSWER: {{ answer }}"
        );
    }
);
