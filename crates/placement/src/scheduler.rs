//! The scheduler: filters, then a weigher, over a snapshot of host states.
//! No I/O and no randomness: the same input gives the same answer.
//!
//! Filters: enabled, up, not already tried, availability zone, image
//! `hypervisor_type`, server group (affinity, anti-affinity), and free
//! VCPU / RAM / disk after allocation ratios.
//! Weighers: a soft server-group policy first (soft-affinity: most of the
//! group's servers; soft-anti-affinity: fewest), then most free RAM
//! (spread), ties broken by host name.

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct HostState {
    pub name: String,
    pub availability_zone: String,
    pub enabled: bool,
    /// The host's agent refused the controller's desired state as older
    /// than what it applied (a controller restored from a backup): it takes
    /// no new servers until `ferrostack host resync`.
    pub out_of_sync: bool,
    pub up: bool,
    pub hypervisor_type: String,
    pub vcpus: i64,
    pub vcpus_used: i64,
    pub memory_mb: i64,
    pub memory_used_mb: i64,
    pub reserved_memory_mb: i64,
    pub disk_gb: i64,
    pub disk_used_gb: i64,
    /// Allocation ratios, in thousandths (4000 = 4.0).
    pub cpu_ratio_milli: i64,
    pub ram_ratio_milli: i64,
    pub disk_ratio_milli: i64,
}

impl HostState {
    pub fn free_vcpus(&self) -> i64 {
        self.vcpus * self.cpu_ratio_milli / 1000 - self.vcpus_used
    }
    pub fn free_memory_mb(&self) -> i64 {
        (self.memory_mb - self.reserved_memory_mb) * self.ram_ratio_milli / 1000
            - self.memory_used_mb
    }
    pub fn free_disk_gb(&self) -> i64 {
        self.disk_gb * self.disk_ratio_milli / 1000 - self.disk_used_gb
    }
}

#[derive(Clone, Debug, Default)]
pub struct Request {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub availability_zone: Option<String>,
    /// The image's `hypervisor_type` property, if it has one.
    pub hypervisor_type: Option<String>,
    /// Hosts a previous attempt already failed on.
    pub tried: Vec<String>,
    /// The server group the server belongs to, if any.
    pub group: Option<GroupPlacement>,
}

/// Nova's server group policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    Affinity,
    AntiAffinity,
    SoftAffinity,
    SoftAntiAffinity,
}

impl Affinity {
    pub fn parse(s: &str) -> Option<Affinity> {
        Some(match s {
            "affinity" => Affinity::Affinity,
            "anti-affinity" => Affinity::AntiAffinity,
            "soft-affinity" => Affinity::SoftAffinity,
            "soft-anti-affinity" => Affinity::SoftAntiAffinity,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Affinity::Affinity => "affinity",
            Affinity::AntiAffinity => "anti-affinity",
            Affinity::SoftAffinity => "soft-affinity",
            Affinity::SoftAntiAffinity => "soft-anti-affinity",
        }
    }
}

/// A server group as the scheduler sees it for one of its members.
#[derive(Clone, Debug)]
pub struct GroupPlacement {
    pub policy: Affinity,
    /// The host of each other member that has one (a host appears once per
    /// member on it).
    pub member_hosts: Vec<String>,
    /// Anti-affinity: how many of the group's servers one host may hold.
    pub max_server_per_host: i64,
}

impl GroupPlacement {
    fn members_on(&self, host: &str) -> i64 {
        self.member_hosts.iter().filter(|h| *h == host).count() as i64
    }
}

/// Why no host fits, host by host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoValidHost {
    pub reasons: BTreeMap<String, String>,
}

impl std::fmt::Display for NoValidHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "No valid host was found. ")?;
        if self.reasons.is_empty() {
            return write!(f, "There are no compute hosts.");
        }
        let parts: Vec<String> = self
            .reasons
            .iter()
            .map(|(h, r)| format!("{h}: {r}"))
            .collect();
        write!(f, "{}", parts.join("; "))
    }
}

