//! Writing many rows at once: the log's batches and imports, and the read models'
//! rebuilds. Rows are lists of [`Cell`]s in the table's column order.
//!
//! SQLite takes multi-row `INSERT … VALUES` built with sqlx's `QueryBuilder` (plain `?`
//! parameters bind in order at no cost; numbered ones are looked up by name, which makes
//! a statement with thousands of them quadratic). PostgreSQL takes the same for small
//! batches and `COPY … FROM STDIN` for large loads: the rows stream as text, about a
//! megabyte per message, without a bound parameter per value.

use crate::db::Tx;
use sqlx::{PgConnection, QueryBuilder, SqliteConnection};

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Int(i64),
    Text(String),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

/// Most parameters in one statement (SQLite allows 32,766; PostgreSQL 65,535).
const MAX_PARAMETERS: usize = 30_000;

/// Inserts `rows` into `table` (`columns` comma-separated, in the rows' order) inside
/// the open transaction, a few thousand rows per statement.
pub async fn insert_rows(
    tx: &mut Tx<'_>,
    table: &str,
    columns: &str,
    rows: impl Iterator<Item = Vec<Cell>>,
) -> Result<(), sqlx::Error> {
    match tx {
        Tx::Sqlite(tx) => insert_sqlite(tx, table, columns, rows, "").await,
        Tx::Postgres(tx) => insert_postgres(tx, table, columns, rows, "").await,
    }
}

/// As [`insert_rows`], with a trailing clause (e.g. `ON CONFLICT … DO UPDATE …`).
pub async fn upsert_rows(
    tx: &mut Tx<'_>,
    table: &str,
    columns: &str,
    rows: impl Iterator<Item = Vec<Cell>>,
    on_conflict: &str,
) -> Result<(), sqlx::Error> {
    match tx {
        Tx::Sqlite(tx) => insert_sqlite(tx, table, columns, rows, on_conflict).await,
        Tx::Postgres(tx) => insert_postgres(tx, table, columns, rows, on_conflict).await,
    }
}

fn per_statement(columns: &str) -> usize {
    (MAX_PARAMETERS / columns.split(',').count()).max(1)
}

pub(crate) async fn insert_sqlite(
    conn: &mut SqliteConnection,
    table: &str,
    columns: &str,
    rows: impl Iterator<Item = Vec<Cell>>,
    suffix: &str,
) -> Result<(), sqlx::Error> {
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Cell>> = rows.by_ref().take(per_statement(columns)).collect();
        let mut q = QueryBuilder::<sqlx::Sqlite>::new(format!("INSERT INTO {table} ({columns}) "));
        q.push_values(chunk, |mut row, cells| {
            for cell in cells {
                match cell {
                    Cell::Int(i) => row.push_bind(i),
                    Cell::Text(t) => row.push_bind(t),
                    Cell::OptText(t) => row.push_bind(t),
                    Cell::OptInt(i) => row.push_bind(i),
                };
            }
        });
        q.push(format!(" {suffix}"));
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) async fn insert_postgres(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    rows: impl Iterator<Item = Vec<Cell>>,
    suffix: &str,
) -> Result<(), sqlx::Error> {
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Cell>> = rows.by_ref().take(per_statement(columns)).collect();
        let mut q = QueryBuilder::<sqlx::Postgres>::new(format!("INSERT INTO {table} ({columns}) "));
        q.push_values(chunk, |mut row, cells| {
            for cell in cells {
                match cell {
                    Cell::Int(i) => row.push_bind(i),
                    Cell::Text(t) => row.push_bind(t),
                    Cell::OptText(t) => row.push_bind(t),
                    Cell::OptInt(i) => row.push_bind(i),
                };
            }
        });
        q.push(format!(" {suffix}"));
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Writes rows with `COPY … FROM STDIN` (PostgreSQL: rebuilds and imports).
pub async fn copy_rows(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    rows: impl Iterator<Item = Vec<Cell>>,
) -> Result<(), sqlx::Error> {
    use std::fmt::Write;
    const CHUNK: usize = 1 << 20;
    let mut copy = conn.copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN")).await?;
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let mut buffer = String::with_capacity(CHUNK + 4096);
        for row in rows.by_ref() {
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    buffer.push('\t');
                }
                match cell {
                    Cell::Int(n) | Cell::OptInt(Some(n)) => {
                        let _ = write!(buffer, "{n}");
                    }
                    Cell::OptInt(None) => buffer.push_str("\\N"),
                    Cell::Text(t) | Cell::OptText(Some(t)) => copy_text(&mut buffer, t),
                    Cell::OptText(None) => buffer.push_str("\\N"),
                }
            }
            buffer.push('\n');
            if buffer.len() >= CHUNK {
                break;
            }
        }
        if let Err(e) = copy.send(buffer.into_bytes()).await {
            let _ = copy.abort("a chunk of rows could not be sent").await;
            return Err(e);
        }
    }
    copy.finish().await?;
    Ok(())
}

/// `text` in COPY's text format: backslash, tab, newline and carriage return escaped.
fn copy_text(buffer: &mut String, text: &str) {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        buffer.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => buffer.push_str("\\\\"),
            '\t' => buffer.push_str("\\t"),
            '\n' => buffer.push_str("\\n"),
            '\r' => buffer.push_str("\\r"),
            c => buffer.push(c),
        }
    }
}
