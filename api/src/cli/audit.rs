//! `promptos keygen` and `promptos audit verify`: the signing key for checkpoints, and
//! checking an exported log against a signed checkpoint without the server or its
//! database, trusting only the public key.

use crate::checkpoint::{self, Checkpoint, CheckpointError, CheckpointKey};
use anyhow::Context as _;
use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use promptos_store::StoredEvent;
use std::collections::BTreeMap;
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the private key (mode 0600); its public key goes to `<file>.pub`.
    #[arg(long, short)]
    pub out: PathBuf,
    /// The key's name in signatures (letters, digits, dots, dashes).
    #[arg(long, default_value = "promptos")]
    pub name: String,
    /// Replace an existing key: its public key is appended to `<file>.retired`, so the
    /// checkpoints it signed stay verifiable; the new key signs from the next checkpoint
    /// (restart the server to use it).
    #[arg(long)]
    pub rotate: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an export against signed checkpoints, offline: the export's hash chain, each
    /// checkpoint's signature, and that the export holds each checkpoint's position with
    /// the signed head hash. Exits 1 and says where if not.
    Verify(OfflineVerifyArgs),
}

#[derive(Debug, Args)]
pub struct OfflineVerifyArgs {
    /// The log as JSON Lines (`promptos export`, or `GET /events/export` unfiltered).
    #[arg(long)]
    pub export: PathBuf,
    /// A signed note (`GET /audit/checkpoints/latest?format=text`), or JSON with `note`
    /// fields: one checkpoint, a page of `GET /audit/checkpoints`, or the checkpoint log's
    /// lines (PROMPTOS_CHECKPOINT_LOG).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Verifier keys, one per line (`GET /audit/public-key?format=text`).
    #[arg(long)]
    pub public_key: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn keygen(args: &KeygenArgs) -> anyhow::Result<i32> {
    let key = CheckpointKey::generate(&args.name)?;
    let public_path = with_suffix(&args.out, ".pub");
    if args.rotate {
        let old = std::fs::read_to_string(&args.out)
            .with_context(|| format!("--rotate replaces a key, but {} cannot be read", args.out.display()))?;
        let old = CheckpointKey::from_private_text(&old)?;
        let retired = checkpoint::retired_keys_path(&args.out);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&retired)
            .with_context(|| format!("cannot write {}", retired.display()))?;
        writeln!(file, "{}", old.verifier_key())?;
        file.sync_all()?;
        // The new key replaces the old one in one step.
        let fresh = with_suffix(&args.out, ".new");
        let _ = std::fs::remove_file(&fresh);
        write_private(&fresh, &key)?;
        std::fs::rename(&fresh, &args.out)?;
        println!("retired key {} (its public key is now in {})", old.key_id(), retired.display());
    } else {
        anyhow::ensure!(
            !args.out.exists(),
            "{} exists; pass --rotate to replace it and keep its checkpoints verifiable",
            args.out.display()
        );
        write_private(&args.out, &key)?;
    }
    std::fs::write(&public_path, format!("{}\n", key.verifier_key()))?;
    println!("signing key {} written to {} (keep it out of the database's backups)", key.key_id(), args.out.display());
    println!("public key written to {}:\n{}", public_path.display(), key.verifier_key());
    Ok(0)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn write_private(path: &Path, key: &CheckpointKey) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(key.private_text().as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Walks an export line by line, checking positions, back-links and hashes, and calls
/// `visit` with each event. Returns how many events it holds.
pub fn walk_export(input: &Path, mut visit: impl FnMut(StoredEvent)) -> anyhow::Result<i64> {
    let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin().lock()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(input).with_context(|| format!("cannot open {}", input.display()))?,
        ))
    };
    let mut prev = promptos_store::GENESIS_HASH.to_owned();
    let mut count = 0i64;
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read line {}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let e: StoredEvent =
            serde_json::from_str(&line).with_context(|| format!("line {}: not an exported event", i + 1))?;
        let expected = count + 1;
        anyhow::ensure!(
            e.position == expected,
            "line {}: position {} where {expected} was expected (is the export complete, unfiltered and in order?)",
            i + 1,
            e.position
        );
        anyhow::ensure!(e.prev_hash == prev, "line {}: its prev_hash does not match the event before it", i + 1);
        anyhow::ensure!(e.hash == e.expected_hash(), "line {}: its content does not match its hash", i + 1);
        prev.clone_from(&e.hash);
        count += 1;
        visit(e);
    }
    Ok(count)
}

