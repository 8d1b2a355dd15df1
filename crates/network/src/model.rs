//! Rows of the network tables and their Neutron JSON shapes.
//!
//! Rendering is plain: every standard attribute Neutron returns is present
//! (the CLI prints them all), `tenant_id` mirrors `project_id`, times are
//! ISO seconds, `revision_number` counts updates.

use ferro_common::time::iso_seconds;
use serde::Deserialize;
use serde_json::{json, Value};

/// A fixed IP of a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Network {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: i64,
    pub shared: i64,
    pub external: i64,
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
    pub mtu: i64,
    pub port_security: i64,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Network {
    /// `subnets` are the ids of its subnets; provider attributes are shown
    /// to admins only, as Neutron's policy does.
    pub fn render(&self, subnets: &[String], admin: bool) -> Value {
        let mut v = json!({
            "id": self.id, "name": self.name, "description": self.description,
            "project_id": self.project_id, "tenant_id": self.project_id,
            "admin_state_up": self.admin_state_up != 0, "status": "ACTIVE",
            "shared": self.shared != 0, "router:external": self.external != 0,
            "mtu": self.mtu, "port_security_enabled": self.port_security != 0,
            "subnets": subnets, "availability_zone_hints": [], "availability_zones": ["nova"],
            "ipv4_address_scope": null, "ipv6_address_scope": null, "is_default": false,
            "l2_adjacency": true, "dns_domain": "", "qos_policy_id": null, "tags": [],
            "revision_number": self.revision,
            "created_at": iso_seconds(self.created_at), "updated_at": iso_seconds(self.updated_at),
        });
        if admin {
            v["provider:network_type"] = json!(self.network_type);
            v["provider:physical_network"] = json!(self.physical_network);
            v["provider:segmentation_id"] = json!(self.segmentation_id);
        }
        v
    }
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct PoolJson {
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct HostRoute {
    pub destination: String,
    pub nexthop: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Subnet {
    pub id: String,
    pub seq: i64,
    pub network_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    pub allocation_pools: String,
    pub enable_dhcp: i64,
    pub dns_nameservers: String,
    pub host_routes: String,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Subnet {
    pub fn pools(&self) -> Vec<PoolJson> {
        serde_json::from_str(&self.allocation_pools).unwrap_or_default()
    }

    pub fn dns(&self) -> Vec<String> {
        serde_json::from_str(&self.dns_nameservers).unwrap_or_default()
    }

    pub fn routes(&self) -> Vec<HostRoute> {
        serde_json::from_str(&self.host_routes).unwrap_or_default()
    }

    pub fn cidr(&self) -> Option<crate::ipam::Cidr> {
        crate::ipam::Cidr::parse(&self.cidr).ok()
    }

    pub fn render(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "description": self.description,
            "network_id": self.network_id, "project_id": self.project_id, "tenant_id": self.project_id,
            "ip_version": 4, "cidr": self.cidr, "gateway_ip": self.gateway_ip,
            "allocation_pools": self.pools(), "enable_dhcp": self.enable_dhcp != 0,
            "dns_nameservers": self.dns(), "host_routes": self.routes(),
            "ipv6_ra_mode": null, "ipv6_address_mode": null, "subnetpool_id": null,
            "segment_id": null, "service_types": [], "dns_publish_fixed_ip": false, "tags": [],
            "revision_number": self.revision,
            "created_at": iso_seconds(self.created_at), "updated_at": iso_seconds(self.updated_at),
        })
    }
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct AddressPair {
    pub ip_address: String,
    #[serde(default)]
    pub mac_address: Option<String>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Port {
    pub id: String,
    pub seq: i64,
    pub network_id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub mac_address: String,
    pub admin_state_up: i64,
    pub status: String,
    pub device_id: String,
    pub device_owner: String,
    pub security_groups: String,
    pub allowed_address_pairs: String,
    pub port_security: i64,
    pub binding_host: String,
    pub dns_name: String,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// `compute` for a port compute made for a server (removed with it);
    /// empty for ports users made. Internal: not part of Neutron's API.
    #[sqlx(default)]
    pub made_by: String,
    /// A live migration's destination, where the port is plugged in too
    /// until the switch (Neutron's `binding:profile` `migrating_to`).
    #[sqlx(default)]
    pub migrating_to: Option<String>,
}

/// Device owners of ports the network service manages itself.
pub mod owner {
    pub const ROUTER_INTERFACE: &str = "network:router_interface";
    pub const ROUTER_GATEWAY: &str = "network:router_gateway";
    pub const FLOATING_IP: &str = "network:floatingip";
    pub const COMPUTE: &str = "compute:nova";
    /// A load balancer's VIP (Octavia's own owner string).
    pub const LOADBALANCER: &str = "Octavia";

    /// Ports owned by the network service: no security groups, and not
    /// deletable through the port API.
    pub fn is_network(owner: &str) -> bool {
        owner.starts_with("network:")
    }
}

impl Port {
    pub fn security_group_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.security_groups).unwrap_or_default()
    }

    pub fn address_pairs(&self) -> Vec<AddressPair> {
        serde_json::from_str(&self.allowed_address_pairs).unwrap_or_default()
    }

    pub fn render(&self, ips: &[FixedIp], admin: bool) -> Value {
        let pairs: Vec<Value> = self
            .address_pairs()
            .into_iter()
            .map(|p| json!({"ip_address": p.ip_address, "mac_address": p.mac_address.unwrap_or_else(|| self.mac_address.clone())}))
            .collect();
        let hostname = if self.dns_name.is_empty() {
            None
        } else {
            Some(self.dns_name.clone())
        };
        let dns_assignment: Vec<Value> = ips
            .iter()
            .map(|ip| {
                let h = hostname
                    .clone()
                    .unwrap_or_else(|| format!("host-{}", ip.ip_address.replace('.', "-")));
                json!({"hostname": h, "ip_address": ip.ip_address, "fqdn": format!("{h}.")})
            })
            .collect();
        let mut v = json!({
            "id": self.id, "name": self.name, "description": self.description,
            "network_id": self.network_id, "project_id": self.project_id, "tenant_id": self.project_id,
            "mac_address": self.mac_address, "admin_state_up": self.admin_state_up != 0,
            "status": self.status, "device_id": self.device_id, "device_owner": self.device_owner,
            "fixed_ips": ips.iter().map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address})).collect::<Vec<_>>(),
            "security_groups": self.security_group_ids(), "allowed_address_pairs": pairs,
            "port_security_enabled": self.port_security != 0,
            "dns_name": self.dns_name, "dns_assignment": dns_assignment,
            "extra_dhcp_opts": [], "binding:vnic_type": "normal", "tags": [],
            "propagate_uplink_status": false, "qos_policy_id": null, "qos_network_policy_id": null,
            "revision_number": self.revision,
            "created_at": iso_seconds(self.created_at), "updated_at": iso_seconds(self.updated_at),
        });
        if admin {
            v["binding:host_id"] = json!(self.binding_host);
            v["binding:vif_type"] = json!(if self.binding_host.is_empty() {
                "unbound"
            } else {
                "tap"
            });
            v["binding:vif_details"] = json!({});
            v["binding:profile"] = match &self.migrating_to {
                Some(h) => json!({"migrating_to": h}),
                None => json!({}),
            };
        }
        v
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Router {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: i64,
    pub gw_network_id: Option<String>,
    pub gw_port_id: Option<String>,
    pub enable_snat: i64,
    pub routes: String,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Router {
    pub fn static_routes(&self) -> Vec<HostRoute> {
        serde_json::from_str(&self.routes).unwrap_or_default()
    }

    /// `gw_ips` are the gateway port's fixed IPs.
    pub fn render(&self, gw_ips: &[FixedIp]) -> Value {
        let gw = self.gw_network_id.as_ref().map(|n| {
            json!({"network_id": n, "enable_snat": self.enable_snat != 0,
                   "external_fixed_ips": gw_ips.iter().map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address})).collect::<Vec<_>>()})
        });
        json!({
            "id": self.id, "name": self.name, "description": self.description,
            "project_id": self.project_id, "tenant_id": self.project_id,
            "admin_state_up": self.admin_state_up != 0, "status": "ACTIVE",
            "external_gateway_info": gw, "routes": self.static_routes(),
            "distributed": false, "ha": false, "flavor_id": null,
            "availability_zone_hints": [], "availability_zones": ["nova"], "tags": [],
            "revision_number": self.revision,
            "created_at": iso_seconds(self.created_at), "updated_at": iso_seconds(self.updated_at),
        })
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FloatingIp {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub description: String,
    pub floating_network_id: String,
    pub floating_ip_address: String,
    pub floating_port_id: String,
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<String>,
    pub router_id: Option<String>,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl FloatingIp {
    pub fn status(&self) -> &'static str {
        if self.port_id.is_some() {
            "ACTIVE"
        } else {
            "DOWN"
        }
    }

    pub fn render(&self) -> Value {
        json!({
            "id": self.id, "description": self.description,
            "project_id": self.project_id, "tenant_id": self.project_id,
            "floating_network_id": self.floating_network_id,
            "floating_ip_address": self.floating_ip_address,
            "port_id": self.port_id, "fixed_ip_address": self.fixed_ip_address,
            "router_id": self.router_id, "status": self.status(),
            "port_details": null, "dns_domain": "", "dns_name": "", "qos_policy_id": null,
            "port_forwardings": [], "tags": [],
            "revision_number": self.revision,
            "created_at": iso_seconds(self.created_at), "updated_at": iso_seconds(self.updated_at),
        })
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SecurityGroup {
    pub id: String,
    pub seq: i64,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub is_default: i64,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SecurityGroup {
    pub fn render(&self, rules: &[Rule]) -> Value {
        json!({
            "id": self.id, "name": self.name, "description": self.description,
            "project_id": self.project_id, "tenant_id": self.project_id,
            "stateful": true, "shared": false, "tags": [],
            "security_group_rules": rules.iter().map(|r| r.render(self.is_default != 0)).collect::<Vec<_>>(),
            "revision_number": self.revision,
            "created_at": iso_seconds(self.created_at), "updated_at": iso_seconds(self.updated_at),
        })
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Rule {
    pub id: String,
    pub seq: i64,
    pub security_group_id: String,
    pub project_id: String,
    pub direction: String,
    pub ethertype: String,
    pub protocol: Option<String>,
    pub port_range_min: Option<i64>,
    pub port_range_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
    pub description: String,
    pub revision: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Rule {
    pub fn render(&self, in_default_group: bool) -> Value {
        let normalized = self.remote_ip_prefix.as_deref().map(|p| {
            crate::ipam::Cidr::parse(p)
                .map(|c| c.to_string())
                .unwrap_or_else(|_| p.to_owned())
        });
        json!({
            "id": self.id, "security_group_id": self.security_group_id,
            "project_id": self.project_id, "tenant_id": self.project_id,
            "direction": self.direction, "ethertype": self.ethertype, "protocol": self.protocol,
            "port_range_min": self.port_range_min, "port_range_max": self.port_range_max,
            "remote_ip_prefix": self.remote_ip_prefix, "normalized_cidr": normalized,
            "remote_group_id": self.remote_group_id, "remote_address_group_id": null,
            "belongs_to_default_sg": in_default_group, "description": self.description,
            "revision_number": self.revision,
            "created_at": iso_seconds(self.created_at), "updated_at": iso_seconds(self.updated_at),
        })
    }
}
