//! Handlers: extract, authorize (in the service), call the service, render.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{many, one, Body, Ctx, Query, State};
use crate::error::{LbError, Result};
use crate::model::Tree;
use crate::service::{BalancerCreate, ListenerCreate, MemberCreate, MonitorCreate, PoolCreate};

type St = AxState<State>;

pub async fn versions(AxState(s): St) -> Response {
    let link = |v: &str| json!([{"href": format!("{}/{v}", s.base_url), "rel": "self"}]);
    (
        StatusCode::OK,
        axum::Json(json!({"versions": [
            {"id": "v2.0", "status": "SUPPORTED", "updated": "2016-12-11T00:00:00Z", "links": link("v2")},
            {"id": "v2.27", "status": "CURRENT", "updated": "2023-05-05T00:00:00Z", "links": link("v2")},
        ]})),
    )
        .into_response()
}

// ---- load balancers ----

pub async fn list_balancers(AxState(s): St, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let items = s
        .visible_trees(&ctx)
        .await?
        .iter()
        .map(Tree::render_lb)
        .collect();
    many(&s, "loadbalancers", "loadbalancers", items, &q)
}

pub async fn create_balancer(AxState(s): St, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: BalancerCreate = body.resource("loadbalancer")?;
    let t = s.create_balancer(&ctx, req).await?;
    Ok(one(StatusCode::CREATED, "loadbalancer", t.render_lb()))
}

pub async fn show_balancer(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(one(
        StatusCode::OK,
        "loadbalancer",
        s.tree(&ctx, &id).await?.render_lb(),
    ))
}

pub async fn update_balancer(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let t = s
        .update_balancer(&ctx, &id, body.resource("loadbalancer")?)
        .await?;
    Ok(one(StatusCode::OK, "loadbalancer", t.render_lb()))
}