fn reject(h: &HostState, r: &Request) -> Option<String> {
    if h.out_of_sync {
        return Some("out of sync with the controller's database (ferrostack host resync)".into());
    }
    if !h.enabled {
        return Some("compute service disabled".into());
    }
    if !h.up {
        return Some("compute service down".into());
    }
    if r.tried.contains(&h.name) {
        return Some("an earlier attempt failed here".into());
    }
    if let Some(az) = &r.availability_zone {
        if *az != h.availability_zone {
            return Some(format!(
                "in availability zone {}, not {az}",
                h.availability_zone
            ));
        }
    }
    if let Some(g) = &r.group {
        let here = g.members_on(&h.name);
        match g.policy {
            Affinity::Affinity if !g.member_hosts.is_empty() && here == 0 => {
                return Some(
                    "server group affinity: the group's servers are on another host".into(),
                );
            }
            Affinity::AntiAffinity if here >= g.max_server_per_host => {
                return Some(format!(
                    "server group anti-affinity: {here} of the group's servers already here"
                ));
            }
            _ => {}
        }
    }
    if let Some(t) = &r.hypervisor_type {
        if !t.eq_ignore_ascii_case(&h.hypervisor_type) {
            return Some(format!(
                "hypervisor type {}, image needs {t}",
                h.hypervisor_type
            ));
        }
    }
    if h.free_vcpus() < r.vcpus {
        return Some(format!(
            "{} VCPU free, {} requested",
            h.free_vcpus().max(0),
            r.vcpus
        ));
    }
    if h.free_memory_mb() < r.memory_mb {
        return Some(format!(
            "{} MB RAM free, {} MB requested",
            h.free_memory_mb().max(0),
            r.memory_mb
        ));
    }
    if h.free_disk_gb() < r.disk_gb {
        return Some(format!(
            "{} GB disk free, {} GB requested",
            h.free_disk_gb().max(0),
            r.disk_gb
        ));
    }
    None
}

