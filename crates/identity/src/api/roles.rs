//! Roles and implied roles (admin ⊃ member ⊃ reader by default).

use axum::extract::{Path, State as St};
use axum::response::Response;
use ferro_common::{ids, time};
use ferro_store::sqlx;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    check_name, check_text, created, list_body, no_content, ok, Body, Caller, Params, State,
};
use crate::error::{IdentityError, Result};
use crate::model::Role;
use crate::policy::{self, authorize};
use crate::service::Identity;
use crate::store::{self, Filter};

#[derive(Deserialize)]
pub struct RoleBody {
    role: RoleFields,
}

#[derive(Deserialize)]
pub struct RoleFields {
    name: Option<String>,
    description: Option<String>,
    domain_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    options: Option<Value>,
}

async fn role_or_404(s: &Identity, id: &str) -> Result<Role> {
    store::get(s.pool(), "roles", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("role", id))
}

pub async fn list(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ROLES, Default::default())?;
    let f = Filter::default()
        .text("name", p.get("name"))
        .text("domain_id", Some(p.get("domain_id").unwrap_or("")));
    let base = s.base_url();
    let items = store::list::<Role>(s.pool(), "roles", f, "name").await?;
    Ok(ok(list_body(
        "roles",
        items.iter().map(|r| r.render(&base)).collect(),
        format!("{base}/roles"),
    )))
}

pub async fn create(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<RoleBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_ROLES, Default::default())?;
    let name = b.role.name.ok_or_else(|| {
        IdentityError::bad("Invalid input for field 'name': 'name' is a required property.")
    })?;
    check_name("name", &name, 255)?;
    let description = b.role.description.unwrap_or_default();
    check_text("description", &description)?;
    let domain_id = b.role.domain_id.unwrap_or_default();
    if !domain_id.is_empty()
        && store::get::<crate::model::Domain>(s.pool(), "domains", &domain_id)
            .await?
            .is_none()
    {
        return Err(IdentityError::bad(format!(
            "Could not find domain: {domain_id}."
        )));
    }
    let dup: Option<Role> =
        sqlx::query_as("SELECT * FROM roles WHERE domain_id = $1 AND name = $2")
            .bind(&domain_id)
            .bind(&name)
            .fetch_optional(s.pool())
            .await?;
    if dup.is_some() {
        return Err(IdentityError::Conflict {
            kind: "role",
            detail: format!("Duplicate entry found with name {name}"),
        });
    }
    let row = Role {
        id: ids::hex_id(),
        name,
        domain_id,
        description,
    };
    insert_role(&s, &row).await?;
    Ok(created(json!({"role": row.render(&s.base_url())})))
}

pub(crate) async fn insert_role(s: &Identity, row: &Role) -> Result<()> {
    sqlx::query("INSERT INTO roles (id, name, domain_id, description, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.domain_id)
        .bind(&row.description)
        .bind(time::now_micros())
        .execute(s.pool())
        .await?;
    Ok(())
}

pub async fn show(St(s): St<State>, Caller(c): Caller, Path(id): Path<String>) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ROLES, Default::default())?;
    Ok(ok(
        json!({"role": role_or_404(&s, &id).await?.render(&s.base_url())}),
    ))
}

pub async fn update(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<RoleBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_ROLES, Default::default())?;
    let mut row = role_or_404(&s, &id).await?;
    if let Some(name) = b.role.name {
        check_name("name", &name, 255)?;
        row.name = name;
    }
    if let Some(d) = b.role.description {
        check_text("description", &d)?;
        row.description = d;
    }
    sqlx::query("UPDATE roles SET name = $1, description = $2 WHERE id = $3")
        .bind(&row.name)
        .bind(&row.description)
        .bind(&row.id)
        .execute(s.pool())
        .await?;
    s.invalidate();
    Ok(ok(json!({"role": row.render(&s.base_url())})))
}

pub async fn delete(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_ROLES, Default::default())?;
    role_or_404(&s, &id).await?;
    let mut tx = s.pool().begin().await?;
    for sql in [
        "DELETE FROM role_assignments WHERE role_id = $1",
        "DELETE FROM implied_roles WHERE prior_role_id = $1 OR implied_role_id = $1",
        "DELETE FROM roles WHERE id = $1",
    ] {
        sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    s.invalidate();
    Ok(no_content())
}

