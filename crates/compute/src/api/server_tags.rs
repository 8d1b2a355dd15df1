//! `/servers/{id}/tags[/{tag}]` (microversion 2.26 on): list, replace,
//! clear, and one tag added, checked or removed — as Nova: readers look,
//! members change; at most 50 tags of at most 60 characters, without `/`
//! or `,`; a server building, in error or in the middle of a task refuses
//! changes with 409.

use axum::extract::{Path, State as St};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use ferro_common::time;
use ferro_store::sqlx;
use serde_json::{json, Value};

use super::servers::changeable;
use super::{empty, reply, Body, Ctx, State};
use crate::error::{ComputeError, Result};
use crate::model::Server;
use crate::service::ComputeService;

const MAX_TAGS: usize = 50;

fn check_version(c: &Ctx) -> Result<()> {
    if !c.version.at_least(26) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    Ok(())
}

fn check_tag(t: &str) -> Result<()> {
    if t.is_empty() || t.chars().count() > 60 || t.contains(['/', ',']) {
        return Err(ComputeError::bad(format!(
            "Invalid input for field/attribute tags. Value: {t}. Tags are 1 to 60 characters without '/' or ','."
        )));
    }
    Ok(())
}

/// The server, if its tags may change now.
async fn writable(s: &ComputeService, c: &Ctx, id: &str) -> Result<Server> {
    let srv = changeable(s, c, id, "os_compute_api:os-server-tags:update").await?;
    if !matches!(
        srv.vm_state.as_str(),
        "active" | "paused" | "suspended" | "stopped" | "shelved" | "shelved_offloaded"
    ) || srv.task_state.is_some()
    {
        return Err(ComputeError::Conflict(format!(
            "Cannot 'update tags' instance {} while it is in vm_state {}",
            srv.id, srv.vm_state
        )));
    }
    Ok(srv)
}

/// Writes the tags `change` makes of the server's, unless another request
/// changed them meanwhile (then looks again); returns the tags written.
async fn change(
    s: &ComputeService,
    srv: Server,
    change: impl Fn(Vec<String>) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    let mut before = srv.tags;
    for _ in 0..10 {
        let old: Vec<String> = serde_json::from_str(&before).unwrap_or_default();
        let new = change(old)?;
        if new.len() > MAX_TAGS {
            return Err(ComputeError::bad(format!(
                "The number of tags exceeded the per-server limit {MAX_TAGS}"
            )));
        }
        let text = serde_json::to_string(&new).unwrap_or_else(|_| "[]".into());
        let n = sqlx::query(
            "UPDATE servers SET tags = $1, updated_at = $2 WHERE id = $3 AND tags = $4",
        )
        .bind(&text)
        .bind(time::now_micros())
        .bind(&srv.id)
        .bind(&before)
        .execute(s.pool())
        .await?
        .rows_affected();
        if n == 1 {
            tracing::info!(server_id = %srv.id, tags = new.len(), "server tags changed");
            return Ok(new);
        }
        before = sqlx::query_scalar("SELECT tags FROM servers WHERE id = $1")
            .bind(&srv.id)
            .fetch_one(s.pool())
            .await?;
    }
    Err(ComputeError::Stale(srv.id))
}

pub async fn list(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    check_version(&c)?;
    let srv = s.visible_server(&c.auth, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"tags": srv.tag_list()}),
    ))
}

pub async fn replace(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    check_version(&c)?;
    let tags: Vec<String> = match body.get("tags") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str().map(str::to_owned).ok_or_else(|| {
                    ComputeError::bad("Invalid input for field/attribute tags. Tags are strings.")
                })
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute tags. 'tags' is a required property.",
            ))
        }
    };
    for t in &tags {
        check_tag(t)?;
    }
    let mut unique: Vec<String> = Vec::new();
    for t in tags {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    let srv = writable(&s, &c, &id).await?;
    let tags = change(&s, srv, |_| Ok(unique.clone())).await?;
    Ok(reply(StatusCode::OK, c.version, json!({"tags": tags})))
}

pub async fn clear(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    check_version(&c)?;
    let srv = writable(&s, &c, &id).await?;
    change(&s, srv, |_| Ok(Vec::new())).await?;
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}

pub async fn check(
    St(s): St<State>,
    c: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    check_version(&c)?;
    let srv = s.visible_server(&c.auth, &id).await?;
    if srv.tag_list().contains(&tag) {
        Ok(empty(StatusCode::NO_CONTENT, c.version))
    } else {
        Err(ComputeError::NotFound(format!(
            "Tag {tag} could not be found for instance {id}."
        )))
    }
}

/// `PUT /servers/{id}/tags/{tag}`: 201 when added, 204 when it was there.
pub async fn add(
    St(s): St<State>,
    c: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    check_version(&c)?;
    check_tag(&tag)?;
    let srv = writable(&s, &c, &id).await?;
    let had = srv.tag_list().contains(&tag);
    if !had {
        change(&s, srv, |mut tags| {
            if !tags.contains(&tag) {
                tags.push(tag.clone());
            }
            Ok(tags)
        })
        .await?;
    }
    let status = if had {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    };
    let mut r = empty(status, c.version);
    if let Ok(v) = HeaderValue::from_str(&format!("{}/servers/{id}/tags/{tag}", s.base_url)) {
        r.headers_mut().insert("location", v);
    }
    Ok(r)
}

pub async fn remove(
    St(s): St<State>,
    c: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response> {
    check_version(&c)?;
    let srv = writable(&s, &c, &id).await?;
    change(&s, srv, |mut tags| {
        let before = tags.len();
        tags.retain(|t| *t != tag);
        if tags.len() == before {
            return Err(ComputeError::NotFound(format!(
                "Tag {tag} could not be found for instance {id}."
            )));
        }
        Ok(tags)
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}
