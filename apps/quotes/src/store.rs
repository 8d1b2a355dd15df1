//! Users in PostgreSQL: the only SQL of the app. The schema is made at start
//! under an advisory lock, so two API servers starting together don't race.

use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub password_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a user with this email already exists")]
    Duplicate,
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
                StoreError::Duplicate
            }
            _ => StoreError::Unavailable(e),
        }
    }
}

#[derive(Clone)]
pub struct Users {
    pool: PgPool,
}

/// Any number below 2^63 works; this one spells "quotes" in ASCII.
const SCHEMA_LOCK: i64 = 0x71756f746573;

impl Users {
    /// A pool that connects on first use, so the app starts (and answers its
    /// health check with 503) while the database server is still booting.
    pub fn connect_lazy(url: &str) -> Result<Users, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(url)?;
        Ok(Users { pool })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS users (
                id BIGSERIAL PRIMARY KEY,
                name TEXT NOT NULL,
                email TEXT NOT NULL UNIQUE,
                password_hash TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn insert(
        &self,
        name: &str,
        email: &str,
        password_hash: &str,
    ) -> Result<i64, StoreError> {
        let id: (i64,) = sqlx::query_as(
            "INSERT INTO users (name, email, password_hash) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(email)
        .bind(password_hash)
        .fetch_one(&self.pool)
        .await?;
        Ok(id.0)
    }

    pub async fn by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String, String)> =
            sqlx::query_as("SELECT id, name, email, password_hash FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(id, name, email, password_hash)| User {
            id,
            name,
            email,
            password_hash,
        }))
    }
}
