//! `/v3/snapshots`.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{many, one, Body, Ctx, Query, State, P};
use crate::error::Result;
use crate::service::{SnapshotCreate, SnapshotUpdate};

async fn listing(s: &State, ctx: &Ctx, q: &Query, detail: bool) -> Result<Response> {
    let lq = q.list()?;
    let rows = s.list_snapshots(&ctx.0, &lq).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|snap| {
            let full = snap.render(ctx.view());
            if detail {
                full
            } else {
                json!({
                    "id": snap.id, "name": snap.name, "description": snap.description,
                    "volume_id": snap.volume_id, "status": snap.status, "size": snap.size,
                    "created_at": full["created_at"], "updated_at": full["updated_at"],
                    "metadata": full["metadata"],
                })
            }
        })
        .collect();
    let path = if detail {
        "snapshots/detail"
    } else {
        "snapshots"
    };
    Ok(many(s, path, "snapshots", items, &lq, None))
}

pub async fn list(S(s): S<State>, ctx: Ctx, q: Query) -> Result<Response> {
    listing(&s, &ctx, &q, false).await
}

pub async fn list_detail(S(s): S<State>, ctx: Ctx, q: Query) -> Result<Response> {
    listing(&s, &ctx, &q, true).await
}

pub async fn show(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let snap = s.visible_snapshot(&ctx.0, p.get("id")).await?;
    Ok(one(StatusCode::OK, "snapshot", snap.render(ctx.view())))
}

/// A snapshot as Cinder answers a create or an update: without what its
/// show/detail extension adds (`os-extended-snapshot-attributes:*`).
fn written(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|k, _| !k.starts_with("os-extended-snapshot-attributes:"));
    }
    v
}

pub async fn create(S(s): S<State>, ctx: Ctx, body: Body) -> Result<Response> {
    let req: SnapshotCreate = body.resource("snapshot")?;
    let snap = s.create_snapshot(&ctx.0, req, ctx.1).await?;
    Ok(one(
        StatusCode::ACCEPTED,
        "snapshot",
        written(snap.render(ctx.view())),
    ))
}

pub async fn update(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let req: SnapshotUpdate = body.resource("snapshot")?;
    let snap = s.update_snapshot(&ctx.0, p.get("id"), req).await?;
    Ok(one(
        StatusCode::OK,
        "snapshot",
        written(snap.render(ctx.view())),
    ))
}

pub async fn delete(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    s.delete_snapshot(&ctx.0, p.get("id")).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
