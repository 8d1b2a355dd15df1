//! Application credentials: a named secret bound to a user, a project and a
//! subset of the user's roles there. The secret is shown once, at creation.

use axum::extract::{Path, State as St};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ferro_common::{ids, time};
use ferro_store::{flag, sqlx};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_name, check_text, created, list_body, no_content, ok, Body, Caller, State};
use crate::error::{IdentityError, Result};
use crate::model::{AppCred, Role};
use crate::policy::{self, authorize, on_user};
use crate::service::Identity;
use crate::store;

#[derive(Deserialize)]
pub struct CreateBody {
    application_credential: CreateFields,
}

#[derive(Deserialize)]
pub struct CreateFields {
    name: String,
    description: Option<String>,
    secret: Option<String>,
    expires_at: Option<String>,
    roles: Option<Vec<RoleRef>>,
    unrestricted: Option<bool>,
    access_rules: Option<Vec<Value>>,
}

#[derive(Deserialize)]
pub struct RoleRef {
    id: Option<String>,
    name: Option<String>,
}

/// An expiry as Keystone shows it: the naive UTC time as Python's
/// `isoformat()` writes it (no zone; microseconds only when not zero), so a
/// client reads back what it sent.
fn naive_iso(micros: i64) -> String {
    let full = time::iso_micros(micros);
    let full = full.trim_end_matches('Z');
    match full.strip_suffix(".000000") {
        Some(whole) => whole.to_owned(),
        None => full.to_owned(),
    }
}

async fn render(s: &Identity, c: &AppCred, secret: Option<&str>) -> Result<Value> {
    let base = s.base_url();
    let mut roles = Vec::new();
    for id in c.role_ids() {
        if let Some(r) = store::get::<Role>(s.pool(), "roles", &id).await? {
            roles.push(json!({"id": r.id, "name": r.name, "domain_id": r.domain()}));
        }
    }
    let mut v = json!({
        "id": c.id, "name": c.name, "description": c.description, "user_id": c.user_id,
        "project_id": c.project_id, "roles": roles, "unrestricted": c.unrestricted != 0,
        "expires_at": c.expires_at.map(naive_iso), "access_rules": [],
        "links": {"self": format!("{base}/users/{}/application_credentials/{}", c.user_id, c.id)}
    });
    if let Some(sec) = secret {
        v["secret"] = json!(sec);
    }
    Ok(v)
}

