//! The event log's suite: every case runs against SQLite and PostgreSQL, through
//! [`EventLog`], so the two backends cannot drift.

use promptos_core::events::*;
use promptos_core::names::*;
use promptos_store::{AppendError, AppendRequest, Backend, Db, EventLog, Metadata, Writer, GENESIS_HASH};
use promptos_testkit::{both_backends, scratch_db};
use std::time::{Duration, Instant};
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

both_backends!(appends_are_atomic_ordered_and_chained, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    let c = created("greeting");
    let a = writer.append(request("prompt:greeting", 0, vec![c.clone(), version_of(&c, "v1")])).await.unwrap();
    assert_eq!(a.events.iter().map(|e| e.position).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(a.stream_version(), 2);

    // A writer that has not seen the second event conflicts and appends nothing.
    let err = writer.append(request("prompt:greeting", 1, vec![version_of(&c, "v2")])).await.unwrap_err();
    assert!(matches!(err, AppendError::Conflict { expected: 1, actual: 2, .. }), "{err:?}");
    assert_eq!(db.read_after(0, 100).await.unwrap().len(), 2);

    let events = db.read_after(0, 100).await.unwrap();
    assert_eq!(events[0].prev_hash, GENESIS_HASH);
    assert_eq!(events[1].prev_hash, events[0].hash);
    assert!(events[0].recorded_at <= events[1].recorded_at);
    let report = db.verify_chain(|_| {}).await.unwrap();
    assert_eq!(report.events_checked, 2);
    assert!(report.first_bad.is_none());
});

both_backends!(a_batch_with_a_conflict_still_commits_the_others, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let a = created("a");
    let b = created("b");
    let results = db
        .append_batch(
            &[
                vec![request("prompt:a", 0, vec![a.clone()])],
                vec![request("prompt:a", 0, vec![a.clone()])],
                vec![request("prompt:b", 0, vec![b])],
            ],
            &mut promptos_core::catalog::Catalog::default(),
        )
        .await
        .unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(AppendError::Conflict { .. })));
    assert_eq!(results[2].as_ref().unwrap()[0].events[0].position, 2);
});

both_backends!(a_group_of_requests_is_appended_all_or_none, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    let (a, b) = (created("a"), created("b"));
    writer.append(request("prompt:a", 0, vec![a.clone()])).await.unwrap();
    // One request of the group is stale: nothing of the group is written.
    let stale = writer
        .append_all(vec![request("prompt:b", 0, vec![b.clone()]), request("prompt:a", 0, vec![version_of(&a, "v1")])])
        .await
        .unwrap_err();
    assert!(matches!(stale, AppendError::Conflict { ref stream_id, .. } if stream_id == "prompt:a"), "{stale:?}");
    assert_eq!(db.head().await.unwrap(), 1);
    // One request is refused by a rule that spans prompts (a deploy of a version that
    // includes a prompt deployed nowhere): nothing is written either.
    writer.append(request("prompt:c", 0, vec![created("c")])).await.unwrap();
    let Event::VersionCreated(v2) = version_of(&a, "v2") else { unreachable!() };
    let including = Event::VersionCreated(VersionCreated {
        text: r#"{% include "c" %}"#.into(),
        includes: vec![PromptName::parse("c").unwrap()],
        ..v2
    });
    writer.append(request("prompt:a", 1, vec![including])).await.unwrap();
    let refused = writer
        .append_all(vec![
            request("prompt:b", 0, vec![b.clone()]),
            request("prompt:a", 2, vec![deploy_of(&a, "v2", None)]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(refused, AppendError::Refused(_)), "{refused:?}");
    assert_eq!(db.head().await.unwrap(), 3);
    // Both current: both written, in order, in one transaction.
    let both = writer
        .append_all(vec![request("prompt:b", 0, vec![b]), request("prompt:a", 2, vec![version_of(&a, "v3")])])
        .await
        .unwrap();
    assert_eq!((both[0].events[0].position, both[1].events[0].position), (4, 5));
    assert_eq!(db.head().await.unwrap(), 5);
    assert!(db.verify_chain(|_| {}).await.unwrap().first_bad.is_none());
});

both_backends!(the_log_refuses_updates_and_deletes, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    seed_prompt(&writer, "p", 1).await;
    let update = db.execute("UPDATE events SET payload = '{}' WHERE position = 1").await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = db.execute("DELETE FROM events WHERE position = 1").await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
});

