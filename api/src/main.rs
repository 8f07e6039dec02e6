use clap::Parser;
use promptos_api::cli::{init_tracing, run, Cli};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    limit_malloc_arenas();
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

/// glibc gives each thread that allocates concurrently an arena of its own, up to eight
/// per core, and keeps their freed memory: under load the server held 120 MB where two
/// arenas need 76 MB, at the same throughput (BENCHMARKS.md, #5). Set before any thread
/// starts; `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
