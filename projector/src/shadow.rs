//! PostgreSQL read models rebuilt beside the live ones, then swapped in.
//!
//! `COPY` into a table with its indexes costs a B-tree insert per index per row, and the
//! write-ahead log of all of them; on a million events that was 80 % of a rebuild. So
//! [`rebuild`](crate::rebuild) copies into a bare twin of each table (`<table>__rebuild`:
//! same columns, no index), builds the twin's indexes once, sorted, and swaps the twin in
//! by renaming, all in its one transaction. Readers see the old tables, indexes included,
//! until the commit; the swap itself holds the tables' locks only for the renames.

use sqlx::PgConnection;

/// The twin table a rebuild fills: `<table>__rebuild`.
pub fn twin(table: &str) -> String {
    format!("{table}{SUFFIX}")
}

const SUFFIX: &str = "__rebuild";

/// Creates the bare twin of `table`: its columns, defaults and checks, no index.
pub async fn create_twin(conn: &mut PgConnection, table: &str) -> Result<(), sqlx::Error> {
    let sql = format!("CREATE TABLE {} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)", twin(table));
    sqlx::query(&sql).execute(conn).await.map(|_| ())
}

/// Gives the filled twin of `table` the live table's primary key, unique constraints and
/// indexes (named `<name>__rebuild` until the swap), then drops the live table and
/// renames the twin and its indexes into its place.
pub async fn swap_in(conn: &mut PgConnection, table: &str) -> Result<(), sqlx::Error> {
    // The sorts behind the index builds: more memory than the 64 MB default, for this
    // transaction only.
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'").execute(&mut *conn).await?;
    let constraints: Vec<(String, String)> = sqlx::query_as(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = $1::regclass AND contype IN ('p', 'u') ORDER BY conname",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.relname::text, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         WHERE x.indrelid = $1::regclass \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         ORDER BY i.relname",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let shadow = twin(table);
    for (name, definition) in &constraints {
        let sql = format!("ALTER TABLE {shadow} ADD CONSTRAINT {name}{SUFFIX} {definition}");
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    for (name, definition) in &indexes {
        sqlx::query(&index_on_twin(definition, name, table)?).execute(&mut *conn).await?;
    }
    sqlx::query(&format!("DROP TABLE {table}")).execute(&mut *conn).await?;
    sqlx::query(&format!("ALTER TABLE {shadow} RENAME TO {table}")).execute(&mut *conn).await?;
    for (name, _) in &constraints {
        let sql = format!("ALTER TABLE {table} RENAME CONSTRAINT {name}{SUFFIX} TO {name}");
        sqlx::query(&sql).execute(&mut *conn).await?;
    }
    for (name, _) in &indexes {
        sqlx::query(&format!("ALTER INDEX {name}{SUFFIX} RENAME TO {name}")).execute(&mut *conn).await?;
    }
    Ok(())
}

/// `CREATE [UNIQUE] INDEX name ON [schema.]table USING …` (as `pg_get_indexdef` prints
/// it) rewritten to build `name__rebuild` on the twin.
fn index_on_twin(definition: &str, name: &str, table: &str) -> Result<String, sqlx::Error> {
    let unexpected = || sqlx::Error::Protocol(format!("unexpected index definition for {table}: {definition}"));
    let (head, rest) = definition.split_once(" ON ").ok_or_else(unexpected)?;
    let (target, tail) = rest.split_once(' ').ok_or_else(unexpected)?;
    let renamed = head.strip_suffix(name).ok_or_else(unexpected)?;
    let table_ok = target == table || target.ends_with(&format!(".{table}"));
    if !table_ok {
        return Err(unexpected());
    }
    Ok(format!("{renamed}{name}{SUFFIX} ON {target}{SUFFIX} {tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_definitions_are_moved_to_the_twin() {
        let def = "CREATE UNIQUE INDEX rm_prompts_live_name ON public.rm_prompts USING btree (name) WHERE (deleted_at IS NULL)";
        assert_eq!(
            index_on_twin(def, "rm_prompts_live_name", "rm_prompts").unwrap(),
            "CREATE UNIQUE INDEX rm_prompts_live_name__rebuild ON public.rm_prompts__rebuild USING btree (name) WHERE (deleted_at IS NULL)"
        );
        assert!(index_on_twin(def, "other", "rm_prompts").is_err());
        assert!(index_on_twin(def, "rm_prompts_live_name", "rm_versions").is_err());
    }
}
