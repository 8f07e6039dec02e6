use clap::Parser;
use promptos_api::cli::{init_tracing, run, Cli};

/// mimalloc for Rust and, through its `override` feature, for the bundled SQLite's C
/// allocations too: per-thread heaps where glibc had threads queue on shared arenas
/// (a third of a rebuild's profile), and freed memory returned to the system, which
/// glibc's arenas kept (BENCHMARKS.md, #3 and #5).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    return_freed_memory_promptly();
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

/// mimalloc keeps freed pages for 10 ms before it returns them; under the server's
/// steady load that kept about 40 MB more resident (BENCHMARKS.md, #5). Freed pages go
/// back at once. `MIMALLOC_PURGE_DELAY` in the environment still wins.
fn return_freed_memory_promptly() {
    // Its position in mimalloc 3's `mi_option_e` (include/mimalloc.h), which
    // libmimalloc-sys does not name.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an allocator option; mimalloc reads its options atomically.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
    }
}
