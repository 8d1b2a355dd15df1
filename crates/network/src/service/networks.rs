//! Networks (with provider attributes) and their IPv4 subnets.

use std::net::Ipv4Addr;

use ferro_common::{ids, time, AuthContext};
use ferro_store::{flag, sqlx};
use serde::Deserialize;

use super::{seq, NetworkService};
use crate::error::{NetworkError, Result};
use crate::ipam::{self, Cidr, Pool};
use crate::model::{owner, HostRoute, Network, PoolJson, Subnet};

const VXLAN_OVERHEAD: i64 = 50;
const MAX_VXLAN_ID: i64 = (1 << 24) - 1;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub shared: Option<bool>,
    #[serde(rename = "router:external")]
    pub external: Option<bool>,
    #[serde(rename = "provider:network_type")]
    pub network_type: Option<String>,
    #[serde(rename = "provider:physical_network")]
    pub physical_network: Option<String>,
    #[serde(rename = "provider:segmentation_id")]
    pub segmentation_id: Option<i64>,
    pub mtu: Option<i64>,
    pub port_security_enabled: Option<bool>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    pub availability_zone_hints: Option<Vec<String>>,
    pub dns_domain: Option<String>,
    pub is_default: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub shared: Option<bool>,
    #[serde(rename = "router:external")]
    pub external: Option<bool>,
    pub mtu: Option<i64>,
    pub port_security_enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetCreate {
    pub network_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub ip_version: Option<i64>,
    pub cidr: Option<String>,
    /// Absent: the first address; `null`: no gateway.
    #[serde(default, deserialize_with = "some_or_null")]
    pub gateway_ip: Option<Option<String>>,
    pub allocation_pools: Option<Vec<PoolJson>>,
    pub enable_dhcp: Option<bool>,
    pub dns_nameservers: Option<Vec<String>>,
    pub host_routes: Option<Vec<HostRoute>>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    pub subnetpool_id: Option<String>,
    pub prefixlen: Option<i64>,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    pub segment_id: Option<String>,
    pub service_types: Option<Vec<String>>,
    pub use_default_subnetpool: Option<bool>,
    pub dns_publish_fixed_ip: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub gateway_ip: Option<Option<String>>,
    pub allocation_pools: Option<Vec<PoolJson>>,
    pub enable_dhcp: Option<bool>,
    pub dns_nameservers: Option<Vec<String>>,
    pub host_routes: Option<Vec<HostRoute>>,
}

/// Distinguishes an absent field (outer `None`) from an explicit `null`.
pub(crate) fn some_or_null<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

pub(crate) fn check_name(field: &str, v: &str) -> Result<()> {
    if v.chars().count() > 255 {
        return Err(NetworkError::bad(format!(
            "Invalid input for {field}. Reason: '{v}' exceeds maximum length of 255."
        )));
    }
    Ok(())
}

fn not_found(id: &str) -> NetworkError {
    NetworkError::not_found(
        "NetworkNotFound",
        format!("Network {id} could not be found."),
    )
}

