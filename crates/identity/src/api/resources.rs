//! Domains, projects, users, groups and group membership.

use axum::extract::{Path, State as St};
use axum::response::Response;
use ferro_common::{ids, time};
use ferro_store::{flag, sqlx};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    check_name, check_text, created, list_body, no_content, ok, Body, Caller, Params, State,
};
use crate::error::{IdentityError, Result};
use crate::model::{Domain, Group, Project, User};
use crate::policy::{self, authorize, on_project, on_user};
use crate::service::Identity;
use crate::store::{self, Filter};

/// Keys that Keystone accepts but ferrostack keeps nowhere.
const IGNORED: &[&str] = &["id", "links", "options", "is_domain", "password_expires_at"];

fn extra_json(mut extra: Map<String, Value>) -> Result<String> {
    for k in IGNORED {
        extra.remove(*k);
    }
    if extra.len() > 32 {
        return Err(IdentityError::bad(
            "Too many extra attributes (at most 32).",
        ));
    }
    let s = serde_json::to_string(&extra).unwrap_or_else(|_| "{}".into());
    if s.len() > 16 * 1024 {
        return Err(IdentityError::bad("Extra attributes are too large."));
    }
    Ok(s)
}

fn merge_extra(old: &str, new: Map<String, Value>) -> Result<String> {
    let mut m: Map<String, Value> = serde_json::from_str(old).unwrap_or_default();
    for (k, v) in new {
        if v.is_null() {
            m.remove(&k);
        } else {
            m.insert(k, v);
        }
    }
    extra_json(m)
}

pub(super) async fn domain_or_404(s: &Identity, id: &str) -> Result<Domain> {
    store::get(s.pool(), "domains", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("domain", id))
}

pub(super) async fn project_or_404(s: &Identity, id: &str) -> Result<Project> {
    store::get(s.pool(), "projects", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("project", id))
}

pub(super) async fn user_or_404(s: &Identity, id: &str) -> Result<User> {
    store::get(s.pool(), "users", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("user", id))
}

pub(super) async fn group_or_404(s: &Identity, id: &str) -> Result<Group> {
    store::get(s.pool(), "groups", id)
        .await?
        .ok_or_else(|| IdentityError::not_found("group", id))
}

/// The domain a new project is created in: the one given, else the
/// caller's, else `default`; one that doesn't exist is 400.
async fn target_domain(
    s: &Identity,
    given: Option<String>,
    caller: &ferro_common::AuthContext,
) -> Result<String> {
    existing_domain(s, given, caller, |id| {
        IdentityError::bad(format!("Could not find domain: {id}."))
    })
    .await
}

/// The domain of a new user or group: as [`target_domain`], but a domain
/// that doesn't exist is 404, as Keystone's identity backend answers.
async fn owner_domain(
    s: &Identity,
    given: Option<String>,
    caller: &ferro_common::AuthContext,
) -> Result<String> {
    existing_domain(s, given, caller, |id| {
        IdentityError::not_found("domain", id)
    })
    .await
}

async fn existing_domain(
    s: &Identity,
    given: Option<String>,
    caller: &ferro_common::AuthContext,
    missing: fn(String) -> IdentityError,
) -> Result<String> {
    let id = given
        .or_else(|| caller.domain_id().map(str::to_owned))
        .unwrap_or_else(|| "default".to_owned());
    if store::get::<Domain>(s.pool(), "domains", &id)
        .await?
        .is_none()
    {
        return Err(missing(id));
    }
    Ok(id)
}

fn conflict(kind: &'static str, name: &str, domain_id: &str) -> IdentityError {
    IdentityError::Conflict {
        kind,
        detail: format!("Duplicate entry found with name {name} at domain ID {domain_id}"),
    }
}

// ---- domains ----

#[derive(Deserialize)]
pub struct DomainCreate {
    domain: DomainFields,
}

