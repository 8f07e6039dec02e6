//! `get` on a warm cache: a 1 KB template with 3 variables, rendered.
//! Target: ≤ 1 µs per call. Run with `scripts/bench-sdk` (it builds the server first).

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use promptos_sdk::{minijinja::context, Prompts};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn warm_get(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let filler = "Answer politely, concisely and in the customer's language. ".repeat(16);
    let text = format!("Hello {{{{ customer_name }}}}, I am {{{{ agent }}}} from {{{{ team }}}}. {filler}");
    // Baseline: minijinja alone, the floor for any client that renders templates.
    let mut env = promptos_sdk::minijinja::Environment::new();
    env.add_template_owned("t", text.clone()).unwrap();
    c.bench_function("baseline: minijinja render alone", |b| {
        let t = env.get_template("t").unwrap();
        b.iter(|| {
            black_box(t.render(context! { customer_name => "Alex", agent => "Robin", team => "Support" }).unwrap())
        })
    });
    let (_server, prompts) = rt.block_on(async {
        let server = common::Server::start(None).await;
        assert!((1000..1100).contains(&text.len()), "template is {} bytes", text.len());
        server.post("/prompts/", serde_json::json!({"name": "bench"})).await;
        server.post("/prompts/bench/versions/", serde_json::json!({"version_string": "v1", "text": &text})).await;
        server.deploy("bench", "production", "v1").await;
        let key = server.api_key(&["production"]).await;
        let prompts = Prompts::connect(&server.base).api_key(key).ttl(Duration::from_secs(3600)).build().await.unwrap();
        prompts.prefetch("production").await.unwrap();
        (server, prompts)
    });
    c.bench_function("sdk get, warm cache, 1 KB template, 3 variables", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let vars = context! { customer_name => "Alex", agent => "Robin", team => "Support" };
                    black_box(prompts.get("bench", "production", vars).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).without_plots();
    targets = warm_get
}
criterion_main!(benches);
