use clap::Parser;
use promptos_api::cli::{init_tracing, run, Cli};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    init_tracing();
    match run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
