//! The seed's example application in Rust: a chatbot that asks PromptOS for its prompt
//! on every interaction and never redeploys to change it.
//!
//! ```sh
//! PROMPTOS_API_KEY=pos_… cargo run -p promptos-sdk --example chatbot
//! ```
//!
//! Environment: `PROMPTOS_URL` (default `http://127.0.0.1:8080`), `PROMPTOS_API_KEY`,
//! `PROMPTOS_NATS_URL` (optional; otherwise the server's SSE feed), `PROMPTOS_ENV`
//! (default `production`), `PROMPTOS_PROMPT` (default `customer-support-agent`),
//! `PROMPTOS_CHATBOT_ROUNDS` (default: run until stopped), `PROMPTOS_APP_NAME` (the name
//! its instances have in the server's fleet view, default `support-chatbot`),
//! `PROMPTOS_HEARTBEAT_SECONDS` (how often it reports to the fleet view, default 15).

use promptos_sdk::minijinja::context;
use promptos_sdk::Prompts;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let url = var("PROMPTOS_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let env = var("PROMPTOS_ENV").unwrap_or_else(|| "production".into());
    let prompt = var("PROMPTOS_PROMPT").unwrap_or_else(|| "customer-support-agent".into());
    let rounds: Option<usize> = var("PROMPTOS_CHATBOT_ROUNDS").and_then(|r| r.parse().ok());

    let app_name = var("PROMPTOS_APP_NAME").unwrap_or_else(|| "support-chatbot".into());
    let mut builder = Prompts::connect(url).app_name(app_name);
    if let Some(secs) = var("PROMPTOS_HEARTBEAT_SECONDS").and_then(|s| s.parse::<f64>().ok()) {
        builder = builder.heartbeat(Duration::from_secs_f64(secs));
    }
    if let Some(key) = var("PROMPTOS_API_KEY") {
        builder = builder.api_key(key);
    }
    if let Some(nats) = var("PROMPTOS_NATS_URL") {
        builder = builder.nats_url(nats);
    }
    let prompts = builder.build().await?;
    prompts.on_change(|c| {
        eprintln!(
            "[promptos] {} in {} is now {}",
            c.prompt,
            c.environment,
            c.version_string.as_deref().unwrap_or("gone")
        )
    });

    let customers = ["Alex", "Sam", "Kim"];
    for round in 0.. {
        if rounds.is_some_and(|r| round >= r) {
            break;
        }
        let customer_name = customers[round % customers.len()];
        let support_prompt = prompts.get(&prompt, &env, context! { customer_name }).await?;
        println!("\n--- RENDERED PROMPT ---\n{support_prompt}");
        if prompts.is_stale() {
            eprintln!("[promptos] server unreachable: serving the last known prompt");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}
