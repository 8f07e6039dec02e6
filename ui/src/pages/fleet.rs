//! The Fleet page (`/ui/fleet`): the running SDK instances, per application, with what
//! each serves and whether that is what is deployed. Instances report to the server, not
//! to the change feed, so the page asks again every two seconds while it is open.

use crate::api;
use crate::app::deliver;
use crate::live;
use crate::pages::prompt::text;
use crate::readable_time as when;
use serde_json::Value;
use sycamore::prelude::*;

const REFRESH_MS: i32 = 2_000;

#[component]
pub fn FleetPage() -> View {
    let fleet = create_signal(Value::Null);
    let environment = create_signal(String::new());
    let environments = create_signal(Vec::<String>::new());
    let load_error = create_signal(String::new());

    wasm_bindgen_futures::spawn_local(async move {
        if let Ok(envs) = api::get("/environments").await {
            let names = envs["items"].as_array().map(|es| es.iter().map(|e| text(e, "name")).collect());
            deliver(environments, names.unwrap_or_default());
        }
    });
    let load = move || {
        // Read now: the page may be closed by the time the answer comes.
        let env = environment.get_clone_untracked();
        async move {
            let path =
                if env.is_empty() { "/fleet".to_owned() } else { format!("/fleet?environment={}", api::encode(&env)) };
            match api::get(&path).await {
                // An answer for a filter changed meanwhile would show the wrong instances.
                Ok(f) if environment.is_alive() && environment.with_untracked(|e| *e == env) => {
                    deliver(load_error, String::new());
                    deliver(fleet, f);
                }
                Ok(_) => {}
                Err(f) => deliver(load_error, f.message),
            }
        }
    };
    live::poll(REFRESH_MS, load);
    // A new filter shows at once, not at the next poll (which has just asked, at first).
    let mut first = true;
    create_effect(move || {
        environment.track();
        if !std::mem::take(&mut first) {
            wasm_bindgen_futures::spawn_local(load());
        }
    });

    let env_options = move || {
        environments
            .get_clone()
            .into_iter()
            .map(|n| {
                let value = n.clone();
                view! { option(value=value) { (n) } }
            })
            .collect::<Vec<View>>()
    };
    let body = move || {
        let f = fleet.get_clone();
        if f.is_null() {
            return view! { p(class="hint") { "Loading…" } };
        }
        let apps = f["applications"].as_array().cloned().unwrap_or_default();
        if apps.is_empty() {
            return view! {
                p(class="hint", "data-testid"="fleet-empty") {
                    "No instances report yet. The SDKs report on their own: when they start, right after "
                    "applying a change, and at every heartbeat. Give each application a name (the SDK's "
                    "app_name option) to see its instances grouped here."
                }
            };
        }
        let instances = f["instances"].as_array().cloned().unwrap_or_default();
        apps.into_iter()
            .map(|a| {
                let mine: Vec<Value> = instances.iter().filter(|i| i["app_name"] == a["app_name"]).cloned().collect();
                view! { Application(app=a, instances=mine) }
            })
            .collect::<Vec<View>>()
            .into()
    };

    view! {
        section(class="card") {
            h1 { "Fleet" }
            p(class="hint") {
                "The running instances of the SDKs, what each serves, and whether that is what is "
                "deployed. Updated every two seconds."
            }
            div(class="inline-form") {
                label(r#for="fleet-env") { "Environment" }
                select(id="fleet-env", bind:value=environment) { option(value="") { "All" } (env_options()) }
            }
            p(class="error", role="alert") { (load_error.get_clone()) }
        }
        (body())
    }
}

/// One application: its counts, then a row per instance.
#[component(inline_props)]
fn Application(app: Value, instances: Vec<Value>) -> View {
    let name = app["app_name"].as_str().unwrap_or("(unnamed)").to_owned();
    let count = |key: &str| app[key].as_u64().unwrap_or(0);
    let summary = format!(
        "{} {}: {} current, {} behind, {} stale",
        count("instances"),
        if count("instances") == 1 { "instance" } else { "instances" },
        count("current"),
        count("behind"),
        count("stale")
    );
    let mut instances = instances;
    instances.sort_by_key(|i| (text(i, "host"), i["pid"].as_u64()));
    let rows = instances.into_iter().map(|i| view! { InstanceRow(instance=i) }).collect::<Vec<View>>();
    let (label, data_app) = (format!("Application {name}"), name.clone());
    view! {
        section(class="card", "aria-label"=label, "data-app"=data_app) {
            h2 { (name) }
            p(class="hint") { (summary) }
            div(class="scroll") {
                table(class="fleet") {
                    thead { tr { th { "Host" } th { "PID" } th { "SDK" } th { "Last seen" } th { "Status" } th { "Serves" } } }
                    tbody { (rows) }
                }
            }
        }
    }
}

#[component(inline_props)]
fn InstanceRow(instance: Value) -> View {
    let i = instance;
    let status = text(&i, "status");
    let badge = format!("status {status}");
    let status_title = match status.as_str() {
        "stale" => "It could not reach the server or its feed at its last attempt.",
        "behind" => "It serves something other than what is deployed.",
        _ => "It serves what is deployed.",
    };
    let sdk = format!("{} {}", text(&i, "sdk"), text(&i, "sdk_version"));
    let last_seen = text(&i, "last_seen");
    let seen_at = when(&last_seen);
    let serving = i["serving"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            let what =
                format!("{} in {} → {}", text(&s, "prompt"), text(&s, "environment"), text(&s, "version_string"));
            let note = match text(&s, "status").as_str() {
                "behind" => format!(" (behind: {} is deployed)", text(&s, "deployed_version_string")),
                "not_deployed" => " (no longer deployed)".to_owned(),
                _ => String::new(),
            };
            let class = format!("serving {}", text(&s, "status"));
            view! { li(class=class) { (what) span(class="note") { (note) } } }
        })
        .collect::<Vec<View>>();
    let (id, host, pid) = (text(&i, "instance_id"), text(&i, "host"), i["pid"].to_string());
    view! {
        tr("data-instance"=id) {
            td { (host) }
            td { (pid) }
            td { (sdk) }
            td(class="nowrap", title=seen_at.clone()) { (ago(&last_seen)) }
            td { span(class=badge, title=status_title) { (status) } }
            td { ul(class="serving-list") { (serving) } }
        }
    }
}

/// "3 s ago", by the browser's clock; the exact time is in the cell's title.
fn ago(ts: &str) -> String {
    let then = js_sys::Date::parse(ts);
    if then.is_nan() {
        return when(ts);
    }
    match (js_sys::Date::now() - then) as i64 {
        ..1_000 => "just now".to_owned(),
        ms @ ..60_000 => format!("{} s ago", ms / 1_000),
        ms => format!("{} ago", crate::readable_duration(ms)),
    }
}
