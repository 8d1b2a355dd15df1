//! A server's network interfaces: what a create asks for (`networks` of the
//! request), the ports made or taken for it, and their undo.
//!
//! Ports are made before the server row is written, with the server's id
//! as their device id; if any port of a boot fails, the ones already made
//! are removed (and taken ones released), so a refused create leaves
//! nothing behind.

use ferro_common::AuthContext;
use ferro_network::service::{FixedIpRequest, PortCreate};
use ferro_network::NetworkError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ComputeError, Result};
use crate::service::ComputeService;

/// One interface a create asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NicRequest {
    Network {
        network_id: String,
        fixed_ip: Option<String>,
    },
    Port {
        port_id: String,
    },
}

/// A port a server holds, as kept in the server row.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Nic {
    pub port_id: String,
    pub network_id: String,
    /// Made for this server (deleted with it) rather than brought by the user.
    pub created: bool,
}

/// A network error as Nova reports it for a request body.
pub fn from_network(e: NetworkError) -> ComputeError {
    match e.status.as_u16() {
        403 => ComputeError::Forbidden(e.message),
        409 => ComputeError::Conflict(e.message),
        500..=599 => {
            ComputeError::Internal(format!("network: {}", e.cause().unwrap_or(&e.message)))
        }
        _ => ComputeError::BadRequest(e.message),
    }
}

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(m.into())
}

/// Parses `networks` of a create: `"none"`, `"auto"`, or a list of
/// `{"uuid"|"port", "fixed_ip"}`; absent means auto before 2.37.
pub async fn requests(
    s: &ComputeService,
    ctx: &AuthContext,
    networks: Option<&Value>,
    required: bool,
) -> Result<Vec<NicRequest>> {
    let auto = || async {
        Ok::<_, ComputeError>(
            s.network
                .auto_network(ctx)
                .await
                .map_err(from_network)?
                .map(|n| {
                    vec![NicRequest::Network {
                        network_id: n.id,
                        fixed_ip: None,
                    }]
                })
                .unwrap_or_default(),
        )
    };
    match networks {
        None if required => Err(bad(
            "Invalid input for field/attribute networks. 'networks' is a required property.",
        )),
        None | Some(Value::Null) => auto().await,
        Some(Value::String(v)) if v == "none" => Ok(Vec::new()),
        Some(Value::String(v)) if v == "auto" => auto().await,
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                let Some(o) = item.as_object() else {
                    return Err(bad(format!(
                        "Invalid input for field/attribute networks. Value: {item}."
                    )));
                };
                let fixed_ip = match o.get("fixed_ip") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(ip)) if ip.parse::<std::net::Ipv4Addr>().is_ok() => Some(ip.clone()),
                    Some(other) => return Err(bad(format!("Invalid input for field/attribute fixed_ip. Value: {other}. '{other}' is not a 'ipv4'"))),
                };
                match (o.get("port").and_then(Value::as_str), o.get("uuid").and_then(Value::as_str)) {
                    (Some(port), _) => {
                        let p = s
                            .network
                            .visible_port(ctx, port)
                            .await
                            .map_err(|_| bad(format!("Port {port} could not be found.")))?;
                        if !p.device_id.is_empty() {
                            return Err(ComputeError::Conflict(format!("Port {port} is still in use.")));
                        }
                        out.push(NicRequest::Port { port_id: p.id });
                    }
                    (None, Some(net)) => {
                        s.network
                            .visible_network(ctx, net)
                            .await
                            .map_err(|_| bad(format!("Network {net} could not be found.")))?;
                        out.push(NicRequest::Network { network_id: net.to_owned(), fixed_ip });
                    }
                    (None, None) => {
                        return Err(bad("Invalid input for field/attribute networks: each entry needs a 'uuid' or a 'port'."))
                    }
                }
            }
            Ok(out)
        }
        Some(other) => Err(bad(format!(
            "Invalid input for field/attribute networks. Value: {other}."
        ))),
    }
}

/// Group ids for `security_groups` names (or ids) of a create, in the
/// server's project.
pub async fn groups(s: &ComputeService, project: &str, names: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for n in names {
        let g = s
            .network
            .resolve_group(project, n)
            .await
            .map_err(from_network)?;
        if !out.contains(&g.id) {
            out.push(g.id);
        }
    }
    Ok(out)
}

/// Makes or takes the ports of one server; on failure undoes its own work.
pub async fn attach(
    s: &ComputeService,
    ctx: &AuthContext,
    server_id: &str,
    hostname: &str,
    wanted: &[NicRequest],
    groups: &[String],
) -> Result<Vec<Nic>> {
    let mut done: Vec<Nic> = Vec::new();
    for w in wanted {
        let step = match w {
            NicRequest::Network {
                network_id,
                fixed_ip,
            } => s
                .network
                .create_port(
                    ctx,
                    PortCreate {
                        network_id: Some(network_id.clone()),
                        device_id: Some(server_id.to_owned()),
                        device_owner: Some(ferro_network::model::owner::COMPUTE.to_owned()),
                        dns_name: Some(hostname.to_owned()),
                        fixed_ips: fixed_ip.as_ref().map(|ip| {
                            vec![FixedIpRequest {
                                subnet_id: None,
                                ip_address: Some(ip.clone()),
                            }]
                        }),
                        security_groups: (!groups.is_empty()).then(|| groups.to_vec()),
                        ..Default::default()
                    },
                )
                .await
                .map(|(p, _)| Nic {
                    port_id: p.id,
                    network_id: network_id.clone(),
                    created: true,
                }),
            NicRequest::Port { port_id } => s
                .network
                .bind_port(port_id, server_id, "", hostname)
                .await
                .and(s.network.port(port_id).await)
                .map(|p| Nic {
                    port_id: port_id.clone(),
                    network_id: p.map(|p| p.network_id).unwrap_or_default(),
                    created: false,
                }),
        };
        match step {
            Ok(nic) => done.push(nic),
            Err(e) => {
                detach(s, &done).await;
                return Err(from_network(e));
            }
        }
    }
    Ok(done)
}

/// Removes the ports made for a server and releases the ones it took.
/// Errors are logged: the server is going away regardless.
pub async fn detach(s: &ComputeService, nics: &[Nic]) {
    for n in nics {
        let r = if n.created {
            s.network.remove_port(&n.port_id).await
        } else {
            s.network.unbind_port(&n.port_id).await
        };
        if let Err(e) = r {
            tracing::warn!(port_id = %n.port_id, error = %e, "releasing a server's port failed");
        }
    }
}
