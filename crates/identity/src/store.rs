//! SQL for the identity service. Table and column names here are constants,
//! never caller input; values are always bound parameters.

use ferro_store::sqlx::{self, any::AnyRow, AnyPool, FromRow};

use crate::error::Result;
use crate::model::*;

/// A simple `column = value` filter list for list queries.
#[derive(Default)]
pub struct Filter {
    clauses: Vec<(&'static str, FilterValue)>,
}

enum FilterValue {
    Text(String),
    Int(i64),
}

impl Filter {
    pub fn text(mut self, col: &'static str, v: Option<&str>) -> Self {
        if let Some(v) = v {
            self.clauses.push((col, FilterValue::Text(v.to_owned())));
        }
        self
    }

    pub fn int(mut self, col: &'static str, v: Option<i64>) -> Self {
        if let Some(v) = v {
            self.clauses.push((col, FilterValue::Int(v)));
        }
        self
    }
}

/// `SELECT * FROM table [WHERE …] ORDER BY order`.
pub async fn list<T>(
    pool: &AnyPool,
    table: &'static str,
    f: Filter,
    order: &'static str,
) -> Result<Vec<T>>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let mut sql = format!("SELECT * FROM {table}");
    for (i, (col, _)) in f.clauses.iter().enumerate() {
        sql.push_str(if i == 0 { " WHERE " } else { " AND " });
        sql.push_str(&format!("{col} = ${}", i + 1));
    }
    sql.push_str(&format!(" ORDER BY {order}"));
    let mut q = sqlx::query_as::<_, T>(&sql);
    for (_, v) in f.clauses {
        q = match v {
            FilterValue::Text(s) => q.bind(s),
            FilterValue::Int(n) => q.bind(n),
        };
    }
    Ok(q.fetch_all(pool).await?)
}

/// `SELECT * FROM table WHERE id = $1`.
pub async fn get<T>(pool: &AnyPool, table: &'static str, id: &str) -> Result<Option<T>>
where
    T: for<'r> FromRow<'r, AnyRow> + Send + Unpin,
{
    let sql = format!("SELECT * FROM {table} WHERE id = $1");
    Ok(sqlx::query_as::<_, T>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

pub async fn delete(pool: &AnyPool, table: &'static str, id: &str) -> Result<bool> {
    let sql = format!("DELETE FROM {table} WHERE id = $1");
    Ok(sqlx::query(&sql)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        > 0)
}

pub async fn domain_by_name(pool: &AnyPool, name: &str) -> Result<Option<Domain>> {
    Ok(sqlx::query_as("SELECT * FROM domains WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?)
}

pub async fn project_by_name(
    pool: &AnyPool,
    domain_id: &str,
    name: &str,
) -> Result<Option<Project>> {
    Ok(
        sqlx::query_as("SELECT * FROM projects WHERE domain_id = $1 AND name = $2")
            .bind(domain_id)
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn user_by_name(pool: &AnyPool, domain_id: &str, name: &str) -> Result<Option<User>> {
    Ok(
        sqlx::query_as("SELECT * FROM users WHERE domain_id = $1 AND name = $2")
            .bind(domain_id)
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn group_by_name(pool: &AnyPool, domain_id: &str, name: &str) -> Result<Option<Group>> {
    Ok(
        sqlx::query_as("SELECT * FROM groups WHERE domain_id = $1 AND name = $2")
            .bind(domain_id)
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn role_by_name(pool: &AnyPool, name: &str) -> Result<Option<Role>> {
    Ok(
        sqlx::query_as("SELECT * FROM roles WHERE domain_id = '' AND name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn groups_of_user(pool: &AnyPool, user_id: &str) -> Result<Vec<Group>> {
    Ok(sqlx::query_as(
        "SELECT g.* FROM groups g JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

pub async fn users_of_group(pool: &AnyPool, group_id: &str) -> Result<Vec<User>> {
    Ok(sqlx::query_as(
        "SELECT u.* FROM users u JOIN group_members m ON m.user_id = u.id WHERE m.group_id = $1 ORDER BY u.name",
    )
    .bind(group_id)
    .fetch_all(pool)
    .await?)
}

pub async fn is_member(pool: &AnyPool, group_id: &str, user_id: &str) -> Result<bool> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT group_id FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

/// Every assignment (the table is small next to everything else, and the
/// service filters and expands it in memory).
pub async fn all_assignments(pool: &AnyPool) -> Result<Vec<Assignment>> {
    Ok(
        sqlx::query_as("SELECT * FROM role_assignments ORDER BY actor_id, target_id, role_id")
            .fetch_all(pool)
            .await?,
    )
}

pub async fn assignments_for_actors(pool: &AnyPool, user_id: &str) -> Result<Vec<Assignment>> {
    Ok(sqlx::query_as(
        "SELECT * FROM role_assignments WHERE (actor_type = 'user' AND actor_id = $1) \
         OR (actor_type = 'group' AND actor_id IN (SELECT group_id FROM group_members WHERE user_id = $1))",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

pub async fn implied_pairs(pool: &AnyPool) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT prior_role_id, implied_role_id FROM implied_roles ORDER BY prior_role_id",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn setting(pool: &AnyPool, name: &str) -> Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| r.0))
}

/// One of Keystone's small records (credentials, policies, consumers,
/// endpoint groups, domain configuration): its id, owner and JSON body.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Record {
    pub id: String,
    pub owner_id: String,
    pub body: String,
}

pub async fn record(pool: &AnyPool, kind: &str, id: &str) -> Result<Option<Record>> {
    Ok(sqlx::query_as(
        "SELECT id, owner_id, body FROM identity_records WHERE kind = $1 AND id = $2",
    )
    .bind(kind)
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The records of a kind, all or one owner's, oldest first.
pub async fn records(pool: &AnyPool, kind: &str, owner: Option<&str>) -> Result<Vec<Record>> {
    let q = match owner {
        Some(o) => sqlx::query_as(
            "SELECT id, owner_id, body FROM identity_records WHERE kind = $1 AND owner_id = $2 ORDER BY created_at, id",
        )
        .bind(kind)
        .bind(o.to_owned()),
        None => sqlx::query_as(
            "SELECT id, owner_id, body FROM identity_records WHERE kind = $1 ORDER BY created_at, id",
        )
        .bind(kind),
    };
    Ok(q.fetch_all(pool).await?)
}

/// Writes a record, replacing the body (and owner) of one with its id.
pub async fn put_record(pool: &AnyPool, kind: &str, r: &Record) -> Result<()> {
    sqlx::query(
        "INSERT INTO identity_records (kind, id, owner_id, body, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (kind, id) DO UPDATE SET owner_id = excluded.owner_id, body = excluded.body",
    )
    .bind(kind)
    .bind(&r.id)
    .bind(&r.owner_id)
    .bind(&r.body)
    .bind(ferro_common::time::now_micros())
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn delete_record(pool: &AnyPool, kind: &str, id: &str) -> Result<bool> {
    Ok(
        sqlx::query("DELETE FROM identity_records WHERE kind = $1 AND id = $2")
            .bind(kind)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
            > 0,
    )
}
