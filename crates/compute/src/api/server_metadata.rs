//! `/servers/{id}/metadata[/{key}]`: list, merge (POST), replace (PUT),
//! show, set and delete one key — as Nova: readers may look, members
//! change; a locked server, or one building or in error, refuses changes
//! with 409; more items than `metadata_items` is 403.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::time;
use ferro_store::sqlx;
use serde_json::{json, Map, Value};

use super::servers::{changeable, check_metadata};
use super::{empty, reply, Body, Ctx, State};
use crate::error::{ComputeError, Result};
use crate::model::Server;
use crate::service::ComputeService;

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(m.into())
}

fn not_found() -> ComputeError {
    ComputeError::NotFound("Metadata item was not found".into())
}

/// The server, if its metadata may change now.
async fn writable(s: &ComputeService, c: &Ctx, id: &str) -> Result<Server> {
    let srv = changeable(s, c, id, "os_compute_api:server-metadata:update").await?;
    if !matches!(
        srv.vm_state.as_str(),
        "active" | "paused" | "suspended" | "stopped"
    ) || srv.task_state.is_some()
    {
        return Err(ComputeError::Conflict(format!(
            "Cannot 'update metadata' instance {} while it is in vm_state {}",
            srv.id, srv.vm_state
        )));
    }
    Ok(srv)
}

/// `{"metadata": {...}}` of a request, checked.
fn metadata_of(body: &Value, limit: i64) -> Result<Map<String, Value>> {
    let m = body.get("metadata").ok_or_else(|| {
        bad("Invalid input for field/attribute metadata. 'metadata' is a required property.")
    })?;
    check_metadata(m, limit)
}

async fn limit(s: &ComputeService, srv: &Server) -> Result<i64> {
    Ok(s.quotas(&srv.project_id)
        .await?
        .get("metadata_items")
        .copied()
        .unwrap_or(128))
}

async fn store(s: &ComputeService, id: &str, m: &Map<String, Value>) -> Result<()> {
    sqlx::query("UPDATE servers SET state_generation = state_generation + 1, metadata = $1, updated_at = $2 WHERE id = $3")
        .bind(serde_json::to_string(m).unwrap_or_else(|_| "{}".into()))
        .bind(time::now_micros())
        .bind(id)
        .execute(s.pool())
        .await?;
    tracing::info!(server_id = %id, items = m.len(), "server metadata changed");
    Ok(())
}

fn too_many(limit: i64, n: usize) -> Result<()> {
    if limit >= 0 && n as i64 > limit {
        return Err(ComputeError::Forbidden(format!(
            "Quota exceeded for metadata_items: too many metadata items ({n} > {limit})."
        )));
    }
    Ok(())
}

pub async fn list(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let srv = s.visible_server(&c.auth, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"metadata": srv.meta()}),
    ))
}

/// POST: merges the given items into the server's.
pub async fn update(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    let srv = writable(&s, &c, &id).await?;
    let limit = limit(&s, &srv).await?;
    let given = metadata_of(&body, limit)?;
    let mut m = srv.meta();
    m.extend(given);
    too_many(limit, m.len())?;
    store(&s, &id, &m).await?;
    Ok(reply(StatusCode::OK, c.version, json!({"metadata": m})))
}

/// PUT: replaces all of the server's items.
pub async fn replace(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    let srv = writable(&s, &c, &id).await?;
    let m = metadata_of(&body, limit(&s, &srv).await?)?;
    store(&s, &id, &m).await?;
    Ok(reply(StatusCode::OK, c.version, json!({"metadata": m})))
}

pub async fn show(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let srv = s.visible_server(&c.auth, &id).await?;
    let v = srv.meta().remove(&key).ok_or_else(not_found)?;
    Ok(reply(StatusCode::OK, c.version, json!({"meta": {key: v}})))
}

/// PUT one key: `{"meta": {key: value}}`, the key the same as the path's.
pub async fn set(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
    Body(body): Body<Value>,
) -> Result<Response> {
    let meta = body.get("meta").ok_or_else(|| {
        bad("Invalid input for field/attribute meta. 'meta' is a required property.")
    })?;
    let item = check_metadata(meta, -1)?;
    if item.len() > 1 {
        return Err(bad("Request body contains too many items"));
    }
    if !item.contains_key(&key) {
        return Err(bad("Request body and URI mismatch"));
    }
    let srv = writable(&s, &c, &id).await?;
    let mut m = srv.meta();
    m.extend(item.clone());
    too_many(limit(&s, &srv).await?, m.len())?;
    store(&s, &id, &m).await?;
    Ok(reply(StatusCode::OK, c.version, json!({"meta": item})))
}

pub async fn delete(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let srv = writable(&s, &c, &id).await?;
    let mut m = srv.meta();
    m.remove(&key).ok_or_else(not_found)?;
    store(&s, &id, &m).await?;
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}
