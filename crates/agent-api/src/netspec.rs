//! The network half of a host's desired state: which networks, ports,
//! security groups and (on the network node) routers and DHCP the host's
//! dataplane must realise. Built by the control plane, applied by a
//! dataplane (the agent's `Dataplane` trait).

use serde::{Deserialize, Serialize};

/// Everything the dataplane of one host should look like.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostNetwork {
    pub networks: Vec<NetSpec>,
    /// Instance ports bound to this host.
    pub ports: Vec<PortSpec>,
    /// The groups those ports use.
    pub groups: Vec<GroupSpec>,
    /// Routers, on the network node.
    pub routers: Vec<RouterSpec>,
    /// Load balancers, on the network node.
    #[serde(default)]
    pub balancers: Vec<crate::balancer::BalancerSpec>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    pub id: String,
    /// flat, vlan, vxlan or local.
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<i64>,
    pub mtu: i64,
    pub subnets: Vec<SubnetSpec>,
    /// Fixed addresses DHCP hands out (network node only).
    pub dhcp_hosts: Vec<DhcpHost>,
    /// A VXLAN network's tunnel to the other hosts that have it.
    #[serde(default)]
    pub tunnel: Option<Tunnel>,
}

/// The overlay of one VXLAN network on one host, as Neutron's l2population
/// would set it: unicast MACs pinned to their host, and the hosts to copy
/// broadcasts to. Nothing is learned from floods.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tunnel {
    /// This host's underlay address, where its tunnels start.
    pub local_ip: String,
    /// The other hosts with this network (their underlay addresses): each
    /// gets a copy of broadcast and unknown-destination frames.
    pub peers: Vec<String>,
    /// (MAC, underlay address) of every port of this network on another host.
    pub macs: Vec<(String, String)>,
}

impl NetSpec {
    pub fn serves_dhcp(&self) -> bool {
        self.subnets.iter().any(|s| s.dhcp)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec {
    pub id: String,
    /// Normalised, e.g. `192.169.0.0/24`.
    pub cidr: String,
    pub gateway: Option<String>,
    pub dhcp: bool,
    pub dns: Vec<String>,
    /// (destination CIDR, next hop).
    pub host_routes: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpHost {
    pub mac: String,
    pub ip: String,
    pub hostname: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub id: String,
    pub network_id: String,
    pub mac: String,
    pub ips: Vec<String>,
    pub port_security: bool,
    pub groups: Vec<String>,
    /// Allowed address pairs: (address or CIDR, MAC).
    pub allowed: Vec<(String, String)>,
    pub device_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    pub id: String,
    pub rules: Vec<RuleSpec>,
    /// Addresses of every port in the group, for rules naming it as remote.
    pub members: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// IP protocol number; `None` for any.
    pub protocol: Option<u8>,
    pub port_min: Option<i64>,
    pub port_max: Option<i64>,
    pub remote_ip_prefix: Option<String>,
    pub remote_group_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterLeg {
    pub port_id: String,
    pub network_id: String,
    pub mac: String,
    /// Address with prefix, e.g. `192.169.0.1/24`.
    pub address: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterSpec {
    pub id: String,
    pub interfaces: Vec<RouterLeg>,
    pub gateway: Option<RouterLeg>,
    /// The external subnet's gateway: the router's default route.
    pub gateway_nexthop: Option<String>,
    pub snat: bool,
    /// Static routes: (destination CIDR, next hop).
    pub routes: Vec<(String, String)>,
    /// (floating address, fixed address).
    pub floating: Vec<(String, String)>,
}

/// Interface names, from resource ids (Linux allows 15 characters).
pub mod names {
    fn short(id: &str) -> &str {
        &id[..id.len().min(11)]
    }

    /// The host side of any port: a VM's tap, or the bridge end of a router leg.
    pub fn tap(port_id: &str) -> String {
        format!("tap{}", short(port_id))
    }

    /// A tenant network's bridge.
    pub fn bridge(network_id: &str) -> String {
        format!("brq{}", short(network_id))
    }

    /// A load balancer's namespace, where its HAProxy runs.
    pub fn balancer_ns(balancer_id: &str) -> String {
        format!("qlbaas-{balancer_id}")
    }

    /// A load balancer's VIP leg inside its namespace.
    pub fn balancer_iface(port_id: &str) -> String {
        format!("lb-{}", short(port_id))
    }

    pub fn router_ns(router_id: &str) -> String {
        format!("qrouter-{router_id}")
    }

    pub fn router_iface(port_id: &str) -> String {
        format!("qr-{}", short(port_id))
    }

    pub fn gateway_iface(port_id: &str) -> String {
        format!("qg-{}", short(port_id))
    }

    pub fn dhcp_ns(network_id: &str) -> String {
        format!("qdhcp-{network_id}")
    }

    /// The DHCP namespace's leg: host side, namespace side.
    pub fn dhcp_legs(network_id: &str) -> (String, String) {
        (
            format!("dh-{}", short(network_id)),
            format!("ns-{}", short(network_id)),
        )
    }

    /// A VXLAN network's tunnel device.
    pub fn vxlan(network_id: &str) -> String {
        format!("vx-{}", short(network_id))
    }

    /// The MAC of a network's DHCP/metadata leg: fixed, so other hosts can
    /// pin it to the network node (locally administered, Neutron's
    /// `fa:16:3e` prefix's neighbour, from the network id's first digits).
    pub fn dhcp_mac(network_id: &str) -> String {
        let hex: Vec<char> = network_id
            .chars()
            .filter(char::is_ascii_hexdigit)
            .chain(std::iter::repeat('0'))
            .take(6)
            .collect();
        format!(
            "fa:16:3f:{}{}:{}{}:{}{}",
            hex[0], hex[1], hex[2], hex[3], hex[4], hex[5]
        )
        .to_ascii_lowercase()
    }

    /// The VLAN sub-interface of a provider bridge.
    pub fn vlan(bridge: &str, vid: i64) -> String {
        let b = &bridge[..bridge.len().min(10)];
        format!("{b}.{vid}")
    }
}