#[derive(Deserialize)]
pub struct DomainFields {
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

pub async fn list_domains(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_DOMAINS, Default::default())?;
    let f = Filter::default()
        .text("name", p.get("name"))
        .int("enabled", super::flag(&p, "enabled")?);
    let base = s.base_url();
    let items = store::list::<Domain>(s.pool(), "domains", f, "name").await?;
    Ok(ok(list_body(
        "domains",
        items.iter().map(|d| d.render(&base)).collect(),
        format!("{base}/domains"),
    )))
}

pub async fn create_domain(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<DomainCreate>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let d = b.domain;
    let name = d.name.ok_or_else(|| {
        IdentityError::bad("Invalid input for field 'name': 'name' is a required property.")
    })?;
    check_name("name", &name, 64)?;
    let description = d.description.unwrap_or_default();
    check_text("description", &description)?;
    let mut extra = d.extra;
    extra.remove("tags");
    extra.remove("explicit_domain_id");
    let extra = extra_json(extra)?;
    if store::domain_by_name(s.pool(), &name).await?.is_some() {
        return Err(IdentityError::Conflict {
            kind: "domain",
            detail: format!("Duplicate entry found with name {name}"),
        });
    }
    let row = Domain {
        id: ids::hex_id(),
        name,
        description,
        enabled: flag(d.enabled.unwrap_or(true)),
        extra,
    };
    sqlx::query("INSERT INTO domains (id, name, description, enabled, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.description)
        .bind(row.enabled)
        .bind(&row.extra)
        .bind(time::now_micros())
        .execute(s.pool())
        .await?;
    tracing::info!(domain_id = %row.id, "domain created");
    Ok(created(json!({"domain": row.render(&s.base_url())})))
}

pub async fn get_domain(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    // Members may read their own domain (OSC looks it up by name when
    // creating things in it).
    if c.ctx.user_domain_id != id && c.ctx.domain_id() != Some(id.as_str()) {
        authorize(&c.ctx, policy::GET_DOMAIN, Default::default())?;
    }
    Ok(ok(
        json!({"domain": domain_or_404(&s, &id).await?.render(&s.base_url())}),
    ))
}

pub async fn update_domain(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<DomainCreate>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let mut row = domain_or_404(&s, &id).await?;
    let d = b.domain;
    if let Some(name) = d.name {
        check_name("name", &name, 64)?;
        if name != row.name && store::domain_by_name(s.pool(), &name).await?.is_some() {
            return Err(IdentityError::Conflict {
                kind: "domain",
                detail: format!("Duplicate entry found with name {name}"),
            });
        }
        row.name = name;
    }
    if let Some(desc) = d.description {
        check_text("description", &desc)?;
        row.description = desc;
    }
    if let Some(e) = d.enabled {
        row.enabled = flag(e);
    }
    let mut extra = d.extra;
    extra.remove("tags");
    row.extra = merge_extra(&row.extra, extra)?;
    sqlx::query(
        "UPDATE domains SET name = $1, description = $2, enabled = $3, extra = $4 WHERE id = $5",
    )
    .bind(&row.name)
    .bind(&row.description)
    .bind(row.enabled)
    .bind(&row.extra)
    .bind(&row.id)
    .execute(s.pool())
    .await?;
    s.invalidate();
    Ok(ok(json!({"domain": row.render(&s.base_url())})))
}

pub async fn delete_domain(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_DOMAINS, Default::default())?;
    let row = domain_or_404(&s, &id).await?;
    if row.enabled != 0 {
        return Err(IdentityError::ForbiddenWith(
            "Cannot delete a domain that is enabled, please disable it first.".into(),
        ));
    }
    let mut tx = s.pool().begin().await?;
    for sql in [
        "DELETE FROM role_assignments WHERE actor_type = 'user' AND actor_id IN (SELECT id FROM users WHERE domain_id = $1)",
        "DELETE FROM role_assignments WHERE actor_type = 'group' AND actor_id IN (SELECT id FROM groups WHERE domain_id = $1)",
        "DELETE FROM role_assignments WHERE target_type = 'project' AND target_id IN (SELECT id FROM projects WHERE domain_id = $1)",
        "DELETE FROM role_assignments WHERE target_type = 'domain' AND target_id = $1",
        "DELETE FROM group_members WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)",
        "DELETE FROM group_members WHERE group_id IN (SELECT id FROM groups WHERE domain_id = $1)",
        "DELETE FROM application_credentials WHERE user_id IN (SELECT id FROM users WHERE domain_id = $1)",
        "DELETE FROM users WHERE domain_id = $1",
        "DELETE FROM groups WHERE domain_id = $1",
        "DELETE FROM projects WHERE domain_id = $1",
        "DELETE FROM roles WHERE domain_id = $1",
        "DELETE FROM domains WHERE id = $1",
    ] {
        sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    s.invalidate();
    tracing::info!(domain_id = %id, "domain deleted");
    Ok(no_content())
}

// ---- projects ----

#[derive(Deserialize)]
pub struct ProjectBody {
    project: ProjectFields,
}

#[derive(Deserialize)]
pub struct ProjectFields {
    name: Option<String>,
    domain_id: Option<String>,
    parent_id: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    tags: Option<Vec<String>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

pub(super) fn check_tags(tags: &[String]) -> Result<String> {
    if tags.len() > 80 {
        return Err(IdentityError::bad("A project has at most 80 tags."));
    }
    for (i, t) in tags.iter().enumerate() {
        if t.is_empty() || t.chars().count() > 255 || t.contains('/') || t.contains(',') {
            return Err(IdentityError::bad(format!("Invalid tag {t:?}.")));
        }
        // (Keystone's schema: the items are unique)
        if tags[..i].contains(t) {
            return Err(IdentityError::bad(format!("Tag {t:?} is given twice.")));
        }
    }
    Ok(serde_json::to_string(tags).unwrap_or_else(|_| "[]".into()))
}

pub async fn list_projects(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_PROJECTS, Default::default())?;
    let f = Filter::default()
        .text("name", p.get("name"))
        .text("domain_id", p.get("domain_id"))
        .text("parent_id", p.get("parent_id"))
        .int("enabled", super::flag(&p, "enabled")?);
    let base = s.base_url();
    let items = store::list::<Project>(s.pool(), "projects", f, "name").await?;
    Ok(ok(list_body(
        "projects",
        items.iter().map(|x| x.render(&base)).collect(),
        format!("{base}/projects"),
    )))
}

pub async fn create_project(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<ProjectBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_PROJECTS, Default::default())?;
    let f = b.project;
    let name = f.name.ok_or_else(|| {
        IdentityError::bad("Invalid input for field 'name': 'name' is a required property.")
    })?;
    check_name("name", &name, 64)?;
    let description = f.description.unwrap_or_default();
    check_text("description", &description)?;
    let tags = check_tags(&f.tags.unwrap_or_default())?;
    let extra = extra_json(f.extra)?;
    let domain_id = match (&f.domain_id, &f.parent_id) {
        (None, Some(parent)) => {
            // A parent named alone decides the domain.
            match store::get::<Project>(s.pool(), "projects", parent).await? {
                Some(p) => p.domain_id,
                None => target_domain(&s, Some(parent.clone()), &c.ctx).await?,
            }
        }
        _ => target_domain(&s, f.domain_id.clone(), &c.ctx).await?,
    };
    let parent_id = match f.parent_id {
        Some(p) if p == domain_id => None,
        Some(p) => {
            let parent = store::get::<Project>(s.pool(), "projects", &p)
                .await?
                .ok_or_else(|| {
                    IdentityError::bad(format!("Could not find parent project: {p}."))
                })?;
            if parent.domain_id != domain_id {
                return Err(IdentityError::bad(
                    "A project's parent must be in the same domain.",
                ));
            }
            Some(p)
        }
        None => None,
    };
    if store::project_by_name(s.pool(), &domain_id, &name)
        .await?
        .is_some()
    {
        return Err(conflict("project", &name, &domain_id));
    }
    let row = Project {
        id: ids::hex_id(),
        name,
        domain_id,
        parent_id,
        description,
        enabled: flag(f.enabled.unwrap_or(true)),
        tags,
        extra,
    };
    sqlx::query(
        "INSERT INTO projects (id, name, domain_id, parent_id, description, enabled, tags, extra, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.domain_id)
    .bind(row.parent_id.clone())
    .bind(&row.description)
    .bind(row.enabled)
    .bind(&row.tags)
    .bind(&row.extra)
    .bind(time::now_micros())
    .execute(s.pool())
    .await?;
    tracing::info!(project_id = %row.id, "project created");
    Ok(created(json!({"project": row.render(&s.base_url())})))
}

pub async fn get_project(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::GET_PROJECT, on_project(&id))?;
    Ok(ok(
        json!({"project": project_or_404(&s, &id).await?.render(&s.base_url())}),
    ))
}

