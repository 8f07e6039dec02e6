//! The read models' suite, run against SQLite and PostgreSQL alike, so the two backends
//! cannot drift. (The log's own suite is `store/tests/log.rs`.)

use promptos_core::events::*;
use promptos_core::names::*;
use promptos_projector::projector::{Projector, ProjectorOptions};
use promptos_projector::verify::{load_read_model, verify};
use promptos_projector::*;
use promptos_store::{AppendRequest, EventLog, Metadata, Writer};
use promptos_testkit::{both_backends, scratch_db};
use uuid::Uuid;

fn created(name: &str) -> Event {
    Event::PromptCreated(PromptCreated {
        prompt_id: Uuid::new_v4(),
        name: PromptName::parse(name).unwrap(),
        description: Description::parse("test").unwrap(),
    })
}

fn version_of(created: &Event, v: &str) -> Event {
    let (id, name) = created.prompt().expect("a prompt event");
    Event::VersionCreated(VersionCreated::plain_text(
        *id,
        name.clone(),
        VersionString::parse(v).unwrap(),
        format!("Hello {{{{ who }}}} from {v}"),
        vec!["who".into()],
    ))
}

fn deploy_of(created: &Event, v: &str, previous: Option<&str>) -> Event {
    let (id, name) = created.prompt().expect("a prompt event");
    Event::VersionDeployed(VersionDeployed {
        prompt_id: *id,
        name: name.clone(),
        environment: EnvironmentName::parse("production").unwrap(),
        version_string: VersionString::parse(v).unwrap(),
        previous_version_string: previous.map(|p| VersionString::parse(p).unwrap()),
        gate: None,
    })
}

fn request(stream: &str, expected: i64, events: Vec<Event>) -> AppendRequest {
    AppendRequest { stream_id: stream.into(), expected_version: expected, events, metadata: Metadata::new("user:test") }
}

/// Appends a prompt with `versions` versions and a deployment of each, one request each.
async fn seed_prompt(writer: &Writer, name: &str, versions: usize) {
    let c = created(name);
    let stream = c.stream_id();
    writer.append(request(&stream, 0, vec![c.clone()])).await.unwrap();
    let mut expected = 1;
    let mut previous: Option<String> = None;
    for i in 1..=versions {
        let v = format!("v{i}");
        let events = vec![version_of(&c, &v), deploy_of(&c, &v, previous.as_deref())];
        writer.append(request(&stream, expected, events)).await.unwrap();
        expected += 2;
        previous = Some(v);
    }
}

both_backends!(a_projector_crashing_mid_batch_resumes_to_what_a_rebuild_produces, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    for i in 0..5 {
        seed_prompt(&writer, &format!("prompt-{i}"), 4).await;
    }
    // Crash part-way through several batches: nothing of a failed batch may stick.
    for crash_after in [3, 7, 1] {
        let crashing =
            Projector::new(db.clone(), ProjectorOptions { batch_size: 7, crash_after_ops: Some(crash_after) });
        let _ = crashing.step().await; // the first batch (if short enough) may commit
        let err = crashing.step().await;
        assert!(err.is_err() || crashing.step().await.is_err(), "failpoint fires");
    }
    let projector = Projector::new(db.clone(), ProjectorOptions { batch_size: 7, crash_after_ops: None });
    let position = projector.catch_up().await.unwrap();
    assert_eq!(position, db.head().await.unwrap());
    let (_, projected) = load_read_model(&db).await.unwrap();
    rebuild::rebuild(&db, |_, _| {}).await.unwrap();
    let (_, rebuilt) = load_read_model(&db).await.unwrap();
    assert_eq!(projected, rebuilt);
    assert_eq!(projected.prompts.len(), 5);
    assert_eq!(projected.versions.len(), 20);
    assert_eq!(projected.history.len(), 20);
    let report = verify(&db, |_, _, _| {}).await.unwrap();
    assert!(report.ok, "{report:?}");
});

both_backends!(verify_names_a_read_model_row_that_disagrees_with_the_log, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    seed_prompt(&writer, "p", 2).await;
    Projector::new(db.clone(), ProjectorOptions::default()).catch_up().await.unwrap();
    db.execute("UPDATE rm_versions SET text = 'changed' WHERE version_string = 'v2'").await.unwrap();
    let report = verify(&db, |_, _, _| {}).await.unwrap();
    assert!(!report.ok);
    let d = report.read_models.first_difference.unwrap();
    assert_eq!(d.table, "rm_versions");
    assert_eq!(d.position, Some(4));
});

