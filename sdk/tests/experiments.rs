//! A/B experiments through the SDK, against a real server (and nats-server): subjects
//! split evenly and stick to their variant across calls and SDK instances, a weight
//! change moves only subjects of the shrinking variant, and every change to an
//! experiment reaches a running SDK by push.

mod common;

use common::*;
use minijinja::context;
use promptos_sdk::Prompts;
use serde_json::json;
use std::time::Duration;

const HOURS: Duration = Duration::from_secs(10 * 3600);
const PUSH_DEADLINE: Duration = Duration::from_secs(10);
const SUBJECTS: usize = 10_000;

async fn assignment(prompts: &Prompts) -> Vec<String> {
    let mut out = Vec::with_capacity(SUBJECTS);
    for i in 0..SUBJECTS {
        let subject = format!("user-{i}");
        let served = prompts.get_for("checkout", "production", &subject, context! { who => "Alex" }).await.unwrap();
        assert_eq!(served.text, format!("Buy now, Alex {}", served.version_string), "the text is the variant's");
        out.push(served.version_string);
    }
    out
}

fn share(assigned: &[String], version: &str) -> usize {
    assigned.iter().filter(|v| *v == version).count()
}

async fn weights_seen(prompts: &Prompts) -> Vec<u8> {
    let t = prompts.get_template("checkout", "production").await.unwrap();
    t.experiment.map(|x| x.variants.iter().map(|v| v.weight).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_split_evenly_stick_to_their_variant_and_move_only_when_they_must() {
    let server = Server::start(None).await;
    server.prompt("checkout", "Buy now, {{ who }}", 2, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let connect = || Prompts::connect(&server.base).api_key(key.clone()).ttl(HOURS).build();
    let (a, b) = (connect().await.unwrap(), connect().await.unwrap());
    let split = json!({"prompt_name": "checkout", "environment": "production",
                       "variants": [{"version_string": "v1", "weight": 50}, {"version_string": "v2", "weight": 50}]});
    server.post("/deployments/split", split).await;
    for sdk in [&a, &b] {
        eventually(PUSH_DEADLINE, "the split to reach the SDK", || async { weights_seen(sdk).await == [50, 50] }).await;
    }

    let first = assignment(&a).await;
    let v1 = share(&first, "v1");
    assert!((4_800..=5_200).contains(&v1), "{v1} of {SUBJECTS} subjects on v1 at 50/50");
    assert_eq!(assignment(&a).await, first, "every subject gets the same variant again");
    assert_eq!(assignment(&b).await, first, "and the same from another SDK instance");
    // Clients that know nothing of experiments get the first variant.
    let plain = a.get("checkout", "production", context! { who => "Alex" }).await.unwrap();
    assert_eq!(plain, "Buy now, Alex v1");

    // 50/50 becomes 90/10: only subjects of the shrinking variant (v2) move.
    let reweight = json!({"prompt_name": "checkout", "environment": "production",
                          "variants": [{"version_string": "v1", "weight": 90}, {"version_string": "v2", "weight": 10}]});
    server.post("/deployments/split/weights", reweight).await;
    eventually(PUSH_DEADLINE, "the new weights to reach the SDK", || async { weights_seen(&a).await == [90, 10] })
        .await;
    let after = assignment(&a).await;
    for (before, now) in first.iter().zip(&after) {
        assert!(before == now || (before == "v2" && now == "v1"), "a subject moved from {before} to {now}");
    }
    let v1 = share(&after, "v1");
    assert!((8_800..=9_200).contains(&v1), "{v1} of {SUBJECTS} subjects on v1 at 90/10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_reweighting_and_stopping_reach_a_running_sdk_by_push() {
    let nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("checkout", "Buy now, {{ who }}", 3, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(key).nats_url(nats.url()).ttl(HOURS).build().await.unwrap();
    assert_eq!(weights_seen(&prompts).await, Vec::<u8>::new(), "no experiment yet");

    // The TTL is hours: only the push can make these true.
    let split = json!({"prompt_name": "checkout", "environment": "production",
                       "variants": [{"version_string": "v2", "weight": 30}, {"version_string": "v3", "weight": 70}]});
    server.post("/deployments/split", split).await;
    eventually(PUSH_DEADLINE, "the start to reach the SDK", || async { weights_seen(&prompts).await == [30, 70] })
        .await;
    let plain = prompts.get("checkout", "production", context! { who => "Alex" }).await.unwrap();
    assert_eq!(plain, "Buy now, Alex v2", "the first variant is what plain get serves");

    let reweight = json!({"prompt_name": "checkout", "environment": "production",
                          "variants": [{"version_string": "v2", "weight": 60}, {"version_string": "v3", "weight": 40}]});
    server.post("/deployments/split/weights", reweight).await;
    eventually(PUSH_DEADLINE, "the new weights to reach the SDK", || async {
        weights_seen(&prompts).await == [60, 40]
    })
    .await;

    let stop = json!({"prompt_name": "checkout", "environment": "production", "version_string": "v3"});
    server.post("/deployments/split/stop", stop).await;
    eventually(PUSH_DEADLINE, "the stop to reach the SDK", || async {
        let served = prompts.get_for("checkout", "production", "user-1", context! { who => "Alex" }).await.unwrap();
        served.version_string == "v3" && served.experiment_id.is_none()
    })
    .await;
}
