//! Nova's floating IP proxy (`/os-floating-ips`, `/os-floating-ip-pools`),
//! removed at microversion 2.36 and still what older clients call: the
//! network service's floating IPs in Nova's shape. A pool is an external
//! network, named by its name or id; deletes are 202.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_network::model::{FloatingIp, Network};
use ferro_network::service::FloatingIpCreate;
use serde_json::{json, Value};

use super::{empty, gone_at, network_error, reply, Body, Ctx, State};
use crate::error::{ComputeError, Result};
use crate::service::ComputeService;

fn not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Floating IP {id} could not be found."))
}

async fn pools(s: &ComputeService, c: &Ctx) -> Result<Vec<Network>> {
    Ok(s.network
        .networks(&c.auth)
        .await
        .map_err(network_error)?
        .into_iter()
        .filter(|n| n.external != 0)
        .collect())
}

async fn render(s: &ComputeService, c: &Ctx, f: &FloatingIp, pools: &[Network]) -> Result<Value> {
    let pool = pools
        .iter()
        .find(|n| n.id == f.floating_network_id)
        .map(|n| n.name.clone());
    let instance = match &f.port_id {
        Some(p) => s
            .network
            .visible_port(&c.auth, p)
            .await
            .ok()
            .map(|p| p.device_id)
            .filter(|d| !d.is_empty()),
        None => None,
    };
    Ok(json!({
        "id": f.id, "ip": f.floating_ip_address, "pool": pool,
        "fixed_ip": f.fixed_ip_address, "instance_id": instance,
    }))
}

async fn visible(s: &ComputeService, c: &Ctx, id: &str) -> Result<FloatingIp> {
    s.network
        .visible_floating_ip(&c.auth, id)
        .await
        .map_err(|_| not_found(id))
}

pub async fn list(St(s): St<State>, c: Ctx) -> Result<Response> {
    gone_at(&c, 36)?;
    let pools = pools(&s, &c).await?;
    let mut items = Vec::new();
    for f in s
        .network
        .floating_ips(&c.auth)
        .await
        .map_err(network_error)?
    {
        // (an admin's list is its project's, as Nova's)
        if c.auth.project_id() == Some(f.project_id.as_str()) || !c.auth.is_admin() {
            items.push(render(&s, &c, &f, &pools).await?);
        }
    }
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"floating_ips": items}),
    ))
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    let f = visible(&s, &c, &id).await?;
    let pools = pools(&s, &c).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"floating_ip": render(&s, &c, &f, &pools).await?}),
    ))
}

/// `POST /os-floating-ips` with an optional `pool` (name or id; without
/// one, the only external network).
pub async fn create(St(s): St<State>, c: Ctx, Body(body): Body<Value>) -> Result<Response> {
    gone_at(&c, 36)?;
    let pools = pools(&s, &c).await?;
    let pool = match body.get("pool") {
        None | Some(Value::Null) => match pools.as_slice() {
            [one] => one.clone(),
            [] => return Err(ComputeError::NotFound("Floating IP pool not found.".into())),
            _ => {
                return Err(ComputeError::bad(
                    "Multiple floating IP pools exist: name one with 'pool'.",
                ))
            }
        },
        Some(Value::String(p)) => pools
            .iter()
            .find(|n| n.name == *p || n.id == *p)
            .cloned()
            .ok_or_else(|| ComputeError::NotFound(format!("Floating IP pool not found: {p}.")))?,
        Some(other) => {
            return Err(ComputeError::bad(format!(
                "Invalid input for field/attribute pool. Value: {other}."
            )))
        }
    };
    let req = FloatingIpCreate {
        floating_network_id: Some(pool.id.clone()),
        ..Default::default()
    };
    let f = s
        .network
        .create_floating_ip(&c.auth, req)
        .await
        .map_err(|e| match e.status.as_u16() {
            409 => ComputeError::NotFound(format!("No more floating IPs in pool {}.", pool.name)),
            _ => network_error(e),
        })?;
    tracing::info!(floating_ip_id = %f.id, pool = %pool.name, "floating IP allocated through the compute API");
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"floating_ip": render(&s, &c, &f, &pools).await?}),
    ))
}

pub async fn delete(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    visible(&s, &c, &id).await?;
    s.network
        .delete_floating_ip(&c.auth, &id)
        .await
        .map_err(network_error)?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

pub async fn list_pools(St(s): St<State>, c: Ctx) -> Result<Response> {
    gone_at(&c, 36)?;
    let items: Vec<Value> = pools(&s, &c)
        .await?
        .iter()
        .map(|n| json!({"name": n.name}))
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"floating_ip_pools": items}),
    ))
}
