//! The fleet table on both databases: a report replaces the instance's last one, an
//! instance id stays with whoever reported it first, and lapsed instances are not live.

use promptos_store::fleet::{self, Recorded};
use promptos_testkit::{both_backends, scratch_db};

both_backends!(a_report_replaces_the_last_one_and_an_instance_id_stays_with_its_owner, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    assert_eq!(fleet::record(&db, "inst-a", "key-1", r#"{"n":1}"#, 1_000, 46_000).await.unwrap(), Recorded::Stored);
    assert_eq!(fleet::record(&db, "inst-b", "key-2", r#"{"n":1}"#, 1_500, 46_500).await.unwrap(), Recorded::Stored);
    assert_eq!(fleet::record(&db, "inst-a", "key-1", r#"{"n":2}"#, 2_000, 47_000).await.unwrap(), Recorded::Stored);
    // Another key cannot take inst-a over, and changes nothing by trying.
    let taken = fleet::record(&db, "inst-a", "key-2", r#"{"n":99}"#, 3_000, 48_000).await.unwrap();
    assert_eq!(taken, Recorded::OwnedByAnother);

    let live = fleet::live(&db, 10_000).await.unwrap();
    let seen: Vec<_> = live.iter().map(|i| (i.instance_id.as_str(), i.owner.as_str(), i.report.as_str())).collect();
    assert_eq!(seen, [("inst-b", "key-2", r#"{"n":1}"#), ("inst-a", "key-1", r#"{"n":2}"#)]);
    assert_eq!(live[1].last_seen_ms, 2_000);
    let a = fleet::get(&db, "inst-a").await.unwrap().expect("stored");
    assert_eq!((a.owner.as_str(), a.report.as_str(), a.expires_at_ms), ("key-1", r#"{"n":2}"#, 47_000));
    assert_eq!(fleet::get(&db, "inst-z").await.unwrap(), None);
});

both_backends!(an_instance_that_missed_its_heartbeats_is_gone, |backend| async move {
    let (db, _s) = scratch_db(backend).await;
    fleet::record(&db, "inst-a", "key-1", "{}", 1_000, 46_000).await.unwrap();
    fleet::record(&db, "inst-b", "key-1", "{}", 1_000, 90_000).await.unwrap();
    let ids = |live: Vec<fleet::Instance>| live.into_iter().map(|i| i.instance_id).collect::<Vec<_>>();
    assert_eq!(ids(fleet::live(&db, 45_999).await.unwrap()), ["inst-a", "inst-b"]);
    assert_eq!(ids(fleet::live(&db, 46_000).await.unwrap()), ["inst-b"]);
    // Forgotten once long gone; then the id is free again.
    assert_eq!(fleet::forget_gone(&db, 50_000).await.unwrap(), 1);
    assert_eq!(fleet::record(&db, "inst-a", "key-2", "{}", 51_000, 96_000).await.unwrap(), Recorded::Stored);
});