both_backends!(a_rebuild_reproduces_awkward_text_chat_versions_config_and_tags_exactly, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    let c = created("awkward");
    let (id, name) = c.prompt().map(|(i, n)| (*i, n.clone())).unwrap();
    let awkward = "line one\nline two\ttabbed \\ backslash \\N \\. \r\n ünïcödé 😀 'quotes' \"double\"\n\\";
    let text =
        VersionCreated::plain_text(id, name.clone(), VersionString::parse("v1").unwrap(), awkward.into(), vec![]);
    let mut chat =
        VersionCreated::plain_text(id, name.clone(), VersionString::parse("v2").unwrap(), String::new(), vec![]);
    chat.kind = promptos_core::content::PromptKind::Chat;
    chat.messages = Some(vec![
        promptos_core::content::ChatMessage { role: promptos_core::content::ChatRole::System, content: awkward.into() },
        promptos_core::content::ChatMessage { role: promptos_core::content::ChatRole::User, content: "{{ q }}".into() },
    ]);
    chat.variables = vec!["q".into()];
    chat.config = serde_json::json!({"model": "m\tx", "stop": ["\n\n", "\\"]}).as_object().cloned();
    chat.commit_message = Some(CommitMessage::parse("tab\there\nand a newline").unwrap());
    let tagged = Event::PromptTagged(PromptTagged {
        prompt_id: id,
        name,
        tags: vec![Tag::parse("team:support").unwrap()],
        previous_tags: vec![],
    });
    let events = vec![c.clone(), Event::VersionCreated(text), Event::VersionCreated(chat), tagged];
    writer.append(request(&c.stream_id(), 0, events)).await.unwrap();
    Projector::new(db.clone(), ProjectorOptions::default()).catch_up().await.unwrap();
    let (_, projected) = load_read_model(&db).await.unwrap();
    assert_eq!(projected.versions.values().next().unwrap().text, awkward);
    rebuild::rebuild(&db, |_, _| {}).await.unwrap();
    let (_, rebuilt) = load_read_model(&db).await.unwrap();
    assert_eq!(projected, rebuilt);
    assert!(verify(&db, |_, _, _| {}).await.unwrap().ok);
});

both_backends!(test_cases_and_evaluations_project_and_rebuild_to_the_same_rows, |backend| async move {
    use promptos_core::evaluation::{CaseName, CaseOutcome, Expectation, TestCase};
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    seed_prompt(&writer, "bot", 1).await;
    let c = created("bot");
    let (id, name) = c.prompt().map(|(i, n)| (*i, n.clone())).unwrap();
    let case = |n: u128, label: &str| TestCase {
        case_id: uuid::Uuid::from_u128(n),
        name: CaseName::parse(label).unwrap(),
        variables: [("who".to_owned(), serde_json::json!("Ada\t\"quoted\""))].into(),
        messages: vec![],
        expectations: vec![Expectation::Regex { pattern: r"\bAda\b".into() }],
    };
    let evaluation_id = uuid::Uuid::from_u128(77);
    let v1 = VersionString::parse("v1").unwrap();
    let events = vec![
        Event::TestCaseAdded(TestCaseAdded { prompt_id: id, name: name.clone(), case: case(1, "greets") }),
        Event::TestCaseAdded(TestCaseAdded { prompt_id: id, name: name.clone(), case: case(2, "short") }),
        Event::TestCaseUpdated(TestCaseUpdated { prompt_id: id, name: name.clone(), case: case(2, "short, renamed") }),
        Event::TestCaseRemoved(TestCaseRemoved {
            prompt_id: id,
            name: name.clone(),
            case_id: uuid::Uuid::from_u128(1),
            case_name: "greets".into(),
        }),
        Event::EvaluationStarted(EvaluationStarted {
            prompt_id: id,
            name: name.clone(),
            evaluation_id,
            version_string: v1.clone(),
            version_hash: "ab".into(),
            suite_revision: 4,
            cases: 1,
            provider: "fake".into(),
            model: "m".into(),
            environment: EnvironmentName::parse("production").unwrap(),
        }),
        Event::EvaluationCompleted(EvaluationCompleted {
            prompt_id: id,
            name,
            evaluation_id,
            version_string: v1,
            version_hash: "ab".into(),
            suite_revision: 4,
            provider: "fake".into(),
            model: "m".into(),
            passed: 1,
            total: 1,
            input_tokens: 12,
            output_tokens: 3,
            duration_ms: 40,
            stopped: None,
            outcomes: vec![CaseOutcome {
                case_id: uuid::Uuid::from_u128(2),
                case_name: "short, renamed".into(),
                passed: true,
                answer_excerpt: "Hi Ada".into(),
                error: None,
                checks: vec![],
                latency_ms: 40,
                input_tokens: Some(12),
                output_tokens: Some(3),
            }],
        }),
    ];
    writer.append(request(&c.stream_id(), 3, events)).await.unwrap();
    Projector::new(db.clone(), ProjectorOptions::default()).catch_up().await.unwrap();
    let (_, projected) = load_read_model(&db).await.unwrap();
    assert_eq!(projected.test_cases.len(), 1);
    assert_eq!(projected.test_cases.values().next().unwrap().name, "short, renamed");
    let run = projected.evaluations.values().next().unwrap();
    assert_eq!((run.status.as_str(), run.passed, run.input_tokens), ("completed", Some(1), Some(12)));
    rebuild::rebuild(&db, |_, _| {}).await.unwrap();
    let (_, rebuilt) = load_read_model(&db).await.unwrap();
    assert_eq!(projected, rebuilt);
    assert!(verify(&db, |_, _, _| {}).await.unwrap().ok);
});

