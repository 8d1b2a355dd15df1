//! IP address management for IPv4 subnets, as Neutron does it: CIDRs are
//! normalised (`172.16.7.0/20` → `172.16.0.0/20`), the gateway defaults to
//! the first address, allocation pools default to everything but the
//! network, broadcast and gateway addresses and must lie inside the CIDR,
//! subnets of one network may not overlap, and addresses are handed out
//! lowest first. Pure functions, no I/O.

use std::net::Ipv4Addr;

/// An IPv4 network in CIDR form, normalised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("Invalid input for cidr. Reason: '{0}' is not a valid IP subnet.")]
    BadCidr(String),
    #[error("Invalid input for {field}. Reason: '{value}' is not a valid IP address.")]
    BadAddress { field: &'static str, value: String },
    #[error("Gateway ip {gateway} conflicts with allocation pool {start}-{end}.")]
    GatewayInPool {
        gateway: Ipv4Addr,
        start: Ipv4Addr,
        end: Ipv4Addr,
    },
    #[error("Gateway IP {gateway} is not in subnet {cidr}.")]
    GatewayOutside { gateway: Ipv4Addr, cidr: String },
    #[error("The allocation pool {start}-{end} spans beyond the subnet cidr {cidr}.")]
    PoolOutside {
        start: Ipv4Addr,
        end: Ipv4Addr,
        cidr: String,
    },
    #[error("Invalid allocation pool {start}-{end}: the start is after the end.")]
    PoolReversed { start: Ipv4Addr, end: Ipv4Addr },
    #[error("Found overlapping allocation pools: {0} and {1}.")]
    PoolsOverlap(String, String),
    #[error("Invalid input for operation: Requested subnet with cidr: {new} for network: {network} overlaps with another subnet.")]
    SubnetOverlap { new: String, network: String },
    #[error("No more IP addresses available on network {0}.")]
    Exhausted(String),
}

impl Cidr {
    /// Parses `a.b.c.d/n` (or a bare address as /32) and normalises it.
    pub fn parse(s: &str) -> Result<Cidr, IpamError> {
        let bad = || IpamError::BadCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
            None => (s.trim(), 32),
        };
        if prefix > 32 {
            return Err(bad());
        }
        let ip: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        Ok(Cidr {
            network: Ipv4Addr::from(u32::from(ip) & mask(prefix)),
            prefix,
        })
    }

    pub fn first(&self) -> u32 {
        u32::from(self.network)
    }

    pub fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) & mask(self.prefix)) == self.first()
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The default gateway: the first host address.
    pub fn default_gateway(&self) -> Option<Ipv4Addr> {
        (self.prefix < 31).then(|| Ipv4Addr::from(self.first() + 1))
    }

    /// Netmask in dotted form (for DHCP).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(mask(self.prefix))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// An inclusive range of addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl Pool {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.start)..=u32::from(self.end)).contains(&u32::from(ip))
    }
}

pub fn parse_ip(field: &'static str, s: &str) -> Result<Ipv4Addr, IpamError> {
    s.trim().parse().map_err(|_| IpamError::BadAddress {
        field,
        value: s.to_owned(),
    })
}

