//! The two migration folders must describe one schema: the same tables, columns (types
//! mapped across the two dialects), nullability, primary keys, unique constraints and
//! indexes. A migration added to one folder and not the other, or written differently,
//! fails here.

use promptos_store::{on_pool, Backend, Db};
use promptos_testkit::scratch_db;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, PartialEq, Default)]
struct Schema {
    /// (table, column) → (kind, nullable)
    columns: BTreeMap<(String, String), (&'static str, bool)>,
    /// table → primary key columns, in key order
    primary_keys: BTreeMap<String, Vec<String>>,
    /// (table, columns) of every unique constraint or unique index
    unique: BTreeSet<(String, Vec<String>)>,
    /// index name → (table, columns, partial)
    indexes: BTreeMap<String, (String, Vec<String>, bool)>,
}

/// A column type as both dialects mean it.
fn kind(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") {
        "integer"
    } else if t.contains("text") || t.contains("char") {
        "text"
    } else {
        panic!("a column type the schema check does not know: {declared}")
    }
}

async fn sqlite_schema(db: &Db) -> Schema {
    let mut s = Schema::default();
    let tables: Vec<String> = on_pool!(db, pool => sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'"
    ).fetch_all(pool).await)
    .unwrap();
    for table in tables {
        let columns: Vec<(String, String, i64, i64)> = on_pool!(db, pool => sqlx::query_as(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)"
        ).bind(&table).fetch_all(pool).await)
        .unwrap();
        let mut key: Vec<(i64, String)> = Vec::new();
        for (name, declared, not_null, pk) in columns {
            // SQLite lets a primary key column hold NULL unless it says NOT NULL;
            // PostgreSQL never does. The schema means the latter.
            s.columns.insert((table.clone(), name.clone()), (kind(&declared), not_null == 0 && pk == 0));
            if pk > 0 {
                key.push((pk, name));
            }
        }
        key.sort();
        s.primary_keys.insert(table.clone(), key.into_iter().map(|(_, n)| n).collect());
        let indexes: Vec<(String, i64, String, i64)> = on_pool!(db, pool => sqlx::query_as(
            "SELECT name, \"unique\", origin, partial FROM pragma_index_list($1)"
        ).bind(&table).fetch_all(pool).await)
        .unwrap();
        for (index, unique, origin, partial) in indexes {
            let columns: Vec<String> = on_pool!(db, pool => sqlx::query_scalar(
                "SELECT name FROM pragma_index_info($1) ORDER BY seqno"
            ).bind(&index).fetch_all(pool).await)
            .unwrap();
            if unique == 1 && origin != "pk" {
                s.unique.insert((table.clone(), columns.clone()));
            }
            if origin == "c" {
                s.indexes.insert(index, (table.clone(), columns, partial == 1));
            }
        }
    }
    s
}

async fn postgres_schema(db: &Db) -> Schema {
    let mut s = Schema::default();
    let columns: Vec<(String, String, String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'"
    ).fetch_all(pool).await)
    .unwrap();
    for (table, column, declared, nullable) in columns {
        s.columns.insert((table.clone(), column), (kind(&declared), nullable == "YES"));
        s.primary_keys.entry(table).or_default();
    }
    let keys: Vec<(String, String, String, String, i32)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT tc.constraint_type::text, tc.constraint_name::text, tc.table_name::text, kcu.column_name::text, \
         kcu.ordinal_position::int4 FROM information_schema.table_constraints tc \
         JOIN information_schema.key_column_usage kcu \
         ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema \
         WHERE tc.table_schema = 'public' AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE') \
         AND tc.table_name <> '_sqlx_migrations' ORDER BY tc.constraint_name, kcu.ordinal_position"
    ).fetch_all(pool).await)
    .unwrap();
    let mut unique: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for (kind, name, table, column, _) in keys {
        if kind == "PRIMARY KEY" {
            s.primary_keys.entry(table).or_default().push(column);
        } else {
            unique.entry(name).or_insert_with(|| (table, Vec::new())).1.push(column);
        }
    }
    s.unique.extend(unique.into_values());
    let indexes: Vec<(String, String, String)> = on_pool!(db, pool => sqlx::query_as(
        "SELECT i.indexname::text, i.tablename::text, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'public' \
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
    ).fetch_all(pool).await)
    .unwrap();
    for (name, table, definition) in indexes {
        // CREATE [UNIQUE] INDEX name ON public.table USING btree (a, b) [WHERE …]
        let inner = definition.split_once(" USING btree (").expect("a btree index").1;
        let (list, rest) = inner.split_once(')').expect("a column list");
        let columns: Vec<String> = list.split(',').map(|c| c.trim().trim_matches('"').to_owned()).collect();
        if definition.starts_with("CREATE UNIQUE") {
            s.unique.insert((table.clone(), columns.clone()));
        }
        s.indexes.insert(name, (table, columns, rest.contains(" WHERE ")));
    }
    s
}

#[tokio::test]
async fn the_sqlite_and_postgresql_migrations_describe_the_same_schema() {
    let (sqlite, _a) = scratch_db(Backend::Sqlite).await;
    let (postgres, _b) = scratch_db(Backend::Postgres).await;
    let (sqlite, postgres) = (sqlite_schema(&sqlite).await, postgres_schema(&postgres).await);
    assert!(sqlite.columns.len() > 50, "the schema was read: {sqlite:?}");
    assert!(sqlite.indexes.contains_key("rm_prompts_live_name"), "{:?}", sqlite.indexes);
    for (part, a, b) in [
        ("columns", format!("{:#?}", sqlite.columns), format!("{:#?}", postgres.columns)),
        ("primary keys", format!("{:#?}", sqlite.primary_keys), format!("{:#?}", postgres.primary_keys)),
        ("unique constraints", format!("{:#?}", sqlite.unique), format!("{:#?}", postgres.unique)),
        ("indexes", format!("{:#?}", sqlite.indexes), format!("{:#?}", postgres.indexes)),
    ] {
        assert_eq!(a, b, "the two migration folders disagree on {part} (left: SQLite, right: PostgreSQL)");
    }
}
