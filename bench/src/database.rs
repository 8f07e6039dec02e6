//! A fresh database for each benchmark, removed at its end.

use anyhow::{Context, Result};
use promptos_store::{Backend, Db};

/// A fresh database for one benchmark: a SQLite file in a temporary directory, or a
/// PostgreSQL database dropped at the end.
pub(crate) struct Database {
    pub(crate) url: String,
    dir: Option<std::path::PathBuf>,
    postgres: Option<(String, String)>,
}

impl Database {
    pub(crate) async fn create(backend: Backend, postgres_url: &str) -> Result<Self> {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("promptos-bench-{suffix}"));
                std::fs::create_dir_all(&dir)?;
                Ok(Self {
                    url: format!("sqlite://{}", dir.join("promptos.db").display()),
                    dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                use sqlx::{Connection, Executor};
                let name = format!("promptos_bench_{suffix}");
                let mut conn = sqlx::PgConnection::connect(postgres_url)
                    .await
                    .with_context(|| format!("PostgreSQL at {postgres_url} (set --postgres-url)"))?;
                conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
                let (prefix, _) = postgres_url.rsplit_once('/').context("a database URL with a path")?;
                Ok(Self { url: format!("{prefix}/{name}"), dir: None, postgres: Some((postgres_url.to_owned(), name)) })
            }
        }
    }

    pub(crate) async fn connect(&self) -> Result<Db> {
        Ok(Db::connect_and_migrate(&self.url).await?)
    }

    pub(crate) async fn remove(self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = &self.postgres {
            use sqlx::{Connection, Executor};
            if let Ok(mut conn) = sqlx::PgConnection::connect(admin).await {
                let _ = conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
            }
        }
    }
}
