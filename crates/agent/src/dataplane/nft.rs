//! nftables rulesets, generated as text from desired state and applied in
//! one `nft -f` transaction each (the table is replaced whole, so a
//! ruleset is never half there).
//!
//! On each host, two tables:
//! - `bridge ferrostack`: per port, stateless anti-spoofing (the port's
//!   MAC, its ARP sender addresses, its IPv4 source addresses; DHCP
//!   discovery from 0.0.0.0).
//! - `inet ferrostack`: stateful security groups. Bridged IPv4 reaches the
//!   inet hooks through br_netfilter, where `iifname`/`oifname` name the
//!   bridge; a port is picked out by (bridge, address), which anti-spoofing
//!   makes trustworthy. Each bridge gets its own conntrack zone, so
//!   overlapping tenant addresses don't share connection state. A packet
//!   first passes its sender's egress chain (which returns when allowed),
//!   then its receiver's ingress chain; established flows skip both.
//!
//! In each router namespace, `ip ferrostack`: DNAT/SNAT per floating IP
//! and SNAT of the router's subnets to its gateway address.

use std::fmt::Write;

use crate::netspec::{names, GroupSpec, PortSpec, RouterSpec, RuleSpec};

/// The name of our tables.
pub const TABLE: &str = "ferrostack";

fn chain_id(port_id: &str) -> String {
    port_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(11)
        .collect()
}

fn set_name(group_id: &str) -> String {
    format!(
        "g_{}",
        group_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(20)
            .collect::<String>()
    )
}

fn elements(items: &[String]) -> String {
    items.join(", ")
}

/// The host's bridge table: anti-spoofing for every secured port.
pub fn bridge_table(ports: &[PortSpec]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "table bridge {TABLE} {{");
    let _ = writeln!(
        t,
        "  chain forward {{\n    type filter hook forward priority -10; policy accept;"
    );
    for p in ports.iter().filter(|p| p.port_security) {
        let _ = writeln!(
            t,
            "    iifname \"{}\" jump spoof_{}",
            names::tap(&p.id),
            chain_id(&p.id)
        );
    }
    let _ = writeln!(t, "  }}");
    for p in ports.iter().filter(|p| p.port_security) {
        let mut macs = vec![p.mac.clone()];
        let mut ips = p.ips.clone();
        for (ip, mac) in &p.allowed {
            if !macs.contains(mac) {
                macs.push(mac.clone());
            }
            ips.push(ip.clone());
        }
        let mut arp_ips = ips.clone();
        arp_ips.insert(0, "0.0.0.0".into());
        let _ = writeln!(t, "  chain spoof_{} {{", chain_id(&p.id));
        let _ = writeln!(t, "    ether saddr != {{ {} }} drop", elements(&macs));
        let _ = writeln!(
            t,
            "    ether type arp arp saddr ether != {{ {} }} drop",
            elements(&macs)
        );
        let _ = writeln!(
            t,
            "    ether type arp arp saddr ip != {{ {} }} drop",
            elements(&arp_ips)
        );
        let _ = writeln!(t, "    ether type arp return");
        let _ = writeln!(
            t,
            "    ether type ip ip saddr 0.0.0.0 udp sport 68 udp dport 67 return"
        );
        if ips.is_empty() {
            let _ = writeln!(t, "    drop");
        } else {
            let _ = writeln!(
                t,
                "    ether type ip ip saddr {{ {} }} return",
                elements(&ips)
            );
            let _ = writeln!(t, "    drop");
        }
        let _ = writeln!(t, "  }}");
    }
    let _ = writeln!(t, "}}");
    t
}

