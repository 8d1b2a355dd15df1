//! `/v2.0/routers` (with interface actions) and `/v2.0/floatingips`.

use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{list_reply, one, pick_fields, Body, Ctx, Query, State};
use crate::error::{NetworkError, Result};
use crate::model::Router;
use crate::service::{FloatingIpCreate, RouterCreate, RouterUpdate};

async fn render(s: &State, r: &Router) -> Result<serde_json::Value> {
    Ok(r.render(&s.gateway_ips(r).await?))
}

pub async fn list(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let routers = s.routers(&ctx).await?;
    let ips = s.fixed_ips(None).await?;
    let items = routers
        .iter()
        .map(|r| {
            let gw = r
                .gw_port_id
                .as_ref()
                .and_then(|p| ips.get(p))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            r.render(gw)
        })
        .collect();
    Ok(list_reply(&s, "routers", items, &q))
}

pub async fn show(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let r = s.visible_router(&ctx, &id).await?;
    Ok(one(
        StatusCode::OK,
        "router",
        pick_fields(render(&s, &r).await?, &q),
    ))
}

pub async fn create(S(s): S<State>, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: RouterCreate = body.resource("router")?;
    let r = s.create_router(&ctx, req).await?;
    Ok(one(StatusCode::CREATED, "router", render(&s, &r).await?))
}

pub async fn update(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let req: RouterUpdate = body.resource("router")?;
    let r = s.update_router(&ctx, &id, req).await?;
    Ok(one(StatusCode::OK, "router", render(&s, &r).await?))
}

pub async fn delete(S(s): S<State>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    s.delete_router(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The interface bodies come without an envelope: `{"subnet_id": …}`.
fn bare(body: Body) -> Result<serde_json::Value> {
    match body.0 {
        v @ serde_json::Value::Object(_) => Ok(v),
        _ => Err(NetworkError::bad(
            "Invalid request body: expected a JSON object.",
        )),
    }
}

pub async fn add_interface(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let v = s.add_interface(&ctx, &id, &bare(body)?).await?;
    Ok((StatusCode::OK, axum::Json(v)).into_response())
}

pub async fn remove_interface(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let v = s.remove_interface(&ctx, &id, &bare(body)?).await?;
    Ok((StatusCode::OK, axum::Json(v)).into_response())
}

pub async fn list_fips(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let items = s
        .floating_ips(&ctx)
        .await?
        .iter()
        .map(|f| f.render())
        .collect();
    Ok(list_reply(&s, "floatingips", items, &q))
}

pub async fn show_fip(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let f = s.visible_floating_ip(&ctx, &id).await?;
    Ok(one(
        StatusCode::OK,
        "floatingip",
        pick_fields(f.render(), &q),
    ))
}

pub async fn create_fip(S(s): S<State>, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: FloatingIpCreate = body.resource("floatingip")?;
    let f = s.create_floating_ip(&ctx, req).await?;
    Ok(one(StatusCode::CREATED, "floatingip", f.render()))
}

pub async fn update_fip(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let v = body.object("floatingip")?;
    let f = s.update_floating_ip(&ctx, &id, &v).await?;
    Ok(one(StatusCode::OK, "floatingip", f.render()))
}

pub async fn delete_fip(S(s): S<State>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    s.delete_floating_ip(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