pub async fn update_project(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<ProjectBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_PROJECTS, Default::default())?;
    let mut row = project_or_404(&s, &id).await?;
    let f = b.project;
    if f.domain_id.as_ref().is_some_and(|d| *d != row.domain_id) {
        return Err(IdentityError::bad(
            "A project cannot move to another domain.",
        ));
    }
    if let Some(name) = f.name {
        check_name("name", &name, 64)?;
        if name != row.name
            && store::project_by_name(s.pool(), &row.domain_id, &name)
                .await?
                .is_some()
        {
            return Err(conflict("project", &name, &row.domain_id));
        }
        row.name = name;
    }
    if let Some(d) = f.description {
        check_text("description", &d)?;
        row.description = d;
    }
    if let Some(t) = f.tags {
        row.tags = check_tags(&t)?;
    }
    let disabling = f.enabled == Some(false) && row.enabled != 0;
    if let Some(e) = f.enabled {
        row.enabled = flag(e);
    }
    row.extra = merge_extra(&row.extra, f.extra)?;
    sqlx::query("UPDATE projects SET name = $1, description = $2, enabled = $3, tags = $4, extra = $5 WHERE id = $6")
        .bind(&row.name)
        .bind(&row.description)
        .bind(row.enabled)
        .bind(&row.tags)
        .bind(&row.extra)
        .bind(&row.id)
        .execute(s.pool())
        .await?;
    if disabling {
        s.revoke_project(&row.id).await?;
    }
    s.invalidate();
    Ok(ok(json!({"project": row.render(&s.base_url())})))
}