/// Hosts that fit, best first.
pub fn schedule<'a>(
    hosts: &'a [HostState],
    r: &Request,
) -> Result<Vec<&'a HostState>, NoValidHost> {
    let mut reasons = BTreeMap::new();
    let mut fit: Vec<&HostState> = Vec::new();
    for h in hosts {
        match reject(h, r) {
            Some(why) => {
                reasons.insert(h.name.clone(), why);
            }
            None => fit.push(h),
        }
    }
    if fit.is_empty() {
        return Err(NoValidHost { reasons });
    }
    // Soft policies rank before RAM: more (or fewer) of the group's servers.
    let soft = |h: &HostState| match &r.group {
        Some(g) if g.policy == Affinity::SoftAffinity => -g.members_on(&h.name),
        Some(g) if g.policy == Affinity::SoftAntiAffinity => g.members_on(&h.name),
        _ => 0,
    };
    fit.sort_by(|a, b| {
        soft(a)
            .cmp(&soft(b))
            .then_with(|| b.free_memory_mb().cmp(&a.free_memory_mb()))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, mem: i64, used: i64) -> HostState {
        HostState {
            name: name.into(),
            availability_zone: "nova".into(),
            enabled: true,
            up: true,
            hypervisor_type: "QEMU".into(),
            vcpus: 2,
            memory_mb: mem,
            memory_used_mb: used,
            disk_gb: 100,
            cpu_ratio_milli: 4000,
            ram_ratio_milli: 1000,
            disk_ratio_milli: 1000,
            ..Default::default()
        }
    }

    fn req(mem: i64) -> Request {
        Request {
            vcpus: 1,
            memory_mb: mem,
            disk_gb: 20,
            ..Default::default()
        }
    }

    #[test]
    fn table() {
        let mut disabled = host("d", 8192, 0);
        disabled.enabled = false;
        let mut down = host("x", 8192, 0);
        down.up = false;
        let mut behind = host("y", 8192, 0);
        behind.out_of_sync = true;
        let mut other_az = host("z", 8192, 0);
        other_az.availability_zone = "az2".into();
        let hosts = vec![
            host("a", 4096, 0),
            host("b", 8192, 1024),
            host("c", 8192, 0),
            disabled,
            down,
            behind,
            other_az,
        ];
        let names = |r: Result<Vec<&HostState>, NoValidHost>| {
            r.map(|v| v.iter().map(|h| h.name.clone()).collect::<Vec<_>>())
        };
        let cases: Vec<(Request, Result<Vec<&str>, ()>)> = vec![
            (req(1024), Ok(vec!["c", "z", "b", "a"])),
            (req(5000), Ok(vec!["c", "z", "b"])),
            (req(7500), Ok(vec!["c", "z"])),
            (req(9000), Err(())),
            (
                Request {
                    tried: vec!["c".into(), "z".into()],
                    ..req(1024)
                },
                Ok(vec!["b", "a"]),
            ),
            (
                Request {
                    availability_zone: Some("nova".into()),
                    ..req(1024)
                },
                Ok(vec!["c", "b", "a"]),
            ),
            (
                Request {
                    availability_zone: Some("az2".into()),
                    ..req(1024)
                },
                Ok(vec!["z"]),
            ),
            (
                Request {
                    hypervisor_type: Some("xen".into()),
                    ..req(1024)
                },
                Err(()),
            ),
            (
                Request {
                    hypervisor_type: Some("qemu".into()),
                    ..req(1024)
                },
                Ok(vec!["c", "z", "b", "a"]),
            ),
            (
                Request {
                    vcpus: 9,
                    ..req(1024)
                },
                Err(()),
            ),
            (
                Request {
                    disk_gb: 101,
                    ..req(1024)
                },
                Err(()),
            ),
        ];
        for (i, (r, want)) in cases.into_iter().enumerate() {
            let got = names(schedule(&hosts, &r));
            match want {
                Ok(w) => assert_eq!(got.unwrap(), w, "case {i}"),
                Err(()) => assert!(got.is_err(), "case {i}: {got:?}"),
            }
        }
        // Each host left out says why.
        let Err(no) = schedule(&hosts, &req(9000)) else {
            panic!("nothing fits 9000 MB")
        };
        assert_eq!(no.reasons["d"], "compute service disabled");
        assert_eq!(no.reasons["x"], "compute service down");
        assert_eq!(
            no.reasons["y"],
            "out of sync with the controller's database (ferrostack host resync)"
        );
    }

    #[test]
    fn server_group_policies() {
        let hosts = vec![
            host("a", 4096, 0),
            host("b", 8192, 0),
            host("c", 8192, 1024),
        ];
        let with = |policy, members: &[&str], max| Request {
            group: Some(GroupPlacement {
                policy,
                member_hosts: members.iter().map(|m| m.to_string()).collect(),
                max_server_per_host: max,
            }),
            ..req(1024)
        };
        let names = |r: &Request| {
            schedule(&hosts, r).map(|v| v.iter().map(|h| h.name.clone()).collect::<Vec<_>>())
        };
        let cases: Vec<(Request, Option<Vec<&str>>)> = vec![
            // The first member of any group goes where RAM says.
            (with(Affinity::Affinity, &[], 1), Some(vec!["b", "c", "a"])),
            (
                with(Affinity::AntiAffinity, &[], 1),
                Some(vec!["b", "c", "a"]),
            ),
            (with(Affinity::Affinity, &["a"], 1), Some(vec!["a"])),
            (
                with(Affinity::AntiAffinity, &["b"], 1),
                Some(vec!["c", "a"]),
            ),
            (with(Affinity::AntiAffinity, &["a", "b", "c"], 1), None),
            // max_server_per_host 2: one member on b still leaves room there.
            (
                with(Affinity::AntiAffinity, &["b", "c", "c"], 2),
                Some(vec!["b", "a"]),
            ),
            (
                with(Affinity::SoftAffinity, &["a", "a", "c"], 1),
                Some(vec!["a", "c", "b"]),
            ),
            (
                with(Affinity::SoftAntiAffinity, &["b"], 1),
                Some(vec!["c", "a", "b"]),
            ),
        ];
        for (i, (r, want)) in cases.iter().enumerate() {
            match want {
                Some(w) => assert_eq!(names(r).unwrap(), *w, "case {i}"),
                None => {
                    let e = schedule(&hosts, r).unwrap_err();
                    assert!(e.to_string().contains("anti-affinity"), "case {i}: {e}");
                }
            }
        }
    }

    #[test]
    fn no_valid_host_names_the_reason() {
        let e = schedule(&[host("a", 2048, 0)], &req(4096)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "No valid host was found. a: 2048 MB RAM free, 4096 MB requested"
        );
        let e = schedule(&[], &req(1)).unwrap_err();
        assert!(e.to_string().contains("no compute hosts"));
    }

    #[test]
    fn deterministic_over_a_thousand_hosts() {
        let hosts: Vec<HostState> = (0..1000)
            .map(|i| host(&format!("h{i:04}"), 8192, (i * 7) % 4096))
            .collect();
        let a = schedule(&hosts, &req(512)).unwrap()[0].name.clone();
        let b = schedule(&hosts, &req(512)).unwrap()[0].name.clone();
        assert_eq!(a, b);
        assert_eq!(a, "h0000");
    }
}
