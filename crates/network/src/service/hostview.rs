//! The desired dataplane of one host, from the network tables: the
//! networks, instance ports and security groups it needs, and (on the
//! network node) routers, DHCP hosts and floating IPs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferro_agent_api::netspec::{
    names, DhcpHost, GroupSpec, HostNetwork, NetSpec, PortSpec, RouterLeg, RouterSpec, RuleSpec,
    SubnetSpec, Tunnel,
};
use ferro_store::sqlx;

use super::security::protocol_number;
use super::NetworkService;
use crate::error::Result;
use crate::model::{
    owner, FixedIp, FloatingIp, Network, Port, Router, Rule, SecurityGroup, Subnet,
};

/// A port and the prefix length of each of its addresses.
fn with_prefix(ip: &FixedIp, subnets: &HashMap<String, Subnet>) -> Option<String> {
    let s = subnets.get(&ip.subnet_id)?;
    let prefix = s.cidr.split_once('/')?.1;
    Some(format!("{}/{prefix}", ip.ip_address))
}

/// Where each host's tunnels end, and which host is the network node.
struct Underlay {
    /// Host name → underlay address.
    tunnel_ip: HashMap<String, String>,
    network_node: Option<String>,
}

/// Which hosts have each VXLAN network, and where its MACs live: the
/// l2population view every host's tunnels are built from.
#[derive(Default)]
struct Overlay {
    /// Network → hosts with a port on it (the network node for its DHCP
    /// and router legs).
    hosts: HashMap<String, BTreeSet<String>>,
    /// Network → (MAC, host).
    macs: HashMap<String, Vec<(String, String)>>,
}

impl Overlay {
    fn add(&mut self, network: &str, mac: &str, host: &str) {
        self.hosts
            .entry(network.to_owned())
            .or_default()
            .insert(host.to_owned());
        self.macs
            .entry(network.to_owned())
            .or_default()
            .push((mac.to_ascii_lowercase(), host.to_owned()));
    }

    /// The tunnel of `network` as `host` (at `local_ip`) should build it;
    /// none while no other host has the network (a lone host needs none).
    fn tunnel(&self, network: &str, host: &str, u: &Underlay) -> Option<Tunnel> {
        let local_ip = u.tunnel_ip.get(host)?.clone();
        let remote = |h: &String| {
            (h != host)
                .then(|| u.tunnel_ip.get(h).cloned())
                .flatten()
                .filter(|ip| *ip != local_ip)
        };
        let peers: BTreeSet<String> = self
            .hosts
            .get(network)
            .into_iter()
            .flatten()
            .filter_map(remote)
            .collect();
        if peers.is_empty() {
            return None;
        }
        let mut macs: BTreeMap<String, String> = BTreeMap::new();
        for (mac, h) in self.macs.get(network).into_iter().flatten() {
            if let Some(ip) = remote(h) {
                macs.insert(mac.clone(), ip);
            }
        }
        Some(Tunnel {
            local_ip,
            peers: peers.into_iter().collect(),
            macs: macs.into_iter().collect(),
        })
    }
}

