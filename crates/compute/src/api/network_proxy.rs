//! Nova's network proxies, removed at microversion 2.36 and still what
//! older clients call: `/os-networks` (the networks the caller sees, as
//! Nova shows Neutron's: an id, a label, and nova-network's fields empty)
//! and `/os-tenant-networks` (id, label and the first subnet's CIDR).
//! Both only read; creating networks is the network API's.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_network::model::Network;
use serde_json::{json, Value};

use super::{gone_at, reply, Ctx, State};
use crate::error::{ComputeError, Result};
use crate::nics;
use crate::service::ComputeService;

/// nova-network's fields, which a Neutron network doesn't have.
const EMPTY_FIELDS: &[&str] = &[
    "bridge",
    "bridge_interface",
    "broadcast",
    "cidr_v6",
    "dhcp_server",
    "dhcp_start",
    "dns1",
    "dns2",
    "gateway",
    "gateway_v6",
    "host",
    "injected",
    "multi_host",
    "netmask",
    "netmask_v6",
    "priority",
    "rxtx_base",
    "vlan",
    "vpn_private_address",
    "vpn_public_address",
    "vpn_public_port",
];

/// The networks the caller sees, each with its first IPv4 subnet's CIDR.
async fn visible(s: &ComputeService, c: &Ctx) -> Result<Vec<(Network, Option<String>)>> {
    let nets = s
        .network
        .networks(&c.auth)
        .await
        .map_err(nics::from_network)?;
    let subnets = s
        .network
        .subnets(&c.auth)
        .await
        .map_err(nics::from_network)?;
    Ok(nets
        .into_iter()
        .map(|n| {
            let cidr = subnets
                .iter()
                .find(|sn| sn.network_id == n.id && !sn.cidr.contains(':'))
                .map(|sn| sn.cidr.clone());
            (n, cidr)
        })
        .collect())
}

fn full(n: &Network, cidr: &Option<String>) -> Value {
    let mut o = json!({"id": n.id, "label": n.name, "cidr": cidr, "project_id": n.project_id,
                       "mtu": n.mtu, "enable_dhcp": null, "share_address": null,
                       "created_at": null, "updated_at": null, "deleted_at": null, "deleted": null});
    for k in EMPTY_FIELDS {
        o[*k] = Value::Null;
    }
    o
}

fn brief(n: &Network, cidr: &Option<String>) -> Value {
    json!({"id": n.id, "label": n.name, "cidr": cidr})
}

async fn one(s: &ComputeService, c: &Ctx, id: &str) -> Result<(Network, Option<String>)> {
    visible(s, c)
        .await?
        .into_iter()
        .find(|(n, _)| n.id == id)
        .ok_or_else(|| ComputeError::NotFound(format!("Network {id} could not be found.")))
}

pub async fn list(St(s): St<State>, c: Ctx) -> Result<Response> {
    gone_at(&c, 36)?;
    let items: Vec<Value> = visible(&s, &c)
        .await?
        .iter()
        .map(|(n, cidr)| full(n, cidr))
        .collect();
    Ok(reply(StatusCode::OK, c.version, json!({"networks": items})))
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    let (n, cidr) = one(&s, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"network": full(&n, &cidr)}),
    ))
}

pub async fn list_tenant(St(s): St<State>, c: Ctx) -> Result<Response> {
    gone_at(&c, 36)?;
    let items: Vec<Value> = visible(&s, &c)
        .await?
        .iter()
        .map(|(n, cidr)| brief(n, cidr))
        .collect();
    Ok(reply(StatusCode::OK, c.version, json!({"networks": items})))
}

pub async fn show_tenant(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    let (n, cidr) = one(&s, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"network": brief(&n, &cidr)}),
    ))
}