impl NetworkService {
    pub async fn network(&self, id: &str) -> Result<Option<Network>> {
        Ok(sqlx::query_as("SELECT * FROM networks WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Whether the caller sees a network: own, shared, or external.
    pub fn sees_network(ctx: &AuthContext, n: &Network) -> bool {
        Self::owns(ctx, &n.project_id) || n.shared != 0 || n.external != 0
    }

    pub async fn visible_network(&self, ctx: &AuthContext, id: &str) -> Result<Network> {
        match self.network(id).await? {
            Some(n) if Self::sees_network(ctx, &n) => Ok(n),
            _ => Err(not_found(id)),
        }
    }

    /// Every network the caller sees, oldest first.
    pub async fn networks(&self, ctx: &AuthContext) -> Result<Vec<Network>> {
        let rows: Vec<Network> = if ctx.is_admin() {
            sqlx::query_as("SELECT * FROM networks ORDER BY seq, id")
                .fetch_all(self.pool())
                .await?
        } else {
            sqlx::query_as(
                "SELECT * FROM networks WHERE project_id = $1 OR shared = 1 OR external = 1 ORDER BY seq, id",
            )
            .bind(ctx.project_id().unwrap_or(""))
            .fetch_all(self.pool())
            .await?
        };
        Ok(rows)
    }

    pub async fn subnet_ids_by_network(
        &self,
    ) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT network_id, id FROM subnets ORDER BY seq, id")
                .fetch_all(self.pool())
                .await?;
        let mut m: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for (n, s) in rows {
            m.entry(n).or_default().push(s);
        }
        Ok(m)
    }

    pub async fn create_network(&self, ctx: &AuthContext, req: NetworkCreate) -> Result<Network> {
        let project = self.owner(ctx, req.project_id.as_deref().or(req.tenant_id.as_deref()))?;
        self.check_write(ctx, "create_network", &project)?;
        let name = req.name.unwrap_or_default();
        check_name("name", &name)?;
        let provider = req.network_type.is_some()
            || req.physical_network.is_some()
            || req.segmentation_id.is_some();
        for (given, attr) in [
            (provider, "provider:network_type"),
            (req.external == Some(true), "router:external"),
            (req.shared == Some(true), "shared"),
        ] {
            if given && !ctx.is_admin() {
                return Err(NetworkError::new(
                    http::StatusCode::FORBIDDEN,
                    "PolicyNotAuthorized",
                    format!("(rule:create_network:{attr}) is disallowed by policy"),
                ));
            }
        }
        self.check_quota(&project, "network", "networks").await?;
        let network_type = req.network_type.clone().unwrap_or_else(|| "vxlan".into());
        let (physnet, segment) = self
            .plan_segment(
                &network_type,
                req.physical_network.clone(),
                req.segmentation_id,
            )
            .await?;
        let default_mtu = if network_type == "vxlan" {
            self.config.physical_mtu - VXLAN_OVERHEAD
        } else {
            self.config.physical_mtu
        };
        let mtu = match req.mtu {
            Some(m) if !(68..=default_mtu).contains(&m) => {
                return Err(NetworkError::invalid(format!(
                    "Requested MTU is too big, maximum is {default_mtu}"
                )))
            }
            Some(m) => m,
            None => default_mtu,
        };
        let now = time::now_micros();
        let n = Network {
            id: ids::uuid_id(),
            seq: seq(),
            project_id: project,
            name,
            description: req.description.unwrap_or_default(),
            admin_state_up: flag(req.admin_state_up.unwrap_or(true)),
            shared: flag(req.shared.unwrap_or(false)),
            external: flag(req.external.unwrap_or(false)),
            network_type,
            physical_network: physnet,
            segmentation_id: segment,
            mtu,
            port_security: flag(req.port_security_enabled.unwrap_or(true)),
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO networks (id, seq, project_id, name, description, admin_state_up, shared, external, network_type, \
             physical_network, segmentation_id, mtu, port_security, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14, $14)",
        )
        .bind(&n.id)
        .bind(n.seq)
        .bind(&n.project_id)
        .bind(&n.name)
        .bind(&n.description)
        .bind(n.admin_state_up)
        .bind(n.shared)
        .bind(n.external)
        .bind(&n.network_type)
        .bind(n.physical_network.clone())
        .bind(n.segmentation_id)
        .bind(n.mtu)
        .bind(n.port_security)
        .bind(now)
        .execute(self.pool())
        .await?;
        tracing::info!(network_id = %n.id, network_type = %n.network_type, "network created");
        self.changed();
        Ok(n)
    }

    /// Checks provider attributes as ML2's type drivers do, and allocates a
    /// VXLAN id when none is given.
    async fn plan_segment(
        &self,
        network_type: &str,
        physnet: Option<String>,
        segment: Option<i64>,
    ) -> Result<(Option<String>, Option<i64>)> {
        let known = |p: &str| self.config.physical_networks.iter().any(|k| k == p);
        match network_type {
            "flat" => {
                let Some(p) = physnet else {
                    return Err(NetworkError::invalid(
                        "physical_network required for flat provider network",
                    ));
                };
                if segment.is_some() {
                    return Err(NetworkError::invalid(
                        "segmentation_id prohibited for flat provider network",
                    ));
                }
                if !known(&p) {
                    return Err(NetworkError::invalid(format!(
                        "physical_network '{p}' unknown for flat provider network"
                    )));
                }
                let used: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM networks WHERE network_type = 'flat' AND physical_network = $1",
                )
                .bind(&p)
                .fetch_optional(self.pool())
                .await?;
                if used.is_some() {
                    return Err(NetworkError::conflict(
                        "FlatNetworkInUse",
                        format!(
                            "Unable to create the flat network. Physical network {p} is in use."
                        ),
                    ));
                }
                Ok((Some(p), None))
            }
            "vlan" => {
                let Some(p) = physnet else {
                    return Err(NetworkError::invalid(
                        "physical_network required for VLAN provider network",
                    ));
                };
                if !known(&p) {
                    return Err(NetworkError::invalid(format!(
                        "physical_network '{p}' unknown for VLAN provider network"
                    )));
                }
                let Some(v) = segment else {
                    return Err(NetworkError::invalid(
                        "segmentation_id required for VLAN provider network",
                    ));
                };
                if !(1..=4094).contains(&v) {
                    return Err(NetworkError::invalid(
                        "segmentation_id out of range (1 through 4094)",
                    ));
                }
                self.segment_free("vlan", Some(&p), v).await?;
                Ok((Some(p), Some(v)))
            }
            "vxlan" => {
                if physnet.is_some() {
                    return Err(NetworkError::invalid(
                        "provider:physical_network specified for vxlan network",
                    ));
                }
                let v = match segment {
                    Some(v) if !(1..=MAX_VXLAN_ID).contains(&v) => {
                        return Err(NetworkError::invalid(format!(
                            "segmentation_id out of range (1 through {MAX_VXLAN_ID})"
                        )))
                    }
                    Some(v) => {
                        self.segment_free("vxlan", None, v).await?;
                        v
                    }
                    None => {
                        let used: Vec<(i64,)> = sqlx::query_as(
                            "SELECT segmentation_id FROM networks WHERE network_type = 'vxlan' ORDER BY segmentation_id",
                        )
                        .fetch_all(self.pool())
                        .await?;
                        let mut next = 1;
                        for (u,) in used {
                            if u == next {
                                next += 1;
                            } else if u > next {
                                break;
                            }
                        }
                        next
                    }
                };
                Ok((None, Some(v)))
            }
            "local" => {
                if physnet.is_some() || segment.is_some() {
                    return Err(NetworkError::invalid(
                        "provider attributes prohibited for local provider network",
                    ));
                }
                Ok((None, None))
            }
            other => Err(NetworkError::invalid(format!(
                "network_type value '{other}' not supported"
            ))),
        }
    }

    async fn segment_free(&self, kind: &str, physnet: Option<&str>, id: i64) -> Result<()> {
        let used: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM networks WHERE network_type = $1 AND COALESCE(physical_network, '') = $2 AND segmentation_id = $3",
        )
        .bind(kind)
        .bind(physnet.unwrap_or(""))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        if used.is_some() {
            let on = physnet
                .map(|p| format!(" on physical network {p}"))
                .unwrap_or_default();
            return Err(NetworkError::conflict(
                if kind == "vlan" {
                    "VlanIdInUse"
                } else {
                    "TunnelIdInUse"
                },
                format!("Unable to create the network. The {kind} {id}{on} is in use."),
            ));
        }
        Ok(())
    }

