//! The SQL store of ferrostack.
//!
//! One pool ([`Db`]) over embedded SQLite (WAL, the default) or PostgreSQL
//! (`postgres://…`), and one list of migrations applied at start for both.
//! Queries are written once in the subset both databases share: `$1`
//! placeholders, TEXT ids, BIGINT for integers, booleans (0/1) and times
//! (Unix microseconds), and JSON documents stored as TEXT.
#![forbid(unsafe_code)]

mod migrations;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use sqlx;

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database error")]
    Sql(#[from] sqlx::Error),
    #[error("migration {name} failed")]
    Migration {
        name: &'static str,
        source: sqlx::Error,
    },
}

/// The shared pool.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// The embedded SQLite database of a state directory.
    pub async fn open_sqlite(path: &Path) -> Result<Db, StoreError> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connects to `url` and applies every pending migration.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let opts = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = match backend {
            // One writer at a time is what SQLite allows anyway; a single
            // connection also avoids SQLITE_BUSY on read-then-write
            // transactions. Hot reads are served from in-memory caches.
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await?
            }
        };
        let db = Db { pool, backend };
        migrations::apply(&db).await?;
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `count` numbered placeholders from `$first` (`$2, $3, $4`), for an
/// `IN (…)` list of bound values.
pub fn marks(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Booleans are stored as 0/1 BIGINT on both databases.
pub fn flag(b: bool) -> i64 {
    i64::from(b)
}

#[cfg(test)]
mod tests {
    use super::marks;

    #[test]
    fn marks_count_from_the_first() {
        assert_eq!(marks(2, 3), "$2, $3, $4");
        assert_eq!(marks(1, 1), "$1");
        assert_eq!(marks(1, 0), "");
    }
}