/// One rule's match, from the port's point of view; `None` for rules this
/// dataplane doesn't enforce (IPv6: no IPv6 leaves a port).
fn rule_match(r: &RuleSpec) -> Option<String> {
    if r.ethertype != "IPv4" {
        return None;
    }
    let mut m = Vec::new();
    let peer = if r.direction == "ingress" {
        "saddr"
    } else {
        "daddr"
    };
    if let Some(p) = &r.remote_ip_prefix {
        if p != "0.0.0.0/0" {
            m.push(format!("ip {peer} {p}"));
        }
    }
    if let Some(g) = &r.remote_group_id {
        m.push(format!("ip {peer} @{}", set_name(g)));
    }
    let range = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) if a == b => Some(a.to_string()),
        (Some(a), Some(b)) => Some(format!("{a}-{b}")),
        (Some(a), None) => Some(a.to_string()),
        _ => None,
    };
    match r.protocol {
        None => {}
        Some(p @ (6 | 17 | 33 | 132 | 136)) => {
            let name = match p {
                6 => "tcp",
                17 => "udp",
                33 => "dccp",
                132 => "sctp",
                _ => "udplite",
            };
            match range(r.port_min, r.port_max) {
                Some(ports) if p != 136 => m.push(format!("{name} dport {ports}")),
                _ => m.push(format!("meta l4proto {p}")),
            }
        }
        Some(1) => {
            m.push("meta l4proto icmp".into());
            if let Some(t) = r.port_min {
                m.push(format!("icmp type {t}"));
                if let Some(c) = r.port_max {
                    m.push(format!("icmp code {c}"));
                }
            }
        }
        Some(p) => m.push(format!("meta l4proto {p}")),
    }
    Some(m.join(" "))
}

/// The host's inet table: conntrack zones per bridge and stateful groups.
/// `bridges` maps each network id to its bridge name.
pub fn inet_table(
    ports: &[PortSpec],
    groups: &[GroupSpec],
    bridges: &[(String, String)],
) -> String {
    let bridge_of = |net: &str| {
        bridges
            .iter()
            .find(|(n, _)| n == net)
            .map(|(_, b)| b.clone())
    };
    let mut t = String::new();
    let _ = writeln!(t, "table inet {TABLE} {{");
    let used: Vec<&GroupSpec> = groups
        .iter()
        .filter(|g| {
            groups.iter().any(|h| {
                h.rules
                    .iter()
                    .any(|r| r.remote_group_id.as_deref() == Some(g.id.as_str()))
            })
        })
        .collect();
    for g in &used {
        let _ = writeln!(
            t,
            "  set {} {{\n    type ipv4_addr; flags interval;",
            set_name(&g.id)
        );
        if !g.members.is_empty() {
            let _ = writeln!(t, "    elements = {{ {} }}", elements(&g.members));
        }
        let _ = writeln!(t, "  }}");
    }
    // Zones from 1, in the order the networks are given.
    let _ = writeln!(
        t,
        "  chain zones {{\n    type filter hook prerouting priority raw; policy accept;"
    );
    for (i, (_, b)) in bridges.iter().enumerate() {
        let _ = writeln!(t, "    iifname \"{b}\" ct zone set {}", i + 1);
    }
    let _ = writeln!(t, "  }}");
    let _ = writeln!(
        t,
        "  chain forward {{\n    type filter hook forward priority 0; policy accept;"
    );
    let secured: Vec<(&PortSpec, String)> = ports
        .iter()
        .filter(|p| p.port_security)
        .filter_map(|p| bridge_of(&p.network_id).map(|b| (p, b)))
        .collect();
    if !secured.is_empty() {
        let _ = writeln!(t, "    ct state established,related accept");
    }
    for (p, b) in &secured {
        for ip in &p.ips {
            let _ = writeln!(
                t,
                "    iifname \"{b}\" ip saddr {ip} jump egress_{}",
                chain_id(&p.id)
            );
        }
    }
    for (p, b) in &secured {
        for ip in &p.ips {
            let _ = writeln!(
                t,
                "    oifname \"{b}\" ip daddr {ip} jump ingress_{}",
                chain_id(&p.id)
            );
        }
    }
    let _ = writeln!(t, "  }}");
    for (p, _) in &secured {
        let rules: Vec<&RuleSpec> = groups
            .iter()
            .filter(|g| p.groups.contains(&g.id))
            .flat_map(|g| g.rules.iter())
            .collect();
        let id = chain_id(&p.id);
        let _ = writeln!(t, "  chain egress_{id} {{\n    ct state invalid drop");
        for r in rules.iter().filter(|r| r.direction == "egress") {
            if let Some(m) = rule_match(r) {
                let _ = writeln!(t, "    {}", verdict(&m, "return"));
            }
        }
        let _ = writeln!(t, "    drop\n  }}");
        let _ = writeln!(t, "  chain ingress_{id} {{\n    ct state invalid drop\n    udp sport 67 udp dport 68 accept");
        for r in rules.iter().filter(|r| r.direction == "ingress") {
            if let Some(m) = rule_match(r) {
                let _ = writeln!(t, "    {}", verdict(&m, "accept"));
            }
        }
        let _ = writeln!(t, "    drop\n  }}");
    }
    let _ = writeln!(t, "}}");
    t
}