impl NetworkService {
    /// Every host's underlay address, and the network node: the first host
    /// registered with the role (one host runs routers and DHCP).
    async fn underlay(&self) -> Result<Underlay> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT name, COALESCE(tunnel_ip, host_ip), network_node FROM hosts ORDER BY seq, name",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(Underlay {
            network_node: rows
                .iter()
                .find(|(_, _, n)| *n != 0)
                .map(|(h, _, _)| h.clone()),
            tunnel_ip: rows.into_iter().map(|(h, ip, _)| (h, ip)).collect(),
        })
    }

    /// The host that runs routers, DHCP and metadata, if any joined.
    pub async fn network_node(&self) -> Result<Option<String>> {
        Ok(self.underlay().await?.network_node)
    }

    /// What `host`'s dataplane should look like. The network node also
    /// runs every router and every network's DHCP.
    pub async fn host_network(&self, host: &str, network_node: bool) -> Result<HostNetwork> {
        let networks: Vec<Network> = sqlx::query_as("SELECT * FROM networks ORDER BY seq, id")
            .fetch_all(self.pool())
            .await?;
        let subnets: Vec<Subnet> = sqlx::query_as("SELECT * FROM subnets ORDER BY seq, id")
            .fetch_all(self.pool())
            .await?;
        let ports: Vec<Port> = sqlx::query_as("SELECT * FROM ports ORDER BY seq, id")
            .fetch_all(self.pool())
            .await?;
        let ips = self.fixed_ips(None).await?;
        let subnet_by_id: HashMap<String, Subnet> =
            subnets.iter().map(|s| (s.id.clone(), s.clone())).collect();
        let ips_of = |p: &Port| ips.get(&p.id).cloned().unwrap_or_default();
        let is_compute = |p: &Port| p.device_owner.starts_with("compute:");

        // A live migration's destination has the port plugged in too; the
        // overlay keeps sending its traffic to the bound host until the switch.
        let local: Vec<&Port> = ports
            .iter()
            .filter(|p| {
                is_compute(p) && (p.binding_host == host || p.migrating_to.as_deref() == Some(host))
            })
            .collect();
        let underlay = self.underlay().await?;
        let vxlan: BTreeSet<&str> = networks
            .iter()
            .filter(|n| n.network_type == "vxlan")
            .map(|n| n.id.as_str())
            .collect();
        let mut overlay = Overlay::default();
        for p in ports
            .iter()
            .filter(|p| vxlan.contains(p.network_id.as_str()))
        {
            let on = if is_compute(p) {
                Some(p.binding_host.as_str()).filter(|h| !h.is_empty())
            } else if p.device_owner == owner::ROUTER_INTERFACE
                || p.device_owner == owner::LOADBALANCER
            {
                underlay.network_node.as_deref()
            } else {
                None
            };
            if let Some(h) = on {
                overlay.add(&p.network_id, &p.mac_address, h);
            }
        }
        if let Some(nn) = &underlay.network_node {
            for s in subnets
                .iter()
                .filter(|s| s.enable_dhcp != 0 && vxlan.contains(s.network_id.as_str()))
            {
                overlay.add(&s.network_id, &names::dhcp_mac(&s.network_id), nn);
            }
        }
        let mut wanted_nets: BTreeSet<String> =
            local.iter().map(|p| p.network_id.clone()).collect();
        let mut routers = Vec::new();
        if network_node {
            for s in subnets.iter().filter(|s| s.enable_dhcp != 0) {
                wanted_nets.insert(s.network_id.clone());
            }
            for p in ports
                .iter()
                .filter(|p| p.device_owner == owner::LOADBALANCER)
            {
                wanted_nets.insert(p.network_id.clone());
            }
            let all: Vec<Router> = sqlx::query_as("SELECT * FROM routers ORDER BY seq, id")
                .fetch_all(self.pool())
                .await?;
            let fips: Vec<FloatingIp> = sqlx::query_as(
                "SELECT * FROM floatingips WHERE port_id IS NOT NULL ORDER BY seq, id",
            )
            .fetch_all(self.pool())
            .await?;
            for r in all.iter().filter(|r| r.admin_state_up != 0) {
                let leg = |p: &Port| -> Option<RouterLeg> {
                    let ip = ips_of(p).into_iter().next()?;
                    Some(RouterLeg {
                        port_id: p.id.clone(),
                        network_id: p.network_id.clone(),
                        mac: p.mac_address.clone(),
                        address: with_prefix(&ip, &subnet_by_id)?,
                    })
                };
                let interfaces: Vec<RouterLeg> = ports
                    .iter()
                    .filter(|p| p.device_id == r.id && p.device_owner == owner::ROUTER_INTERFACE)
                    .filter_map(leg)
                    .collect();
                let gw_port = r
                    .gw_port_id
                    .as_ref()
                    .and_then(|g| ports.iter().find(|p| &p.id == g));
                let gateway = gw_port.and_then(leg);
                let nexthop = gw_port
                    .and_then(|p| ips_of(p).into_iter().next())
                    .and_then(|ip| subnet_by_id.get(&ip.subnet_id))
                    .and_then(|s| s.gateway_ip.clone());
                for l in interfaces.iter().chain(gateway.iter()) {
                    wanted_nets.insert(l.network_id.clone());
                }
                routers.push(RouterSpec {
                    id: r.id.clone(),
                    interfaces,
                    gateway,
                    gateway_nexthop: nexthop,
                    snat: r.enable_snat != 0,
                    routes: r
                        .static_routes()
                        .into_iter()
                        .map(|h| (h.destination, h.nexthop))
                        .collect(),
                    floating: fips
                        .iter()
                        .filter(|f| f.router_id.as_deref() == Some(r.id.as_str()))
                        .filter_map(|f| {
                            Some((f.floating_ip_address.clone(), f.fixed_ip_address.clone()?))
                        })
                        .collect(),
                });
            }
        }

        let nets: Vec<NetSpec> = networks
            .iter()
            .filter(|n| wanted_nets.contains(&n.id) && n.admin_state_up != 0)
            .map(|n| NetSpec {
                id: n.id.clone(),
                network_type: n.network_type.clone(),
                physical_network: n.physical_network.clone(),
                segmentation_id: n.segmentation_id,
                mtu: n.mtu,
                subnets: subnets
                    .iter()
                    .filter(|s| s.network_id == n.id)
                    .map(|s| SubnetSpec {
                        id: s.id.clone(),
                        cidr: s.cidr.clone(),
                        gateway: s.gateway_ip.clone(),
                        dhcp: network_node && s.enable_dhcp != 0,
                        dns: s.dns(),
                        host_routes: s
                            .routes()
                            .into_iter()
                            .map(|h| (h.destination, h.nexthop))
                            .collect(),
                    })
                    .collect(),
                dhcp_hosts: if network_node {
                    ports
                        .iter()
                        .filter(|p| p.network_id == n.id && is_compute(p))
                        .flat_map(|p| {
                            ips_of(p).into_iter().map(move |ip| DhcpHost {
                                mac: p.mac_address.clone(),
                                hostname: if p.dns_name.is_empty() {
                                    format!("host-{}", ip.ip_address.replace('.', "-"))
                                } else {
                                    p.dns_name.clone()
                                },
                                ip: ip.ip_address,
                            })
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                tunnel: if n.network_type == "vxlan" {
                    overlay.tunnel(&n.id, host, &underlay)
                } else {
                    None
                },
            })
            .collect();

        let port_specs: Vec<PortSpec> = local
            .iter()
            .map(|p| PortSpec {
                id: p.id.clone(),
                network_id: p.network_id.clone(),
                mac: p.mac_address.clone(),
                ips: ips_of(p).into_iter().map(|i| i.ip_address).collect(),
                port_security: p.port_security != 0,
                groups: p.security_group_ids(),
                allowed: p
                    .address_pairs()
                    .into_iter()
                    .map(|a| {
                        (
                            a.ip_address,
                            a.mac_address.unwrap_or_else(|| p.mac_address.clone()),
                        )
                    })
                    .collect(),
                device_id: p.device_id.clone(),
            })
            .collect();
        let used: BTreeSet<String> = port_specs
            .iter()
            .flat_map(|p| p.groups.iter().cloned())
            .collect();
        let groups: Vec<SecurityGroup> =
            sqlx::query_as("SELECT * FROM security_groups ORDER BY seq, id")
                .fetch_all(self.pool())
                .await?;
        let rules: Vec<Rule> = self.rules_of(None).await?;
        // Remote groups named by used rules need their members too.
        let mut needed = used.clone();
        for r in rules.iter().filter(|r| used.contains(&r.security_group_id)) {
            if let Some(g) = &r.remote_group_id {
                needed.insert(g.clone());
            }
        }
        let group_specs = groups
            .iter()
            .filter(|g| needed.contains(&g.id))
            .map(|g| GroupSpec {
                id: g.id.clone(),
                rules: rules
                    .iter()
                    .filter(|r| r.security_group_id == g.id)
                    .map(|r| RuleSpec {
                        direction: r.direction.clone(),
                        ethertype: r.ethertype.clone(),
                        protocol: protocol_number(r.protocol.as_deref()),
                        port_min: r.port_range_min,
                        port_max: r.port_range_max,
                        // (the network of a prefix kept as given)
                        remote_ip_prefix: r.remote_ip_prefix.as_deref().map(|p| {
                            crate::ipam::Cidr::parse(p)
                                .map(|c| c.to_string())
                                .unwrap_or_else(|_| p.to_owned())
                        }),
                        remote_group_id: r.remote_group_id.clone(),
                    })
                    .collect(),
                members: ports
                    .iter()
                    .filter(|p| p.security_group_ids().contains(&g.id))
                    .flat_map(|p| ips_of(p).into_iter().map(|i| i.ip_address))
                    .collect(),
            })
            .collect();
        Ok(HostNetwork {
            networks: nets,
            ports: port_specs,
            groups: group_specs,
            routers,
            balancers: Vec::new(),
        })
    }

    /// The instance port holding `ip` on `network_id`, with its floating
    /// address: (device id, floating IP).
    pub async fn port_at(
        &self,
        network_id: &str,
        ip: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT p.device_id, p.id FROM ports p JOIN ip_allocations a ON a.port_id = p.id \
             WHERE a.network_id = $1 AND a.ip_address = $2 AND p.device_owner LIKE 'compute:%'",
        )
        .bind(network_id)
        .bind(ip)
        .fetch_optional(self.pool())
        .await?;
        let Some((device, port)) = row else {
            return Ok(None);
        };
        let fip: Option<(String,)> =
            sqlx::query_as("SELECT floating_ip_address FROM floatingips WHERE port_id = $1 AND fixed_ip_address = $2")
                .bind(&port)
                .bind(ip)
                .fetch_optional(self.pool())
                .await?;
        Ok(Some((device, fip.map(|f| f.0))))
    }
}
