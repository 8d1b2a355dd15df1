//! Credentials (`/v3/credentials`) and EC2 credentials
//! (`/v3/users/{id}/credentials/OS-EC2`): opaque blobs a user keeps in
//! Keystone for other services. An EC2 credential is a credential of type
//! `ec2` whose blob holds `access` and `secret`, and whose id is the SHA-256
//! of the access key, as Keystone makes it. Blobs are stored as given
//! (Keystone encrypts them at rest; see docs/identity.md).

use axum::extract::{Path, State as St};
use axum::response::Response;
use ferro_common::ids;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::resources::{project_or_404, user_or_404};
use super::{created, list_body, no_content, ok, Body, Caller, Params, State};
use crate::error::{IdentityError, Result};
use crate::policy::{self, authorize, on_user};
use crate::service::Identity;
use crate::store::{self, Record};

const KIND: &str = "credential";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    credential: CredentialFields,
}

#[derive(Deserialize, Default)]
pub struct CredentialFields {
    user_id: Option<String>,
    project_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    blob: Option<Value>,
}

fn ec2_id(access: &str) -> String {
    hex::encode(Sha256::digest(access.as_bytes()))
}

fn blob_text(v: Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(IdentityError::bad(
            "Invalid input for field 'blob': it must be a string.",
        )),
    }
}

/// The access key of an `ec2` blob, or Keystone's 400.
fn ec2_access(blob: &str) -> Result<String> {
    let v: Value = serde_json::from_str(blob)
        .map_err(|_| IdentityError::bad("Invalid blob in credential: an ec2 blob must be JSON."))?;
    v.get("access")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| IdentityError::bad("Invalid blob in credential: it has no access key."))
}

fn render(s: &Identity, r: &Record) -> Value {
    let mut v: Value = serde_json::from_str(&r.body).unwrap_or_else(|_| json!({}));
    v["id"] = json!(r.id);
    v["user_id"] = json!(r.owner_id);
    v["links"] = json!({"self": format!("{}/credentials/{}", s.base_url(), r.id)});
    v
}

async fn load(s: &Identity, id: &str) -> Result<Record> {
    store::record(s.pool(), KIND, id)
        .await?
        .ok_or_else(|| IdentityError::not_found("credential", id))
}

pub async fn create(
    St(s): St<State>,
    Caller(c): Caller,
    Body(b): Body<CredentialBody>,
) -> Result<Response> {
    let f = b.credential;
    let user_id = f
        .user_id
        .ok_or_else(|| IdentityError::bad("'user_id' is a required property."))?;
    authorize(&c.ctx, policy::CREDENTIALS, on_user(&user_id))?;
    let kind = f
        .kind
        .ok_or_else(|| IdentityError::bad("'type' is a required property."))?;
    let blob = blob_text(
        f.blob
            .ok_or_else(|| IdentityError::bad("'blob' is a required property."))?,
    )?;
    user_or_404(&s, &user_id).await?;
    let id = if kind == "ec2" {
        let project = f.project_id.as_deref().ok_or_else(|| {
            IdentityError::bad("A credential of type ec2 must have a project_id.")
        })?;
        project_or_404(&s, project).await?;
        ec2_id(&ec2_access(&blob)?)
    } else {
        if let Some(p) = &f.project_id {
            project_or_404(&s, p).await?;
        }
        ids::hex_id()
    };
    if store::record(s.pool(), KIND, &id).await?.is_some() {
        return Err(IdentityError::Conflict {
            kind: "credential",
            detail: format!("Duplicate ID, {id}"),
        });
    }
    let row = Record {
        id,
        owner_id: user_id,
        body: json!({"type": kind, "blob": blob, "project_id": f.project_id}).to_string(),
    };
    store::put_record(s.pool(), KIND, &row).await?;
    tracing::info!(credential = %row.id, user = %row.owner_id, "credential created");
    Ok(created(json!({"credential": render(&s, &row)})))
}

pub async fn list(St(s): St<State>, Caller(c): Caller, p: Params) -> Result<Response> {
    // Everyone may list; a non-admin sees only their own (Keystone's filter).
    authorize(&c.ctx, policy::LIST_CREDENTIALS, Default::default())?;
    let owner = if c.ctx.is_admin() {
        p.get("user_id").map(str::to_owned)
    } else {
        Some(c.ctx.user_id.clone())
    };
    let rows = store::records(s.pool(), KIND, owner.as_deref()).await?;
    let items = rows
        .iter()
        .map(|r| render(&s, r))
        .filter(|v| p.get("type").is_none_or(|t| v["type"] == t))
        .collect();
    Ok(ok(list_body(
        "credentials",
        items,
        format!("{}/credentials", s.base_url()),
    )))
}

pub async fn show(St(s): St<State>, Caller(c): Caller, Path(id): Path<String>) -> Result<Response> {
    let row = load(&s, &id).await?;
    authorize(&c.ctx, policy::CREDENTIALS, on_user(&row.owner_id))?;
    Ok(ok(json!({"credential": render(&s, &row)})))
}

