//! dnsmasq for one network, in the network's DHCP namespace: fixed
//! addresses only (one `dhcp-host` per port), the subnet's gateway and host
//! routes, the metadata route (169.254.169.254 on-link, where this same
//! namespace answers), DNS servers, the MTU, and names of instances
//! resolvable in the network (`<hostname>.openstacklocal`).
//!
//! The namespace holds no address of the subnet (so DHCP takes no port of
//! it): dnsmasq serves the subnet through `--shared-network` from its
//! link-local address.

use std::fmt::Write;

use crate::netspec::{NetSpec, SubnetSpec};

pub const METADATA_IP: &str = "169.254.169.254";
pub const DOMAIN: &str = "openstacklocal";

fn netmask(prefix: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    })
}

fn tag(s: &SubnetSpec) -> String {
    format!(
        "s{}",
        s.id.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect::<String>()
    )
}

/// dnsmasq's arguments. `files` is the directory of its hosts and pid
/// files; `upstream` the DNS servers names outside the cloud resolve through.
pub fn args(
    net: &NetSpec,
    iface: &str,
    files: &std::path::Path,
    upstream: &[String],
) -> Vec<String> {
    let f = |n: &str| files.join(n).display().to_string();
    let mut a = vec![
        "--no-hosts".to_owned(),
        "--no-resolv".into(),
        "--strict-order".into(),
        "--bind-interfaces".into(),
        format!("--interface={iface}"),
        "--except-interface=lo".into(),
        format!("--pid-file={}", f("pid")),
        format!("--dhcp-hostsfile={}", f("hosts")),
        format!("--addn-hosts={}", f("names")),
        format!("--domain={DOMAIN}"),
        // Names of the cloud's domain are answered here, never forwarded.
        format!("--local=/{DOMAIN}/"),
        "--dhcp-authoritative".into(),
        "--leasefile-ro".into(),
        format!("--log-facility={}", f("log")),
        format!("--dhcp-option=option:mtu,{}", net.mtu),
    ];
    for s in upstream {
        a.push(format!("--server={s}"));
    }
    for s in net.subnets.iter().filter(|s| s.dhcp) {
        let Some((network, prefix)) = s.cidr.split_once('/') else {
            continue;
        };
        let prefix: u32 = prefix.parse().unwrap_or(24);
        let t = tag(s);
        a.push(format!(
            "--dhcp-range=set:{t},{network},static,{},86400s",
            netmask(prefix)
        ));
        a.push(format!("--shared-network={iface},{network}"));
        // Option 121 replaces option 3 for clients that know it, so the
        // default route goes in it too.
        let mut routes = vec![format!("{METADATA_IP}/32,0.0.0.0")];
        for (dest, hop) in &s.host_routes {
            routes.push(format!("{dest},{hop}"));
        }
        if let Some(gw) = &s.gateway {
            routes.push(format!("0.0.0.0/0,{gw}"));
            a.push(format!("--dhcp-option=tag:{t},option:router,{gw}"));
        }
        a.push(format!(
            "--dhcp-option=tag:{t},option:classless-static-route,{}",
            routes.join(",")
        ));
        let dns = if s.dns.is_empty() {
            METADATA_IP.to_owned()
        } else {
            s.dns.join(",")
        };
        a.push(format!("--dhcp-option=tag:{t},option:dns-server,{dns}"));
    }
    a
}

/// `--dhcp-hostsfile` content: `mac,ip,hostname` per port.
pub fn hosts(net: &NetSpec) -> String {
    let mut t = String::new();
    for h in &net.dhcp_hosts {
        let _ = writeln!(t, "{},{},{}", h.mac, h.ip, h.hostname);
    }
    t
}

/// `--addn-hosts` content, so names resolve even before a lease.
pub fn names(net: &NetSpec) -> String {
    let mut t = String::new();
    for h in &net.dhcp_hosts {
        let _ = writeln!(t, "{} {}.{DOMAIN} {}", h.ip, h.hostname, h.hostname);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netspec::DhcpHost;

    #[test]
    fn one_subnet_with_gateway_and_metadata_route() {
        let net = NetSpec {
            id: "n1".into(),
            network_type: "vxlan".into(),
            physical_network: None,
            segmentation_id: Some(1),
            mtu: 1450,
            subnets: vec![SubnetSpec {
                id: "sub-1".into(),
                cidr: "192.169.0.0/24".into(),
                gateway: Some("192.169.0.1".into()),
                dhcp: true,
                dns: vec![],
                host_routes: vec![],
            }],
            dhcp_hosts: vec![DhcpHost {
                mac: "fa:16:3e:00:00:02".into(),
                ip: "192.169.0.2".into(),
                hostname: "client".into(),
            }],
            tunnel: None,
        };
        let a = args(
            &net,
            "ns-n1",
            std::path::Path::new("/x"),
            &["192.0.2.53".into()],
        )
        .join(" ");
        for want in [
            "--dhcp-range=set:ssub1,192.169.0.0,static,255.255.255.0,86400s",
            "--shared-network=ns-n1,192.169.0.0",
            "classless-static-route,169.254.169.254/32,0.0.0.0,0.0.0.0/0,192.169.0.1",
            "option:dns-server,169.254.169.254",
            "--server=192.0.2.53",
            "option:mtu,1450",
        ] {
            assert!(a.contains(want), "missing {want} in {a}");
        }
        assert_eq!(hosts(&net), "fa:16:3e:00:00:02,192.169.0.2,client\n");
        assert_eq!(names(&net), "192.169.0.2 client.openstacklocal client\n");
    }
}