/// The notes in a checkpoint file: a note as is, or JSON values with `note` fields (one
/// object, an object with `items`, or JSON Lines).
fn read_notes(text: &str) -> anyhow::Result<Vec<String>> {
    if !text.trim_start().starts_with('{') {
        return Ok(vec![text.to_owned()]);
    }
    let values: Vec<serde_json::Value> = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(mut o)) if o.contains_key("items") => match o.remove("items") {
            Some(serde_json::Value::Array(items)) => items,
            _ => anyhow::bail!("`items` is not a list"),
        },
        Ok(one) => vec![one],
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("line {}: not JSON", i + 1)))
            .collect::<anyhow::Result<_>>()?,
    };
    let notes: Vec<String> = values.iter().filter_map(|v| v.get("note")?.as_str().map(str::to_owned)).collect();
    anyhow::ensure!(!notes.is_empty(), "no checkpoint (no `note` field) in the file");
    Ok(notes)
}

/// Verifies `note` with whichever of `keys` signed it.
fn verify_with_any(note: &str, keys: &[String]) -> Result<Checkpoint, String> {
    for key in keys {
        match checkpoint::verify(note, key) {
            Ok(c) => return Ok(c),
            Err(CheckpointError::NotSigned(_)) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("it is not signed by any of the given public keys".into())
}

#[derive(Debug, serde::Serialize)]
struct Outcome {
    ok: bool,
    events: i64,
    checkpoints: Vec<CheckpointOutcome>,
    /// Set when the export itself is not an intact chain.
    export_error: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct CheckpointOutcome {
    position: Option<i64>,
    time: Option<String>,
    origin: Option<String>,
    ok: bool,
    message: String,
}

pub fn verify_offline(args: &OfflineVerifyArgs) -> anyhow::Result<i32> {
    let keys_text = std::fs::read_to_string(&args.public_key)
        .with_context(|| format!("cannot read {}", args.public_key.display()))?;
    let keys = checkpoint::read_verifier_keys(&keys_text)?;
    anyhow::ensure!(!keys.is_empty(), "{} holds no public key", args.public_key.display());
    let notes_text = std::fs::read_to_string(&args.checkpoint)
        .with_context(|| format!("cannot read {}", args.checkpoint.display()))?;
    let signed: Vec<Result<Checkpoint, String>> =
        read_notes(&notes_text)?.iter().map(|n| verify_with_any(n, &keys)).collect();
    let wanted: std::collections::BTreeSet<i64> = signed.iter().flatten().map(|c| c.position).collect();
    let mut hashes = BTreeMap::new();
    let walked = walk_export(&args.export, |e| {
        if wanted.contains(&e.position) {
            hashes.insert(e.position, e.hash);
        }
    });
    let (events, export_error) = match walked {
        Ok(n) => (n, None),
        Err(e) => (0, Some(format!("{e:#}"))),
    };
    let checkpoints: Vec<CheckpointOutcome> = signed
        .into_iter()
        .map(|s| match s {
            Err(why) => CheckpointOutcome {
                position: None,
                time: None,
                origin: None,
                ok: false,
                message: format!("the checkpoint's signature does not hold: {why}"),
            },
            Ok(c) => {
                let time = c.time.to_rfc3339_opts(SecondsFormat::Secs, true);
                let (ok, message) = match hashes.get(&c.position) {
                    _ if export_error.is_some() => (false, "not compared: the export is not an intact chain".into()),
                    None => (
                        false,
                        format!(
                            "the export ends at position {events}, before the checkpoint's position {}: it was made \
                         before the checkpoint, or the log was cut short",
                            c.position
                        ),
                    ),
                    Some(h) if *h != c.head_hash => (
                        false,
                        format!(
                            "at position {} the export's hash is {h}, but the checkpoint signed at {time} says {}: \
                         events at or before position {} were changed after it was signed",
                            c.position, c.head_hash, c.position
                        ),
                    ),
                    Some(_) => {
                        (true, format!("events 1 to {} are exactly those the checkpoint signed at {time}", c.position))
                    }
                };
                CheckpointOutcome { position: Some(c.position), time: Some(time), origin: Some(c.origin), ok, message }
            }
        })
        .collect();
    let ok = export_error.is_none() && checkpoints.iter().all(|c| c.ok);
    let outcome = Outcome { ok, events, checkpoints, export_error };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        match &outcome.export_error {
            None => println!("export: an intact hash chain of {events} events"),
            Some(e) => println!("export: BROKEN: {e}"),
        }
        for c in &outcome.checkpoints {
            let at = c.position.map_or_else(|| "?".into(), |p| p.to_string());
            println!("checkpoint at position {at}: {}: {}", if c.ok { "ok" } else { "FAILED" }, c.message);
        }
    }
    Ok(if ok { 0 } else { 1 })
}
