//! The Deployments tab: what is live in each environment, deploy, roll back with
//! confirmation, A/B tests (start a split, adjust its weights, stop it by promoting a
//! variant or reverting), and the deployment history. Protected environments are
//! marked, and editors see why they cannot change them. Under the live versions, how far
//! each one has reached the running instances ([`rollout`]). Where a policy needs
//! approvals, each of these actions opens a change request instead ([`request`]). Where
//! an environment is gated, the deploy form says whether the chosen version may go there,
//! and a refusal shows the cases to fix, with an admin's override ([`gate_refusal`]).

use super::gate_refusal::{GateRefusal, Refusal};
use super::request::{Proposal, RequestCard};
use super::{rollout, text, when, Data};
use crate::api;
use crate::app::{deliver, Session};
use crate::evaluation_report::{gate_sentence, standing_of};
use serde_json::{json, Value};
use sycamore::prelude::*;

/// Variant rows the A/B card can hold: as many as a split may have.
const SPLIT_ROWS: usize = promptos_core::experiment::MAX_VARIANTS;

#[component(inline_props)]
pub(super) fn Deployments(data: Data) -> View {
    let session = use_context::<Session>();
    let env = create_signal(String::new());
    let version = create_signal(String::new());
    let form_error = create_signal(String::new());
    // A change the evaluation gate refused, shown with its cases until dismissed.
    let refused = create_signal(None::<Refusal>);
    // A change waiting to become a change request (where a policy needs approvals).
    let proposal = create_signal(None::<Proposal>);
    let needs_request = move |env_name: &str| data.approvals_required(env_name).is_some();
    // Editors deploy where it is not protected; admins anywhere. Where changes go through
    // change requests, editors and admins alike ask for them.
    let refusal = move |env_name: &str| -> Option<String> {
        match session.role().as_str() {
            "admin" => None,
            "editor" if !data.is_protected(env_name) || needs_request(env_name) => None,
            "editor" => Some(format!("{env_name} is protected: only admins may change it.")),
            _ => Some("Viewers cannot deploy.".to_owned()),
        }
    };
    let send = move |path: &'static str, payload: Value| {
        wasm_bindgen_futures::spawn_local(async move {
            match api::post(path, payload.clone()).await {
                Ok(_) => {
                    deliver(form_error, String::new());
                    deliver(refused, None);
                    // The options are redrawn with the new data; start the choice afresh.
                    deliver(version, String::new());
                    data.reload();
                }
                Err(f) => match Refusal::of(path, &payload, &f) {
                    Some(r) => {
                        deliver(form_error, String::new());
                        deliver(refused, Some(r));
                    }
                    None => deliver(form_error, f.message),
                },
            }
        });
    };
    let deploy = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let (env_name, v) = (env.get_clone(), version.get_clone());
        if env_name.is_empty() || v.is_empty() {
            form_error.set("Pick an environment and a version.".into());
            return;
        }
        if needs_request(&env_name) {
            proposal.set(Some(Proposal::deploy(&data.name.get_clone(), &env_name, &v)));
            return;
        }
        send(
            "/deployments/",
            json!({"prompt_name": data.name.get_clone(), "environment": env_name, "version_string": v}),
        );
    };
    let live_rows = move || {
        let current = data.deployments.with(|d| d["current"].clone());
        data.environments
            .get_clone()
            .into_iter()
            .map(|e| {
                let env_name = text(&e, "name");
                let d = &current[env_name.as_str()];
                let (live, by, at) = (text(d, "version_string"), text(d, "deployed_by"), when(&text(d, "deployed_at")));
                let badge = if e["protected"] == true { "protected" } else { "" };
                let gated = if e["gate_pass_rate"].is_null() { "" } else { "gated" };
                let can_roll_back = !live.is_empty() && refusal(&env_name).is_none();
                let by_request = needs_request(&env_name);
                let label = if by_request {
                    format!("Request a rollback of {env_name}")
                } else {
                    format!("Roll back {env_name}")
                };
                let confirm_env = env_name.clone();
                let roll_back = move |_| {
                    if by_request {
                        let live =
                            data.deployments.with(|d| text(&d["current"][confirm_env.as_str()], "version_string"));
                        proposal.set(Some(Proposal::rollback(&data.name.get_clone(), &confirm_env, &live)));
                        return;
                    }
                    let question = format!(
                        "Roll {confirm_env} back to the version live before {}?",
                        data.deployments.with(|d| text(&d["current"][confirm_env.as_str()], "version_string"))
                    );
                    let confirmed =
                        web_sys::window().and_then(|w| w.confirm_with_message(&question).ok()).unwrap_or(false);
                    if confirmed {
                        send(
                            "/deployments/rollback",
                            json!({"prompt_name": data.name.get_clone(), "environment": confirm_env.clone()}),
                        );
                    }
                };
                let action = if can_roll_back {
                    let button_text = if by_request { "Request rollback" } else { "Roll back" };
                    view! { button(class="secondary", "aria-label"=label, on:click=roll_back) { (button_text) } }
                } else {
                    view! {}
                };
                let live_text = if live.is_empty() { "—".to_owned() } else { live };
                let split = data.deployments.with(|d| d["experiments"][env_name.as_str()]["variants"].clone());
                let split = if split.is_null() {
                    view! {}
                } else {
                    let summary = format!("A/B test: {}", crate::split_summary(&split));
                    view! { br {} span(class="split") { (summary) } }
                };
                let env_attr = env_name.clone();
                view! {
                    tr("data-env"=env_attr) {
                        td { (env_name) " " span(class="badge") { (badge) } " " span(class="badge gated", title="Needs a passing evaluation") { (gated) } }
                        td(class="live-version") { (live_text) (split) }
                        td { (by) } td { (at) }
                        td { (action) }
                    }
                }
            })
            .collect::<Vec<View>>()
    };
    let history_rows = move || {
        data.deployments
            .with(|d| d["history"].as_array().cloned().unwrap_or_default())
            .into_iter()
            .map(|h| {
                let [env_name, action, v, prev, actor, at] =
                    ["environment", "action", "version_string", "previous_version_string", "actor", "at"]
                        .map(|k| text(&h, k));
                let action = match action.as_str() {
                    "experiment_started" => "A/B test started".to_owned(),
                    "experiment_reweighted" => "A/B weights changed".to_owned(),
                    "experiment_stopped" => "A/B test stopped".to_owned(),
                    _ => action,
                };
                let at = when(&at);
                view! { tr { td { (at) } td { (env_name) } td { (action) } td { (v) } td { (prev) } td { (actor) } } }
            })
            .collect::<Vec<View>>()
    };
    let env_options = move || {
        data.environments
            .get_clone()
            .into_iter()
            .map(|e| {
                let n = text(&e, "name");
                let marks: Vec<&str> =
                    [(e["protected"] == true, "protected"), (!e["gate_pass_rate"].is_null(), "gated")]
                        .into_iter()
                        .filter_map(|(on, mark)| on.then_some(mark))
                        .collect();
                let label = if marks.is_empty() { n.clone() } else { format!("{n} ({})", marks.join(", ")) };
                view! { option(value=n) { (label) } }
            })
            .collect::<Vec<View>>()
    };
    let version_options = move || {
        data.versions()
            .into_iter()
            .map(|v| {
                let value = v.clone();
                view! { option(value=value) { (v) } }
            })
            .collect::<Vec<View>>()
    };
    let deploy_refusal = move || if env.with(|e| e.is_empty()) { None } else { refusal(&env.get_clone()) };
    let deploy_by_request = move || needs_request(&env.get_clone());
    // Why the button does what it does: a refusal, the gate's word on the version, or the
    // approvals a request needs.
    let deploy_hint = move || {
        let env_name = env.get_clone();
        let gate_word = || {
            let v = version.get_clone();
            if v.is_empty() || !data.is_gated(&env_name) {
                return None;
            }
            data.gate.with(|g| standing_of(g, &v).map(|s| gate_sentence(s, g)))
        };
        deploy_refusal().or_else(gate_word).or_else(|| {
            let needed = data.approvals_required(&env_name)?;
            Some(format!(
                "{env_name} changes through change requests ({needed} {} needed).",
                if needed == 1 { "approval" } else { "approvals" }
            ))
        })
    };

    // A/B tests.
    let split_env = create_signal(String::new());
    let split_versions: [Signal<String>; SPLIT_ROWS] = std::array::from_fn(|_| create_signal(String::new()));
    let split_weights: [Signal<String>; SPLIT_ROWS] =
        std::array::from_fn(|i| create_signal(if i < 2 { "50".to_owned() } else { String::new() }));
    // The start form shows two variant rows; "Add a variant" shows more, up to SPLIT_ROWS.
    let split_shown = create_signal(2usize);
    let split_error = create_signal(String::new());
    let running = create_selector(move || {
        let e = split_env.get_clone();
        if e.is_empty() {
            return Value::Null;
        }
        data.deployments.with(|d| d["experiments"][e.as_str()].clone())
    });
    // The weight fields start from the running experiment's weights.
    create_effect(move || {
        let x = running.get_clone();
        if let Some(vs) = x["variants"].as_array() {
            for (i, v) in vs.iter().enumerate().take(SPLIT_ROWS) {
                split_weights[i].set(v["weight"].to_string());
            }
        }
    });
    let split_refusal = move || if split_env.with(|e| e.is_empty()) { None } else { refusal(&split_env.get_clone()) };
    let send_split = move |path: &'static str, payload: Value| {
        if needs_request(&text(&payload, "environment")) {
            split_error.set(String::new());
            proposal.set(Some(Proposal::split(path, &payload)));
            return;
        }
        wasm_bindgen_futures::spawn_local(async move {
            match api::post(path, payload.clone()).await {
                Ok(_) => {
                    deliver(split_error, String::new());
                    data.reload();
                }
                Err(f) => match Refusal::of(path, &payload, &f) {
                    Some(r) => deliver(refused, Some(r)),
                    None => deliver(split_error, f.message),
                },
            }
        });
    };
    let weights_of = move |n: usize| -> Result<Vec<u64>, String> {
        (0..n)
            .map(|i| {
                split_weights[i]
                    .get_clone()
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| "Each weight is a whole percentage, 0 to 100.".to_owned())
            })
            .collect()
    };
    let start_split = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let chosen: Vec<usize> = (0..SPLIT_ROWS).filter(|i| !split_versions[*i].with(String::is_empty)).collect();
        if split_env.with(String::is_empty) || chosen.len() < 2 {
            split_error.set("Pick an environment and at least two versions.".into());
            return;
        }
        let mut variants = Vec::new();
        for i in chosen {
            let Ok(weight) = split_weights[i].get_clone().trim().parse::<u64>() else {
                split_error.set("Each weight is a whole percentage, 0 to 100.".into());
                return;
            };
            variants.push(json!({"version_string": split_versions[i].get_clone(), "weight": weight}));
        }
        send_split(
            "/deployments/split",
            json!({"prompt_name": data.name.get_clone(), "environment": split_env.get_clone(), "variants": variants}),
        );
    };
    let save_weights = move |e: web_sys::SubmitEvent| {
        e.prevent_default();
        let x = running.get_clone();
        let versions: Vec<String> = x["variants"]
            .as_array()
            .map(|vs| vs.iter().map(|v| text(v, "version_string")).collect())
            .unwrap_or_default();
        match weights_of(versions.len().min(SPLIT_ROWS)) {
            Ok(weights) => {
                let variants: Vec<Value> =
                    versions.iter().zip(weights).map(|(v, w)| json!({"version_string": v, "weight": w})).collect();
                send_split(
                    "/deployments/split/weights",
                    json!({"prompt_name": data.name.get_clone(), "environment": split_env.get_clone(), "variants": variants}),
                );
            }
            Err(message) => split_error.set(message),
        }
    };
    let stop_with = move |keep: String| {
        move |_| {
            send_split(
                "/deployments/split/stop",
                json!({"prompt_name": data.name.get_clone(), "environment": split_env.get_clone(), "version_string": keep.clone()}),
            )
        }
    };
    let split_body = move || {
        let x = running.get_clone();
        let blocked = split_refusal().is_some();
        if let Some(vs) = x["variants"].as_array().cloned() {
            let since = format!("Running since {} (by {}).", when(&text(&x, "started_at")), text(&x, "started_by"));
            let weight_rows = vs
                .iter()
                .take(SPLIT_ROWS)
                .enumerate()
                .map(|(i, v)| {
                    let version = text(v, "version_string");
                    let label = format!("Weight of {version} (%)");
                    let id = format!("split-weight-{i}");
                    let for_id = id.clone();
                    view! {
                        label(r#for=for_id) { (label) }
                        input(id=id, r#type="number", min="0", max="100", step="1", bind:value=split_weights[i])
                    }
                })
                .collect::<Vec<View>>();
            let mut stops: Vec<View> = vs
                .iter()
                .map(|v| {
                    let version = text(v, "version_string");
                    let label = format!("Promote {version}");
                    view! { button(r#type="button", class="secondary", disabled=blocked, on:click=stop_with(version)) { (label) } }
                })
                .collect();
            if let Some(previous) = x["previous_version_string"].as_str().map(str::to_owned) {
                let listed = vs.iter().any(|v| v["version_string"] == previous.as_str());
                if !listed {
                    let label = format!("Revert to {previous}");
                    stops.push(view! { button(r#type="button", class="secondary", disabled=blocked, on:click=stop_with(previous)) { (label) } });
                }
            }
            view! {
                p(class="hint") { (since) }
                form(on:submit=save_weights, "aria-label"="Adjust the A/B test weights") {
                    (weight_rows)
                    button(r#type="submit", disabled=blocked) { "Save weights" }
                }
                p { "Stop the test, keeping one version for all traffic:" }
                div(class="actions") { (stops) }
            }
        } else {
            let shown = split_shown.get();
            let rows = (0..shown)
                .map(|i| {
                    let (version_id, weight_id) = (format!("split-version-{i}"), format!("split-weight-{i}"));
                    let (v_for, w_for) = (version_id.clone(), weight_id.clone());
                    let (v_label, w_label) = (format!("Variant {} version", i + 1), format!("Variant {} weight (%)", i + 1));
                    view! {
                        div(class="split-row") {
                            label(r#for=v_for) { (v_label) }
                            select(id=version_id, bind:value=split_versions[i]) { option(value="") { "—" } (version_options()) }
                            label(r#for=w_for) { (w_label) }
                            input(id=weight_id, r#type="number", min="0", max="100", step="1", bind:value=split_weights[i])
                        }
                    }
                })
                .collect::<Vec<View>>();
            view! {
                form(on:submit=start_split, "aria-label"="Start an A/B test") {
                    (rows)
                    button(r#type="button", class="secondary", disabled=shown >= SPLIT_ROWS,
                        on:click=move |_| split_shown.set((split_shown.get() + 1).min(SPLIT_ROWS))) { "Add a variant" }
                    p(class="hint") {
                        "Weights are whole percentages that add up to 100. Each user sticks to one variant. "
                        "Clients that know nothing of A/B tests get the first variant."
                    }
                    button(r#type="submit", disabled=blocked) { "Start A/B test" }
                }
            }
        }
    };
    view! {
        section(class="card") {
            h2 { "Live" }
            table(class="live-table") {
                thead { tr { th { "Environment" } th { "Version" } th { "Deployed by" } th { "At" } th {} } }
                tbody { (live_rows()) }
            }
            rollout::Rollouts(data=data)
            p(class="error", role="alert") { (form_error.get_clone()) }
        }
        (if session.can_edit() {
            view! {
                section(class="card") {
                    h2 { "Deploy a version" }
                    form(on:submit=deploy, "aria-label"="Deploy a version") {
                        label(r#for="deploy-env") { "Environment" }
                        select(id="deploy-env", bind:value=env) { option(value="") { "Choose…" } (env_options()) }
                        label(r#for="deploy-version") { "Version" }
                        select(id="deploy-version", bind:value=version) { option(value="") { "Choose…" } (version_options()) }
                        p(class="hint", "data-testid"="deploy-hint") { (deploy_hint().unwrap_or_default()) }
                        button(r#type="submit", disabled=move || deploy_refusal().is_some()) {
                            (if deploy_by_request() { "Request deploy" } else { "Deploy" })
                        }
                    }
                }
                GateRefusal(data=data, refusal=refused)
                RequestCard(data=data, proposal=proposal)
            }
        } else {
            view! { p(class="hint") { "Viewers can see deployments but not change them." } }
        })
        (if session.can_edit() {
            view! {
                section(class="card", "aria-label"="A/B test") {
                    h2 { "A/B test" }
                    label(r#for="split-env") { "Run the test in" }
                    select(id="split-env", bind:value=split_env) { option(value="") { "Choose…" } (env_options()) }
                    p(class="hint") {
                        (split_refusal().or_else(|| {
                            let e = split_env.get_clone();
                            needs_request(&e).then(|| format!("{e} changes through change requests: these buttons open one."))
                        }).unwrap_or_default())
                    }
                    (if split_env.with(String::is_empty) { view! {} } else { split_body() })
                    p(class="error", role="alert") { (split_error.get_clone()) }
                }
            }
        } else {
            view! {}
        })
        section(class="card") {
            h2 { "Deployment history" }
            table(class="history") {
                thead { tr { th { "At" } th { "Environment" } th { "Action" } th { "Version" } th { "Before" } th { "By" } } }
                tbody { (history_rows()) }
            }
        }
    }
}