fn inference(base: &str, prior: &Role, implied: &[Role]) -> Value {
    json!({"prior_role": prior.brief(base),
           "implies": implied.iter().map(|r| r.brief(base)).collect::<Vec<_>>()})
}

async fn implied_of(s: &Identity, prior: &str) -> Result<Vec<Role>> {
    Ok(sqlx::query_as(
        "SELECT r.* FROM roles r JOIN implied_roles i ON i.implied_role_id = r.id WHERE i.prior_role_id = $1 ORDER BY r.name",
    )
    .bind(prior)
    .fetch_all(s.pool())
    .await?)
}

pub async fn list_implied(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ROLES, Default::default())?;
    let prior = role_or_404(&s, &id).await?;
    let base = s.base_url();
    let implied = implied_of(&s, &id).await?;
    Ok(ok(
        json!({"role_inference": inference(&base, &prior, &implied),
                 "links": {"self": format!("{base}/roles/{id}/implies")}}),
    ))
}

pub async fn inferences(St(s): St<State>, Caller(c): Caller) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ROLES, Default::default())?;
    let base = s.base_url();
    let mut out = Vec::new();
    let mut priors: Vec<String> = store::implied_pairs(s.pool())
        .await?
        .into_iter()
        .map(|p| p.0)
        .collect();
    priors.dedup();
    for id in priors {
        if let Some(prior) = store::get::<Role>(s.pool(), "roles", &id).await? {
            out.push(inference(&base, &prior, &implied_of(&s, &id).await?));
        }
    }
    Ok(ok(
        json!({"role_inferences": out, "links": {"self": format!("{base}/role_inferences")}}),
    ))
}

pub async fn add_implied(
    St(s): St<State>,
    Caller(c): Caller,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_ROLES, Default::default())?;
    let p = role_or_404(&s, &prior).await?;
    let i = role_or_404(&s, &implied).await?;
    if prior == implied
        || s.expand_implied(vec![implied.clone()])
            .await?
            .contains(&prior)
    {
        return Err(IdentityError::ForbiddenWith(format!(
            "Role {} cannot imply {}: it would make a loop.",
            p.name, i.name
        )));
    }
    if !store::implied_pairs(s.pool())
        .await?
        .contains(&(prior.clone(), implied.clone()))
    {
        sqlx::query("INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES ($1, $2)")
            .bind(&prior)
            .bind(&implied)
            .execute(s.pool())
            .await?;
    }
    s.invalidate();
    let base = s.base_url();
    Ok(created(
        json!({"role_inference": {"prior_role": p.brief(&base), "implies": i.brief(&base)},
                      "links": {"self": format!("{base}/roles/{prior}/implies/{implied}")}}),
    ))
}

pub async fn get_implied(
    St(s): St<State>,
    Caller(c): Caller,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_ROLES, Default::default())?;
    let p = role_or_404(&s, &prior).await?;
    let i = role_or_404(&s, &implied).await?;
    if !store::implied_pairs(s.pool())
        .await?
        .contains(&(prior.clone(), implied.clone()))
    {
        return Err(IdentityError::NotFound {
            kind: "implied role",
            id: format!("{prior} implies {implied}"),
        });
    }
    let base = s.base_url();
    Ok(ok(
        json!({"role_inference": {"prior_role": p.brief(&base), "implies": i.brief(&base)},
                 "links": {"self": format!("{base}/roles/{prior}/implies/{implied}")}}),
    ))
}

/// `HEAD /v3/roles/{prior}/implies/{implied}`: Keystone's 204 when the rule exists.
pub async fn check_implied(
    st: St<State>,
    c: Caller,
    path: Path<(String, String)>,
) -> Result<Response> {
    get_implied(st, c, path).await?;
    Ok(super::no_content())
}

pub async fn delete_implied(
    St(s): St<State>,
    Caller(c): Caller,
    Path((prior, implied)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_ROLES, Default::default())?;
    let n =
        sqlx::query("DELETE FROM implied_roles WHERE prior_role_id = $1 AND implied_role_id = $2")
            .bind(&prior)
            .bind(&implied)
            .execute(s.pool())
            .await?
            .rows_affected();
    if n == 0 {
        return Err(IdentityError::NotFound {
            kind: "implied role",
            id: format!("{prior} implies {implied}"),
        });
    }
    s.invalidate();
    Ok(no_content())
}
