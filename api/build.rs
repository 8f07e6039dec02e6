//! Build-time facts the server carries: the git commit it was built from, and the web
//! UI (`ui/dist`, written by `scripts/build-ui`), embedded with its gzip and brotli
//! forms and a content hash for `ETag`, so the binary serves the UI from any folder.
//!
//! A release build without a built UI stops here with the command that builds it, unless
//! `PROMPTOS_BUILD_WITHOUT_UI=1` asks for a binary without one on purpose. Debug builds
//! (the tests' binaries) carry the UI when it is built and a page saying it is not
//! otherwise.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("the api crate sits in the workspace").to_path_buf();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    println!("cargo::rerun-if-changed=build.rs");
    git_commit(&root);
    embed_ui(&root, &out_dir);
}

/// `PROMPTOS_GIT_COMMIT` at build time, else `git rev-parse HEAD`, else "unknown" (a
/// source archive without `.git`).
fn git_commit(root: &Path) {
    println!("cargo::rerun-if-env-changed=PROMPTOS_GIT_COMMIT");
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).current_dir(root).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let commit = std::env::var("PROMPTOS_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Rerun when HEAD moves: HEAD itself (a checkout), its reflog (every commit, reset
    // or checkout appends to it), the branch refs (a commit writes the branch's file,
    // perhaps for the first time when refs were packed) and packed-refs. Only paths that
    // exist are watched: cargo reruns on every build for a missing one.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
        let mut watched = vec![
            git_dir.join("HEAD"),
            git_dir.join("logs/HEAD"),
            git_dir.join("refs/heads"),
            git_dir.join("packed-refs"),
        ];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(git_dir.join(branch));
        }
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }
    println!("cargo::rustc-env=PROMPTOS_GIT_COMMIT={commit}");
}

fn embed_ui(root: &Path, out_dir: &Path) {
    println!("cargo::rerun-if-env-changed=PROMPTOS_BUILD_WITHOUT_UI");
    let dist = root.join("ui/dist");
    let built = dist.join("index.html").is_file();
    // Watch the built UI once it exists; before that, the whole `ui/` folder, so that
    // the `ui/dist` that scripts/build-ui writes later is seen.
    let watched = if built { dist.clone() } else { root.join("ui") };
    println!("cargo::rerun-if-changed={}", watched.display());
    let without_ui = std::env::var("PROMPTOS_BUILD_WITHOUT_UI").is_ok_and(|v| v == "1");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if !built && release && !without_ui {
        eprintln!(
            "\n\nThe web UI is not built (ui/dist/index.html is missing), and a release `promptos` carries it.\n\
             Build it first, then build again:\n\n    scripts/build-ui\n    cargo build --release --bin promptos\n\n\
             (or run `scripts/run`, which does both and starts the server).\n\
             To build a release binary without the UI on purpose: PROMPTOS_BUILD_WITHOUT_UI=1 cargo build --release\n\n"
        );
        std::process::exit(1);
    }
    let mut files = Vec::new();
    if built && !without_ui {
        collect(&dist, &dist, &mut files);
    }
    files.sort();
    let compressed = out_dir.join("ui");
    std::fs::create_dir_all(&compressed).expect("create OUT_DIR/ui");
    let mut table = String::from("&[\n");
    for (i, relative) in files.iter().enumerate() {
        let source = dist.join(relative);
        let bytes = std::fs::read(&source).unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
        let etag = hex(&Sha256::digest(&bytes)[..12]);
        let (gzip, br) = if compressible(relative) && bytes.len() >= 1024 {
            let gzip = worth_it(&bytes, gzip(&bytes)).map(|b| write_out(&compressed, &format!("{i}.gz"), &b));
            let br = worth_it(&bytes, brotli(&bytes)).map(|b| write_out(&compressed, &format!("{i}.br"), &b));
            (gzip, br)
        } else {
            (None, None)
        };
        let include = |p: Option<PathBuf>| match p {
            Some(p) => format!("Some(include_bytes!({:?}))", p.display().to_string()),
            None => "None".to_owned(),
        };
        writeln!(
            table,
            "    EmbeddedAsset {{ path: {relative:?}, etag: {etag:?}, identity: include_bytes!({:?}), gzip: {}, br: {} }},",
            source.display().to_string(),
            include(gzip),
            include(br),
        )
        .expect("write to a string");
    }
    table.push(']');
    std::fs::write(out_dir.join("ui_assets.rs"), table).expect("write ui_assets.rs");
}

/// Every file under `dir`, as a `/`-separated path relative to `base`.
fn collect(base: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(base, &path, files);
        } else {
            let relative = path.strip_prefix(base).expect("under base");
            let parts: Vec<_> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            files.push(parts.join("/"));
        }
    }
}

fn compressible(path: &str) -> bool {
    let extension = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    matches!(extension, "html" | "js" | "mjs" | "css" | "wasm" | "json" | "svg" | "txt" | "map" | "ttf" | "otf")
}

/// Keeps a compressed form only when it saves at least a tenth.
fn worth_it(original: &[u8], compressed: Vec<u8>) -> Option<Vec<u8>> {
    (compressed.len() * 10 <= original.len() * 9).then_some(compressed)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("brotli into memory");
    out
}

fn write_out(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