pub async fn delete_project(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_PROJECTS, Default::default())?;
    project_or_404(&s, &id).await?;
    let children: Vec<Project> = store::list(
        s.pool(),
        "projects",
        Filter::default().text("parent_id", Some(&id)),
        "name",
    )
    .await?;
    if !children.is_empty() {
        return Err(IdentityError::ForbiddenWith(
            "Cannot delete a project that has child projects.".into(),
        ));
    }
    let mut tx = s.pool().begin().await?;
    sqlx::query("DELETE FROM role_assignments WHERE target_type = 'project' AND target_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM application_credentials WHERE project_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    s.revoke_project(&id).await?;
    tracing::info!(project_id = %id, "project deleted");
    Ok(no_content())
}

// ---- users ----

#[derive(Deserialize)]
pub struct UserBody {
    user: UserFields,
}

#[derive(Deserialize)]
pub struct UserFields {
    name: Option<String>,
    domain_id: Option<String>,
    password: Option<String>,
    enabled: Option<bool>,
    default_project_id: Option<String>,
    description: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn check_password(p: &str) -> Result<()> {
    if p.len() > 4096 {
        return Err(IdentityError::bad(
            "Invalid input for field 'password': it is longer than 4096 bytes.",
        ));
    }
    // bcrypt reads at most 72 bytes; a longer password would silently share
    // a hash with its prefix, so refuse it instead.
    if p.len() > 72 {
        return Err(IdentityError::bad(
            "Invalid input for field 'password': at most 72 bytes are supported.",
        ));
    }
    Ok(())
}

pub async fn list_users(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_USERS, Default::default())?;
    let f = Filter::default()
        .text("name", p.get("name"))
        .text("domain_id", p.get("domain_id"))
        .int("enabled", super::flag(&p, "enabled")?);
    let base = s.base_url();
    let items = store::list::<User>(s.pool(), "users", f, "name").await?;
    Ok(ok(list_body(
        "users",
        items.iter().map(|x| x.render(&base)).collect(),
        format!("{base}/users"),
    )))
}