    pub async fn update_network(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: NetworkUpdate,
    ) -> Result<Network> {
        let n = self.visible_network(ctx, id).await?;
        self.check_write(ctx, "update_network", &n.project_id)?;
        if (req.external.is_some() || req.shared.is_some()) && !ctx.is_admin() {
            return Err(NetworkError::new(
                http::StatusCode::FORBIDDEN,
                "PolicyNotAuthorized",
                "(rule:update_network:shared) is disallowed by policy",
            ));
        }
        if let Some(name) = &req.name {
            check_name("name", name)?;
        }
        if req.external == Some(false) && n.external != 0 {
            let (fips,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM floatingips WHERE floating_network_id = $1")
                    .bind(id)
                    .fetch_one(self.pool())
                    .await?;
            if fips > 0 {
                return Err(NetworkError::conflict(
                    "NetworkInUse",
                    format!("Unable to complete operation on network {id}. There are one or more floating IPs on the network."),
                ));
            }
        }
        if let Some(m) = req.mtu {
            if !(68..=self.config.physical_mtu).contains(&m) {
                return Err(NetworkError::invalid(format!(
                    "Requested MTU is too big, maximum is {}",
                    self.config.physical_mtu
                )));
            }
        }
        sqlx::query(
            "UPDATE networks SET name = $1, description = $2, admin_state_up = $3, shared = $4, external = $5, mtu = $6, \
             port_security = $7, revision = revision + 1, updated_at = $8 WHERE id = $9",
        )
        .bind(req.name.unwrap_or(n.name))
        .bind(req.description.unwrap_or(n.description))
        .bind(req.admin_state_up.map(flag).unwrap_or(n.admin_state_up))
        .bind(req.shared.map(flag).unwrap_or(n.shared))
        .bind(req.external.map(flag).unwrap_or(n.external))
        .bind(req.mtu.unwrap_or(n.mtu))
        .bind(req.port_security_enabled.map(flag).unwrap_or(n.port_security))
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.changed();
        self.network(id).await?.ok_or_else(|| not_found(id))
    }

    /// Deletes a network and its subnets; refused while ports other than
    /// the network's own remain (Neutron's `NetworkInUse`).
    pub async fn delete_network(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let n = self.visible_network(ctx, id).await?;
        self.check_write(ctx, "delete_network", &n.project_id)?;
        let (ports,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM ports WHERE network_id = $1")
            .bind(id)
            .fetch_one(self.pool())
            .await?;
        if ports > 0 {
            return Err(NetworkError::conflict(
                "NetworkInUse",
                format!("Unable to complete operation on network {id}. There are one or more ports still in use on the network."),
            ));
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM subnets WHERE network_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM networks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(network_id = %id, "network deleted");
        self.changed();
        Ok(())
    }

    // ---- subnets ----

    pub async fn subnet(&self, id: &str) -> Result<Option<Subnet>> {
        Ok(sqlx::query_as("SELECT * FROM subnets WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn visible_subnet(&self, ctx: &AuthContext, id: &str) -> Result<Subnet> {
        if let Some(s) = self.subnet(id).await? {
            if Self::owns(ctx, &s.project_id) {
                return Ok(s);
            }
            if let Some(n) = self.network(&s.network_id).await? {
                if Self::sees_network(ctx, &n) {
                    return Ok(s);
                }
            }
        }
        Err(NetworkError::not_found(
            "SubnetNotFound",
            format!("Subnet {id} could not be found."),
        ))
    }

    pub async fn subnets(&self, ctx: &AuthContext) -> Result<Vec<Subnet>> {
        let all: Vec<Subnet> = sqlx::query_as("SELECT * FROM subnets ORDER BY seq, id")
            .fetch_all(self.pool())
            .await?;
        if ctx.is_admin() {
            return Ok(all);
        }
        let nets: std::collections::HashMap<String, Network> = self
            .networks(ctx)
            .await?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        Ok(all
            .into_iter()
            .filter(|s| Self::owns(ctx, &s.project_id) || nets.contains_key(&s.network_id))
            .collect())
    }

    pub async fn network_subnets(&self, network_id: &str) -> Result<Vec<Subnet>> {
        Ok(
            sqlx::query_as("SELECT * FROM subnets WHERE network_id = $1 ORDER BY seq, id")
                .bind(network_id)
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn create_subnet(&self, ctx: &AuthContext, req: SubnetCreate) -> Result<Subnet> {
        let Some(network_id) = req.network_id.clone() else {
            return Err(NetworkError::bad(
                "Failed to parse request. Required attribute 'network_id' not specified",
            ));
        };
        let net = self.visible_network(ctx, &network_id).await?;
        let project = self.owner(ctx, req.project_id.as_deref().or(req.tenant_id.as_deref()))?;
        // Only the network's owner (or an admin) adds subnets, even to a shared network.
        self.check_write(ctx, "create_subnet", &net.project_id)?;
        match req.ip_version {
            None | Some(4) => {}
            Some(6) => {
                return Err(NetworkError::bad(
                    "IPv6 subnets are not supported by this cloud yet.",
                ))
            }
            Some(v) => {
                return Err(NetworkError::bad(format!(
                    "Invalid input for ip_version. Reason: {v} is not in [4, 6]."
                )))
            }
        }
        if req.subnetpool_id.is_some() || req.use_default_subnetpool == Some(true) {
            return Err(NetworkError::bad(
                "Subnet pools are not supported by this cloud; give a cidr.",
            ));
        }
        let Some(cidr_text) = req.cidr.clone() else {
            return Err(NetworkError::bad(
                "Bad subnets request: a cidr must be specified in the absence of a subnet pool.",
            ));
        };
        let cidr = Cidr::parse(&cidr_text)?;
        if cidr.prefix == 0 {
            return Err(NetworkError::invalid(
                "0.0.0.0/0 is not a valid subnet cidr",
            ));
        }
        let name = req.name.unwrap_or_default();
        check_name("name", &name)?;
        let gateway = match req.gateway_ip {
            None => None,
            Some(None) => Some(None),
            Some(Some(g)) => Some(Some(ipam::parse_ip("gateway_ip", &g)?)),
        };
        let pools = req.allocation_pools.map(|p| parse_pools(&p)).transpose()?;
        let (gateway, pools) = ipam::plan_subnet(&cidr, gateway, pools)?;
        let dns = check_dns(req.dns_nameservers.unwrap_or_default())?;
        let routes = check_routes(req.host_routes.unwrap_or_default())?;
        let existing: Vec<Cidr> = self
            .network_subnets(&network_id)
            .await?
            .iter()
            .filter_map(|s| s.cidr())
            .collect();
        ipam::check_overlap(&cidr, &existing, &network_id)?;
        self.check_quota(&project, "subnet", "subnets").await?;
        let now = time::now_micros();
        let s = Subnet {
            id: ids::uuid_id(),
            seq: seq(),
            network_id,
            project_id: project,
            name,
            description: req.description.unwrap_or_default(),
            cidr: cidr.to_string(),
            gateway_ip: gateway.map(|g| g.to_string()),
            allocation_pools: pools_json(&pools),
            enable_dhcp: flag(req.enable_dhcp.unwrap_or(true)),
            dns_nameservers: serde_json::to_string(&dns).unwrap_or_else(|_| "[]".into()),
            host_routes: serde_json::to_string(&routes).unwrap_or_else(|_| "[]".into()),
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO subnets (id, seq, network_id, project_id, name, description, cidr, gateway_ip, allocation_pools, \
             enable_dhcp, dns_nameservers, host_routes, revision, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13)",
        )
        .bind(&s.id)
        .bind(s.seq)
        .bind(&s.network_id)
        .bind(&s.project_id)
        .bind(&s.name)
        .bind(&s.description)
        .bind(&s.cidr)
        .bind(s.gateway_ip.clone())
        .bind(&s.allocation_pools)
        .bind(s.enable_dhcp)
        .bind(&s.dns_nameservers)
        .bind(&s.host_routes)
        .bind(now)
        .execute(self.pool())
        .await?;
        tracing::info!(subnet_id = %s.id, network_id = %s.network_id, cidr = %s.cidr, "subnet created");
        self.changed();
        Ok(s)
    }

    pub async fn update_subnet(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: SubnetUpdate,
    ) -> Result<Subnet> {
        let s = self.visible_subnet(ctx, id).await?;
        self.check_write(ctx, "update_subnet", &s.project_id)?;
        let cidr = s
            .cidr()
            .ok_or_else(|| NetworkError::internal("stored cidr unreadable"))?;
        if let Some(name) = &req.name {
            check_name("name", name)?;
        }
        let gateway = match &req.gateway_ip {
            None => Some(
                s.gateway_ip
                    .as_deref()
                    .map(|g| ipam::parse_ip("gateway_ip", g))
                    .transpose()?,
            ),
            Some(None) => Some(None),
            Some(Some(g)) => Some(Some(ipam::parse_ip("gateway_ip", g)?)),
        };
        let pools = match &req.allocation_pools {
            Some(p) => parse_pools(p)?,
            None => parse_pools(&s.pools())?,
        };
        let (gateway, pools) = ipam::plan_subnet(&cidr, gateway, Some(pools))?;
        if req.gateway_ip.is_some() && gateway.map(|g| g.to_string()) != s.gateway_ip {
            let router_port: Option<(String,)> = sqlx::query_as(
                "SELECT p.id FROM ports p JOIN ip_allocations a ON a.port_id = p.id \
                 WHERE a.subnet_id = $1 AND a.ip_address = $2 AND p.device_owner = $3",
            )
            .bind(id)
            .bind(s.gateway_ip.clone().unwrap_or_default())
            .bind(owner::ROUTER_INTERFACE)
            .fetch_optional(self.pool())
            .await?;
            if router_port.is_some() {
                return Err(NetworkError::conflict(
                    "SubnetInUse",
                    format!("Unable to complete operation on subnet {id}: Gateway ip {} is in use by a router interface.", s.gateway_ip.clone().unwrap_or_default()),
                ));
            }
        }
        let dns = match req.dns_nameservers {
            Some(d) => check_dns(d)?,
            None => s.dns(),
        };
        let routes = match req.host_routes {
            Some(r) => check_routes(r)?,
            None => s.routes(),
        };
        sqlx::query(
            "UPDATE subnets SET name = $1, description = $2, gateway_ip = $3, allocation_pools = $4, enable_dhcp = $5, \
             dns_nameservers = $6, host_routes = $7, revision = revision + 1, updated_at = $8 WHERE id = $9",
        )
        .bind(req.name.unwrap_or(s.name))
        .bind(req.description.unwrap_or(s.description))
        .bind(gateway.map(|g| g.to_string()))
        .bind(pools_json(&pools))
        .bind(req.enable_dhcp.map(flag).unwrap_or(s.enable_dhcp))
        .bind(serde_json::to_string(&dns).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&routes).unwrap_or_else(|_| "[]".into()))
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.changed();
        self.subnet(id).await?.ok_or_else(|| {
            NetworkError::not_found("SubnetNotFound", format!("Subnet {id} could not be found."))
        })
    }

    /// Refused while any port holds an address on it (`SubnetInUse`).
    pub async fn delete_subnet(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let s = self.visible_subnet(ctx, id).await?;
        self.check_write(ctx, "delete_subnet", &s.project_id)?;
        let (used,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM ip_allocations WHERE subnet_id = $1")
                .bind(id)
                .fetch_one(self.pool())
                .await?;
        if used > 0 {
            return Err(NetworkError::conflict(
                "SubnetInUse",
                format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."),
            ));
        }
        sqlx::query("DELETE FROM subnets WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        tracing::info!(subnet_id = %id, "subnet deleted");
        self.changed();
        Ok(())
    }
}

fn parse_pools(p: &[PoolJson]) -> Result<Vec<Pool>> {
    p.iter()
        .map(|p| {
            Ok(Pool {
                start: ipam::parse_ip("allocation_pools", &p.start)?,
                end: ipam::parse_ip("allocation_pools", &p.end)?,
            })
        })
        .collect()
}

fn pools_json(pools: &[Pool]) -> String {
    let v: Vec<PoolJson> = pools
        .iter()
        .map(|p| PoolJson {
            start: p.start.to_string(),
            end: p.end.to_string(),
        })
        .collect();
    serde_json::to_string(&v).unwrap_or_else(|_| "[]".into())
}

fn check_dns(d: Vec<String>) -> Result<Vec<String>> {
    for a in &d {
        if a.parse::<Ipv4Addr>().is_err() {
            return Err(NetworkError::bad(format!(
                "Invalid input for dns_nameservers. Reason: '{a}' is not a valid nameserver."
            )));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = d.iter().find(|a| !seen.insert(*a)) {
        return Err(NetworkError::bad(format!(
            "Invalid input for dns_nameservers. Reason: Duplicate nameserver '{dup}'."
        )));
    }
    Ok(d)
}

fn check_routes(r: Vec<HostRoute>) -> Result<Vec<HostRoute>> {
    r.into_iter()
        .map(|h| {
            let dest = Cidr::parse(&h.destination).map_err(|_| {
                NetworkError::bad(format!(
                    "Invalid input for host_routes. Reason: '{}' is not a valid IP subnet.",
                    h.destination
                ))
            })?;
            ipam::parse_ip("host_routes", &h.nexthop)?;
            Ok(HostRoute {
                destination: dest.to_string(),
                nexthop: h.nexthop,
            })
        })
        .collect()
}