/// A rule line; an empty match (a rule allowing everything) is the bare verdict.
fn verdict(m: &str, v: &str) -> String {
    if m.is_empty() {
        v.to_owned()
    } else {
        format!("{m} {v}")
    }
}

/// A router namespace's NAT table.
pub fn router_table(r: &RouterSpec) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "table ip {TABLE} {{");
    let _ = writeln!(
        t,
        "  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;"
    );
    for (floating, fixed) in &r.floating {
        let _ = writeln!(t, "    ip daddr {floating} dnat to {fixed}");
    }
    let _ = writeln!(t, "  }}");
    let _ = writeln!(
        t,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;"
    );
    if let Some(gw) = &r.gateway {
        let qg = names::gateway_iface(&gw.port_id);
        for (floating, fixed) in &r.floating {
            let _ = writeln!(
                t,
                "    oifname \"{qg}\" ip saddr {fixed} snat to {floating}"
            );
        }
        if r.snat {
            let gw_ip = gw.address.split('/').next().unwrap_or_default();
            for leg in &r.interfaces {
                if let Some(net) = cidr_of(&leg.address) {
                    let _ = writeln!(t, "    oifname \"{qg}\" ip saddr {net} snat to {gw_ip}");
                }
            }
        }
    }
    let _ = writeln!(t, "  }}\n}}");
    t
}

/// `192.169.0.1/24` → `192.169.0.0/24`.
pub fn cidr_of(address: &str) -> Option<String> {
    let (ip, prefix) = address.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    Some(format!(
        "{}/{prefix}",
        std::net::Ipv4Addr::from(u32::from(ip) & mask)
    ))
}

