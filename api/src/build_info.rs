//! What this binary is: its version and the git commit it was built from (set by
//! `build.rs`), shown by `promptos --version` and `GET /healthz`.

/// The package version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The full git commit the binary was built from, or `unknown` when it was built outside
/// a git checkout without `PROMPTOS_GIT_COMMIT`.
pub const GIT_COMMIT: &str = env!("PROMPTOS_GIT_COMMIT");

/// `promptos --version` prints this after the program name.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PROMPTOS_GIT_COMMIT"), ")");
