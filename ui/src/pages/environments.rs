//! The Environments page (`/ui/environments`, every role, read-only): what is live where,
//! as a matrix of prompts × environments ([`crate::environment_matrix`]). Each column
//! says whether the environment is protected and how changes reach it; each cell is the
//! live version, or the split of a running A/B test, and opens the prompt. The page
//! follows the change feed, so a deploy made elsewhere shows without a reload.

use crate::api::{self, Failure};
use crate::app::{deliver, Session};
use crate::environment_matrix::{Cell, Environment, Matrix};
use crate::live::{self, Status};
use sycamore::prelude::*;

/// At most this many pages of 500 prompt names are asked for.
const MAX_PROMPT_PAGES: usize = 20;

/// Asks the server for everything the matrix shows: the environments, the prompts'
/// names, and what is deployed in each environment (one call each, side by side).
async fn fetch() -> Result<Matrix, Failure> {
    let environments = Environment::list(&api::get("/environments").await?);
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PROMPT_PAGES {
        let after = cursor.as_deref().map(|c| format!("&cursor={}", api::encode(c))).unwrap_or_default();
        let page = api::get(&format!("/prompts/?limit=500{after}")).await?;
        names.extend(
            page["items"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str().map(str::to_owned)),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let paths: Vec<String> =
        environments.iter().map(|e| format!("/deployed/?environment={}", api::encode(&e.name))).collect();
    let answers = futures::future::join_all(paths.iter().map(|p| api::get(p))).await;
    let mut deployed = Vec::new();
    for (environment, answer) in environments.iter().zip(answers) {
        deployed.push((environment.name.clone(), answer?));
    }
    Ok(Matrix::build(environments, &names, &deployed))
}

#[component]
pub fn EnvironmentsPage() -> View {
    let matrix = create_signal(None::<Matrix>);
    let error = create_signal(String::new());
    let status = create_signal(Status::Connecting);
    // An answer to an older load must not overwrite a newer one.
    let generation = create_signal(0u64);
    let load = move || {
        if !generation.is_alive() {
            return;
        }
        let mine = generation.get_untracked() + 1;
        generation.set(mine);
        wasm_bindgen_futures::spawn_local(async move {
            let answer = fetch().await;
            if !generation.is_alive() || generation.get_untracked() != mine {
                return;
            }
            match answer {
                Ok(m) => {
                    deliver(error, String::new());
                    if matrix.with_untracked(|old| old.as_ref() != Some(&m)) {
                        deliver(matrix, Some(m));
                    }
                }
                Err(f) => deliver(error, f.message),
            }
        });
    };
    load();
    live::follow_all(status, load);

    let live_label = move || match status.get() {
        Status::Connecting => "Connecting…",
        Status::Live => "Live",
        Status::Retrying => "Reconnecting…",
    };
    let body = move || match matrix.get_clone() {
        None => view! { p(class="hint") { "Loading…" } },
        Some(m) => view! { MatrixTable(matrix=m) },
    };
    view! {
        section(class="card") {
            div(class="title-row") {
                h1 { "Environments" }
                span(class=move || if status.get() == Status::Live { "live-status on" } else { "live-status" },
                    "data-testid"="live-status", title="Deploys made elsewhere appear here without a reload") { (live_label()) }
            }
            p(class="hint") {
                "What is live where: a row per prompt, a column per environment. A cell shows the version that "
                "serves, or each variant's share while an A/B test runs; it opens the prompt's deployments."
            }
            p(class="error", role="alert", "data-testid"="environments-error") { (error.get_clone()) }
            (body())
        }
    }
}

#[component(inline_props)]
fn MatrixTable(matrix: Matrix) -> View {
    let session = use_context::<Session>();
    let link = move |href: String, text: String, label: String| {
        let go = href.clone();
        view! {
            a(href=href, "aria-label"=label, on:click=move |e: web_sys::MouseEvent| { e.prevent_default(); session.navigate(&go); }) { (text) }
        }
    };
    let headers = matrix
        .environments
        .iter()
        .map(|e| {
            let (name, policy) = (e.name.clone(), e.policy());
            let marker = if e.protected {
                view! { " " span(class="protected", "data-testid"="protected", title="Only admins deploy to it or roll it back") { "protected" } }
            } else {
                view! {}
            };
            let env = name.clone();
            view! {
                th(scope="col", "data-env"=env) {
                    span(class="env-name") { (name) } (marker)
                    span(class="policy", "data-testid"="policy") { (policy) }
                }
            }
        })
        .collect::<Vec<View>>();
    let rows = matrix
        .rows
        .iter()
        .map(|row| {
            let prompt = row.prompt.clone();
            let encoded = api::encode(&prompt);
            let cells = row
                .cells
                .iter()
                .zip(&matrix.environments)
                .map(|(cell, env)| {
                    let href = format!("/ui/prompts/{encoded}/deployments");
                    let env = env.name.clone();
                    let (kind, content) = match cell {
                        Cell::NotDeployed => {
                            ("cell not-deployed", view! { span(class="not-deployed", title="Not deployed") { "—" } })
                        }
                        Cell::Version(v) => ("cell version", link(href, v.clone(), format!("{prompt} in {env}: {v}"))),
                        Cell::Split(s) => {
                            let target = link(href, s.clone(), format!("{prompt} in {env}: A/B test {s}"));
                            ("cell split-cell", view! { span(class="split-label") { "A/B test" } (target) })
                        }
                    };
                    view! { td(class=kind, "data-env"=env, "data-testid"="cell") { (content) } }
                })
                .collect::<Vec<View>>();
            let name = link(format!("/ui/prompts/{encoded}"), prompt.clone(), prompt.clone());
            view! { tr("data-prompt"=prompt) { th(scope="row") { (name) } (cells) } }
        })
        .collect::<Vec<View>>();
    let summary = matrix.summary();
    let empty = if matrix.rows.is_empty() {
        view! { p(class="hint", "data-testid"="environments-empty") { "No prompts yet." } }
    } else {
        view! {}
    };
    view! {
        p(class="hint", "data-testid"="matrix-summary") { (summary) }
        div(class="scroll") {
            table(class="matrix") {
                thead { tr { th(scope="col") { "Prompt" } (headers) } }
                tbody { (rows) }
            }
        }
        (empty)
    }
}
