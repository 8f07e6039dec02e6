//! The rollout lines of the Deployments tab: for each environment where the prompt is
//! deployed, how many running SDK instances of each application serve the latest change
//! and how fast the slowest got it, and which instances are still behind.
//!
//! Instances report to the server, not to the change feed, so the lines are asked for
//! every second while the tab is open, and at once after every change the page sees (a
//! deploy made here, or one seen on the feed): the instances that have not caught up
//! yet then show as behind, until they do.

use super::{text, Data};
use crate::api;
use crate::app::deliver;
use crate::live;
use crate::readable_duration;
use serde_json::Value;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use sycamore::prelude::*;

const REFRESH_MS: i32 = 1_000;

/// Environments where the prompt is deployed.
fn deployed_in(deployments: &Value) -> Vec<String> {
    deployments["current"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

#[component(inline_props)]
pub(super) fn Rollouts(data: Data) -> View {
    // The latest answer per environment.
    let rollouts = create_signal(BTreeMap::<String, Value>::new());
    // Answers to an older request must not overwrite those of a newer one.
    let latest = Rc::new(Cell::new(0u64));
    let refresh = move || {
        let asked = latest.get() + 1;
        latest.set(asked);
        let latest = latest.clone();
        // Read now: the tab may be closed by the time the answers come.
        let envs = data.deployments.with_untracked(deployed_in);
        let name = api::encode(&data.name.get_clone_untracked());
        async move {
            let paths: Vec<String> =
                envs.iter().map(|env| format!("/prompts/{name}/rollout?environment={}", api::encode(env))).collect();
            let answers = futures::future::join_all(paths.iter().map(|p| api::get(p))).await;
            if latest.get() != asked || !rollouts.is_alive() {
                return;
            }
            let before = rollouts.get_clone_untracked();
            let mut next = BTreeMap::new();
            for (env, answer) in envs.into_iter().zip(answers) {
                match answer {
                    Ok(r) => {
                        next.insert(env, r);
                    }
                    // Nothing is deployed there any more.
                    Err(f) if f.status == 404 => {}
                    // A passing failure: keep showing what was known.
                    Err(_) => {
                        if let Some(r) = before.get(&env) {
                            next.insert(env, r.clone());
                        }
                    }
                }
            }
            deliver(rollouts, next);
        }
    };
    live::poll(REFRESH_MS, refresh.clone());
    // `changes` moves after each reload of the tab's data, which follows every deploy or
    // rollback made here and every change seen on the feed. Its first value needs no
    // refresh: the poll has just asked.
    let seen = data.changes.get_untracked();
    create_effect(move || {
        if data.changes.get() != seen {
            wasm_bindgen_futures::spawn_local(refresh());
        }
    });

    let envs = create_selector(move || data.deployments.with(deployed_in));
    view! {
        div(class="rollouts") {
            Keyed(
                list=envs,
                view=move |env| view! { RolloutLine(environment=env, rollouts=rollouts) },
                key=|env| env.clone(),
            )
        }
    }
}

/// One environment's rollout, kept under `data-testid="rollout-<environment>"`.
#[component(inline_props)]
fn RolloutLine(environment: String, rollouts: Signal<BTreeMap<String, Value>>) -> View {
    let testid = format!("rollout-{environment}");
    let env = environment.clone();
    let rollout = create_selector(move || rollouts.with(|m| m.get(&env).cloned().unwrap_or(Value::Null)));
    let body = move || {
        let r = rollout.get_clone();
        if r.is_null() {
            // Not asked yet.
            return view! {};
        }
        if r["holding"].as_u64().unwrap_or(0) == 0 {
            return view! { span(class="hint") { "No running instances report this prompt." } };
        }
        let target = if r["target"]["experiment_id"].is_string() {
            "the A/B test".to_owned()
        } else {
            text(&r["target"], "version_string")
        };
        let apps = r["applications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let line = application_line(&a, &target);
                let class = if a["serving"] == a["holding"] { "rollout-app done" } else { "rollout-app" };
                view! { li(class=class) { (line) } }
            })
            .collect::<Vec<View>>();
        let behind = r["instances"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i["status"] == "behind")
            .map(|i| {
                let line = behind_line(&i);
                view! { li { (line) } }
            })
            .collect::<Vec<View>>();
        let behind = if behind.is_empty() {
            view! {}
        } else {
            view! { ul(class="rollout-behind", "aria-label"="Instances still behind") { (behind) } }
        };
        view! {
            ul(class="rollout-apps") { (apps) }
            (behind)
        }
    };
    view! {
        div(class="rollout", "data-testid"=testid) {
            span(class="rollout-env") { (environment) }
            (body())
        }
    }
}

/// "2 of 2 instances of support-chatbot serve v2, slowest 38 ms".
fn application_line(app: &Value, target: &str) -> String {
    let holding = app["holding"].as_u64().unwrap_or(0);
    let serving = app["serving"].as_u64().unwrap_or(0);
    let instances = if holding == 1 { "instance" } else { "instances" };
    let whose = match app["app_name"].as_str() {
        Some(name) => format!("of {name}"),
        None => "without an application name".to_owned(),
    };
    let serve = if serving == 1 { "serves" } else { "serve" };
    let slowest =
        app["slowest_ms"].as_i64().map(|ms| format!(", slowest {}", readable_duration(ms))).unwrap_or_default();
    format!("{serving} of {holding} {instances} {whose} {serve} {target}{slowest}")
}

/// "host-a, pid 4242, rust SDK: still serves v1, behind for 3.2 s (1 change)".
fn behind_line(instance: &Value) -> String {
    let mut line = format!(
        "{}, pid {}, {} SDK: still serves {}",
        text(instance, "host"),
        instance["pid"],
        text(instance, "sdk"),
        text(instance, "version_string")
    );
    if let Some(ms) = instance["behind_ms"].as_i64() {
        line.push_str(&format!(", behind for {}", readable_duration(ms)));
    }
    if let Some(n) = instance["positions_behind"].as_i64().filter(|n| *n > 0) {
        line.push_str(&format!(" ({n} {})", if n == 1 { "change" } else { "changes" }));
    }
    if instance["stale"] == true {
        line.push_str("; it cannot reach the server");
    }
    line
}
