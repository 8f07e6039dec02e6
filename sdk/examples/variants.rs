//! Which A/B variant each subject is served: reads subject keys (user or session ids),
//! one per line, on standard input and prints `subject<TAB>version` for each, as the
//! Rust SDK buckets them. Every PromptOS SDK buckets the same way; the Python SDK's
//! tests compare their answers with this program's.
//!
//! ```sh
//! printf 'user-1\nuser-2\n' | PROMPTOS_API_KEY=pos_… cargo run -p promptos-sdk --example variants -- checkout production
//! ```
//!
//! Arguments: the prompt and the environment. Environment: `PROMPTOS_URL` (default
//! `http://127.0.0.1:8080`), `PROMPTOS_API_KEY`.

use promptos_sdk::minijinja::context;
use std::io::{BufRead, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(prompt), Some(env)) = (args.next(), args.next()) else {
        return Err("usage: variants <prompt> <environment>  (subjects on standard input)".into());
    };
    let url = std::env::var("PROMPTOS_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let mut builder = promptos_sdk::Prompts::connect(url).without_change_feed().lenient();
    if let Ok(key) = std::env::var("PROMPTOS_API_KEY") {
        builder = builder.api_key(key);
    }
    let prompts = promptos_sdk::blocking::Prompts::build(builder)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for subject in std::io::stdin().lock().lines() {
        let subject = subject?;
        let served = prompts.get_for(&prompt, &env, &subject, context! {})?;
        writeln!(out, "{subject}\t{}", served.version_string)?;
    }
    out.flush()?;
    Ok(())
}
