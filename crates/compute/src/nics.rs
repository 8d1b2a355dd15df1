//! A server's network interfaces: what a create asks for (`networks` of the
//! request) and the ports it holds. The create saga (`server_create`)
//! makes and takes the ports; the delete saga removes and releases them.

use ferro_common::AuthContext;
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