pub async fn create_user(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<UserBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_USERS, Default::default())?;
    let f = b.user;
    let name = f.name.ok_or_else(|| {
        IdentityError::bad("Invalid input for field 'name': 'name' is a required property.")
    })?;
    check_name("name", &name, 255)?;
    let description = f.description.unwrap_or_default();
    check_text("description", &description)?;
    let extra = extra_json(f.extra)?;
    let domain_id = owner_domain(&s, f.domain_id, &c.ctx).await?;
    if let Some(p) = &f.default_project_id {
        if store::get::<Project>(s.pool(), "projects", p)
            .await?
            .is_none()
        {
            return Err(IdentityError::bad(format!("Could not find project: {p}.")));
        }
    }
    if store::user_by_name(s.pool(), &domain_id, &name)
        .await?
        .is_some()
    {
        return Err(conflict("user", &name, &domain_id));
    }
    let hash = match f.password {
        Some(p) => {
            check_password(&p)?;
            Some(s.hash_secret(p).await?)
        }
        None => None,
    };
    let now = time::now_micros();
    let row = User {
        id: ids::hex_id(),
        name,
        domain_id,
        enabled: flag(f.enabled.unwrap_or(true)),
        password_hash: hash,
        default_project_id: f.default_project_id,
        description,
        extra,
    };
    sqlx::query(
        "INSERT INTO users (id, name, domain_id, enabled, password_hash, password_changed_at, default_project_id, \
         description, extra, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.domain_id)
    .bind(row.enabled)
    .bind(row.password_hash.clone())
    .bind(now)
    .bind(row.default_project_id.clone())
    .bind(&row.description)
    .bind(&row.extra)
    .bind(now)
    .execute(s.pool())
    .await?;
    tracing::info!(user_id = %row.id, "user created");
    Ok(created(json!({"user": row.render(&s.base_url())})))
}

pub async fn get_user(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::GET_USER, on_user(&id))?;
    Ok(ok(
        json!({"user": user_or_404(&s, &id).await?.render(&s.base_url())}),
    ))
}

pub async fn update_user(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<UserBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_USERS, Default::default())?;
    let mut row = user_or_404(&s, &id).await?;
    let f = b.user;
    if f.domain_id.as_ref().is_some_and(|d| *d != row.domain_id) {
        return Err(IdentityError::bad("A user cannot move to another domain."));
    }
    if let Some(name) = f.name {
        check_name("name", &name, 255)?;
        if name != row.name
            && store::user_by_name(s.pool(), &row.domain_id, &name)
                .await?
                .is_some()
        {
            return Err(conflict("user", &name, &row.domain_id));
        }
        row.name = name;
    }
    if let Some(d) = f.description {
        check_text("description", &d)?;
        row.description = d;
    }
    if let Some(p) = f.default_project_id {
        if store::get::<Project>(s.pool(), "projects", &p)
            .await?
            .is_none()
        {
            return Err(IdentityError::bad(format!("Could not find project: {p}.")));
        }
        row.default_project_id = Some(p);
    }
    let mut revoke = false;
    if let Some(e) = f.enabled {
        revoke |= !e && row.enabled != 0;
        row.enabled = flag(e);
    }
    if let Some(p) = f.password {
        check_password(&p)?;
        row.password_hash = Some(s.hash_secret(p).await?);
        revoke = true;
    }
    row.extra = merge_extra(&row.extra, f.extra)?;
    sqlx::query(
        "UPDATE users SET name = $1, description = $2, default_project_id = $3, enabled = $4, password_hash = $5, \
         extra = $6 WHERE id = $7",
    )
    .bind(&row.name)
    .bind(&row.description)
    .bind(row.default_project_id.clone())
    .bind(row.enabled)
    .bind(row.password_hash.clone())
    .bind(&row.extra)
    .bind(&row.id)
    .execute(s.pool())
    .await?;
    if revoke {
        s.revoke_user(&row.id).await?;
    }
    s.invalidate();
    Ok(ok(json!({"user": row.render(&s.base_url())})))
}

