//! `/v2.0/ports`.

use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{create_all, list_reply, one, pick_fields, Body, Bulk, Ctx, Query, State};
use crate::error::Result;
use crate::service::{PortCreate, PortUpdate};

pub async fn list(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let ports = s
        .ports(&ctx, q.get("device_id"), q.get("network_id"))
        .await?;
    let ids: Vec<String> = ports.iter().map(|p| p.id.clone()).collect();
    let ips = if ids.len() == 1 {
        s.fixed_ips(Some(&ids)).await?
    } else {
        s.fixed_ips(None).await?
    };
    let items = ports
        .iter()
        .map(|p| {
            p.render(
                ips.get(&p.id).map(Vec::as_slice).unwrap_or(&[]),
                ctx.is_admin(),
            )
        })
        .collect();
    Ok(list_reply(&s, "ports", items, &q))
}

pub async fn show(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let p = s.visible_port(&ctx, &id).await?;
    let ips = s
        .fixed_ips(Some(std::slice::from_ref(&id)))
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(one(
        StatusCode::OK,
        "port",
        pick_fields(p.render(&ips, ctx.is_admin()), &q),
    ))
}

pub async fn create(S(s): S<State>, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let reqs = match body.one_or_many::<PortCreate>("port")? {
        Bulk::One(req) => {
            let (p, ips) = s.create_port(&ctx, req).await?;
            return Ok(one(
                StatusCode::CREATED,
                "port",
                p.render(&ips, ctx.is_admin()),
            ));
        }
        Bulk::Many(reqs) => reqs,
    };
    let made = create_all!(reqs, |req| s.create_port(&ctx, req).await, |made| {
        s.delete_port(&ctx, &made.0.id).await
    });
    let out = made
        .iter()
        .map(|(p, ips)| p.render(ips, ctx.is_admin()))
        .collect();
    Ok(one(
        StatusCode::CREATED,
        "ports",
        serde_json::Value::Array(out),
    ))
}

pub async fn update(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let req: PortUpdate = body.resource("port")?;
    let (p, ips) = s.update_port(&ctx, &id, req).await?;
    Ok(one(StatusCode::OK, "port", p.render(&ips, ctx.is_admin())))
}

pub async fn delete(S(s): S<State>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    s.delete_port(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