pub async fn create(
    St(s): St<State>,
    Caller(c): Caller,
    Path(uid): Path<String>,
    Body(b): Body<CreateBody>,
) -> Result<Response> {
    // Only the user themselves: the credential acts with their roles.
    if c.ctx.user_id != uid {
        return Err(IdentityError::ForbiddenWith(
            "Application credentials can only be created by their own user.".into(),
        ));
    }
    authorize(&c.ctx, policy::APP_CREDS, on_user(&uid))?;
    if c.ctx.application_credential_id.is_some() {
        return Err(IdentityError::ForbiddenWith(
            "An application credential cannot be used to create another one.".into(),
        ));
    }
    let project_id = c
        .ctx
        .project_id()
        .ok_or_else(|| {
            IdentityError::ForbiddenWith(
                "Application credentials need a project-scoped token.".into(),
            )
        })?
        .to_owned();
    let f = b.application_credential;
    check_name("name", &f.name, 255)?;
    let description = f.description.unwrap_or_default();
    check_text("description", &description)?;
    if f.access_rules.is_some_and(|r| !r.is_empty()) {
        return Err(IdentityError::bad("Access rules are not supported."));
    }
    let expires_at = match f.expires_at {
        Some(t) => {
            let at = time::parse_iso(&t)
                .ok_or_else(|| IdentityError::bad(format!("Invalid expires_at {t:?}.")))?;
            if at <= time::now_micros() {
                return Err(IdentityError::bad("expires_at must be in the future."));
            }
            Some(at)
        }
        None => None,
    };
    let mut role_ids = Vec::new();
    // No roles, or an empty list (what the CLI sends), means all of the
    // caller's roles on the project, as in Keystone.
    match f.roles.filter(|r| !r.is_empty()) {
        None => role_ids.extend(c.roles.iter().map(|r| r.0.clone())),
        Some(refs) => {
            for r in refs {
                let found = c
                    .roles
                    .iter()
                    .find(|(id, name)| Some(id) == r.id.as_ref() || Some(name) == r.name.as_ref());
                match found {
                    Some((id, _)) => role_ids.push(id.clone()),
                    None => {
                        return Err(IdentityError::ForbiddenWith(format!(
                            "Role {} is not one the user holds on the project.",
                            r.id.or(r.name).unwrap_or_default()
                        )))
                    }
                }
            }
        }
    }
    let dup: Option<(String,)> =
        sqlx::query_as("SELECT id FROM application_credentials WHERE user_id = $1 AND name = $2")
            .bind(&uid)
            .bind(&f.name)
            .fetch_optional(s.pool())
            .await?;
    if dup.is_some() {
        return Err(IdentityError::Conflict {
            kind: "application_credential",
            detail: format!("Duplicate entry found with name {}", f.name),
        });
    }
    let secret = match f.secret {
        Some(sec) if sec.is_empty() || sec.len() > 72 => {
            return Err(IdentityError::bad("A secret must be 1 to 72 bytes long."))
        }
        Some(sec) => sec,
        None => {
            let mut b = [0u8; 48];
            rand::thread_rng().fill_bytes(&mut b);
            URL_SAFE_NO_PAD.encode(b)
        }
    };
    let row = AppCred {
        id: ids::hex_id(),
        name: f.name,
        user_id: uid,
        project_id,
        secret_hash: s.hash_secret(secret.clone()).await?,
        description,
        expires_at,
        unrestricted: flag(f.unrestricted.unwrap_or(false)),
        roles: serde_json::to_string(&role_ids).unwrap_or_else(|_| "[]".into()),
    };
    sqlx::query(
        "INSERT INTO application_credentials (id, name, user_id, project_id, secret_hash, description, expires_at, \
         unrestricted, roles, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&row.id)
    .bind(&row.name)
    .bind(&row.user_id)
    .bind(&row.project_id)
    .bind(&row.secret_hash)
    .bind(&row.description)
    .bind(row.expires_at)
    .bind(row.unrestricted)
    .bind(&row.roles)
    .bind(time::now_micros())
    .execute(s.pool())
    .await?;
    tracing::info!(user_id = %row.user_id, app_cred_id = %row.id, "application credential created");
    Ok(created(
        json!({"application_credential": render(&s, &row, Some(&secret)).await?}),
    ))
}

pub async fn list(
    St(s): St<State>,
    Caller(c): Caller,
    Path(uid): Path<String>,
    p: super::Params,
) -> Result<Response> {
    authorize(&c.ctx, policy::APP_CREDS, on_user(&uid))?;
    let f = store::Filter::default()
        .text("user_id", Some(&uid))
        .text("name", p.get("name"));
    let rows: Vec<AppCred> = store::list(s.pool(), "application_credentials", f, "name").await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(render(&s, r, None).await?);
    }
    let base = s.base_url();
    Ok(ok(list_body(
        "application_credentials",
        out,
        format!("{base}/users/{uid}/application_credentials"),
    )))
}

async fn owned(s: &Identity, uid: &str, id: &str) -> Result<AppCred> {
    match store::get::<AppCred>(s.pool(), "application_credentials", id).await? {
        Some(c) if c.user_id == uid => Ok(c),
        _ => Err(IdentityError::not_found("application credential", id)),
    }
}

pub async fn show(
    St(s): St<State>,
    Caller(c): Caller,
    Path((uid, id)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::APP_CREDS, on_user(&uid))?;
    let row = owned(&s, &uid, &id).await?;
    Ok(ok(
        json!({"application_credential": render(&s, &row, None).await?}),
    ))
}

pub async fn delete(
    St(s): St<State>,
    Caller(c): Caller,
    Path((uid, id)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::APP_CREDS, on_user(&uid))?;
    owned(&s, &uid, &id).await?;
    store::delete(s.pool(), "application_credentials", &id).await?;
    // Tokens made from it die with it: resolution re-reads the credential
    // once the cache is cleared.
    s.invalidate();
    Ok(no_content())
}