pub async fn delete_user(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_USERS, Default::default())?;
    user_or_404(&s, &id).await?;
    let mut tx = s.pool().begin().await?;
    for sql in [
        "DELETE FROM role_assignments WHERE actor_type = 'user' AND actor_id = $1",
        "DELETE FROM group_members WHERE user_id = $1",
        "DELETE FROM application_credentials WHERE user_id = $1",
        "DELETE FROM identity_records WHERE kind = 'credential' AND owner_id = $1",
        "DELETE FROM users WHERE id = $1",
    ] {
        sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    s.revoke_user(&id).await?;
    tracing::info!(user_id = %id, "user deleted");
    Ok(no_content())
}

#[derive(Deserialize)]
pub struct PasswordChange {
    user: PasswordFields,
}

#[derive(Deserialize)]
pub struct PasswordFields {
    password: String,
    original_password: String,
}

/// Changing one's own password needs the old one, not a token (as in
/// Keystone); every token of the user is revoked.
pub async fn change_password(
    St(s): St<State>,
    Path(id): Path<String>,
    Body(b): Body<PasswordChange>,
) -> Result<Response> {
    check_password(&b.user.password)?;
    let row = store::get::<User>(s.pool(), "users", &id)
        .await?
        .ok_or(IdentityError::Unauthorized)?;
    let hash = row
        .password_hash
        .clone()
        .ok_or(IdentityError::Unauthorized)?;
    let old = b.user.original_password;
    let good = tokio::task::spawn_blocking(move || bcrypt::verify(old, &hash).unwrap_or(false))
        .await
        .unwrap_or(false);
    if !good || row.enabled == 0 {
        return Err(IdentityError::Unauthorized);
    }
    let hash = s.hash_secret(b.user.password).await?;
    sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(time::now_micros())
        .bind(&id)
        .execute(s.pool())
        .await?;
    s.revoke_user(&id).await?;
    Ok(no_content())
}

pub async fn user_groups(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_USER_GROUPS, on_user(&id))?;
    user_or_404(&s, &id).await?;
    let base = s.base_url();
    let groups = store::groups_of_user(s.pool(), &id).await?;
    Ok(ok(list_body(
        "groups",
        groups.iter().map(|g| g.render(&base)).collect(),
        format!("{base}/users/{id}/groups"),
    )))
}

pub async fn user_projects(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_USER_PROJECTS, on_user(&id))?;
    user_or_404(&s, &id).await?;
    let base = s.base_url();
    let mut ids: Vec<String> = store::assignments_for_actors(s.pool(), &id)
        .await?
        .into_iter()
        .filter(|a| a.target_type == "project")
        .map(|a| a.target_id)
        .collect();
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for pid in ids {
        if let Some(p) = store::get::<Project>(s.pool(), "projects", &pid).await? {
            out.push(p.render(&base));
        }
    }
    Ok(ok(list_body(
        "projects",
        out,
        format!("{base}/users/{id}/projects"),
    )))
}

// ---- groups ----

#[derive(Deserialize)]
pub struct GroupBody {
    group: GroupFields,
}

/// Keystone's group schema allows other properties (Tempest sends a
/// `project_id`); they are accepted and not kept.
#[derive(Deserialize)]
pub struct GroupFields {
    name: Option<String>,
    domain_id: Option<String>,
    description: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<String>,
}

pub async fn list_groups(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_GROUPS, Default::default())?;
    let f = Filter::default()
        .text("name", p.get("name"))
        .text("domain_id", p.get("domain_id"));
    let base = s.base_url();
    let items = store::list::<Group>(s.pool(), "groups", f, "name").await?;
    Ok(ok(list_body(
        "groups",
        items.iter().map(|x| x.render(&base)).collect(),
        format!("{base}/groups"),
    )))
}

