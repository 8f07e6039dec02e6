use clap::Parser;
use promptos_api::cli::{init_tracing, run, Cli};

/// mimalloc for Rust and, through its `override` feature, for the bundled SQLite's C
/// allocations too: per-thread heaps where glibc had threads queue on shared arenas
/// (a third of a rebuild's profile), and freed memory returned to the system, which
/// glibc's arenas kept (BENCHMARKS.md, #3 and #5).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let code = runtime.block_on(async {
        init_tracing();
        match run(cli).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        }
    });
    drop(runtime);
    std::process::exit(code);
}
