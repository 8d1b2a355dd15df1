//! First start: the domains, project, roles, admin user and region that the
//! seed's openrc expects (`admin` in `admin_domain`, region `RegionOne`).
//!
//! Runs once per database, in one transaction; a later start finds the
//! `bootstrapped` setting and only adds the default roles a database made
//! by an older ferrostack lacks (as `keystone-manage bootstrap` does when
//! run again).

use ferro_common::{ids, time};
use ferro_store::sqlx;

use crate::error::Result;
use crate::service::Identity;
use crate::store;

pub const ADMIN_DOMAIN: &str = "admin_domain";
pub const ADMIN_PROJECT: &str = "admin";
pub const ADMIN_USER: &str = "admin";
pub const REGION: &str = "RegionOne";

/// Creates the initial identity records unless they exist. Returns true
/// when it created them.
pub async fn bootstrap(s: &Identity, admin_password: &str) -> Result<bool> {
    if store::setting(s.pool(), "bootstrapped").await?.is_some() {
        let mut tx = s.pool().begin().await?;
        default_roles(&mut tx, time::now_micros()).await?;
        tx.commit().await?;
        s.invalidate();
        return Ok(false);
    }
    let now = time::now_micros();
    let hash = s.hash_secret(admin_password.to_owned()).await?;
    let admin_domain = ids::hex_id();
    let project = ids::hex_id();
    let user = ids::hex_id();
    let mut tx = s.pool().begin().await?;
    let admin_role = default_roles(&mut tx, now).await?;
    for (id, name, desc) in [
        ("default", "Default", "The default domain"),
        (
            admin_domain.as_str(),
            ADMIN_DOMAIN,
            "The cloud administrator's domain",
        ),
    ] {
        sqlx::query("INSERT INTO domains (id, name, description, enabled, extra, created_at) VALUES ($1, $2, $3, 1, '{}', $4)")
            .bind(id)
            .bind(name)
            .bind(desc)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, tags, extra, created_at) \
         VALUES ($1, $2, $3, NULL, 'Bootstrap project for the cloud administrator', 1, '[]', '{}', $4)",
    )
    .bind(&project)
    .bind(ADMIN_PROJECT)
    .bind(&admin_domain)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO users (id, name, domain_id, enabled, password_hash, password_changed_at, default_project_id, \
         description, extra, created_at) VALUES ($1, $2, $3, 1, $4, $5, $6, '', '{}', $5)",
    )
    .bind(&user)
    .bind(ADMIN_USER)
    .bind(&admin_domain)
    .bind(&hash)
    .bind(now)
    .bind(&project)
    .execute(&mut *tx)
    .await?;
    for (target_type, target_id) in [
        ("project", project.as_str()),
        ("domain", admin_domain.as_str()),
        ("system", "all"),
    ] {
        sqlx::query(
            "INSERT INTO role_assignments (actor_type, actor_id, target_type, target_id, role_id, inherited) \
             VALUES ('user', $1, $2, $3, $4, 0)",
        )
        .bind(&user)
        .bind(target_type)
        .bind(target_id)
        .bind(&admin_role)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("INSERT INTO regions (id, description, parent_region_id, created_at) VALUES ($1, '', NULL, $2)")
        .bind(REGION)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO settings (name, value) VALUES ('bootstrapped', $1)")
        .bind(time::iso_seconds(now))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    s.invalidate();
    tracing::info!(user_id = %user, project_id = %project, "identity bootstrapped");
    Ok(true)
}

/// Keystone's default roles — `admin`, `manager`, `member`, `reader` and
/// `service` — and its chain of implied roles (admin → manager → member →
/// reader), each made where missing. Returns the `admin` role's id.
async fn default_roles(conn: &mut sqlx::AnyConnection, now: i64) -> Result<String> {
    let mut admin = String::new();
    let mut id_of = Vec::new();
    for name in ["admin", "manager", "member", "reader", "service"] {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM roles WHERE name = $1 AND domain_id = ''")
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
        let id = match found {
            Some((id,)) => id,
            None => {
                let id = ids::hex_id();
                sqlx::query("INSERT INTO roles (id, name, domain_id, description, created_at) VALUES ($1, $2, '', '', $3)")
                    .bind(&id)
                    .bind(name)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                tracing::info!(role = name, "default role created");
                id
            }
        };
        if name == "admin" {
            admin = id.clone();
        }
        id_of.push(id);
    }
    for (prior, implied) in [(0, 1), (1, 2), (2, 3)] {
        let known: Option<(String,)> = sqlx::query_as(
            "SELECT prior_role_id FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2",
        )
        .bind(&id_of[prior])
        .bind(&id_of[implied])
        .fetch_optional(&mut *conn)
        .await?;
        if known.is_none() {
            sqlx::query(
                "INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES ($1, $2)",
            )
            .bind(&id_of[prior])
            .bind(&id_of[implied])
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(admin)
}