/// The whole-table replacement script: create (so delete can't fail),
/// delete, then the new content, all in one transaction.
pub fn replace(family: &str, body: &str) -> String {
    format!("table {family} {TABLE}\ndelete table {family} {TABLE}\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netspec::RouterLeg;

    fn port() -> PortSpec {
        PortSpec {
            id: "5a4eae42-7775-4506-9d13-82afbcb7fd4b".into(),
            network_id: "n1".into(),
            mac: "fa:16:3e:cd:9f:fa".into(),
            ips: vec!["192.169.0.2".into()],
            port_security: true,
            groups: vec!["sg1".into()],
            allowed: vec![],
            device_id: "vm".into(),
        }
    }

    fn rule(
        direction: &str,
        protocol: Option<u8>,
        ports: Option<(i64, i64)>,
        remote: Option<&str>,
    ) -> RuleSpec {
        RuleSpec {
            direction: direction.into(),
            ethertype: "IPv4".into(),
            protocol,
            port_min: ports.map(|p| p.0),
            port_max: ports.map(|p| p.1),
            remote_ip_prefix: remote.map(str::to_owned),
            remote_group_id: None,
        }
    }

    #[test]
    fn anti_spoofing_names_the_port_mac_and_addresses() {
        let t = bridge_table(&[port()]);
        assert!(
            t.contains("iifname \"tap5a4eae42-77\" jump spoof_5a4eae42777"),
            "{t}"
        );
        assert!(
            t.contains("ether saddr != { fa:16:3e:cd:9f:fa } drop"),
            "{t}"
        );
        assert!(
            t.contains("arp saddr ip != { 0.0.0.0, 192.169.0.2 } drop"),
            "{t}"
        );
        assert!(t.contains("ip saddr { 192.169.0.2 } return"), "{t}");
        let mut open = port();
        open.port_security = false;
        assert!(!bridge_table(&[open]).contains("spoof_"));
    }

    #[test]
    fn groups_become_stateful_chains() {
        let g = GroupSpec {
            id: "sg1".into(),
            rules: vec![
                rule("egress", None, None, None),
                rule("ingress", Some(6), Some((22, 22)), Some("0.0.0.0/0")),
                rule("ingress", Some(1), None, None),
                rule("ingress", Some(17), Some((1000, 2000)), Some("10.0.0.0/8")),
                RuleSpec {
                    remote_group_id: Some("sg1".into()),
                    ..rule("ingress", None, None, None)
                },
            ],
            members: vec!["192.169.0.2".into(), "192.169.0.3".into()],
        };
        let t = inet_table(&[port()], &[g], &[("n1".into(), "brqn1".into())]);
        for want in [
            "iifname \"brqn1\" ct zone set 1",
            "ct state established,related accept",
            "iifname \"brqn1\" ip saddr 192.169.0.2 jump egress_5a4eae42777",
            "oifname \"brqn1\" ip daddr 192.169.0.2 jump ingress_5a4eae42777",
            "    return\n",
            "tcp dport 22 accept",
            "meta l4proto icmp accept",
            "ip saddr 10.0.0.0/8 udp dport 1000-2000 accept",
            "ip saddr @g_sg1 accept",
            "elements = { 192.169.0.2, 192.169.0.3 }",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        // Without the SSH rule, nothing lets TCP in.
        let g = GroupSpec {
            id: "sg1".into(),
            rules: vec![rule("egress", None, None, None)],
            members: vec![],
        };
        let t = inet_table(&[port()], &[g], &[("n1".into(), "brqn1".into())]);
        assert!(!t.contains("tcp dport"), "{t}");
        assert!(
            t.contains("udp sport 67 udp dport 68 accept\n    drop"),
            "{t}"
        );
    }

    #[test]
    fn routers_nat_floating_ips_and_subnets() {
        let r = RouterSpec {
            id: "r1".into(),
            interfaces: vec![RouterLeg {
                port_id: "p1".into(),
                network_id: "n1".into(),
                mac: "m".into(),
                address: "192.169.0.1/24".into(),
            }],
            gateway: Some(RouterLeg {
                port_id: "gw".into(),
                network_id: "ext".into(),
                mac: "m2".into(),
                address: "172.16.7.0/20".into(),
            }),
            gateway_nexthop: Some("172.16.0.1".into()),
            snat: true,
            routes: vec![],
            floating: vec![("172.16.7.1".into(), "192.169.0.2".into())],
        };
        let t = router_table(&r);
        assert!(t.contains("ip daddr 172.16.7.1 dnat to 192.169.0.2"), "{t}");
        assert!(
            t.contains("oifname \"qg-gw\" ip saddr 192.169.0.2 snat to 172.16.7.1"),
            "{t}"
        );
        assert!(
            t.contains("oifname \"qg-gw\" ip saddr 192.169.0.0/24 snat to 172.16.7.0"),
            "{t}"
        );
        let fip = t.find("snat to 172.16.7.1").unwrap();
        let subnet = t.find("snat to 172.16.7.0").unwrap();
        assert!(
            fip < subnet,
            "the floating IP's SNAT must come before the router's"
        );
    }
}
