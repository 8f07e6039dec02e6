//! The seed's Python client keeps working, authenticated by passing `headers`.

use crate::helpers::*;
use promptos_testkit::both_backends;
use reqwest::StatusCode;

both_backends!(the_seed_python_client_reads_with_an_api_key_and_is_refused_without, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("customer-support-agent").await;
    app.create_version("customer-support-agent", "v1.0", "Hello {{customer_name}}, how can I help you today?").await;
    expect_status(app.deploy("customer-support-agent", "production", "v1.0").await, StatusCode::OK).await;
    let (_, key) = app.api_key(&["production"]).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../compat/seed_python_client");
    let out = std::process::Command::new("python3")
        .arg("check.py")
        .arg(format!("{}/", app.base))
        .arg(&key)
        .current_dir(dir)
        .output()
        .expect("python3 runs (and has `requests`: pip install requests)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("with key: Hello Alex, how can I help you today?"), "{stdout}");
    assert!(stdout.contains("without key: Failed to connect to PromptOS service: 401"), "{stdout}");
});