pub async fn delete_balancer(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    s.delete_balancer(&ctx, &id, q.flag("cascade")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn balancer_stats(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    let c = s.stats(&ctx, &id).await?;
    Ok(one(
        StatusCode::OK,
        "stats",
        json!({
            "bytes_in": c.bytes_in, "bytes_out": c.bytes_out,
            "active_connections": c.active_connections, "total_connections": c.total_connections,
            "request_errors": c.request_errors,
        }),
    ))
}

pub async fn balancer_status(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    let t = s.tree(&ctx, &id).await?;
    Ok((StatusCode::OK, axum::Json(t.render_status())).into_response())
}

// ---- listeners ----

pub async fn list_listeners(AxState(s): St, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let items = s
        .visible_trees(&ctx)
        .await?
        .iter()
        .flat_map(|t| t.listeners.iter().map(|l| t.render_listener(l)))
        .collect();
    many(&s, "listeners", "listeners", items, &q)
}

pub async fn create_listener(AxState(s): St, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: ListenerCreate = body.resource("listener")?;
    let (t, id) = s.create_listener(&ctx, req).await?;
    render_listener(&t, &id, StatusCode::CREATED)
}

fn render_listener(t: &Tree, id: &str, status: StatusCode) -> Result<Response> {
    let l = t
        .listeners
        .iter()
        .find(|l| l.id == id)
        .ok_or_else(|| LbError::not_found("Listener", id))?;
    Ok(one(status, "listener", t.render_listener(l)))
}

pub async fn show_listener(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    let t = s.tree_of(&ctx, "lb_listeners", "Listener", &id).await?;
    render_listener(&t, &id, StatusCode::OK)
}

pub async fn update_listener(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let t = s
        .update_listener(&ctx, &id, body.resource("listener")?)
        .await?;
    render_listener(&t, &id, StatusCode::OK)
}

pub async fn delete_listener(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.delete_listener(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- pools ----

pub async fn list_pools(AxState(s): St, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let items: Vec<Value> = s
        .visible_trees(&ctx)
        .await?
        .iter()
        .flat_map(|t| t.pools.iter().map(|p| t.render_pool(p)))
        .collect();
    many(&s, "pools", "pools", items, &q)
}

pub async fn create_pool(AxState(s): St, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: PoolCreate = body.resource("pool")?;
    let (t, id) = s.create_pool(&ctx, req).await?;
    render_pool(&t, &id, StatusCode::CREATED)
}

fn render_pool(t: &Tree, id: &str, status: StatusCode) -> Result<Response> {
    let p = t
        .pools
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| LbError::not_found("Pool", id))?;
    Ok(one(status, "pool", t.render_pool(p)))
}

pub async fn show_pool(AxState(s): St, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    let t = s.tree_of(&ctx, "lb_pools", "Pool", &id).await?;
    render_pool(&t, &id, StatusCode::OK)
}

pub async fn update_pool(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let t = s.update_pool(&ctx, &id, body.resource("pool")?).await?;
    render_pool(&t, &id, StatusCode::OK)
}

pub async fn delete_pool(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.delete_pool(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- members ----

pub async fn list_members(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(pool): Path<String>,
    q: Query,
) -> Result<Response> {
    let t = s.tree_of(&ctx, "lb_pools", "Pool", &pool).await?;
    let items = t
        .members
        .iter()
        .filter(|m| m.pool_id == pool)
        .map(|m| t.render_member(m))
        .collect();
    many(&s, &format!("pools/{pool}/members"), "members", items, &q)
}

pub async fn create_member(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(pool): Path<String>,
    body: Body,
) -> Result<Response> {
    let req: MemberCreate = body.resource("member")?;
    let (t, id) = s.create_member(&ctx, &pool, req).await?;
    render_member(&t, &id, StatusCode::CREATED)
}

fn render_member(t: &Tree, id: &str, status: StatusCode) -> Result<Response> {
    let m = t
        .members
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| LbError::not_found("Member", id))?;
    Ok(one(status, "member", t.render_member(m)))
}

pub async fn show_member(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path((pool, member)): Path<(String, String)>,
) -> Result<Response> {
    let t = s.member_tree(&ctx, &pool, &member).await?;
    render_member(&t, &member, StatusCode::OK)
}

pub async fn update_member(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path((pool, member)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let t = s
        .update_member(&ctx, &pool, &member, body.resource("member")?)
        .await?;
    render_member(&t, &member, StatusCode::OK)
}

pub async fn delete_member(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path((pool, member)): Path<(String, String)>,
) -> Result<Response> {
    s.delete_member(&ctx, &pool, &member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- health monitors ----

pub async fn list_monitors(AxState(s): St, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let items = s
        .visible_trees(&ctx)
        .await?
        .iter()
        .flat_map(|t| t.monitors.iter().map(|h| t.render_monitor(h)))
        .collect();
    many(&s, "healthmonitors", "healthmonitors", items, &q)
}

pub async fn create_monitor(AxState(s): St, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: MonitorCreate = body.resource("healthmonitor")?;
    let (t, id) = s.create_monitor(&ctx, req).await?;
    render_monitor(&t, &id, StatusCode::CREATED)
}

fn render_monitor(t: &Tree, id: &str, status: StatusCode) -> Result<Response> {
    let h = t
        .monitors
        .iter()
        .find(|h| h.id == id)
        .ok_or_else(|| LbError::not_found("Health Monitor", id))?;
    Ok(one(status, "healthmonitor", t.render_monitor(h)))
}

pub async fn show_monitor(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    let t = s
        .tree_of(&ctx, "lb_healthmonitors", "Health Monitor", &id)
        .await?;
    render_monitor(&t, &id, StatusCode::OK)
}

pub async fn update_monitor(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let t = s
        .update_monitor(&ctx, &id, body.resource("healthmonitor")?)
        .await?;
    render_monitor(&t, &id, StatusCode::OK)
}

pub async fn delete_monitor(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.delete_monitor(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- what there is to choose from ----

pub async fn providers(Ctx(_): Ctx) -> Response {
    one(
        StatusCode::OK,
        "providers",
        json!([{"name": "amphora", "description": "HAProxy in a namespace of its own on the network node."}]),
    )
}

pub async fn flavors(Ctx(_): Ctx) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"flavors": [], "flavors_links": []})),
    )
        .into_response()
}

pub async fn zones(Ctx(_): Ctx) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"availability_zones": [], "availability_zones_links": []})),
    )
        .into_response()
}

// ---- quotas ----

fn json_reply(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

pub async fn list_quotas(AxState(s): St, Ctx(ctx): Ctx) -> Result<Response> {
    Ok(json_reply(StatusCode::OK, s.list_quotas(&ctx).await?))
}

pub async fn quota_defaults(AxState(s): St, Ctx(_): Ctx) -> Result<Response> {
    Ok(json_reply(StatusCode::OK, s.quota_defaults()))
}

pub async fn show_quota(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    Ok(json_reply(
        StatusCode::OK,
        s.show_quota(&ctx, &project).await?,
    ))
}

/// Octavia answers a quota update with 202.
pub async fn set_quota(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(project): Path<String>,
    Body(body): Body,
) -> Result<Response> {
    Ok(json_reply(
        StatusCode::ACCEPTED,
        s.set_quota(&ctx, &project, &body).await?,
    ))
}

pub async fn reset_quota(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(project): Path<String>,
) -> Result<Response> {
    s.reset_quota(&ctx, &project).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
