//! Schema migrations, shared by SQLite and PostgreSQL.
//!
//! Each migration is a file under `migrations/`, applied once, in order, in
//! its own transaction, and recorded in `schema_migrations`. Add a file and
//! a line here; never edit one that has shipped.

use sqlx::Executor;

use crate::{Db, StoreError};

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_identity",
        include_str!("../migrations/0001_identity.sql"),
    ),
    ("0002_image", include_str!("../migrations/0002_image.sql")),
    (
        "0003_compute",
        include_str!("../migrations/0003_compute.sql"),
    ),
    ("0004_resize", include_str!("../migrations/0004_resize.sql")),
    (
        "0005_network",
        include_str!("../migrations/0005_network.sql"),
    ),
    (
        "0006_server_pages",
        include_str!("../migrations/0006_server_pages.sql"),
    ),
    (
        "0007_compute_breadth",
        include_str!("../migrations/0007_compute_breadth.sql"),
    ),
];

pub(crate) async fn apply(db: &Db) -> Result<(), StoreError> {
    db.pool()
        .execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await?;
    for (name, sql) in MIGRATIONS {
        let done: Option<(String,)> =
            sqlx::query_as("SELECT name FROM schema_migrations WHERE name = $1")
                .bind(*name)
                .fetch_optional(db.pool())
                .await?;
        if done.is_some() {
            continue;
        }
        let mut tx = db.pool().begin().await?;
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            tx.execute(stmt)
                .await
                .map_err(|source| StoreError::Migration { name, source })?;
        }
        sqlx::query("INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)")
            .bind(*name)
            .bind(chrono_free_now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(migration = name, "applied");
    }
    Ok(())
}

fn chrono_free_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
