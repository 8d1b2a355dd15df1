//! A project's tags as their own resource (`/v3/projects/{id}/tags`):
//! list, replace, clear, and one tag added, checked or removed. The same
//! tags are the project's `tags` field.

use axum::extract::{Path, State as St};
use axum::response::{IntoResponse, Response};
use ferro_store::sqlx;
use serde::Deserialize;
use serde_json::json;

use super::resources::{check_tags, project_or_404};
use super::{no_content, ok, Body, Caller, State};
use crate::error::{IdentityError, Result};
use crate::policy::{self, authorize, on_project};
use crate::service::Identity;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagsBody {
    tags: Vec<String>,
}

async fn save(s: &Identity, id: &str, tags: &[String]) -> Result<()> {
    let text = check_tags(tags)?;
    sqlx::query("UPDATE projects SET tags = $1 WHERE id = $2")
        .bind(text)
        .bind(id)
        .execute(s.pool())
        .await?;
    s.invalidate();
    Ok(())
}

pub async fn list(St(s): St<State>, Caller(c): Caller, Path(id): Path<String>) -> Result<Response> {
    authorize(&c.ctx, policy::GET_PROJECT, on_project(&id))?;
    Ok(ok(json!({"tags": project_or_404(&s, &id).await?.tags()})))
}

pub async fn replace(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
    Body(b): Body<TagsBody>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_PROJECTS, Default::default())?;
    project_or_404(&s, &id).await?;
    save(&s, &id, &b.tags).await?;
    Ok(ok(json!({"tags": b.tags})))
}

pub async fn clear(
    St(s): St<State>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_PROJECTS, Default::default())?;
    project_or_404(&s, &id).await?;
    save(&s, &id, &[]).await?;
    Ok(no_content())
}

pub async fn check(
    St(s): St<State>,
    Caller(c): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::GET_PROJECT, on_project(&id))?;
    if project_or_404(&s, &id).await?.tags().contains(&tag) {
        Ok(no_content())
    } else {
        Err(IdentityError::not_found("tag", tag))
    }
}

pub async fn add(
    St(s): St<State>,
    Caller(c): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_PROJECTS, Default::default())?;
    let mut tags = project_or_404(&s, &id).await?.tags();
    if !tags.contains(&tag) {
        tags.push(tag);
        save(&s, &id, &tags).await?;
    }
    // (Keystone's 201 here has no body)
    Ok(axum::http::StatusCode::CREATED.into_response())
}

pub async fn remove(
    St(s): St<State>,
    Caller(c): Caller,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    authorize(&c.ctx, policy::MANAGE_PROJECTS, Default::default())?;
    let mut tags = project_or_404(&s, &id).await?.tags();
    let before = tags.len();
    tags.retain(|t| *t != tag);
    if tags.len() == before {
        return Err(IdentityError::not_found("tag", tag));
    }
    save(&s, &id, &tags).await?;
    Ok(no_content())
}