/// Checks a subnet's gateway and pools, filling in Neutron's defaults.
/// `gateway`: None = default, Some(None) = no gateway.
pub fn plan_subnet(
    cidr: &Cidr,
    gateway: Option<Option<Ipv4Addr>>,
    pools: Option<Vec<Pool>>,
) -> Result<(Option<Ipv4Addr>, Vec<Pool>), IpamError> {
    let gateway = match gateway {
        None => cidr.default_gateway(),
        Some(g) => g,
    };
    if let Some(g) = gateway {
        if !cidr.contains(g) {
            return Err(IpamError::GatewayOutside {
                gateway: g,
                cidr: cidr.to_string(),
            });
        }
    }
    // Usable addresses exclude the network and broadcast addresses.
    let (lo, hi) = if cidr.prefix >= 31 {
        (cidr.first(), cidr.last())
    } else {
        (cidr.first() + 1, cidr.last() - 1)
    };
    let pools = match pools {
        Some(p) => p,
        None => {
            // Everything usable but the gateway.
            let mut v = Vec::new();
            match gateway.map(u32::from) {
                Some(g) if (lo..=hi).contains(&g) => {
                    if g > lo {
                        v.push(Pool {
                            start: Ipv4Addr::from(lo),
                            end: Ipv4Addr::from(g - 1),
                        });
                    }
                    if g < hi {
                        v.push(Pool {
                            start: Ipv4Addr::from(g + 1),
                            end: Ipv4Addr::from(hi),
                        });
                    }
                }
                _ => v.push(Pool {
                    start: Ipv4Addr::from(lo),
                    end: Ipv4Addr::from(hi),
                }),
            }
            v
        }
    };
    for p in &pools {
        if u32::from(p.start) > u32::from(p.end) {
            return Err(IpamError::PoolReversed {
                start: p.start,
                end: p.end,
            });
        }
        if !cidr.contains(p.start) || !cidr.contains(p.end) {
            return Err(IpamError::PoolOutside {
                start: p.start,
                end: p.end,
                cidr: cidr.to_string(),
            });
        }
        if let Some(g) = gateway {
            if p.contains(g) {
                return Err(IpamError::GatewayInPool {
                    gateway: g,
                    start: p.start,
                    end: p.end,
                });
            }
        }
    }
    for (i, a) in pools.iter().enumerate() {
        for b in &pools[i + 1..] {
            if u32::from(a.start) <= u32::from(b.end) && u32::from(b.start) <= u32::from(a.end) {
                return Err(IpamError::PoolsOverlap(
                    format!("{}-{}", a.start, a.end),
                    format!("{}-{}", b.start, b.end),
                ));
            }
        }
    }
    Ok((gateway, pools))
}

/// Refuses a CIDR overlapping one already on the network.
pub fn check_overlap(new: &Cidr, existing: &[Cidr], network: &str) -> Result<(), IpamError> {
    if existing.iter().any(|c| c.overlaps(new)) {
        return Err(IpamError::SubnetOverlap {
            new: new.to_string(),
            network: network.to_owned(),
        });
    }
    Ok(())
}

/// The lowest free address of the pools, given those in use.
pub fn next_free(pools: &[Pool], used: &[Ipv4Addr], network: &str) -> Result<Ipv4Addr, IpamError> {
    let mut used: Vec<u32> = used.iter().map(|ip| u32::from(*ip)).collect();
    used.sort_unstable();
    for p in pools {
        let mut candidate = u32::from(p.start);
        let end = u32::from(p.end);
        let start = candidate;
        // `used` is sorted: walk it past every address taken in a row.
        for &u in used.iter().filter(|u| **u >= start && **u <= end) {
            if u == candidate {
                candidate += 1;
            } else if u > candidate {
                break;
            }
        }
        if candidate <= end {
            return Ok(Ipv4Addr::from(candidate));
        }
    }
    Err(IpamError::Exhausted(network.to_owned()))
}

