//! A server's networking as Nova's own views show it: `/servers/{id}/ips`
//! (addresses by network) and `/servers/{id}/os-security-groups` (the
//! groups on its ports, with their ingress rules in Nova's rule format, as
//! Nova renders Neutron's).

use std::collections::BTreeMap;

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_network::model::{Rule, SecurityGroup};
use serde_json::{json, Value};

use super::{reply, Ctx, State};
use crate::error::{ComputeError, Result};
use crate::nics;
use crate::service::ComputeService;

async fn addresses(s: &ComputeService, id: &str) -> Result<BTreeMap<String, Vec<Value>>> {
    let mut nets = s
        .network
        .devices(Some(&[id.to_owned()]))
        .await
        .map_err(nics::from_network)?;
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    if let Some(n) = nets.remove(id) {
        for a in n.addresses {
            let version = if a.addr.contains(':') { 6 } else { 4 };
            out.entry(a.network_name)
                .or_default()
                .push(json!({"version": version, "addr": a.addr}));
        }
    }
    Ok(out)
}

pub async fn ips(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    let a = addresses(&s, &id).await?;
    Ok(reply(StatusCode::OK, c.version, json!({"addresses": a})))
}

pub async fn ips_of_network(
    St(s): St<State>,
    c: Ctx,
    Path((id, network)): Path<(String, String)>,
) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    let mut a = addresses(&s, &id).await?;
    let list = a.remove(&network).ok_or_else(|| {
        ComputeError::NotFound("Instance is not a member of specified network".into())
    })?;
    Ok(reply(StatusCode::OK, c.version, json!({ network: list })))
}

/// A Neutron rule in Nova's format: ports 1–65535 (TCP, UDP) or -1
/// (others) when the rule names a protocol but no ports.
pub(super) fn nova_rule(r: &Rule, names: &BTreeMap<String, (String, String)>) -> Value {
    let (from, to) = match (&r.protocol, r.port_range_min, r.port_range_max) {
        (Some(p), None, None) if matches!(p.to_ascii_lowercase().as_str(), "tcp" | "udp") => {
            (json!(1), json!(65535))
        }
        (Some(_), None, None) => (json!(-1), json!(-1)),
        (_, min, max) => (json!(min), json!(max)),
    };
    let (group, ip_range) = match r.remote_group_id.as_ref().and_then(|g| names.get(g)) {
        Some((name, tenant)) => (json!({"name": name, "tenant_id": tenant}), json!({})),
        None => (
            json!({}),
            json!({"cidr": r.remote_ip_prefix.as_deref().unwrap_or("0.0.0.0/0")}),
        ),
    };
    json!({
        "id": r.id, "parent_group_id": r.security_group_id, "ip_protocol": r.protocol,
        "from_port": from, "to_port": to, "group": group, "ip_range": ip_range,
    })
}

pub(super) fn nova_group(
    g: &SecurityGroup,
    rules: &[Rule],
    names: &BTreeMap<String, (String, String)>,
) -> Value {
    let rules: Vec<Value> = rules
        .iter()
        .filter(|r| r.direction == "ingress")
        .map(|r| nova_rule(r, names))
        .collect();
    json!({"id": g.id, "name": g.name, "description": g.description, "tenant_id": g.project_id, "rules": rules})
}

/// Names and projects of the groups rules point at.
pub(super) async fn remote_group_names(
    s: &ComputeService,
    rules: &[Rule],
) -> Result<BTreeMap<String, (String, String)>> {
    let mut names = BTreeMap::new();
    for r in rules {
        if let Some(g) = &r.remote_group_id {
            if !names.contains_key(g) {
                if let Some(found) = s.network.group(g).await.map_err(nics::from_network)? {
                    names.insert(found.id.clone(), (found.name, found.project_id));
                }
            }
        }
    }
    Ok(names)
}

pub async fn security_groups(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    let groups = s
        .network
        .device_groups(&id)
        .await
        .map_err(nics::from_network)?;
    // The groups its rules name, its own or others.
    let all_rules: Vec<Rule> = groups.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
    let names = remote_group_names(&s, &all_rules).await?;
    let items: Vec<Value> = groups
        .iter()
        .map(|(g, rules)| nova_group(g, rules, &names))
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"security_groups": items}),
    ))
}

/// One port of a server as `os-interface` shows it (`tag` from 2.70).
async fn interface(s: &ComputeService, c: &Ctx, p: &ferro_network::model::Port) -> Result<Value> {
    let ips = s
        .network
        .fixed_ips(Some(std::slice::from_ref(&p.id)))
        .await
        .map_err(nics::from_network)?
        .remove(&p.id)
        .unwrap_or_default();
    let fixed: Vec<Value> = ips
        .iter()
        .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address}))
        .collect();
    let mut o = json!({"port_state": p.status, "port_id": p.id, "net_id": p.network_id,
                       "mac_addr": p.mac_address, "fixed_ips": fixed});
    if c.version.at_least(70) {
        o["tag"] = Value::Null;
    }
    Ok(o)
}

async fn server_ports(
    s: &ComputeService,
    c: &Ctx,
    id: &str,
) -> Result<Vec<ferro_network::model::Port>> {
    s.visible_server(&c.auth, id).await?;
    Ok(s.network
        .ports(&c.auth, Some(id), None)
        .await
        .map_err(nics::from_network)?
        .into_iter()
        .filter(|p| p.device_owner.starts_with("compute:"))
        .collect())
}

/// `GET /servers/{id}/os-interface`: the server's ports.
pub async fn interfaces(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let mut items = Vec::new();
    for p in server_ports(&s, &c, &id).await? {
        items.push(interface(&s, &c, &p).await?);
    }
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"interfaceAttachments": items}),
    ))
}

pub async fn interface_show(
    St(s): St<State>,
    c: Ctx,
    Path((id, port)): Path<(String, String)>,
) -> Result<Response> {
    let p = server_ports(&s, &c, &id)
        .await?
        .into_iter()
        .find(|p| p.id == port)
        .ok_or_else(|| ComputeError::NotFound(format!("Port {port} could not be found.")))?;
    let body = interface(&s, &c, &p).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"interfaceAttachment": body}),
    ))
}

/// Attaching and detaching need NIC hot-plug in the agent, not built yet:
/// refused with a clear message rather than a bare 405.
pub async fn interface_change(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    Err(ComputeError::Conflict(format!(
        "Cannot attach or detach interfaces of instance {id}: network interface hot-plug is not supported by this cloud yet."
    )))
}

pub async fn interface_detach(
    St(s): St<State>,
    c: Ctx,
    Path((id, _port)): Path<(String, String)>,
) -> Result<Response> {
    interface_change(St(s), c, Path(id)).await
}
