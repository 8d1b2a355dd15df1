//! The Linux dataplane: no OVS, only what the kernel has.
//!
//! ```text
//!  VM ── tapP ──┐                       ┌── qr-L (qrouter-R) ── qg-G ── tapG ── br-ex ── host
//!  VM ── tapQ ──┤ brqN (one per network)├── tapL
//!               └── dh-N ── ns-N (qdhcp-N: dnsmasq + metadata on 169.254.169.254)
//! ```
//!
//! A flat network *is* its mapped host bridge (`physnet1:br-ex`); a VLAN
//! network is a bridge holding a VLAN sub-interface of the mapped bridge;
//! VXLAN and local networks are a bridge of their own on this host; a
//! VXLAN network's bridge also holds its tunnel device (`vx-N`), whose
//! forwarding entries the control plane computes (see [`Tunnel`]).
//! Security and NAT are nftables rulesets (see [`super::nft`]).
//!
//! Everything made here is recorded in a ledger under the state directory;
//! garbage collection removes only what the ledger names, never by pattern.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

mod balancer;

use super::{dhcp, nft, Dataplane};
use crate::balancer::{BalancerReport, BalancerSpec};
use crate::driver::{run, run_with_input, DriverError, Result};
use crate::metadata::MetadataService;
use crate::netspec::{names, HostNetwork, NetSpec, Tunnel};

/// How this host's dataplane is set up.
#[derive(Clone, Debug)]
pub struct LinuxConfig {
    pub state_dir: PathBuf,
    /// Physical network → host bridge (`physnet1` → `br-ex`).
    pub bridge_mappings: Vec<(String, String)>,
    /// DNS servers instances' lookups go to for names outside the cloud.
    pub dns_servers: Vec<String>,
}

/// What this dataplane has made, so it removes exactly that.
#[derive(Default, Serialize, Deserialize)]
struct Ledger {
    links: BTreeSet<String>,
    namespaces: BTreeSet<String>,
    tables: bool,
}

struct Inner {
    ledger: Ledger,
    last: Option<HostNetwork>,
    last_full: Option<Instant>,
    /// The load balancers last asked for, and what runs of each.
    balancer_specs: Vec<BalancerSpec>,
    balancers: HashMap<String, balancer::Running>,
}

pub struct LinuxDataplane {
    cfg: LinuxConfig,
    /// Files dnsmasq reads after dropping to `nobody`: outside the
    /// (private) state directory, under /run, one directory per cloud.
    run_dir: PathBuf,
    metadata: Arc<MetadataService>,
    inner: Mutex<Inner>,
}

/// Re-checks the whole host this often even when nothing changed.
const RESYNC: Duration = Duration::from_secs(30);

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

async fn ip(what: &'static str, args: &[&str]) -> Result<()> {
    run(what, "ip", &s(args)).await.map(|_| ())
}

