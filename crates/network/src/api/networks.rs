//! `/v2.0/networks` and `/v2.0/subnets`.

use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{create_all, list_reply, one, pick_fields, Body, Bulk, Ctx, Query, State};
use crate::error::Result;
use crate::service::{NetworkCreate, NetworkUpdate, SubnetCreate, SubnetUpdate};

pub async fn list(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let subnets = s.subnet_ids_by_network().await?;
    let items = s
        .networks(&ctx)
        .await?
        .iter()
        .map(|n| {
            n.render(
                subnets.get(&n.id).map(Vec::as_slice).unwrap_or(&[]),
                ctx.is_admin(),
            )
        })
        .collect();
    Ok(list_reply(&s, "networks", items, &q))
}

async fn render(s: &State, n: &crate::model::Network, admin: bool) -> Result<serde_json::Value> {
    let subnets: Vec<String> = s
        .network_subnets(&n.id)
        .await?
        .into_iter()
        .map(|x| x.id)
        .collect();
    Ok(n.render(&subnets, admin))
}

pub async fn show(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let n = s.visible_network(&ctx, &id).await?;
    Ok(one(
        StatusCode::OK,
        "network",
        pick_fields(render(&s, &n, ctx.is_admin()).await?, &q),
    ))
}

pub async fn create(S(s): S<State>, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let reqs = match body.one_or_many::<NetworkCreate>("network")? {
        Bulk::One(req) => {
            let n = s.create_network(&ctx, req).await?;
            let v = render(&s, &n, ctx.is_admin()).await?;
            return Ok(one(StatusCode::CREATED, "network", v));
        }
        Bulk::Many(reqs) => reqs,
    };
    let made = create_all!(reqs, |req| s.create_network(&ctx, req).await, |n| {
        s.delete_network(&ctx, &n.id).await
    });
    let mut out = Vec::with_capacity(made.len());
    for n in &made {
        out.push(render(&s, n, ctx.is_admin()).await?);
    }
    Ok(one(
        StatusCode::CREATED,
        "networks",
        serde_json::Value::Array(out),
    ))
}

pub async fn update(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let req: NetworkUpdate = body.resource("network")?;
    let n = s.update_network(&ctx, &id, req).await?;
    Ok(one(
        StatusCode::OK,
        "network",
        render(&s, &n, ctx.is_admin()).await?,
    ))
}

pub async fn delete(S(s): S<State>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    s.delete_network(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_subnets(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let items = s.subnets(&ctx).await?.iter().map(|x| x.render()).collect();
    Ok(list_reply(&s, "subnets", items, &q))
}

pub async fn show_subnet(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let x = s.visible_subnet(&ctx, &id).await?;
    Ok(one(StatusCode::OK, "subnet", pick_fields(x.render(), &q)))
}

pub async fn create_subnet(S(s): S<State>, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let reqs = match body.one_or_many::<SubnetCreate>("subnet")? {
        Bulk::One(req) => {
            let x = s.create_subnet(&ctx, req).await?;
            return Ok(one(StatusCode::CREATED, "subnet", x.render()));
        }
        Bulk::Many(reqs) => reqs,
    };
    let made = create_all!(reqs, |req| s.create_subnet(&ctx, req).await, |x| {
        s.delete_subnet(&ctx, &x.id).await
    });
    let out = made.iter().map(|x| x.render()).collect();
    Ok(one(
        StatusCode::CREATED,
        "subnets",
        serde_json::Value::Array(out),
    ))
}

pub async fn update_subnet(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let req: SubnetUpdate = body.resource("subnet")?;
    let x = s.update_subnet(&ctx, &id, req).await?;
    Ok(one(StatusCode::OK, "subnet", x.render()))
}

pub async fn delete_subnet(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.delete_subnet(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