pub async fn create_group(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<GroupBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GROUPS, Default::default())?;
    let f = b.group;
    let name = f.name.ok_or_else(|| {
        IdentityError::bad("Invalid input for field 'name': 'name' is a required property.")
    })?;
    check_name("name", &name, 64)?;
    let description = f.description.unwrap_or_default();
    check_text("description", &description)?;
    let domain_id = owner_domain(&s, f.domain_id, &c.ctx).await?;
    if store::group_by_name(s.pool(), &domain_id, &name)
        .await?
        .is_some()
    {
        return Err(conflict("group", &name, &domain_id));
    }
    let row = Group {
        id: ids::hex_id(),
        name,
        domain_id,
        description,
    };
    sqlx::query("INSERT INTO groups (id, name, domain_id, description, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&row.id)
        .bind(&row.name)
        .bind(&row.domain_id)
        .bind(&row.description)
        .bind(time::now_micros())
        .execute(s.pool())
        .await?;
    Ok(created(json!({"group": row.render(&s.base_url())})))
}

pub async fn get_group(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_GROUPS, Default::default())?;
    Ok(ok(
        json!({"group": group_or_404(&s, &id).await?.render(&s.base_url())}),
    ))
}

pub async fn update_group(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<GroupBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GROUPS, Default::default())?;
    let mut row = group_or_404(&s, &id).await?;
    if let Some(name) = b.group.name {
        check_name("name", &name, 64)?;
        if name != row.name
            && store::group_by_name(s.pool(), &row.domain_id, &name)
                .await?
                .is_some()
        {
            return Err(conflict("group", &name, &row.domain_id));
        }
        row.name = name;
    }
    if let Some(d) = b.group.description {
        check_text("description", &d)?;
        row.description = d;
    }
    sqlx::query("UPDATE groups SET name = $1, description = $2 WHERE id = $3")
        .bind(&row.name)
        .bind(&row.description)
        .bind(&row.id)
        .execute(s.pool())
        .await?;
    Ok(ok(json!({"group": row.render(&s.base_url())})))
}

pub async fn delete_group(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GROUPS, Default::default())?;
    group_or_404(&s, &id).await?;
    let mut tx = s.pool().begin().await?;
    for sql in [
        "DELETE FROM role_assignments WHERE actor_type = 'group' AND actor_id = $1",
        "DELETE FROM group_members WHERE group_id = $1",
        "DELETE FROM groups WHERE id = $1",
    ] {
        sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    s.invalidate();
    Ok(no_content())
}

pub async fn group_users(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_GROUPS, Default::default())?;
    group_or_404(&s, &id).await?;
    let base = s.base_url();
    let users = store::users_of_group(s.pool(), &id).await?;
    Ok(ok(list_body(
        "users",
        users.iter().map(|u| u.render(&base)).collect(),
        format!("{base}/groups/{id}/users"),
    )))
}

pub async fn add_member(
    St(s): St<State>,
    Caller(c): Caller,
    Path((gid, uid)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GROUPS, Default::default())?;
    group_or_404(&s, &gid).await?;
    user_or_404(&s, &uid).await?;
    if !store::is_member(s.pool(), &gid, &uid).await? {
        sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)")
            .bind(&gid)
            .bind(&uid)
            .execute(s.pool())
            .await?;
    }
    s.invalidate();
    Ok(no_content())
}

pub async fn check_member(
    St(s): St<State>,
    Caller(c): Caller,
    Path((gid, uid)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::LIST_GROUPS, Default::default())?;
    group_or_404(&s, &gid).await?;
    user_or_404(&s, &uid).await?;
    if store::is_member(s.pool(), &gid, &uid).await? {
        Ok(no_content())
    } else {
        Err(IdentityError::NotFound {
            kind: "membership",
            id: format!("user {uid} in group {gid}"),
        })
    }
}

pub async fn remove_member(
    St(s): St<State>,
    Caller(c): Caller,
    Path((gid, uid)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_GROUPS, Default::default())?;
    let n = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
        .bind(&gid)
        .bind(&uid)
        .execute(s.pool())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(IdentityError::NotFound {
            kind: "membership",
            id: format!("user {uid} in group {gid}"),
        });
    }
    s.invalidate();
    Ok(no_content())
}