/// Names of the links in a namespace (`None`: this one).
async fn links(ns: Option<&str>) -> Result<Vec<(String, Option<String>)>> {
    let mut args = Vec::new();
    if let Some(n) = ns {
        args.extend(["-n".to_owned(), n.to_owned()]);
    }
    args.extend(s(&["-j", "link", "show"]));
    let out = run("listing links", "ip", &args).await?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| {
                    Some((
                        l["ifname"].as_str()?.to_owned(),
                        l["master"].as_str().map(str::to_owned),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

async fn namespaces() -> Result<BTreeSet<String>> {
    let out = run("listing namespaces", "ip", &s(&["-j", "netns", "list"])).await?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// IPv4 addresses (with prefix) on a link in a namespace.
async fn addresses(ns: &str, dev: &str) -> Result<Vec<String>> {
    let out = run(
        "listing addresses",
        "ip",
        &s(&["-n", ns, "-j", "-4", "addr", "show", "dev", dev]),
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let mut found = Vec::new();
    for l in v.as_array().into_iter().flatten() {
        for a in l["addr_info"].as_array().into_iter().flatten() {
            if let (Some(ip), Some(p)) = (a["local"].as_str(), a["prefixlen"].as_i64()) {
                found.push(format!("{ip}/{p}"));
            }
        }
    }
    Ok(found)
}

/// Makes `dev`'s addresses exactly `want`.
async fn sync_addresses(ns: &str, dev: &str, want: &[String]) -> Result<()> {
    let have = addresses(ns, dev).await?;
    for a in have.iter().filter(|a| !want.contains(a)) {
        ip(
            "removing an address",
            &["-n", ns, "addr", "del", a, "dev", dev],
        )
        .await?;
    }
    for a in want.iter().filter(|a| !have.contains(a)) {
        ip(
            "adding an address",
            &["-n", ns, "addr", "replace", a, "dev", dev],
        )
        .await?;
    }
    Ok(())
}

/// The UDP port of VXLAN (IANA's).
const VXLAN_PORT: &str = "4789";
/// The all-zero MAC: a VXLAN forwarding entry for it is a flood target.
const FLOOD: &str = "00:00:00:00:00:00";

/// A VXLAN device's VNI and local address.
async fn vxlan_params(dev: &str) -> Result<(Option<i64>, Option<String>)> {
    let out = run(
        "reading a VXLAN device",
        "ip",
        &s(&["-d", "-j", "link", "show", "dev", dev]),
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let d = &v[0]["linkinfo"]["info_data"];
    Ok((d["id"].as_i64(), d["local"].as_str().map(str::to_owned)))
}

/// The (MAC, remote address) forwarding entries of a VXLAN device.
async fn tunnel_entries(dev: &str) -> Result<BTreeSet<(String, String)>> {
    let out = run(
        "listing forwarding entries",
        "bridge",
        &s(&["-j", "fdb", "show", "dev", dev]),
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                e["mac"].as_str()?.to_ascii_lowercase(),
                e["dst"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// What to change so a device's entries `have` become `want`: the
/// entries to add (`append` for flood targets, `replace` for a MAC, which
/// lives on one host) and those to delete.
#[allow(clippy::type_complexity)]
fn tunnel_changes(
    have: &BTreeSet<(String, String)>,
    want: &BTreeSet<(String, String)>,
) -> (Vec<(String, String)>, Vec<(String, String)>) {
    let add = want.difference(have).cloned().collect();
    let del = have
        .difference(want)
        // A MAC whose host changed is moved by its `replace`.
        .filter(|(mac, _)| mac == FLOOD || !want.iter().any(|(m, _)| m == mac))
        .cloned()
        .collect();
    (add, del)
}

/// A stable hash (FNV-1a), so a restarted agent finds its run directory.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The pid in `pid_file`, if that process runs `program` with `needle`
/// on its command line (a pid file outliving its process can name another).
fn pid_alive(pid_file: &Path, program: &str, needle: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&cmdline);
    (text.contains(program) && text.contains(needle)).then_some(pid)
}

impl LinuxDataplane {
    pub fn new(cfg: LinuxConfig, metadata: Arc<MetadataService>) -> Self {
        let ledger = std::fs::read(cfg.state_dir.join("dataplane/ledger.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let run_dir = PathBuf::from("/run/ferrostack").join(format!(
            "{:016x}",
            fnv1a(cfg.state_dir.display().to_string().as_bytes())
        ));
        // Say where, for operators and tests.
        let _ = std::fs::create_dir_all(cfg.state_dir.join("dataplane"));
        let _ = std::fs::write(
            cfg.state_dir.join("dataplane/run-dir"),
            run_dir.display().to_string(),
        );
        LinuxDataplane {
            cfg,
            run_dir,
            metadata,
            inner: Mutex::new(Inner {
                ledger,
                last: None,
                last_full: None,
                balancer_specs: Vec::new(),
                balancers: HashMap::new(),
            }),
        }
    }

    fn save(&self, ledger: &Ledger) {
        let dir = self.cfg.state_dir.join("dataplane");
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(b) = serde_json::to_vec_pretty(ledger) {
            let _ = std::fs::write(dir.join("ledger.json"), b);
        }
    }

    fn mapped(&self, physnet: Option<&str>) -> Option<&str> {
        let p = physnet?;
        self.cfg
            .bridge_mappings
            .iter()
            .find(|(n, _)| n == p)
            .map(|(_, b)| b.as_str())
    }

    fn dhcp_dir(&self, network_id: &str) -> PathBuf {
        self.run_dir.join("dhcp").join(network_id)
    }

    /// The bridge a network's ports plug into, made if it's ours to make.
    async fn ensure_network(
        &self,
        n: &NetSpec,
        have: &[(String, Option<String>)],
        ledger: &mut Ledger,
    ) -> Result<String> {
        let exists = |name: &str| have.iter().any(|(l, _)| l == name);
        if n.network_type == "flat" {
            let b = self.mapped(n.physical_network.as_deref()).ok_or_else(|| {
                DriverError::Failed(format!(
                    "network {}: no bridge mapping for physical network {:?}",
                    n.id, n.physical_network
                ))
            })?;
            if !exists(b) {
                return Err(DriverError::Failed(format!(
                    "network {}: bridge {b} of physical network {:?} does not exist on this host",
                    n.id, n.physical_network
                )));
            }
            return Ok(b.to_owned());
        }
        let b = names::bridge(&n.id);
        if !exists(&b) {
            let mtu = n.mtu.to_string();
            ip(
                "creating a bridge",
                &["link", "add", &b, "mtu", &mtu, "type", "bridge"],
            )
            .await?;
            ledger.links.insert(b.clone());
            tracing::info!(network_id = %n.id, bridge = %b, "bridge created");
        }
        ip("bringing a bridge up", &["link", "set", &b, "up"]).await?;
        if n.network_type == "vlan" {
            let (Some(parent), Some(vid)) = (
                self.mapped(n.physical_network.as_deref()),
                n.segmentation_id,
            ) else {
                return Err(DriverError::Failed(format!(
                    "network {}: VLAN without a mapped physical network",
                    n.id
                )));
            };
            let v = names::vlan(parent, vid);
            if !exists(&v) {
                let vid = vid.to_string();
                ip(
                    "creating a VLAN link",
                    &[
                        "link", "add", "link", parent, "name", &v, "type", "vlan", "id", &vid,
                    ],
                )
                .await?;
                ledger.links.insert(v.clone());
            }
            ip(
                "plugging a VLAN link",
                &["link", "set", &v, "master", &b, "up"],
            )
            .await?;
        }
        Ok(b)
    }

    /// A VXLAN network's tunnel device on its bridge, with exactly the
    /// forwarding entries the control plane computed. No learning: a MAC
    /// not pinned here goes to every peer, as a broadcast does.
    async fn ensure_tunnel(
        &self,
        n: &NetSpec,
        t: &Tunnel,
        bridge: &str,
        have: &[(String, Option<String>)],
        ledger: &mut Ledger,
    ) -> Result<String> {
        let vni = n.segmentation_id.ok_or_else(|| {
            DriverError::Failed(format!("network {}: VXLAN without a segment id", n.id))
        })?;
        let dev = names::vxlan(&n.id);
        let mut exists = have.iter().any(|(l, _)| *l == dev);
        if exists {
            let (id, local) = vxlan_params(&dev).await?;
            if id != Some(vni) || local.as_deref() != Some(t.local_ip.as_str()) {
                ip("replacing a VXLAN device", &["link", "del", &dev]).await?;
                exists = false;
            }
        }
        let mtu = n.mtu.to_string();
        if !exists {
            let vni = vni.to_string();
            ip(
                "creating a VXLAN device",
                &[
                    "link",
                    "add",
                    &dev,
                    "mtu",
                    &mtu,
                    "type",
                    "vxlan",
                    "id",
                    &vni,
                    "local",
                    &t.local_ip,
                    "dstport",
                    VXLAN_PORT,
                    "nolearning",
                ],
            )
            .await?;
            ledger.links.insert(dev.clone());
            tracing::info!(network_id = %n.id, device = %dev, vni, local = %t.local_ip, "VXLAN device created");
        }
        ip(
            "plugging a VXLAN device",
            &["link", "set", &dev, "mtu", &mtu, "master", bridge, "up"],
        )
        .await?;
        let want: BTreeSet<(String, String)> = t
            .peers
            .iter()
            .map(|p| (FLOOD.to_owned(), p.clone()))
            .chain(
                t.macs
                    .iter()
                    .map(|(m, p)| (m.to_ascii_lowercase(), p.clone())),
            )
            .collect();
        let (add, del) = tunnel_changes(&tunnel_entries(&dev).await?, &want);
        for (mac, dst) in &del {
            run(
                "removing a forwarding entry",
                "bridge",
                &s(&["fdb", "del", mac, "dev", &dev, "dst", dst]),
            )
            .await?;
        }
        for (mac, dst) in &add {
            let verb = if mac == FLOOD { "append" } else { "replace" };
            run(
                "adding a forwarding entry",
                "bridge",
                &s(&["fdb", verb, mac, "dev", &dev, "dst", dst]),
            )
            .await?;
        }
        if !add.is_empty() || !del.is_empty() {
            tracing::info!(network_id = %n.id, device = %dev, added = add.len(), removed = del.len(), "VXLAN forwarding entries changed");
        }
        Ok(dev)
    }

    /// A tap for an instance port, on its network's bridge.
    async fn ensure_tap(
        &self,
        tap: &str,
        bridge: &str,
        mtu: i64,
        have: &[(String, Option<String>)],
        ledger: &mut Ledger,
    ) -> Result<()> {
        match have.iter().find(|(l, _)| l == tap) {
            Some((_, Some(m))) if m == bridge => {}
            found => {
                if found.is_none() {
                    ip(
                        "creating a tap",
                        &["tuntap", "add", "dev", tap, "mode", "tap"],
                    )
                    .await?;
                    ledger.links.insert(tap.to_owned());
                }
                let mtu = mtu.to_string();
                ip(
                    "plugging a tap",
                    &["link", "set", tap, "mtu", &mtu, "master", bridge, "up"],
                )
                .await?;
            }
        }
        Ok(())
    }

    /// A veth from a bridge into a namespace: `host` on the bridge, `inner` in `ns`.
    #[allow(clippy::too_many_arguments)]
    async fn ensure_leg(
        &self,
        ns: &str,
        host: &str,
        inner: &str,
        mac: Option<&str>,
        bridge: &str,
        mtu: i64,
        have: &[(String, Option<String>)],
        ledger: &mut Ledger,
    ) -> Result<()> {
        let mtu = mtu.to_string();
        if !have.iter().any(|(l, _)| l == host) {
            ip(
                "creating a namespace leg",
                &[
                    "link", "add", host, "mtu", &mtu, "type", "veth", "peer", "name", inner, "mtu",
                    &mtu, "netns", ns,
                ],
            )
            .await?;
            ledger.links.insert(host.to_owned());
        }
        ip(
            "plugging a namespace leg",
            &["link", "set", host, "master", bridge, "up"],
        )
        .await?;
        if let Some(m) = mac {
            ip(
                "setting a leg's MAC",
                &["-n", ns, "link", "set", inner, "address", m],
            )
            .await?;
        }
        ip("bringing a leg up", &["-n", ns, "link", "set", inner, "up"]).await?;
        Ok(())
    }

    async fn ensure_ns(
        &self,
        ns: &str,
        present: &BTreeSet<String>,
        ledger: &mut Ledger,
    ) -> Result<()> {
        if !present.contains(ns) {
            ip("creating a namespace", &["netns", "add", ns]).await?;
            ledger.namespaces.insert(ns.to_owned());
            tracing::info!(namespace = ns, "namespace created");
        }
        ip("bringing lo up", &["-n", ns, "link", "set", "lo", "up"]).await
    }

    /// DHCP, DNS and metadata for one network.
    async fn ensure_dhcp(
        &self,
        n: &NetSpec,
        bridge: &str,
        have: &[(String, Option<String>)],
        present: &BTreeSet<String>,
        ledger: &mut Ledger,
    ) -> Result<()> {
        let ns = names::dhcp_ns(&n.id);
        self.ensure_ns(&ns, present, ledger).await?;
        let (host, inner) = names::dhcp_legs(&n.id);
        let mac = names::dhcp_mac(&n.id);
        self.ensure_leg(&ns, &host, &inner, Some(&mac), bridge, n.mtu, have, ledger)
            .await?;
        sync_addresses(&ns, &inner, &[format!("{}/32", dhcp::METADATA_IP)]).await?;
        for sub in n.subnets.iter().filter(|s| s.dhcp) {
            ip(
                "routing to a subnet",
                &[
                    "-n",
                    &ns,
                    "route",
                    "replace",
                    &sub.cidr,
                    "dev",
                    &inner,
                    "src",
                    dhcp::METADATA_IP,
                ],
            )
            .await?;
        }
        let dir = self.dhcp_dir(&n.id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|source| DriverError::Io {
                what: "dhcp dir".into(),
                source,
            })?;
        let hosts = dhcp::hosts(n);
        let write = |name: &str, body: String| {
            let p = dir.join(name);
            async move {
                let old = tokio::fs::read_to_string(&p).await.unwrap_or_default();
                if old != body {
                    tokio::fs::write(&p, body)
                        .await
                        .map_err(|source| DriverError::Io {
                            what: format!("writing {}", p.display()),
                            source,
                        })?;
                    return Ok::<bool, DriverError>(true);
                }
                Ok(false)
            }
        };
        let hosts_changed = write("hosts", hosts).await? | write("names", dhcp::names(n)).await?;
        let args = dhcp::args(n, &inner, &dir, &self.cfg.dns_servers);
        let args_changed = write("args", args.join("\n")).await?;
        let pid_file = dir.join("pid");
        let needle = pid_file.display().to_string();
        match pid_alive(&pid_file, "dnsmasq", &needle) {
            Some(pid) if !args_changed => {
                if hosts_changed {
                    run("reloading dnsmasq", "kill", &s(&["-HUP", &pid.to_string()])).await?;
                }
            }
            running => {
                if let Some(pid) = running {
                    let _ = run("stopping dnsmasq", "kill", &s(&[&pid.to_string()])).await;
                }
                let mut full = s(&["netns", "exec", &ns, "dnsmasq"]);
                full.extend(args);
                run("starting dnsmasq", "ip", &full).await?;
                tracing::info!(network_id = %n.id, "dnsmasq started");
            }
        }
        self.metadata.serve(&n.id, &ns).await
    }

    async fn stop_dhcp(&self, network_id: &str) {
        let dir = self.dhcp_dir(network_id);
        let pid_file = dir.join("pid");
        if let Some(pid) = pid_alive(&pid_file, "dnsmasq", &pid_file.display().to_string()) {
            let _ = run("stopping dnsmasq", "kill", &s(&[&pid.to_string()])).await;
            tracing::info!(network_id, "dnsmasq stopped");
        }
        self.metadata.stop(network_id);
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }

    async fn ensure_router(
        &self,
        r: &crate::netspec::RouterSpec,
        bridges: &HashMap<String, String>,
        mtus: &HashMap<String, i64>,
        have: &[(String, Option<String>)],
        present: &BTreeSet<String>,
        ledger: &mut Ledger,
    ) -> Result<()> {
        let ns = names::router_ns(&r.id);
        self.ensure_ns(&ns, present, ledger).await?;
        run(
            "enabling forwarding",
            "ip",
            &s(&[
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]),
        )
        .await?;
        let mut wanted = Vec::new();
        let legs = r
            .interfaces
            .iter()
            .map(|l| (l, names::router_iface(&l.port_id), vec![l.address.clone()]));
        let gw = r.gateway.iter().map(|l| {
            let mut addrs = vec![l.address.clone()];
            addrs.extend(r.floating.iter().map(|(f, _)| format!("{f}/32")));
            (l, names::gateway_iface(&l.port_id), addrs)
        });
        for (leg, inner, addrs) in legs.chain(gw) {
            let Some(bridge) = bridges.get(&leg.network_id) else {
                tracing::warn!(router_id = %r.id, network_id = %leg.network_id, "router leg on a network this host lacks");
                continue;
            };
            let mtu = mtus.get(&leg.network_id).copied().unwrap_or(1500);
            self.ensure_leg(
                &ns,
                &names::tap(&leg.port_id),
                &inner,
                Some(&leg.mac),
                bridge,
                mtu,
                have,
                ledger,
            )
            .await?;
            sync_addresses(&ns, &inner, &addrs).await?;
            wanted.push(inner);
        }
        for (l, _) in links(Some(&ns)).await? {
            if (l.starts_with("qr-") || l.starts_with("qg-")) && !wanted.contains(&l) {
                ip("removing a router leg", &["-n", &ns, "link", "del", &l]).await?;
            }
        }
        match (&r.gateway, &r.gateway_nexthop) {
            (Some(g), Some(nh)) => {
                let dev = names::gateway_iface(&g.port_id);
                ip(
                    "routing a router out",
                    &[
                        "-n", &ns, "route", "replace", "default", "via", nh, "dev", &dev,
                    ],
                )
                .await?;
            }
            _ => {
                let _ = ip(
                    "removing a default route",
                    &["-n", &ns, "route", "del", "default"],
                )
                .await;
            }
        }
        for (dest, hop) in &r.routes {
            ip(
                "adding a static route",
                &["-n", &ns, "route", "replace", dest, "via", hop],
            )
            .await?;
        }
        run_with_input(
            "applying router NAT",
            "ip",
            &s(&["netns", "exec", &ns, "nft", "-f", "-"]),
            &nft::replace("ip", &nft::router_table(r)),
        )
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Dataplane for LinuxDataplane {
    async fn apply(&self, net: &HostNetwork) -> Result<()> {
        let mut inner = self.inner.lock().await;
        if inner.last.as_ref() == Some(net) && inner.last_full.is_some_and(|t| t.elapsed() < RESYNC)
        {
            return Ok(());
        }
        let mut ledger = std::mem::take(&mut inner.ledger);
        let mut running = std::mem::take(&mut inner.balancers);
        let result = self.converge(net, &mut ledger, &mut running).await;
        self.save(&ledger);
        inner.ledger = ledger;
        inner.balancers = running;
        inner.balancer_specs = net.balancers.clone();
        if result.is_ok() {
            inner.last = Some(net.clone());
            inner.last_full = Some(Instant::now());
        } else {
            inner.last = None;
        }
        result
    }

    async fn teardown(&self) -> Result<()> {
        self.apply(&HostNetwork::default()).await
    }

    async fn balancers(&self) -> Vec<BalancerReport> {
        let mut inner = self.inner.lock().await;
        let (reports, dead) = self
            .balancer_reports(&inner.balancer_specs, &inner.balancers)
            .await;
        if dead {
            // The next apply converges in full, and starts it again.
            inner.last = None;
        }
        reports
    }
}

impl LinuxDataplane {
    async fn converge(
        &self,
        net: &HostNetwork,
        ledger: &mut Ledger,
        running: &mut HashMap<String, balancer::Running>,
    ) -> Result<()> {
        let mut first_error: Option<DriverError> = None;
        let mut note = |e: DriverError| {
            tracing::warn!(error = %e, "dataplane step failed");
            if first_error.is_none() {
                first_error = Some(e);
            }
        };
        let have = links(None).await?;
        let present = namespaces().await?;
        let mut bridges: HashMap<String, String> = HashMap::new();
        let mtus: HashMap<String, i64> =
            net.networks.iter().map(|n| (n.id.clone(), n.mtu)).collect();
        let mut wanted_links: BTreeSet<String> = BTreeSet::new();
        let mut wanted_ns: BTreeSet<String> = BTreeSet::new();
        for n in &net.networks {
            match self.ensure_network(n, &have, ledger).await {
                Ok(b) => {
                    wanted_links.insert(b.clone());
                    if let (Some(parent), Some(vid)) = (
                        self.mapped(n.physical_network.as_deref()),
                        n.segmentation_id,
                    ) {
                        if n.network_type == "vlan" {
                            wanted_links.insert(names::vlan(parent, vid));
                        }
                    }
                    if let (Some(t), "vxlan") = (&n.tunnel, n.network_type.as_str()) {
                        match self.ensure_tunnel(n, t, &b, &have, ledger).await {
                            Ok(dev) => {
                                wanted_links.insert(dev);
                            }
                            Err(e) => note(e),
                        }
                    }
                    bridges.insert(n.id.clone(), b);
                }
                Err(e) => note(e),
            }
        }
        for p in &net.ports {
            let Some(b) = bridges.get(&p.network_id) else {
                continue;
            };
            let tap = names::tap(&p.id);
            if let Err(e) = self
                .ensure_tap(
                    &tap,
                    b,
                    mtus.get(&p.network_id).copied().unwrap_or(1500),
                    &have,
                    ledger,
                )
                .await
            {
                note(e);
            }
            wanted_links.insert(tap);
        }
        let mut dhcp_nets = BTreeSet::new();
        for n in net.networks.iter().filter(|n| n.serves_dhcp()) {
            let Some(b) = bridges.get(&n.id) else {
                continue;
            };
            wanted_ns.insert(names::dhcp_ns(&n.id));
            wanted_links.insert(names::dhcp_legs(&n.id).0);
            dhcp_nets.insert(n.id.clone());
            if let Err(e) = self.ensure_dhcp(n, b, &have, &present, ledger).await {
                note(e);
            }
        }
        for r in &net.routers {
            wanted_ns.insert(names::router_ns(&r.id));
            for leg in r.interfaces.iter().chain(r.gateway.iter()) {
                wanted_links.insert(names::tap(&leg.port_id));
            }
            if let Err(e) = self
                .ensure_router(r, &bridges, &mtus, &have, &present, ledger)
                .await
            {
                note(e);
            }
        }
        for b in &net.balancers {
            wanted_ns.insert(names::balancer_ns(&b.id));
            wanted_links.insert(names::tap(&b.vip_port_id));
            if let Err(e) = self
                .ensure_balancer(b, &bridges, &mtus, &have, &present, ledger, running)
                .await
            {
                // Whatever failed, the control plane hears why (the load
                // balancer goes ERROR, not PENDING for ever).
                let r = running.entry(b.id.clone()).or_default();
                if r.revision != b.revision {
                    r.fault = Some(e.to_string());
                }
                note(e);
            }
        }
        running.retain(|id, _| net.balancers.iter().any(|b| b.id == *id));
        // Security: replaced whole, atomically, whenever there is anything to secure or undo.
        if !net.ports.is_empty() || ledger.tables {
            let pairs: Vec<(String, String)> = bridges
                .iter()
                .map(|(n, b)| (n.clone(), b.clone()))
                .collect();
            let mut pairs = pairs;
            pairs.sort();
            let script = format!(
                "{}{}",
                nft::replace("bridge", &nft::bridge_table(&net.ports)),
                nft::replace("inet", &nft::inet_table(&net.ports, &net.groups, &pairs))
            );
            match run_with_input("applying security groups", "nft", &s(&["-f", "-"]), &script).await
            {
                Ok(_) => ledger.tables = true,
                Err(e) => note(e),
            }
        }
        // Garbage: what the ledger names and the state no longer wants.
        for ns in ledger.namespaces.clone() {
            if wanted_ns.contains(&ns) {
                continue;
            }
            if let Some(network_id) = ns.strip_prefix("qdhcp-") {
                self.stop_dhcp(network_id).await;
            }
            if let Some(id) = ns.strip_prefix("qlbaas-") {
                self.stop_balancer(id).await;
            }
            if present.contains(&ns) {
                if let Err(e) = ip("deleting a namespace", &["netns", "del", &ns]).await {
                    note(e);
                    continue;
                }
            }
            tracing::info!(namespace = %ns, "namespace deleted");
            ledger.namespaces.remove(&ns);
        }
        for n in ledger
            .namespaces
            .iter()
            .filter_map(|ns| ns.strip_prefix("qdhcp-"))
        {
            if !dhcp_nets.contains(n) {
                self.stop_dhcp(n).await;
            }
        }
        let now = links(None).await.unwrap_or_default();
        for l in ledger.links.clone() {
            if wanted_links.contains(&l) {
                continue;
            }
            if now.iter().any(|(x, _)| *x == l) {
                if let Err(e) = ip("deleting a link", &["link", "del", &l]).await {
                    // A namespace's veth ends vanish with it, a moment later.
                    let still = links(None)
                        .await
                        .map(|v| v.iter().any(|(x, _)| *x == l))
                        .unwrap_or(true);
                    if still {
                        note(e);
                        continue;
                    }
                }
            }
            ledger.links.remove(&l);
        }
        if net.ports.is_empty() && ledger.tables {
            for family in ["bridge", "inet"] {
                let _ = run(
                    "removing a table",
                    "nft",
                    &s(&["delete", "table", family, nft::TABLE]),
                )
                .await;
            }
            ledger.tables = false;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(v: &[(&str, &str)]) -> BTreeSet<(String, String)> {
        v.iter()
            .map(|(m, d)| ((*m).to_owned(), (*d).to_owned()))
            .collect()
    }

    #[test]
    fn tunnel_changes_add_flood_targets_and_move_macs() {
        let have = e(&[
            (FLOOD, "10.0.0.2"),
            (FLOOD, "10.0.0.3"),
            ("fa:16:3e:00:00:01", "10.0.0.2"),
            ("fa:16:3e:00:00:02", "10.0.0.3"),
        ]);
        let want = e(&[
            (FLOOD, "10.0.0.2"),
            (FLOOD, "10.0.0.4"),
            ("fa:16:3e:00:00:01", "10.0.0.4"),
        ]);
        let (add, del) = tunnel_changes(&have, &want);
        assert_eq!(
            add,
            vec![
                (FLOOD.to_owned(), "10.0.0.4".to_owned()),
                ("fa:16:3e:00:00:01".to_owned(), "10.0.0.4".to_owned()),
            ]
        );
        // The moved MAC is replaced, not deleted; the gone one is deleted.
        assert_eq!(
            del,
            vec![
                (FLOOD.to_owned(), "10.0.0.3".to_owned()),
                ("fa:16:3e:00:00:02".to_owned(), "10.0.0.3".to_owned()),
            ]
        );
        let (add, del) = tunnel_changes(&want, &want);
        assert!(add.is_empty() && del.is_empty());
    }

    #[test]
    fn a_dhcp_leg_mac_is_fixed_and_local() {
        let m = names::dhcp_mac("5F3C9A10-0000-4000-8000-000000000000");
        assert_eq!(m, "fa:16:3f:5f:3c:9a");
        assert_eq!(m, names::dhcp_mac("5f3c9a10-0000-4000-8000-000000000000"));
        assert_eq!(names::vxlan("5f3c9a10-0000-4000"), "vx-5f3c9a10-00");
    }
}