both_backends!(an_edited_event_is_detected_and_named, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    let writer = Writer::start(db.clone());
    seed_prompt(&writer, "p", 3).await;
    let victim = db.read_after(1, 1).await.unwrap().remove(0);
    assert_eq!(victim.event_type, "VersionCreated");
    // An attacker with database access first has to get past the append-only trigger.
    let disable = match backend {
        Backend::Sqlite => "DROP TRIGGER events_are_append_only_update",
        Backend::Postgres => "ALTER TABLE events DISABLE TRIGGER events_are_append_only",
    };
    db.execute(disable).await.unwrap();
    let edited = victim.payload.replace("Hello", "Goodbye");
    assert_ne!(edited, victim.payload);
    promptos_store::on_pool!(db, pool => {
        sqlx::query("UPDATE events SET payload = $1 WHERE position = 2").bind(edited).execute(pool).await.map(|_| ())
    })
    .unwrap();
    let report = db.verify_chain(|_| {}).await.unwrap();
    let bad = report.first_bad.expect("tampering is detected");
    assert_eq!(bad.position, 2);
    assert_eq!(bad.event_id, victim.event_id);
    assert_eq!(report.events_checked, 1);
});

both_backends!(concurrent_writers_never_make_a_follower_skip_an_event, |backend| async move {
    let (db, s) = scratch_db(backend).await;
    const WRITERS: usize = 6;
    const APPENDS: usize = 60;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        // Separate pools and writers, as separate server processes would have.
        let db = Db::connect(&s.url).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let writer = Writer::start(db);
            for i in 0..APPENDS {
                let c = created(&format!("w{w}-{i}"));
                writer.append(request(&c.stream_id(), 0, vec![c.clone(), version_of(&c, "v1")])).await.unwrap();
            }
        }));
    }
    // Follow the log the way the projector does, while it is being written.
    let total = (WRITERS * APPENDS * 2) as i64;
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < total {
        assert!(Instant::now() < deadline, "follower stuck at {seen} of {total}");
        let batch = db.read_after(seen, 50).await.unwrap();
        for e in &batch {
            assert_eq!(e.position, seen + 1, "position {} became visible before {}", e.position, seen + 1);
            seen = e.position;
        }
        if batch.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = db.verify_chain(|_| {}).await.unwrap();
    assert_eq!((report.events_checked, report.first_bad), (total, None));
});

both_backends!(an_imported_log_is_the_same_chain_and_a_broken_one_writes_nothing, |backend| async move {
    let (source, _s1) = scratch_db(backend).await;
    let writer = Writer::start(source.clone());
    seed_prompt(&writer, "a", 3).await;
    seed_prompt(&writer, "b", 2).await;
    let events = source.read_after(0, 1000).await.unwrap();

    let (target, _s2) = scratch_db(backend).await;
    // The first half, then the rest: an import continues the log it finds.
    let (first, rest) = events.split_at(4);
    assert_eq!(target.import(first).await.unwrap(), 4);
    assert_eq!(target.import(rest).await.unwrap(), events.len() as i64);
    assert_eq!(target.read_after(0, 1000).await.unwrap(), events);
    assert_eq!(target.verify_chain(|_| {}).await.unwrap().first_bad, None);
    // A gap, a wrong back-link or an edited row is refused, and nothing of the batch lands.
    let (empty, _s3) = scratch_db(backend).await;
    let err = empty.import(&events[1..]).await.unwrap_err();
    assert!(err.to_string().contains("expected position 1"), "{err}");
    let mut edited = events[..3].to_vec();
    edited[1].payload = edited[1].payload.replace("Hello", "Bye");
    let err = empty.import(&edited).await.unwrap_err();
    assert!(err.to_string().contains("event 2") && err.to_string().contains("hash"), "{err}");
    assert!(empty.read_after(0, 10).await.unwrap().is_empty());
});
