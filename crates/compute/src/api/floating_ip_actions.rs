//! The 2.1 proxy actions `addFloatingIp` and `removeFloatingIp` (until
//! 2.44, as in Nova): older clients associate a floating IP with a server
//! through compute; the association is the network service's, on the
//! server's port that holds `fixed_address` (or its first port).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{empty, Ctx, State};
use crate::error::{ComputeError, Result};
use crate::model::Server;
use crate::nics;

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(m.into())
}

fn address_of(arg: &Value, action: &str) -> Result<String> {
    arg.get("address")
        .and_then(Value::as_str)
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            bad(format!(
                "Invalid input for field/attribute {action}. 'address' must be an IP address."
            ))
        })
}

async fn floating_ip(
    s: &State,
    c: &Ctx,
    address: &str,
) -> Result<ferro_network::model::FloatingIp> {
    s.network
        .floating_ips(&c.auth)
        .await
        .map_err(nics::from_network)?
        .into_iter()
        .find(|f| f.floating_ip_address == address)
        .ok_or_else(|| ComputeError::NotFound(format!("floating IP {address} not found")))
}

pub async fn add(s: &State, c: &Ctx, srv: &Server, arg: &Value) -> Result<Response> {
    if c.version.at_least(44) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    let address = address_of(arg, "addFloatingIp")?;
    let fixed = match arg.get("fixed_address") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if f.parse::<std::net::IpAddr>().is_ok() => Some(f.clone()),
        Some(_) => return Err(bad("Invalid input for field/attribute fixed_address.")),
    };
    let fip = floating_ip(s, c, &address).await?;
    let ports = s
        .network
        .ports(&c.auth, Some(&srv.id), None)
        .await
        .map_err(nics::from_network)?;
    let mut target = None;
    for p in ports
        .iter()
        .filter(|p| p.device_owner.starts_with("compute:"))
    {
        let ips = s
            .network
            .fixed_ips(Some(std::slice::from_ref(&p.id)))
            .await
            .map_err(nics::from_network)?;
        for ip in ips.get(&p.id).into_iter().flatten() {
            let v4 = !ip.ip_address.contains(':');
            if fixed.as_deref().map_or(v4, |f| f == ip.ip_address) && target.is_none() {
                target = Some((p.id.clone(), ip.ip_address.clone()));
            }
        }
    }
    let Some((port, fixed_ip)) = target else {
        return Err(bad(match fixed {
            Some(f) => format!("Specified fixed address {f} not assigned to instance"),
            None => {
                "Unable to associate floating IP: the instance has no fixed IPv4 address.".into()
            }
        }));
    };
    // One associated elsewhere moves here, as in Nova.
    if fip.port_id.is_some() && fip.port_id.as_deref() != Some(port.as_str()) {
        tracing::info!(floating_ip = %address, from_port = ?fip.port_id, to_server = %srv.id, "floating IP moves to another server");
        s.network
            .update_floating_ip(&c.auth, &fip.id, &json!({"port_id": null}))
            .await
            .map_err(nics::from_network)?;
    }
    // (what the network service refuses, a fixed IP that has a floating
    // IP already among it, is Nova's 400 here)
    s.network
        .update_floating_ip(
            &c.auth,
            &fip.id,
            &json!({"port_id": port, "fixed_ip_address": fixed_ip}),
        )
        .await
        .map_err(|e| match nics::from_network(e) {
            ComputeError::Conflict(m) => ComputeError::BadRequest(m),
            other => other,
        })?;
    s.record_action(&srv.id, "addFloatingIp", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}

pub async fn remove(s: &State, c: &Ctx, srv: &Server, arg: &Value) -> Result<Response> {
    if c.version.at_least(44) {
        return Err(ComputeError::NotFound(
            "The resource could not be found.".into(),
        ));
    }
    let address = address_of(arg, "removeFloatingIp")?;
    let fip = floating_ip(s, c, &address).await?;
    let mine = match &fip.port_id {
        Some(port) => s
            .network
            .port(port)
            .await
            .map_err(nics::from_network)?
            .is_some_and(|p| p.device_id == srv.id),
        None => false,
    };
    if !mine {
        return Err(ComputeError::Conflict(format!(
            "Floating IP {address} is not associated with instance {}.",
            srv.id
        )));
    }
    s.network
        .update_floating_ip(&c.auth, &fip.id, &json!({"port_id": null}))
        .await
        .map_err(nics::from_network)?;
    s.record_action(&srv.id, "removeFloatingIp", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}