both_backends!(an_imported_log_projects_to_the_same_read_models, |backend| async move {
    let (source, _s1) = scratch_db(backend).await;
    let writer = Writer::start(source.clone());
    seed_prompt(&writer, "a", 3).await;
    seed_prompt(&writer, "b", 2).await;
    let events = source.read_after(0, 1000).await.unwrap();
    let (target, _s2) = scratch_db(backend).await;
    assert_eq!(target.import(&events).await.unwrap(), events.len() as i64);
    rebuild::rebuild(&source, |_, _| {}).await.unwrap();
    rebuild::rebuild(&target, |_, _| {}).await.unwrap();
    assert_eq!(load_read_model(&target).await.unwrap(), load_read_model(&source).await.unwrap());
});

/// Every index and constraint of the read-model tables, as the database describes them.
async fn read_model_schema(db: &Db) -> Vec<(String, String)> {
    let tables: Vec<String> = views::READ_MODEL_TABLES.iter().map(|t| t.to_string()).collect();
    match db.pool() {
        promptos_store::Pool::Sqlite(pool) => sqlx::query_as(
            "SELECT name, COALESCE(sql, '') FROM sqlite_master \
             WHERE type = 'index' AND tbl_name IN (SELECT value FROM json_each($1)) ORDER BY name",
        )
        .bind(serde_json::to_string(&tables).unwrap())
        .fetch_all(pool)
        .await
        .unwrap(),
        promptos_store::Pool::Postgres(pool) => sqlx::query_as(
            "SELECT indexname::text, indexdef FROM pg_indexes WHERE tablename = ANY($1) \
             UNION ALL SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid IN (SELECT oid FROM pg_class WHERE relname = ANY($1)) ORDER BY 1, 2",
        )
        .bind(&tables)
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

both_backends!(a_rebuild_keeps_every_index_and_constraint_and_can_run_again, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    seed_prompt(&writer, "kept", 3).await;
    let migrated = read_model_schema(&db).await;
    assert!(migrated.iter().any(|(name, _)| name == "rm_prompts_live_name"), "{migrated:?}");
    rebuild::rebuild(&db, |_, _| {}).await.unwrap();
    rebuild::rebuild(&db, |_, _| {}).await.unwrap();
    assert_eq!(read_model_schema(&db).await, migrated);
    // The partial unique index still holds: a second live prompt of the same name fails.
    let columns = "name, description, created_at, created_by, updated_at, updated_by, version_count, first_position, last_position";
    let duplicate = format!("INSERT INTO rm_prompts (prompt_id, {columns}) SELECT 'other', {columns} FROM rm_prompts");
    assert!(db.execute(&duplicate).await.is_err());
    let projector = Projector::new(db.clone(), ProjectorOptions::default());
    seed_prompt(&writer, "after", 1).await;
    projector.catch_up().await.unwrap();
    let (_, model) = load_read_model(&db).await.unwrap();
    assert_eq!(model.prompts.len(), 2);
});
