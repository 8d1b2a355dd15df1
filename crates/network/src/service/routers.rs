//! Routers (interfaces, external gateway with SNAT, static routes) and
//! floating IPs. A router's legs are ports: `network:router_interface` on
//! each attached subnet (holding its gateway address) and one
//! `network:router_gateway` on the external network. A floating IP owns a
//! `network:floatingip` port on the external network; associating it
//! records the router that reaches the fixed address.

use ferro_common::{ids, time, AuthContext};
use ferro_store::{flag, sqlx};
use serde::Deserialize;
use serde_json::{json, Value};

use super::networks::{check_name, some_or_null};
use super::ports::{insert_port_in, port_created, remove_port_in, FixedIpRequest, NewPort};
use super::{seq, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::Cidr;
use crate::model::{owner, FixedIp, FloatingIp, HostRoute, Network, Router};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayInfo {
    pub network_id: Option<String>,
    pub enable_snat: Option<bool>,
    pub external_fixed_ips: Option<Vec<FixedIpRequest>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub external_gateway_info: Option<GatewayInfo>,
    pub distributed: Option<bool>,
    pub ha: Option<bool>,
    pub availability_zone_hints: Option<Vec<String>>,
    pub flavor_id: Option<String>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub external_gateway_info: Option<Option<GatewayInfo>>,
    pub routes: Option<Vec<HostRoute>>,
    pub distributed: Option<bool>,
    pub ha: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingIpCreate {
    pub floating_network_id: Option<String>,
    pub floating_ip_address: Option<String>,
    pub subnet_id: Option<String>,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub description: Option<String>,
    pub dns_name: Option<String>,
    pub dns_domain: Option<String>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

fn router_not_found(id: &str) -> NetworkError {
    NetworkError::not_found("RouterNotFound", format!("Router {id} could not be found"))
}

fn fip_not_found(id: &str) -> NetworkError {
    NetworkError::not_found(
        "FloatingIPNotFound",
        format!("Floating IP {id} could not be found"),
    )
}

/// Where a floating IP leads: the port, its fixed address and the router.
struct Association {
    port_id: String,
    fixed_ip: String,
    router_id: String,
}

impl NetworkService {
    /// The subnets a router joins to `subnet_id` through its interfaces,
    /// `subnet_id` itself among them when a router has it.
    pub async fn routed_subnets(&self, subnet_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT b.subnet_id FROM ip_allocations a \
             JOIN ports pa ON pa.id = a.port_id AND pa.device_owner = $2 \
             JOIN ports pb ON pb.device_id = pa.device_id AND pb.device_owner = $2 \
             JOIN ip_allocations b ON b.port_id = pb.id \
             WHERE a.subnet_id = $1",
        )
        .bind(subnet_id)
        .bind(owner::ROUTER_INTERFACE)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn router(&self, id: &str) -> Result<Option<Router>> {
        Ok(sqlx::query_as("SELECT * FROM routers WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn visible_router(&self, ctx: &AuthContext, id: &str) -> Result<Router> {
        match self.router(id).await? {
            Some(r) if Self::owns(ctx, &r.project_id) => Ok(r),
            _ => Err(router_not_found(id)),
        }
    }

    pub async fn routers(&self, ctx: &AuthContext) -> Result<Vec<Router>> {
        Ok(if ctx.is_admin() {
            sqlx::query_as("SELECT * FROM routers ORDER BY seq, id")
                .fetch_all(self.pool())
                .await?
        } else {
            sqlx::query_as("SELECT * FROM routers WHERE project_id = $1 ORDER BY seq, id")
                .bind(ctx.project_id().unwrap_or(""))
                .fetch_all(self.pool())
                .await?
        })
    }

    /// The fixed IPs of a router's gateway port.
    pub async fn gateway_ips(&self, r: &Router) -> Result<Vec<FixedIp>> {
        let Some(p) = &r.gw_port_id else {
            return Ok(Vec::new());
        };
        Ok(self
            .fixed_ips(Some(std::slice::from_ref(p)))
            .await?
            .remove(p)
            .unwrap_or_default())
    }

    pub async fn create_router(&self, ctx: &AuthContext, req: RouterCreate) -> Result<Router> {
        let project = self.owner(ctx, req.project_id.as_deref().or(req.tenant_id.as_deref()))?;
        self.check_write(ctx, "create_router", &project)?;
        let name = req.name.unwrap_or_default();
        check_name("name", &name)?;
        if req.distributed == Some(true) || req.ha == Some(true) {
            return Err(NetworkError::bad(
                "Distributed and HA routers are not supported by this cloud.",
            ));
        }
        self.check_quota(&project, "router", "routers").await?;
        // Check the gateway before anything is written. As in Neutron, a
        // gateway without a network (`{}`, Tempest sends it) is no gateway.
        let gw_net = match &req.external_gateway_info {
            Some(g) if g.network_id.is_some() => Some(self.gateway_network(ctx, g).await?),
            _ => None,
        };
        let now = time::now_micros();
        let id = ids::uuid_id();
        sqlx::query(
            "INSERT INTO routers (id, seq, project_id, name, description, admin_state_up, enable_snat, routes, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, '[]', 1, $7, $7)",
        )
        .bind(&id)
        .bind(seq())
        .bind(&project)
        .bind(&name)
        .bind(req.description.unwrap_or_default())
        .bind(flag(req.admin_state_up.unwrap_or(true)))
        .bind(now)
        .execute(self.pool())
        .await?;
        tracing::info!(router_id = %id, "router created");
        if let (Some(net), Some(g)) = (gw_net, req.external_gateway_info) {
            if let Err(e) = self.set_gateway(&id, &net, &g).await {
                // Undo: a router without the gateway it was asked for is half made.
                sqlx::query("DELETE FROM routers WHERE id = $1")
                    .bind(&id)
                    .execute(self.pool())
                    .await?;
                return Err(e);
            }
        }
        self.changed();
        self.router(&id).await?.ok_or_else(|| router_not_found(&id))
    }

    async fn gateway_network(&self, ctx: &AuthContext, g: &GatewayInfo) -> Result<Network> {
        let Some(nid) = &g.network_id else {
            return Err(NetworkError::bad(
                "Invalid input for external_gateway_info. Reason: network_id is required.",
            ));
        };
        let net = self.visible_network(ctx, nid).await?;
        if net.external == 0 {
            return Err(NetworkError::bad(format!(
                "Bad router request: Network {nid} is not an external network."
            )));
        }
        if g.external_fixed_ips.is_some() && !ctx.is_admin() {
            return Err(NetworkError::new(
                http::StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                "(rule:create_router:external_gateway_info:external_fixed_ips) is disallowed by policy",
            ));
        }
        Ok(net)
    }

    /// Gives a router its gateway port on `net` (replacing another).
    async fn set_gateway(&self, router_id: &str, net: &Network, g: &GatewayInfo) -> Result<()> {
        let r = self
            .router(router_id)
            .await?
            .ok_or_else(|| router_not_found(router_id))?;
        let snat = g.enable_snat.unwrap_or(true);
        if r.gw_network_id.as_deref() == Some(net.id.as_str()) && g.external_fixed_ips.is_none() {
            sqlx::query("UPDATE routers SET enable_snat = $1, revision = revision + 1, updated_at = $2 WHERE id = $3")
                .bind(flag(snat))
                .bind(time::now_micros())
                .bind(router_id)
                .execute(self.pool())
                .await?;
            return Ok(());
        }
        if r.gw_port_id.is_some() {
            self.clear_gateway(&r).await?;
        }
        // The port and the router's pointer to it in one transaction.
        let subnets = self.network_subnets(&net.id).await?;
        let mut tx = self.pool().begin().await?;
        let (port, _) = insert_port_in(
            &mut tx,
            net,
            &subnets,
            NewPort {
                project_id: String::new(),
                name: String::new(),
                description: String::new(),
                admin_state_up: true,
                mac: None,
                fixed_ips: g.external_fixed_ips.clone(),
                device_id: router_id.to_owned(),
                device_owner: owner::ROUTER_GATEWAY.to_owned(),
                security_groups: Vec::new(),
                address_pairs: Vec::new(),
                port_security: false,
                binding_host: String::new(),
                dns_name: String::new(),
                status: "ACTIVE",
                id: None,
                made_by: String::new(),
            },
        )
        .await?;
        sqlx::query(
            "UPDATE routers SET gw_network_id = $1, gw_port_id = $2, enable_snat = $3, revision = revision + 1, updated_at = $4 WHERE id = $5",
        )
        .bind(&net.id)
        .bind(&port.id)
        .bind(flag(snat))
        .bind(time::now_micros())
        .bind(router_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        port_created(&port);
        self.changed();
        tracing::info!(router_id, network_id = %net.id, "router gateway set");
        Ok(())
    }

    async fn clear_gateway(&self, r: &Router) -> Result<()> {
        let (fips,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM floatingips WHERE router_id = $1")
                .bind(&r.id)
                .fetch_one(self.pool())
                .await?;
        if fips > 0 {
            return Err(NetworkError::conflict(
                "RouterExternalGatewayInUseByFloatingIp",
                format!(
                    "Gateway cannot be updated for router {}, since a gateway to external network {} is required by one or more floating IPs.",
                    r.id,
                    r.gw_network_id.clone().unwrap_or_default()
                ),
            ));
        }
        let mut tx = self.pool().begin().await?;
        if let Some(p) = &r.gw_port_id {
            remove_port_in(&mut tx, p).await?;
        }
        sqlx::query("UPDATE routers SET gw_network_id = NULL, gw_port_id = NULL, revision = revision + 1, updated_at = $1 WHERE id = $2")
            .bind(time::now_micros())
            .bind(&r.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changed();
        tracing::info!(router_id = %r.id, "router gateway cleared");
        Ok(())
    }

    pub async fn update_router(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: RouterUpdate,
    ) -> Result<Router> {
        let r = self.visible_router(ctx, id).await?;
        self.check_write(ctx, "update_router", &r.project_id)?;
        if let Some(n) = &req.name {
            check_name("name", n)?;
        }
        if req.distributed == Some(true) || req.ha == Some(true) {
            return Err(NetworkError::bad(
                "Distributed and HA routers are not supported by this cloud.",
            ));
        }
        if let Some(routes) = &req.routes {
            self.check_routes(&r, routes).await?;
        }
        match &req.external_gateway_info {
            Some(Some(g)) if g.network_id.is_some() => {
                let net = self.gateway_network(ctx, g).await?;
                self.set_gateway(id, &net, g).await?;
            }
            Some(_) if r.gw_port_id.is_some() => self.clear_gateway(&r).await?,
            _ => {}
        }
        let r = self.router(id).await?.ok_or_else(|| router_not_found(id))?;
        let routes = match req.routes {
            Some(v) => serde_json::to_string(&v).unwrap_or_else(|_| "[]".into()),
            None => r.routes.clone(),
        };
        sqlx::query(
            "UPDATE routers SET name = $1, description = $2, admin_state_up = $3, routes = $4, revision = revision + 1, updated_at = $5 WHERE id = $6",
        )
        .bind(req.name.unwrap_or(r.name))
        .bind(req.description.unwrap_or(r.description))
        .bind(req.admin_state_up.map(flag).unwrap_or(r.admin_state_up))
        .bind(routes)
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.changed();
        self.router(id).await?.ok_or_else(|| router_not_found(id))
    }

    /// Static routes must point at a next hop on one of the router's subnets.
    async fn check_routes(&self, r: &Router, routes: &[HostRoute]) -> Result<()> {
        let legs = self.router_subnets(r).await?;
        for h in routes {
            let bad = |why: &str| {
                NetworkError::new(
                    http::StatusCode::BAD_REQUEST,
                    "InvalidRoutes",
                    format!("Invalid format for routes: {{'destination': '{}', 'nexthop': '{}'}}, {why}", h.destination, h.nexthop),
                )
            };
            Cidr::parse(&h.destination)
                .map_err(|_| bad("the destination is not a valid IP subnet"))?;
            let hop: std::net::Ipv4Addr = h
                .nexthop
                .parse()
                .map_err(|_| bad("the nexthop is not a valid IP address"))?;
            if !legs.iter().any(|c| c.contains(hop)) {
                return Err(bad("the nexthop is not connected with router"));
            }
        }
        Ok(())
    }

    /// The CIDRs a router has a leg on (interfaces and gateway).
    async fn router_subnets(&self, r: &Router) -> Result<Vec<Cidr>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT s.cidr FROM subnets s JOIN ip_allocations a ON a.subnet_id = s.id JOIN ports p ON p.id = a.port_id \
             WHERE p.device_id = $1 AND (p.device_owner = $2 OR p.device_owner = $3)",
        )
        .bind(&r.id)
        .bind(owner::ROUTER_INTERFACE)
        .bind(owner::ROUTER_GATEWAY)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().filter_map(|(c,)| Cidr::parse(c).ok()).collect())
    }

    pub async fn delete_router(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let r = self.visible_router(ctx, id).await?;
        self.check_write(ctx, "delete_router", &r.project_id)?;
        let (legs,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM ports WHERE device_id = $1 AND device_owner = $2")
                .bind(id)
                .bind(owner::ROUTER_INTERFACE)
                .fetch_one(self.pool())
                .await?;
        if legs > 0 {
            return Err(NetworkError::conflict(
                "RouterInUse",
                format!("Router {id} still has ports"),
            ));
        }
        if r.gw_port_id.is_some() {
            self.clear_gateway(&r).await?;
        }
        sqlx::query("DELETE FROM routers WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        tracing::info!(router_id = %id, "router deleted");
        self.changed();
        Ok(())
    }

    /// `add_router_interface` by `subnet_id` (the leg takes the subnet's
    /// gateway address) or by `port_id` (an unused port becomes the leg).
    pub async fn add_interface(&self, ctx: &AuthContext, id: &str, body: &Value) -> Result<Value> {
        let r = self.visible_router(ctx, id).await?;
        self.check_write(ctx, "add_router_interface", &r.project_id)?;
        let subnet_id = body.get("subnet_id").and_then(Value::as_str);
        let port_id = body.get("port_id").and_then(Value::as_str);
        let existing = self.router_subnets(&r).await?;
        let (port_id, subnet) = match (subnet_id, port_id) {
            (Some(_), Some(_)) => {
                return Err(NetworkError::bad(
                    "Bad router request: Cannot specify both subnet-id and port-id",
                ))
            }
            (None, None) => {
                return Err(NetworkError::bad(
                    "Bad router request: Either subnet_id or port_id must be specified",
                ))
            }
            (Some(sid), None) => {
                let s = self.visible_subnet(ctx, sid).await?;
                let net = self
                    .network(&s.network_id)
                    .await?
                    .ok_or_else(|| NetworkError::internal("subnet without network"))?;
                if net.external != 0 && !ctx.is_admin() {
                    return Err(NetworkError::bad(format!("Bad router request: Subnet {sid} is on an external network; set it as the router's gateway instead.")));
                }
                let Some(gw) = s.gateway_ip.clone() else {
                    return Err(NetworkError::bad(format!(
                        "Bad router request: Subnet {sid} does not have a gateway IP."
                    )));
                };
                let mine: Option<(String,)> = sqlx::query_as(
                    "SELECT p.id FROM ports p JOIN ip_allocations a ON a.port_id = p.id WHERE p.device_id = $1 AND a.subnet_id = $2",
                )
                .bind(id)
                .bind(sid)
                .fetch_optional(self.pool())
                .await?;
                if mine.is_some() {
                    return Err(NetworkError::bad(format!(
                        "Bad router request: Router already has a port on subnet {sid}."
                    )));
                }
                check_leg_overlap(&existing, &s.cidr, sid)?;
                let (port, _) = self
                    .insert_port(
                        &net,
                        NewPort {
                            project_id: r.project_id.clone(),
                            name: String::new(),
                            description: String::new(),
                            admin_state_up: true,
                            mac: None,
                            fixed_ips: Some(vec![FixedIpRequest {
                                subnet_id: Some(sid.to_owned()),
                                ip_address: Some(gw),
                            }]),
                            device_id: id.to_owned(),
                            device_owner: owner::ROUTER_INTERFACE.to_owned(),
                            security_groups: Vec::new(),
                            address_pairs: Vec::new(),
                            port_security: false,
                            binding_host: String::new(),
                            dns_name: String::new(),
                            status: "ACTIVE",
                            id: None,
                            made_by: String::new(),
                        },
                    )
                    .await?;
                (port.id, s)
            }
            (None, Some(pid)) => {
                let p = self.visible_port(ctx, pid).await?;
                if !p.device_id.is_empty() {
                    return Err(NetworkError::conflict(
                        "PortInUse",
                        format!("Unable to complete operation on port {pid} for network {}. Port already has an attached device {}.", p.network_id, p.device_id),
                    ));
                }
                let ips = self
                    .fixed_ips(Some(&[pid.to_owned()]))
                    .await?
                    .remove(pid)
                    .unwrap_or_default();
                let [ip] = ips.as_slice() else {
                    return Err(NetworkError::bad(format!(
                        "Bad router request: Router port {pid} must have exactly one fixed IP."
                    )));
                };
                let s = self.visible_subnet(ctx, &ip.subnet_id).await?;
                check_leg_overlap(&existing, &s.cidr, &s.id)?;
                sqlx::query(
                    "UPDATE ports SET device_id = $1, device_owner = $2, security_groups = '[]', port_security = 0, status = 'ACTIVE', \
                     revision = revision + 1, updated_at = $3 WHERE id = $4",
                )
                .bind(id)
                .bind(owner::ROUTER_INTERFACE)
                .bind(time::now_micros())
                .bind(pid)
                .execute(self.pool())
                .await?;
                (pid.to_owned(), s)
            }
        };
        tracing::info!(router_id = %id, subnet_id = %subnet.id, port_id = %port_id, "router interface added");
        self.changed();
        Ok(
            json!({"id": id, "tenant_id": r.project_id, "project_id": r.project_id, "port_id": port_id,
                  "network_id": subnet.network_id, "subnet_id": subnet.id, "subnet_ids": [subnet.id]}),
        )
    }

    pub async fn remove_interface(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Value,
    ) -> Result<Value> {
        let r = self.visible_router(ctx, id).await?;
        self.check_write(ctx, "remove_router_interface", &r.project_id)?;
        let subnet_id = body.get("subnet_id").and_then(Value::as_str);
        let port_id = body.get("port_id").and_then(Value::as_str);
        let row: Option<(String, String, String)> = match (subnet_id, port_id) {
            (None, None) => {
                return Err(NetworkError::bad("Bad router request: Either subnet_id or port_id must be specified"))
            }
            (_, Some(pid)) => sqlx::query_as(
                "SELECT p.id, a.subnet_id, p.network_id FROM ports p JOIN ip_allocations a ON a.port_id = p.id \
                 WHERE p.id = $1 AND p.device_id = $2 AND p.device_owner = $3",
            )
            .bind(pid)
            .bind(id)
            .bind(owner::ROUTER_INTERFACE)
            .fetch_optional(self.pool())
            .await?,
            (Some(sid), None) => sqlx::query_as(
                "SELECT p.id, a.subnet_id, p.network_id FROM ports p JOIN ip_allocations a ON a.port_id = p.id \
                 WHERE a.subnet_id = $1 AND p.device_id = $2 AND p.device_owner = $3",
            )
            .bind(sid)
            .bind(id)
            .bind(owner::ROUTER_INTERFACE)
            .fetch_optional(self.pool())
            .await?,
        };
        let Some((pid, sid, nid)) = row else {
            return Err(match (subnet_id, port_id) {
                (_, Some(pid)) => NetworkError::not_found(
                    "RouterInterfaceNotFound",
                    format!("Router {id} does not have an interface with id {pid}"),
                ),
                (Some(sid), _) => NetworkError::not_found(
                    "RouterInterfaceNotFoundForSubnet",
                    format!("Router {id} has no interface on subnet {sid}"),
                ),
                _ => router_not_found(id),
            });
        };
        // Floating IPs whose fixed address sits behind this leg need it.
        let subnet = self.subnet(&sid).await?;
        let fips: Vec<(Option<String>,)> =
            sqlx::query_as("SELECT fixed_ip_address FROM floatingips WHERE router_id = $1")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        let cidr = subnet.as_ref().and_then(|s| s.cidr());
        if fips.iter().any(|(ip,)| {
            matches!((ip.as_deref().and_then(|i| i.parse().ok()), cidr), (Some(ip), Some(c)) if c.contains(ip))
        }) {
            return Err(NetworkError::conflict(
                "RouterInterfaceInUseByFloatingIP",
                format!("Router interface for subnet {sid} on router {id} cannot be deleted, as it is required by one or more floating IPs."),
            ));
        }
        self.remove_port(&pid).await?;
        tracing::info!(router_id = %id, subnet_id = %sid, "router interface removed");
        Ok(
            json!({"id": id, "tenant_id": r.project_id, "project_id": r.project_id, "port_id": pid,
                  "network_id": nid, "subnet_id": sid, "subnet_ids": [sid]}),
        )
    }

    // ---- floating IPs ----

    pub async fn floating_ip(&self, id: &str) -> Result<Option<FloatingIp>> {
        Ok(sqlx::query_as("SELECT * FROM floatingips WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn visible_floating_ip(&self, ctx: &AuthContext, id: &str) -> Result<FloatingIp> {
        match self.floating_ip(id).await? {
            Some(f) if Self::owns(ctx, &f.project_id) => Ok(f),
            _ => Err(fip_not_found(id)),
        }
    }

    pub async fn floating_ips(&self, ctx: &AuthContext) -> Result<Vec<FloatingIp>> {
        Ok(if ctx.is_admin() {
            sqlx::query_as("SELECT * FROM floatingips ORDER BY seq, id")
                .fetch_all(self.pool())
                .await?
        } else {
            sqlx::query_as("SELECT * FROM floatingips WHERE project_id = $1 ORDER BY seq, id")
                .bind(ctx.project_id().unwrap_or(""))
                .fetch_all(self.pool())
                .await?
        })
    }

    pub async fn create_floating_ip(
        &self,
        ctx: &AuthContext,
        req: FloatingIpCreate,
    ) -> Result<FloatingIp> {
        let Some(nid) = req.floating_network_id.clone() else {
            return Err(NetworkError::bad(
                "Failed to parse request. Required attribute 'floating_network_id' not specified",
            ));
        };
        let project = self.owner(ctx, req.project_id.as_deref().or(req.tenant_id.as_deref()))?;
        self.check_write(ctx, "create_floatingip", &project)?;
        let net = self.visible_network(ctx, &nid).await?;
        if net.external == 0 {
            return Err(NetworkError::bad(format!(
                "Bad floatingip request: Network {nid} is not a valid external network."
            )));
        }
        if req.floating_ip_address.is_some() && !ctx.is_admin() {
            return Err(NetworkError::new(
                http::StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                "(rule:create_floatingip:floating_ip_address) is disallowed by policy",
            ));
        }
        self.check_quota(&project, "floatingip", "floatingips")
            .await?;
        let assoc = match &req.port_id {
            Some(p) => Some(
                self.plan_association(ctx, &nid, p, req.fixed_ip_address.as_deref(), None)
                    .await?,
            ),
            None => None,
        };
        let fixed_ips = match (&req.subnet_id, &req.floating_ip_address) {
            (None, None) => None,
            (s, ip) => Some(vec![FixedIpRequest {
                subnet_id: s.clone(),
                ip_address: ip.clone(),
            }]),
        };
        let id = ids::uuid_id();
        // The address's port and the floating IP row in one transaction.
        let subnets = self.network_subnets(&net.id).await?;
        let mut tx = self.pool().begin().await?;
        let (port, ips) = insert_port_in(
            &mut tx,
            &net,
            &subnets,
            NewPort {
                project_id: String::new(),
                name: String::new(),
                description: String::new(),
                admin_state_up: true,
                mac: None,
                fixed_ips,
                device_id: id.clone(),
                device_owner: owner::FLOATING_IP.to_owned(),
                security_groups: Vec::new(),
                address_pairs: Vec::new(),
                port_security: false,
                binding_host: String::new(),
                dns_name: String::new(),
                status: "N/A",
                id: None,
                made_by: String::new(),
            },
        )
        .await?;
        let Some(addr) = ips.first().map(|f| f.ip_address.clone()) else {
            // Dropping the transaction rolls the port back.
            return Err(NetworkError::conflict(
                "ExternalIpAddressExhausted",
                format!("Unable to find any IP address on external network {nid}."),
            ));
        };
        let now = time::now_micros();
        sqlx::query(
            "INSERT INTO floatingips (id, seq, project_id, description, floating_network_id, floating_ip_address, floating_port_id, \
             port_id, fixed_ip_address, router_id, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11)",
        )
        .bind(&id)
        .bind(seq())
        .bind(&project)
        .bind(req.description.unwrap_or_default())
        .bind(&nid)
        .bind(&addr)
        .bind(&port.id)
        .bind(assoc.as_ref().map(|a| a.port_id.clone()))
        .bind(assoc.as_ref().map(|a| a.fixed_ip.clone()))
        .bind(assoc.as_ref().map(|a| a.router_id.clone()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        port_created(&port);
        tracing::info!(floatingip_id = %id, address = %addr, "floating IP created");
        self.changed();
        self.floating_ip(&id)
            .await?
            .ok_or_else(|| fip_not_found(&id))
    }

    /// Checks that `port_id` can take a floating IP of network `fip_net`:
    /// the caller's port, an address on it, a router with a leg on that
    /// address's subnet and its gateway on `fip_net`, no other floating IP
    /// on the same address.
    async fn plan_association(
        &self,
        ctx: &AuthContext,
        fip_net: &str,
        port_id: &str,
        fixed: Option<&str>,
        this_fip: Option<&str>,
    ) -> Result<Association> {
        let port = self.visible_port(ctx, port_id).await?;
        if owner::is_network(&port.device_owner) {
            return Err(NetworkError::bad(format!(
                "Bad floatingip request: Port {port_id} has owner {} and therefore cannot be associated with a floating IP.",
                port.device_owner
            )));
        }
        let ips = self
            .fixed_ips(Some(&[port_id.to_owned()]))
            .await?
            .remove(port_id)
            .unwrap_or_default();
        let ip = match fixed {
            Some(f) => ips.iter().find(|i| i.ip_address == f).ok_or_else(|| {
                NetworkError::bad(format!(
                    "Bad floatingip request: Port {port_id} does not have fixed ip {f}."
                ))
            })?,
            None => ips.first().ok_or_else(|| {
                NetworkError::bad(format!(
                    "Bad floatingip request: Port {port_id} does not have any IP addresses on it."
                ))
            })?,
        };
        let router: Option<(String,)> = sqlx::query_as(
            "SELECT r.id FROM routers r JOIN ports p ON p.device_id = r.id JOIN ip_allocations a ON a.port_id = p.id \
             WHERE a.subnet_id = $1 AND p.device_owner = $2 AND r.gw_network_id = $3",
        )
        .bind(&ip.subnet_id)
        .bind(owner::ROUTER_INTERFACE)
        .bind(fip_net)
        .fetch_optional(self.pool())
        .await?;
        let Some((router_id,)) = router else {
            return Err(NetworkError::not_found(
                "ExternalGatewayForFloatingIPNotFound",
                format!(
                    "External network {fip_net} is not reachable from subnet {}.  Therefore, cannot associate Port {port_id} with a Floating IP.",
                    ip.subnet_id
                ),
            ));
        };
        let taken: Option<(String, String)> = sqlx::query_as(
            "SELECT id, floating_ip_address FROM floatingips WHERE port_id = $1 AND fixed_ip_address = $2 AND floating_network_id = $3",
        )
        .bind(port_id)
        .bind(&ip.ip_address)
        .bind(fip_net)
        .fetch_optional(self.pool())
        .await?;
        if let Some((other, addr)) = taken.filter(|(other, _)| Some(other.as_str()) != this_fip) {
            return Err(NetworkError::conflict(
                "FloatingIPPortAlreadyAssociated",
                format!(
                    "Cannot associate floating IP {addr} ({other}) with port {port_id} using fixed IP {}, as that fixed IP already has a floating IP on external network {fip_net}.",
                    ip.ip_address
                ),
            ));
        }
        Ok(Association {
            port_id: port_id.to_owned(),
            fixed_ip: ip.ip_address.clone(),
            router_id,
        })
    }

    /// `PUT /floatingips/{id}`: `port_id` associates, `port_id: null`
    /// disassociates.
    pub async fn update_floating_ip(
        &self,
        ctx: &AuthContext,
        id: &str,
        body: &Value,
    ) -> Result<FloatingIp> {
        let f = self.visible_floating_ip(ctx, id).await?;
        self.check_write(ctx, "update_floatingip", &f.project_id)?;
        let Some(obj) = body.as_object() else {
            return Err(NetworkError::bad(
                "Invalid input for floatingip: expected an object.",
            ));
        };
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "port_id" | "fixed_ip_address" | "description" | "qos_policy_id"
            ) {
                return Err(NetworkError::bad(format!(
                    "Cannot update read-only attribute {k}"
                )));
            }
        }
        let description = match obj.get("description") {
            Some(Value::String(d)) => d.clone(),
            Some(Value::Null) | None => f.description.clone(),
            Some(_) => {
                return Err(NetworkError::bad(
                    "Invalid input for description: expected a string.",
                ))
            }
        };
        let assoc = match obj.get("port_id") {
            None => f.port_id.clone().map(|p| Association {
                port_id: p,
                fixed_ip: f.fixed_ip_address.clone().unwrap_or_default(),
                router_id: f.router_id.clone().unwrap_or_default(),
            }),
            Some(Value::Null) => None,
            Some(Value::String(p)) => Some(
                self.plan_association(
                    ctx,
                    &f.floating_network_id,
                    p,
                    obj.get("fixed_ip_address").and_then(Value::as_str),
                    Some(id),
                )
                .await?,
            ),
            Some(_) => {
                return Err(NetworkError::bad(
                    "Invalid input for port_id: expected a port id or null.",
                ))
            }
        };
        sqlx::query(
            "UPDATE floatingips SET port_id = $1, fixed_ip_address = $2, router_id = $3, description = $4, revision = revision + 1, \
             updated_at = $5 WHERE id = $6",
        )
        .bind(assoc.as_ref().map(|a| a.port_id.clone()))
        .bind(assoc.as_ref().map(|a| a.fixed_ip.clone()))
        .bind(assoc.as_ref().map(|a| a.router_id.clone()))
        .bind(description)
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        match &assoc {
            Some(a) => {
                tracing::info!(floatingip_id = %id, port_id = %a.port_id, fixed_ip = %a.fixed_ip, "floating IP associated")
            }
            None => tracing::info!(floatingip_id = %id, "floating IP disassociated"),
        }
        self.changed();
        self.floating_ip(id).await?.ok_or_else(|| fip_not_found(id))
    }

    pub async fn delete_floating_ip(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let f = self.visible_floating_ip(ctx, id).await?;
        self.check_write(ctx, "delete_floatingip", &f.project_id)?;
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM floatingips WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        remove_port_in(&mut tx, &f.floating_port_id).await?;
        tx.commit().await?;
        tracing::info!(floatingip_id = %id, "floating IP deleted");
        self.changed();
        Ok(())
    }
}

fn check_leg_overlap(existing: &[Cidr], cidr: &str, subnet_id: &str) -> Result<()> {
    let Ok(c) = Cidr::parse(cidr) else {
        return Ok(());
    };
    if let Some(o) = existing.iter().find(|e| e.overlaps(&c)) {
        return Err(NetworkError::bad(format!(
            "Bad router request: Cidr {c} of subnet {subnet_id} overlaps with cidr {o} of a subnet already attached to the router."
        )));
    }
    Ok(())
}
