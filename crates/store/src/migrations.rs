//! Schema migrations, shared by SQLite and PostgreSQL.
//!
//! Each migration is a file under `migrations/`, applied once, in order, in
//! its own transaction, and recorded in `schema_migrations`. Add a file and
//! a line here; never edit one that has shipped. Most are plain SQL both
//! databases take, split at `;`; the few that can't be (triggers) come as a
//! file per database, split at lines that say `-- next`.

use sqlx::Executor;

use crate::{Backend, Db, StoreError};

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
    (
        "0008_hosts_contract",
        include_str!("../migrations/0008_hosts_contract.sql"),
    ),
    (
        "0010_server_cas",
        include_str!("../migrations/0010_server_cas.sql"),
    ),
    ("0011_sagas", include_str!("../migrations/0011_sagas.sql")),
    (
        "0012_volumes",
        include_str!("../migrations/0012_volumes.sql"),
    ),
    ("0013_shelve", include_str!("../migrations/0013_shelve.sql")),
    (
        "0014_tunnel_ip",
        include_str!("../migrations/0014_tunnel_ip.sql"),
    ),
    (
        "0015_migrations",
        include_str!("../migrations/0015_migrations.sql"),
    ),
    (
        "0016_loadbalancers",
        include_str!("../migrations/0016_loadbalancers.sql"),
    ),
    (
        "0018_server_password",
        include_str!("../migrations/0018_server_password.sql"),
    ),
    (
        "0019_lb_quotas",
        include_str!("../migrations/0019_lb_quotas.sql"),
    ),
    ("0020_lb_l7", include_str!("../migrations/0020_lb_l7.sql")),
    (
        "0021_certificates",
        include_str!("../migrations/0021_certificates.sql"),
    ),
    (
        "0022_identity_records",
        include_str!("../migrations/0022_identity_records.sql"),
    ),
    (
        "0023_server_disk_config",
        include_str!("../migrations/0023_server_disk_config.sql"),
    ),
];

/// Migrations written once per database: (name, SQLite, PostgreSQL), each
/// applied after the shared ones whose names sort before it.
const PER_BACKEND: &[(&str, &str, &str)] = &[
    (
        "0009_host_generations",
        include_str!("../migrations/0009_host_generations.sqlite.sql"),
        include_str!("../migrations/0009_host_generations.postgres.sql"),
    ),
    (
        "0017_loadbalancer_generations",
        include_str!("../migrations/0017_loadbalancer_generations.sqlite.sql"),
        include_str!("../migrations/0017_loadbalancer_generations.postgres.sql"),
    ),
];

/// Every migration in order, as the statements `backend` runs.
fn plan(backend: Backend) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut all: Vec<(&str, Vec<&str>)> = MIGRATIONS
        .iter()
        .map(|(name, sql)| {
            let stmts = sql.split(';').map(str::trim).filter(|s| !s.is_empty());
            (*name, stmts.collect())
        })
        .collect();
    for (name, sqlite, postgres) in PER_BACKEND {
        let sql = match backend {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        };
        let stmts = sql
            .split("\n-- next\n")
            .map(str::trim)
            .filter(|s| !s.is_empty());
        all.push((*name, stmts.collect()));
    }
    all.sort_by_key(|(name, _)| *name);
    all
}

pub(crate) async fn apply(db: &Db) -> Result<(), StoreError> {
    db.pool()
        .execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await?;
    for (name, stmts) in plan(db.backend()) {
        let done: Option<(String,)> =
            sqlx::query_as("SELECT name FROM schema_migrations WHERE name = $1")
                .bind(name)
                .fetch_optional(db.pool())
                .await?;
        if done.is_some() {
            continue;
        }
        let mut tx = db.pool().begin().await?;
        for stmt in stmts {
            tx.execute(stmt)
                .await
                .map_err(|source| StoreError::Migration { name, source })?;
        }
        sqlx::query("INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)")
            .bind(name)
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