/// A MAC address with OpenStack's base `fa:16:3e`.
pub fn random_mac() -> String {
    let b: [u8; 3] = rand::random();
    format!("fa:16:3e:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_normalise_like_neutron() {
        let cases = [
            ("172.16.7.0/20", Some("172.16.0.0/20")),
            ("192.169.0.0/24", Some("192.169.0.0/24")),
            ("10.0.0.5/8", Some("10.0.0.0/8")),
            ("10.1.2.3", Some("10.1.2.3/32")),
            ("10.0.0.0/33", None),
            ("not a cidr", None),
            ("300.1.1.1/24", None),
            ("10.0.0.0/x", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                Cidr::parse(input).ok().map(|c| c.to_string()).as_deref(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn the_seeds_subnets() {
        // ext_subnet: --gateway 172.16.0.1 --subnet-range 172.16.7.0/20 --allocation-pool start=172.16.7.0,end=172.16.8.255
        let ext = Cidr::parse("172.16.7.0/20").unwrap();
        let (gw, pools) = plan_subnet(
            &ext,
            Some(Some(ip("172.16.0.1"))),
            Some(vec![Pool {
                start: ip("172.16.7.0"),
                end: ip("172.16.8.255"),
            }]),
        )
        .unwrap();
        assert_eq!(gw, Some(ip("172.16.0.1")));
        assert_eq!(pools.len(), 1);
        // user1_subnet: 192.169.0.0/24, pool .2–.254, default gateway .1
        let user = Cidr::parse("192.169.0.0/24").unwrap();
        let (gw, pools) = plan_subnet(
            &user,
            None,
            Some(vec![Pool {
                start: ip("192.169.0.2"),
                end: ip("192.169.0.254"),
            }]),
        )
        .unwrap();
        assert_eq!(gw, Some(ip("192.169.0.1")));
        assert_eq!(next_free(&pools, &[], "n").unwrap(), ip("192.169.0.2"));
        assert_eq!(
            next_free(&pools, &[ip("192.169.0.2"), ip("192.169.0.3")], "n").unwrap(),
            ip("192.169.0.4")
        );
    }

    #[test]
    fn default_pools_skip_network_broadcast_and_gateway() {
        let c = Cidr::parse("10.0.0.0/29").unwrap();
        let (gw, pools) = plan_subnet(&c, None, None).unwrap();
        assert_eq!(gw, Some(ip("10.0.0.1")));
        assert_eq!(
            pools,
            vec![Pool {
                start: ip("10.0.0.2"),
                end: ip("10.0.0.6")
            }]
        );
        let (_, pools) = plan_subnet(&c, Some(Some(ip("10.0.0.4"))), None).unwrap();
        assert_eq!(pools.len(), 2);
        let (gw, pools) = plan_subnet(&c, Some(None), None).unwrap();
        assert_eq!(
            (gw, pools[0].start, pools[0].end),
            (None, ip("10.0.0.1"), ip("10.0.0.6"))
        );
    }

    #[test]
    fn bad_plans_are_refused() {
        let c = Cidr::parse("192.168.0.0/24").unwrap();
        let pool = |a: &str, b: &str| Pool {
            start: ip(a),
            end: ip(b),
        };
        assert!(matches!(
            plan_subnet(&c, Some(Some(ip("10.0.0.1"))), None),
            Err(IpamError::GatewayOutside { .. })
        ));
        assert!(matches!(
            plan_subnet(&c, None, Some(vec![pool("192.168.0.200", "192.168.1.5")])),
            Err(IpamError::PoolOutside { .. })
        ));
        assert!(matches!(
            plan_subnet(&c, None, Some(vec![pool("192.168.0.9", "192.168.0.2")])),
            Err(IpamError::PoolReversed { .. })
        ));
        assert!(matches!(
            plan_subnet(&c, None, Some(vec![pool("192.168.0.1", "192.168.0.9")])),
            Err(IpamError::GatewayInPool { .. })
        ));
        assert!(matches!(
            plan_subnet(
                &c,
                None,
                Some(vec![
                    pool("192.168.0.2", "192.168.0.9"),
                    pool("192.168.0.5", "192.168.0.20")
                ])
            ),
            Err(IpamError::PoolsOverlap(..))
        ));
    }

    #[test]
    fn overlap_and_exhaustion() {
        let a = Cidr::parse("10.0.0.0/24").unwrap();
        let err = check_overlap(&Cidr::parse("10.0.0.128/25").unwrap(), &[a], "net1").unwrap_err();
        assert!(err.to_string().contains("overlaps with another subnet"));
        assert!(check_overlap(&Cidr::parse("10.0.1.0/24").unwrap(), &[a], "net1").is_ok());
        let pools = [Pool {
            start: ip("10.0.0.2"),
            end: ip("10.0.0.3"),
        }];
        assert!(matches!(
            next_free(&pools, &[ip("10.0.0.2"), ip("10.0.0.3")], "net1"),
            Err(IpamError::Exhausted(_))
        ));
        let mac = random_mac();
        assert!(mac.starts_with("fa:16:3e:") && mac.len() == 17);
    }
}