pub async fn update(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<CredentialBody>,
) -> Result<Response> {
    let mut row = load(&s, &id).await?;
    authorize(&c.ctx, policy::CREDENTIALS, on_user(&row.owner_id))?;
    let f = b.credential;
    let mut body: Value = serde_json::from_str(&row.body).unwrap_or_else(|_| json!({}));
    if let Some(u) = f.user_id {
        authorize(&c.ctx, policy::CREDENTIALS, on_user(&u))?;
        user_or_404(&s, &u).await?;
        row.owner_id = u;
    }
    if let Some(p) = f.project_id {
        project_or_404(&s, &p).await?;
        body["project_id"] = json!(p);
    }
    if let Some(k) = f.kind {
        body["type"] = json!(k);
    }
    if let Some(blob) = f.blob {
        body["blob"] = json!(blob_text(blob)?);
    }
    if body["type"] == "ec2" {
        // the id stays: Keystone keeps an updated EC2 credential's id
        ec2_access(body["blob"].as_str().unwrap_or(""))?;
        if body["project_id"].is_null() {
            return Err(IdentityError::bad(
                "A credential of type ec2 must have a project_id.",
            ));
        }
    }
    row.body = body.to_string();
    store::put_record(s.pool(), KIND, &row).await?;
    Ok(ok(json!({"credential": render(&s, &row)})))
}

pub async fn delete(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let row = load(&s, &id).await?;
    authorize(&c.ctx, policy::CREDENTIALS, on_user(&row.owner_id))?;
    store::delete_record(s.pool(), KIND, &id).await?;
    tracing::info!(credential = %id, "credential deleted");
    Ok(no_content())
}

// ---- EC2 ----

#[derive(Deserialize)]
pub struct Ec2Body {
    tenant_id: Option<String>,
    project_id: Option<String>,
}

fn render_ec2(s: &Identity, r: &Record) -> Option<Value> {
    let body: Value = serde_json::from_str(&r.body).ok()?;
    if body["type"] != "ec2" {
        return None;
    }
    let blob: Value = serde_json::from_str(body["blob"].as_str()?).ok()?;
    let access = blob["access"].as_str()?;
    Some(json!({
        "user_id": r.owner_id,
        "tenant_id": body["project_id"],
        "access": access,
        "secret": blob["secret"],
        "trust_id": blob.get("trust_id").cloned().unwrap_or(Value::Null),
        "links": {"self": format!("{}/users/{}/credentials/OS-EC2/{access}", s.base_url(), r.owner_id)},
    }))
}

async fn ec2_or_404(s: &Identity, user: &str, access: &str) -> Result<(Record, Value)> {
    store::record(s.pool(), KIND, &ec2_id(access))
        .await?
        .filter(|r| r.owner_id == user)
        .and_then(|r| render_ec2(s, &r).map(|v| (r, v)))
        .ok_or_else(|| IdentityError::not_found("credential", access))
}

pub async fn ec2_create(
    St(s): St<State>,
    Caller(c): Caller,
    Path(user): Path<String>,
    Body(b): Body<Ec2Body>,
) -> Result<Response> {
    authorize(&c.ctx, policy::CREDENTIALS, on_user(&user))?;
    let project = b
        .tenant_id
        .or(b.project_id)
        .ok_or_else(|| IdentityError::bad("'tenant_id' is a required property."))?;
    user_or_404(&s, &user).await?;
    project_or_404(&s, &project).await?;
    let access = ids::hex_id();
    let secret = ids::hex_id();
    let blob = json!({"access": access, "secret": secret, "trust_id": null}).to_string();
    let row = Record {
        id: ec2_id(&access),
        owner_id: user,
        body: json!({"type": "ec2", "blob": blob, "project_id": project}).to_string(),
    };
    store::put_record(s.pool(), KIND, &row).await?;
    tracing::info!(credential = %row.id, user = %row.owner_id, "EC2 credential created");
    Ok(created(json!({"credential": render_ec2(&s, &row)})))
}

pub async fn ec2_list(
    St(s): St<State>,
    Caller(c): Caller,
    Path(user): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::CREDENTIALS, on_user(&user))?;
    user_or_404(&s, &user).await?;
    let rows = store::records(s.pool(), KIND, Some(&user)).await?;
    let items = rows.iter().filter_map(|r| render_ec2(&s, r)).collect();
    Ok(ok(list_body(
        "credentials",
        items,
        format!("{}/users/{user}/credentials/OS-EC2", s.base_url()),
    )))
}

pub async fn ec2_show(
    St(s): St<State>,
    Caller(c): Caller,
    Path((user, access)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::CREDENTIALS, on_user(&user))?;
    let (_, v) = ec2_or_404(&s, &user, &access).await?;
    Ok(ok(json!({"credential": v})))
}

pub async fn ec2_delete(
    St(s): St<State>,
    Caller(c): Caller,
    Path((user, access)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::CREDENTIALS, on_user(&user))?;
    let (r, _) = ec2_or_404(&s, &user, &access).await?;
    store::delete_record(s.pool(), KIND, &r.id).await?;
    Ok(no_content())
}
