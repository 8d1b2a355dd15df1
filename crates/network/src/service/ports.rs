//! Ports: fixed IPs through IPAM, MAC addresses, security groups, address
//! pairs and binding. [`NetworkService::insert_port`] is the one place that
//! allocates addresses; routers, floating IPs and servers all create their
//! ports through it.

use std::net::Ipv4Addr;

use ferro_common::{ids, time, AuthContext};
use ferro_store::{flag, sqlx};
use serde::Deserialize;

use super::networks::{check_name, some_or_null};
use super::{seq, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::{self, Cidr, Pool};
use crate::model::{owner, AddressPair, FixedIp, Network, Port, Subnet};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedIpRequest {
    pub subnet_id: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortCreate {
    pub network_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub mac_address: Option<String>,
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    pub port_security_enabled: Option<bool>,
    #[serde(rename = "binding:host_id")]
    pub binding_host: Option<String>,
    #[serde(rename = "binding:vnic_type")]
    pub vnic_type: Option<String>,
    #[serde(rename = "binding:profile")]
    pub binding_profile: Option<serde_json::Value>,
    pub dns_name: Option<String>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    /// The port's id, when the caller made it first (a saga that must find
    /// the port again after a crash); never read from a request body.
    #[serde(skip)]
    pub id: Option<String>,
    /// Which service made the port for its device (`compute`), so that
    /// the garbage collector may remove it once that device is gone.
    #[serde(skip)]
    pub made_by: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    pub device_id: Option<String>,
    pub device_owner: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub allowed_address_pairs: Option<Vec<AddressPair>>,
    pub port_security_enabled: Option<bool>,
    #[serde(rename = "binding:host_id")]
    pub binding_host: Option<String>,
    #[serde(rename = "binding:vnic_type")]
    pub vnic_type: Option<String>,
    #[serde(rename = "binding:profile", default, deserialize_with = "some_or_null")]
    pub binding_profile: Option<Option<serde_json::Value>>,
    pub dns_name: Option<String>,
}

/// A port to insert, with every choice already checked.
pub(crate) struct NewPort {
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub mac: Option<String>,
    /// `None`: one address from the first subnet with room.
    pub fixed_ips: Option<Vec<FixedIpRequest>>,
    pub device_id: String,
    pub device_owner: String,
    pub security_groups: Vec<String>,
    pub address_pairs: Vec<AddressPair>,
    pub port_security: bool,
    pub binding_host: String,
    pub dns_name: String,
    pub status: &'static str,
    pub id: Option<String>,
    pub made_by: String,
}

/// Addresses asked of a port: (subnet id, a specific address or any).
type Wanted = Vec<(String, Option<Ipv4Addr>)>;

fn port_not_found(id: &str) -> NetworkError {
    NetworkError::not_found("PortNotFound", format!("Port {id} could not be found."))
}

fn check_mac(mac: &str) -> Result<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    let first = u8::from_str_radix(parts.first().copied().unwrap_or("01"), 16).unwrap_or(1);
    if !ok || first & 1 == 1 || mac == "00:00:00:00:00:00" {
        return Err(NetworkError::bad(format!(
            "Invalid input for mac_address. Reason: '{mac}' is not a valid MAC address."
        )));
    }
    Ok(mac.to_ascii_lowercase())
}

fn check_pairs(pairs: &[AddressPair]) -> Result<()> {
    for p in pairs {
        if Cidr::parse(&p.ip_address).is_err() {
            return Err(NetworkError::bad(format!(
                "Invalid input for allowed_address_pairs. Reason: '{}' is not a valid IP address.",
                p.ip_address
            )));
        }
        if let Some(m) = &p.mac_address {
            check_mac(m)?;
        }
    }
    Ok(())
}

impl NetworkService {
    pub async fn port(&self, id: &str) -> Result<Option<Port>> {
        Ok(sqlx::query_as("SELECT * FROM ports WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn visible_port(&self, ctx: &AuthContext, id: &str) -> Result<Port> {
        match self.port(id).await? {
            Some(p) if Self::owns(ctx, &p.project_id) => Ok(p),
            _ => Err(port_not_found(id)),
        }
    }

    /// Ports the caller sees, narrowed in SQL by the two filters clients
    /// send most (`device_id`, `network_id`).
    pub async fn ports(
        &self,
        ctx: &AuthContext,
        device_id: Option<&str>,
        network_id: Option<&str>,
    ) -> Result<Vec<Port>> {
        let mut sql = String::from("SELECT * FROM ports WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        if !ctx.is_admin() {
            args.push(ctx.project_id().unwrap_or("").to_owned());
            sql.push_str(&format!(" AND project_id = ${}", args.len()));
        }
        if let Some(d) = device_id {
            args.push(d.to_owned());
            sql.push_str(&format!(" AND device_id = ${}", args.len()));
        }
        if let Some(n) = network_id {
            args.push(n.to_owned());
            sql.push_str(&format!(" AND network_id = ${}", args.len()));
        }
        sql.push_str(" ORDER BY seq, id");
        let mut q = sqlx::query_as::<_, Port>(&sql);
        for a in args {
            q = q.bind(a);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    pub async fn create_port(
        &self,
        ctx: &AuthContext,
        req: PortCreate,
    ) -> Result<(Port, Vec<FixedIp>)> {
        let Some(network_id) = req.network_id.clone() else {
            return Err(NetworkError::bad(
                "Failed to parse request. Required attribute 'network_id' not specified",
            ));
        };
        let net = self.visible_network(ctx, &network_id).await?;
        let project = self.owner(ctx, req.project_id.as_deref().or(req.tenant_id.as_deref()))?;
        self.check_write(ctx, "create_port", &project)?;
        if !Self::owns(ctx, &net.project_id) && net.shared == 0 {
            return Err(NetworkError::new(
                http::StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                "(rule:create_port) is disallowed by policy: the network belongs to another project and is not shared",
            ));
        }
        let device_owner = req.device_owner.unwrap_or_default();
        if owner::is_network(&device_owner) && !ctx.is_admin() {
            return Err(NetworkError::new(
                http::StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                "(rule:create_port:device_owner) is disallowed by policy",
            ));
        }
        if req.binding_host.is_some() && !ctx.is_admin() {
            return Err(NetworkError::new(
                http::StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                "(rule:create_port:binding:host_id) is disallowed by policy",
            ));
        }
        if let Some(v) = req.vnic_type.as_deref().filter(|v| *v != "normal") {
            return Err(NetworkError::bad(format!(
                "binding:vnic_type {v} is not supported; only normal ports exist here."
            )));
        }
        let name = req.name.unwrap_or_default();
        check_name("name", &name)?;
        let port_security = req.port_security_enabled.unwrap_or(net.port_security != 0);
        let security_groups = self
            .port_groups(
                ctx,
                &project,
                req.security_groups,
                port_security,
                &device_owner,
            )
            .await?;
        let pairs = req.allowed_address_pairs.unwrap_or_default();
        check_pairs(&pairs)?;
        if !pairs.is_empty() && !port_security {
            return Err(NetworkError::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
        let mac = req.mac_address.as_deref().map(check_mac).transpose()?;
        self.check_quota(&project, "port", "ports").await?;
        let out = self
            .insert_port(
                &net,
                NewPort {
                    project_id: project,
                    name,
                    description: req.description.unwrap_or_default(),
                    admin_state_up: req.admin_state_up.unwrap_or(true),
                    mac,
                    fixed_ips: req.fixed_ips,
                    device_id: req.device_id.unwrap_or_default(),
                    device_owner,
                    security_groups,
                    address_pairs: pairs,
                    port_security,
                    binding_host: req.binding_host.unwrap_or_default(),
                    dns_name: req.dns_name.unwrap_or_default(),
                    status: "DOWN",
                    id: req.id,
                    made_by: req.made_by.unwrap_or_default(),
                },
            )
            .await?;
        Ok(out)
    }

    /// The groups of a new port: none for the network's own ports or with
    /// port security off; the given ones (which must be the project's); or
    /// the project's `default` group.
    pub(crate) async fn port_groups(
        &self,
        ctx: &AuthContext,
        project: &str,
        asked: Option<Vec<String>>,
        port_security: bool,
        device_owner: &str,
    ) -> Result<Vec<String>> {
        if owner::is_network(device_owner) {
            return Ok(Vec::new());
        }
        match asked {
            Some(groups) if !groups.is_empty() && !port_security => Err(NetworkError::conflict(
                "PortSecurityAndIPRequiredForSecurityGroups",
                "Port security must be enabled and port must have an IP address in order to use security groups.",
            )),
            Some(groups) => {
                let mut out = Vec::new();
                for g in groups {
                    let sg = self.visible_group(ctx, &g).await?;
                    if sg.project_id != project && !ctx.is_admin() {
                        return Err(NetworkError::not_found(
                            "SecurityGroupNotFound",
                            format!("Security group {g} does not exist"),
                        ));
                    }
                    if !out.contains(&sg.id) {
                        out.push(sg.id);
                    }
                }
                Ok(out)
            }
            None if !port_security => Ok(Vec::new()),
            None => Ok(vec![self.default_group(project).await?.id]),
        }
    }

    /// Inserts a port and its addresses in one transaction.
    pub(crate) async fn insert_port(
        &self,
        net: &Network,
        p: NewPort,
    ) -> Result<(Port, Vec<FixedIp>)> {
        let subnets = self.network_subnets(&net.id).await?;
        let mut tx = self.pool().begin().await?;
        let out = insert_port_in(&mut tx, net, &subnets, p).await?;
        tx.commit().await?;
        port_created(&out.0);
        self.changed();
        Ok(out)
    }

    pub async fn update_port(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: PortUpdate,
    ) -> Result<(Port, Vec<FixedIp>)> {
        let p = self.visible_port(ctx, id).await?;
        self.check_write(ctx, "update_port", &p.project_id)?;
        if (req.binding_host.is_some()
            || req.device_owner.as_deref().is_some_and(owner::is_network))
            && !ctx.is_admin()
        {
            return Err(NetworkError::new(
                http::StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                "(rule:update_port:binding:host_id) is disallowed by policy",
            ));
        }
        if let Some(name) = &req.name {
            check_name("name", name)?;
        }
        let port_security = req.port_security_enabled.unwrap_or(p.port_security != 0);
        let device_owner = req
            .device_owner
            .clone()
            .unwrap_or_else(|| p.device_owner.clone());
        let groups = match req.security_groups {
            Some(g) => {
                self.port_groups(ctx, &p.project_id, Some(g), port_security, &device_owner)
                    .await?
            }
            None => p.security_group_ids(),
        };
        if !port_security && !groups.is_empty() {
            return Err(NetworkError::conflict(
                "PortSecurityPortHasSecurityGroup",
                "Port has security group associated. Cannot disable port security or ip address until security group is removed",
            ));
        }
        let pairs = match req.allowed_address_pairs {
            Some(a) => {
                check_pairs(&a)?;
                a
            }
            None => p.address_pairs(),
        };
        if !pairs.is_empty() && !port_security {
            return Err(NetworkError::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
        let net = self
            .network(&p.network_id)
            .await?
            .ok_or_else(|| port_not_found(id))?;
        let subnets = self.network_subnets(&net.id).await?;
        let wanted = match &req.fixed_ips {
            Some(f) => Some(resolve_fixed_ips(&net, &subnets, Some(f))?),
            None => None,
        };
        let mut tx = self.pool().begin().await?;
        if let Some(wanted) = wanted {
            // The port's addresses become exactly the ones asked for.
            sqlx::query("DELETE FROM ip_allocations WHERE port_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            allocate(&mut tx, &net.id, id, &subnets, &wanted).await?;
        }
        sqlx::query(
            "UPDATE ports SET name = $1, description = $2, admin_state_up = $3, device_id = $4, device_owner = $5, \
             security_groups = $6, allowed_address_pairs = $7, port_security = $8, binding_host = $9, dns_name = $10, \
             revision = revision + 1, updated_at = $11 WHERE id = $12",
        )
        .bind(req.name.unwrap_or(p.name))
        .bind(req.description.unwrap_or(p.description))
        .bind(req.admin_state_up.map(flag).unwrap_or(p.admin_state_up))
        .bind(req.device_id.unwrap_or(p.device_id))
        .bind(device_owner)
        .bind(serde_json::to_string(&groups).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&pairs).unwrap_or_else(|_| "[]".into()))
        .bind(flag(port_security))
        .bind(req.binding_host.unwrap_or(p.binding_host))
        .bind(req.dns_name.unwrap_or(p.dns_name))
        .bind(time::now_micros())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed();
        let port = self.port(id).await?.ok_or_else(|| port_not_found(id))?;
        let ips = self
            .fixed_ips(Some(&[id.to_owned()]))
            .await?
            .remove(id)
            .unwrap_or_default();
        Ok((port, ips))
    }

    /// Deletes a port; ports the network service owns (router legs,
    /// floating IPs) are refused, as Neutron does.
    pub async fn delete_port(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let p = self.visible_port(ctx, id).await?;
        self.check_write(ctx, "delete_port", &p.project_id)?;
        if matches!(
            p.device_owner.as_str(),
            owner::ROUTER_INTERFACE | owner::ROUTER_GATEWAY | owner::FLOATING_IP
        ) {
            return Err(NetworkError::conflict(
                "ServicePortInUse",
                format!(
                    "Port {id} cannot be deleted directly via the port API: has device owner {}.",
                    p.device_owner
                ),
            ));
        }
        self.remove_port(id).await
    }

    /// Removes a port, its addresses and any floating IP association.
    pub async fn remove_port(&self, id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        remove_port_in(&mut tx, id).await?;
        tx.commit().await?;
        tracing::info!(port_id = %id, "port deleted");
        self.changed();
        Ok(())
    }

    /// Binds a port to a device on a host (compute's side of a boot).
    pub async fn bind_port(
        &self,
        id: &str,
        device_id: &str,
        host: &str,
        dns_name: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE ports SET device_id = $1, device_owner = CASE WHEN device_owner = '' THEN $2 ELSE device_owner END, \
             binding_host = $3, dns_name = CASE WHEN dns_name = '' THEN $4 ELSE dns_name END, \
             revision = revision + 1, updated_at = $5 WHERE id = $6",
        )
        .bind(device_id)
        .bind(owner::COMPUTE)
        .bind(host)
        .bind(dns_name)
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.changed();
        Ok(())
    }

    /// Moves every instance port of a device to another host (a migrated
    /// server's): the dataplane and the overlay follow the binding.
    pub async fn rebind_device(&self, device_id: &str, host: &str) -> Result<()> {
        let n = sqlx::query(
            "UPDATE ports SET binding_host = $1, revision = revision + 1, updated_at = $2 \
             WHERE device_id = $3 AND device_owner LIKE 'compute:%' AND binding_host <> $1",
        )
        .bind(host)
        .bind(time::now_micros())
        .bind(device_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if n > 0 {
            tracing::info!(device_id, host, ports = n, "ports rebound");
            self.changed();
        }
        Ok(())
    }

    /// Plugs a device's instance ports in on a live migration's
    /// destination too (`Some`), or no more (`None`).
    pub async fn set_migrating_to(&self, device_id: &str, host: Option<&str>) -> Result<()> {
        sqlx::query(
            "UPDATE ports SET migrating_to = $1, revision = revision + 1, updated_at = $2 \
             WHERE device_id = $3 AND device_owner LIKE 'compute:%'",
        )
        .bind(host)
        .bind(time::now_micros())
        .bind(device_id)
        .execute(self.pool())
        .await?;
        self.changed();
        Ok(())
    }

    /// Sets the status of every port of a device (ACTIVE once its VM runs).
    pub async fn set_device_status(&self, device_id: &str, status: &str) -> Result<()> {
        let n = sqlx::query(
            "UPDATE ports SET status = $1, updated_at = $2 WHERE device_id = $3 AND status <> $1",
        )
        .bind(status)
        .bind(time::now_micros())
        .bind(device_id)
        .execute(self.pool())
        .await?
        .rows_affected();
        if n > 0 {
            self.changed();
        }
        Ok(())
    }

    /// Every port of a device (a server), whoever made it.
    pub async fn device_ports(&self, device_id: &str) -> Result<Vec<Port>> {
        Ok(
            sqlx::query_as("SELECT * FROM ports WHERE device_id = $1 ORDER BY seq, id")
                .bind(device_id)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Detaches a port a user brought to a server: it stays, unbound.
    pub async fn unbind_port(&self, id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE ports SET device_id = '', device_owner = '', binding_host = '', status = 'DOWN', \
             revision = revision + 1, updated_at = $1 WHERE id = $2",
        )
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.changed();
        Ok(())
    }
}

/// Inserts a port and its addresses inside the caller's transaction, so
/// that what the port is for (a router's gateway, a floating IP) is written
/// in the same one: a crash leaves both or neither. The caller logs
/// ([`port_created`]) and signals the change after committing.
pub(crate) async fn insert_port_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    net: &Network,
    subnets: &[Subnet],
    p: NewPort,
) -> Result<(Port, Vec<FixedIp>)> {
    let wanted = resolve_fixed_ips(net, subnets, p.fixed_ips.as_deref())?;
    let now = time::now_micros();
    let id = p.id.clone().unwrap_or_else(ids::uuid_id);
    let mac = match p.mac {
        Some(m) if mac_in_use(tx, &net.id, &m).await? => {
            return Err(NetworkError::conflict(
                "MacAddressInUse",
                format!(
                    "Unable to complete operation for network {}. The mac address {m} is in use.",
                    net.id
                ),
            ));
        }
        Some(m) => m,
        None => free_mac(tx, &net.id, ipam::random_mac).await?,
    };
    let port = Port {
        id: id.clone(),
        seq: seq(),
        network_id: net.id.clone(),
        project_id: p.project_id,
        name: p.name,
        description: p.description,
        mac_address: mac,
        admin_state_up: flag(p.admin_state_up),
        status: p.status.to_owned(),
        device_id: p.device_id,
        device_owner: p.device_owner,
        security_groups: serde_json::to_string(&p.security_groups).unwrap_or_else(|_| "[]".into()),
        allowed_address_pairs: serde_json::to_string(&p.address_pairs)
            .unwrap_or_else(|_| "[]".into()),
        port_security: flag(p.port_security),
        binding_host: p.binding_host,
        dns_name: p.dns_name,
        revision: 1,
        created_at: now,
        updated_at: now,
        made_by: p.made_by,
        migrating_to: None,
    };
    sqlx::query(
            "INSERT INTO ports (id, seq, network_id, project_id, name, description, mac_address, admin_state_up, status, \
             device_id, device_owner, security_groups, allowed_address_pairs, port_security, binding_host, dns_name, \
             revision, created_at, updated_at, made_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 1, $17, $17, $18)",
        )
        .bind(&port.id)
        .bind(port.seq)
        .bind(&port.network_id)
        .bind(&port.project_id)
        .bind(&port.name)
        .bind(&port.description)
        .bind(&port.mac_address)
        .bind(port.admin_state_up)
        .bind(&port.status)
        .bind(&port.device_id)
        .bind(&port.device_owner)
        .bind(&port.security_groups)
        .bind(&port.allowed_address_pairs)
        .bind(port.port_security)
        .bind(&port.binding_host)
        .bind(&port.dns_name)
        .bind(now)
        .bind(&port.made_by)
        .execute(&mut **tx)
        .await?;
    let ips = allocate(tx, &net.id, &port.id, subnets, &wanted).await?;
    Ok((port, ips))
}

/// Removes a port, its addresses and any floating IP association inside
/// the caller's transaction.
pub(crate) async fn remove_port_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE floatingips SET port_id = NULL, fixed_ip_address = NULL, router_id = NULL, revision = revision + 1, \
         updated_at = $1 WHERE port_id = $2",
    )
    .bind(time::now_micros())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM ip_allocations WHERE port_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM ports WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) fn port_created(port: &Port) {
    tracing::info!(port_id = %port.id, network_id = %port.network_id, device_owner = %port.device_owner, "port created");
}

/// Turns a port's requested fixed IPs into (subnet, optional address)
/// pairs, checking each belongs to the network. `None` asks for one
/// address from the network's first subnet with room.
fn resolve_fixed_ips(
    net: &Network,
    subnets: &[Subnet],
    asked: Option<&[FixedIpRequest]>,
) -> Result<Option<Wanted>> {
    let Some(asked) = asked else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for f in asked {
        let ip = f
            .ip_address
            .as_deref()
            .map(|a| ipam::parse_ip("fixed_ips", a))
            .transpose()?;
        let subnet = match (&f.subnet_id, ip) {
            (Some(sid), _) => subnets.iter().find(|s| &s.id == sid).ok_or_else(|| {
                NetworkError::invalid(format!(
                    "Failed to create port on network {}, because fixed_ips included invalid subnet {sid}",
                    net.id
                ))
            })?,
            (None, Some(ip)) => subnets
                .iter()
                .find(|s| s.cidr().is_some_and(|c| c.contains(ip)))
                .ok_or_else(|| NetworkError::bad(format!("IP address {ip} is not a valid IP for the specified network.")))?,
            (None, None) => {
                return Err(NetworkError::bad("Invalid input for fixed_ips. Reason: each entry needs a subnet_id or an ip_address."))
            }
        };
        if let (Some(ip), Some(c)) = (ip, subnet.cidr()) {
            if !c.contains(ip)
                || u32::from(ip) == c.first()
                || (c.prefix < 31 && u32::from(ip) == c.last())
            {
                return Err(NetworkError::bad(format!(
                    "IP address {ip} is not a valid IP for the specified subnet."
                )));
            }
        }
        out.push((subnet.id.clone(), ip));
    }
    Ok(Some(out))
}

/// Records the addresses of a port inside the caller's transaction.
async fn mac_in_use(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    network_id: &str,
    mac: &str,
) -> Result<bool> {
    let used: Option<(String,)> =
        sqlx::query_as("SELECT id FROM ports WHERE network_id = $1 AND mac_address = $2")
            .bind(network_id)
            .bind(mac)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(used.is_some())
}

/// A random MAC no port of the network has. With 24 random bits, collisions
/// are likely from a few thousand ports on (a birthday bound), so a taken
/// one is drawn again, as Neutron does.
async fn free_mac(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    network_id: &str,
    mut draw: impl FnMut() -> String,
) -> Result<String> {
    for _ in 0..16 {
        let mac = draw();
        if !mac_in_use(tx, network_id, &mac).await? {
            return Ok(mac);
        }
    }
    Err(NetworkError::new(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "MacAddressGenerationFailure",
        format!("Unable to generate unique mac on network {network_id}."),
    ))
}

async fn allocate(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    network_id: &str,
    port_id: &str,
    subnets: &[Subnet],
    wanted: &Option<Wanted>,
) -> Result<Vec<FixedIp>> {
    let mut out = Vec::new();
    match wanted {
        Some(list) => {
            for (sid, ip) in list {
                let subnet = subnets
                    .iter()
                    .find(|s| &s.id == sid)
                    .ok_or_else(|| NetworkError::internal("subnet vanished"))?;
                let ip = match ip {
                    Some(ip) => {
                        if !claim(tx, subnet, *ip, port_id, network_id).await? {
                            return Err(NetworkError::conflict(
                                "IpAddressAlreadyAllocated",
                                format!("IP address {ip} already allocated in subnet {sid}"),
                            ));
                        }
                        *ip
                    }
                    None => next_address(tx, subnet, port_id, network_id).await?,
                };
                out.push(FixedIp {
                    subnet_id: sid.clone(),
                    ip_address: ip.to_string(),
                });
            }
        }
        None => {
            let mut last_err = None;
            for s in subnets {
                match next_address(tx, s, port_id, network_id).await {
                    Ok(ip) => {
                        out.push(FixedIp {
                            subnet_id: s.id.clone(),
                            ip_address: ip.to_string(),
                        });
                        last_err = None;
                        break;
                    }
                    Err(e) if e.kind == "IpAddressGenerationFailure" => last_err = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if let Some(e) = last_err {
                return Err(e);
            }
        }
    }
    Ok(out)
}

async fn claim(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    subnet: &Subnet,
    ip: Ipv4Addr,
    port_id: &str,
    network_id: &str,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO ip_allocations (subnet_id, ip_address, port_id, network_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(&subnet.id)
    .bind(ip.to_string())
    .bind(port_id)
    .bind(network_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The lowest free pool address of a subnet, claimed.
async fn next_address(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    subnet: &Subnet,
    port_id: &str,
    network_id: &str,
) -> Result<Ipv4Addr> {
    let pools: Vec<Pool> = subnet
        .pools()
        .iter()
        .filter_map(|p| {
            Some(Pool {
                start: p.start.parse().ok()?,
                end: p.end.parse().ok()?,
            })
        })
        .collect();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT ip_address FROM ip_allocations WHERE subnet_id = $1")
            .bind(&subnet.id)
            .fetch_all(&mut **tx)
            .await?;
    let mut used: Vec<Ipv4Addr> = rows.iter().filter_map(|(a,)| a.parse().ok()).collect();
    // Another controller may take an address between our read and insert:
    // then take the next one.
    for _ in 0..8 {
        let ip = ipam::next_free(&pools, &used, network_id)?;
        if claim(tx, subnet, ip, port_id, network_id).await? {
            return Ok(ip);
        }
        used.push(ip);
    }
    Err(NetworkError::conflict(
        "IpAddressGenerationFailure",
        format!("No more IP addresses available on network {network_id}."),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_generated_mac_already_on_the_network_is_drawn_again() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE ports (id TEXT, network_id TEXT, mac_address TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO ports VALUES ('p1', 'n1', 'fa:16:3e:00:00:01')")
            .execute(&pool)
            .await
            .unwrap();
        let mut tx = pool.begin().await.unwrap();
        let mut draws = ["fa:16:3e:00:00:01", "fa:16:3e:00:00:02"].into_iter();
        let mac = free_mac(&mut tx, "n1", || draws.next().unwrap().to_owned())
            .await
            .unwrap();
        assert_eq!(mac, "fa:16:3e:00:00:02");
        // The same MAC on another network is free.
        let mac = free_mac(&mut tx, "n2", || "fa:16:3e:00:00:01".to_owned())
            .await
            .unwrap();
        assert_eq!(mac, "fa:16:3e:00:00:01");
        // A generator that only ever draws taken MACs gives up with Neutron's error.
        let err = free_mac(&mut tx, "n1", || "fa:16:3e:00:00:01".to_owned())
            .await
            .unwrap_err();
        assert_eq!(err.status, http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.kind, "MacAddressGenerationFailure");
    }
}
