//! The key manager's SQL: secrets, containers and the secrets a
//! container names. Nothing here decides who may see what.

use ferro_store::Db;
use sqlx::Row;

use crate::error::Result;
use crate::model::{Container, Secret};

/// A container's (name, secret id) pairs, by name.
pub type Members = Vec<(String, String)>;

pub struct Store {
    pub db: Db,
}

impl Store {
    fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    pub async fn insert_secret(&self, s: &Secret) -> Result<()> {
        sqlx::query(
            "INSERT INTO km_secrets (id, seq, project_id, creator_id, name, secret_type, algorithm, bit_length, mode, \
             expiration, content_type, payload, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&s.id)
        .bind(s.seq)
        .bind(&s.project_id)
        .bind(&s.creator_id)
        .bind(&s.name)
        .bind(&s.secret_type)
        .bind(&s.algorithm)
        .bind(s.bit_length)
        .bind(&s.mode)
        .bind(&s.expiration)
        .bind(&s.content_type)
        .bind(&s.payload)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn secret(&self, id: &str) -> Result<Option<Secret>> {
        Ok(sqlx::query_as("SELECT * FROM km_secrets WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// A project's secrets (by creation), optionally of one name: a page
    /// and the total.
    pub async fn secrets(
        &self,
        project: &str,
        name: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Secret>, i64)> {
        let filter = if name.is_some() { " AND name = $2" } else { "" };
        let page = format!(
            "SELECT * FROM km_secrets WHERE project_id = $1{filter} ORDER BY seq LIMIT {limit} OFFSET {offset}"
        );
        let count = format!("SELECT COUNT(*) FROM km_secrets WHERE project_id = $1{filter}");
        let mut q = sqlx::query_as::<_, Secret>(&page).bind(project);
        let mut c = sqlx::query(&count).bind(project);
        if let Some(n) = name {
            q = q.bind(n);
            c = c.bind(n);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let total: i64 = c.fetch_one(self.pool()).await?.try_get(0)?;
        Ok((rows, total))
    }

    pub async fn delete_secret(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM km_secrets WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A container with the secrets it names, in one transaction.
    pub async fn insert_container(&self, c: &Container, members: &Members) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO km_containers (id, seq, project_id, creator_id, name, type, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(c.seq)
        .bind(&c.project_id)
        .bind(&c.creator_id)
        .bind(&c.name)
        .bind(&c.kind)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&mut *tx)
        .await?;
        for (name, secret) in members {
            sqlx::query("INSERT INTO km_container_secrets (container_id, name, secret_id) VALUES ($1, $2, $3)")
                .bind(&c.id)
                .bind(name)
                .bind(secret)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn members(&self, id: &str) -> Result<Members> {
        Ok(sqlx::query_as(
            "SELECT name, secret_id FROM km_container_secrets WHERE container_id = $1 ORDER BY name",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn container(&self, id: &str) -> Result<Option<(Container, Members)>> {
        let c: Option<Container> = sqlx::query_as("SELECT * FROM km_containers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        match c {
            Some(c) => {
                let m = self.members(&c.id).await?;
                Ok(Some((c, m)))
            }
            None => Ok(None),
        }
    }

    pub async fn containers(
        &self,
        project: &str,
        name: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<(Container, Members)>, i64)> {
        let filter = if name.is_some() { " AND name = $2" } else { "" };
        let page = format!(
            "SELECT * FROM km_containers WHERE project_id = $1{filter} ORDER BY seq LIMIT {limit} OFFSET {offset}"
        );
        let count = format!("SELECT COUNT(*) FROM km_containers WHERE project_id = $1{filter}");
        let mut q = sqlx::query_as::<_, Container>(&page).bind(project);
        let mut c = sqlx::query(&count).bind(project);
        if let Some(n) = name {
            q = q.bind(n);
            c = c.bind(n);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let total: i64 = c.fetch_one(self.pool()).await?.try_get(0)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let m = self.members(&row.id).await?;
            out.push((row, m));
        }
        Ok((out, total))
    }

    pub async fn delete_container(&self, id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        for sql in [
            "DELETE FROM km_container_secrets WHERE container_id = $1",
            "DELETE FROM km_containers WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
