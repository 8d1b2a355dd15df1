//! Load balancers on the network node: one namespace per load balancer
//! (`qlbaas-<id>`) with a leg on the VIP's network, and HAProxy in it in
//! master-worker mode. A new revision is checked (`haproxy -c`) before the
//! running master is told to reload (SIGUSR2): new connections get the new
//! configuration while the old worker finishes the ones it has.
//!
//! ```text
//!  brqN ── tapV ── lb-V (qlbaas-<id>: VIP/prefix, default via the subnet's gateway)
//!                     └── haproxy -W (master) ── worker
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use super::{ip, pid_alive, run, s, sync_addresses, Ledger, LinuxDataplane};
use crate::balancer::{BalancerReport, BalancerSpec};
use crate::dataplane::haproxy;
use crate::driver::{DriverError, Result};
use crate::netspec::names;

/// What runs for one load balancer: the revision, or why a revision
/// could not be run.
#[derive(Clone, Debug, Default)]
pub(super) struct Running {
    pub revision: i64,
    pub fault: Option<String>,
}

/// The unprivileged user HAProxy's workers run as, when the host has it
/// (Debian's package makes `haproxy`).
fn haproxy_user() -> Option<&'static str> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .any(|l| l.starts_with("haproxy:"))
        .then_some("haproxy")
}

impl LinuxDataplane {
    pub(super) fn balancer_dir(&self, id: &str) -> PathBuf {
        self.run_dir.join("lb").join(id)
    }

    /// The master's pid, if it runs.
    pub(super) fn balancer_pid(&self, id: &str) -> Option<u32> {
        let pid_file = self.balancer_dir(id).join("pid");
        pid_alive(
            &pid_file,
            "haproxy",
            &self.balancer_dir(id).display().to_string(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn ensure_balancer(
        &self,
        b: &BalancerSpec,
        bridges: &HashMap<String, String>,
        mtus: &HashMap<String, i64>,
        have: &[(String, Option<String>)],
        present: &BTreeSet<String>,
        ledger: &mut Ledger,
        running: &mut HashMap<String, Running>,
    ) -> Result<()> {
        let Some(bridge) = bridges.get(&b.vip_network_id) else {
            return Err(DriverError::Failed(format!(
                "load balancer {}: its VIP network {} is not on this host",
                b.id, b.vip_network_id
            )));
        };
        let ns = names::balancer_ns(&b.id);
        self.ensure_ns(&ns, present, ledger).await?;
        let inner = names::balancer_iface(&b.vip_port_id);
        let mtu = mtus.get(&b.vip_network_id).copied().unwrap_or(1500);
        self.ensure_leg(
            &ns,
            &names::tap(&b.vip_port_id),
            &inner,
            Some(&b.vip_mac),
            bridge,
            mtu,
            have,
            ledger,
        )
        .await?;
        sync_addresses(&ns, &inner, std::slice::from_ref(&b.vip_cidr)).await?;
        if let Some(gw) = &b.gateway {
            ip(
                "routing a load balancer out",
                &[
                    "-n", &ns, "route", "replace", "default", "via", gw, "dev", &inner,
                ],
            )
            .await?;
        }
        let dir = self.balancer_dir(&b.id);
        let io = |what: String| move |source| DriverError::Io { what, source };
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(io(format!("creating {}", dir.display())))?;
        let cfg_path = dir.join("haproxy.cfg");
        let cfg = haproxy::config(b, &dir, haproxy_user());
        let old = tokio::fs::read_to_string(&cfg_path)
            .await
            .unwrap_or_default();
        let pid = self.balancer_pid(&b.id);
        let applied = running.get(&b.id).map(|r| r.revision) == Some(b.revision);
        if old == cfg && pid.is_some() && applied {
            return Ok(());
        }
        let script = dir.join("ping-check");
        tokio::fs::write(&script, haproxy::PING_CHECK)
            .await
            .map_err(io(format!("writing {}", script.display())))?;
        let _ = run(
            "making the ping check runnable",
            "chmod",
            &s(&["0755", &script.display().to_string()]),
        )
        .await;
        for (path, pem) in haproxy::certificate_files(b, &dir) {
            write_private(&path, pem)
                .await
                .map_err(io(format!("writing {}", path.display())))?;
        }
        let next = dir.join("haproxy.cfg.next");
        tokio::fs::write(&next, &cfg)
            .await
            .map_err(io(format!("writing {}", next.display())))?;
        let next_s = next.display().to_string();
        run(
            "checking a load balancer's configuration",
            "haproxy",
            &s(&["-c", "-q", "-f", &next_s]),
        )
        .await?;
        tokio::fs::rename(&next, &cfg_path)
            .await
            .map_err(io(format!("replacing {}", cfg_path.display())))?;
        let cfg_s = cfg_path.display().to_string();
        let pid_s = dir.join("pid").display().to_string();
        match pid {
            Some(pid) => {
                run(
                    "reloading haproxy",
                    "kill",
                    &s(&["-USR2", &pid.to_string()]),
                )
                .await?;
                tracing::info!(loadbalancer_id = %b.id, revision = b.revision, "haproxy reloaded");
            }
            None => {
                run(
                    "starting haproxy",
                    "ip",
                    &s(&[
                        "netns", "exec", &ns, "haproxy", "-W", "-D", "-p", &pid_s, "-f", &cfg_s,
                    ]),
                )
                .await?;
                tracing::info!(loadbalancer_id = %b.id, revision = b.revision, "haproxy started");
            }
        }
        running.insert(
            b.id.clone(),
            Running {
                revision: b.revision,
                fault: None,
            },
        );
        Ok(())
    }

    /// Stops a load balancer's HAProxy and forgets its files (its
    /// namespace goes with the rest of the garbage).
    pub(super) async fn stop_balancer(&self, id: &str) {
        if let Some(pid) = self.balancer_pid(id) {
            let _ = run("stopping haproxy", "kill", &s(&[&pid.to_string()])).await;
            for _ in 0..50 {
                if std::fs::metadata(format!("/proc/{pid}")).is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            tracing::info!(loadbalancer_id = id, "haproxy stopped");
        }
        let _ = tokio::fs::remove_dir_all(self.balancer_dir(id)).await;
    }

    /// What each load balancer runs, from its stats socket. A dead HAProxy
    /// reports revision 0, and the next pass starts it again.
    pub(super) async fn balancer_reports(
        &self,
        specs: &[BalancerSpec],
        running: &HashMap<String, Running>,
    ) -> (Vec<BalancerReport>, bool) {
        let mut out = Vec::new();
        let mut dead = false;
        for b in specs {
            let r = running.get(&b.id).cloned().unwrap_or_default();
            let alive = self.balancer_pid(&b.id).is_some();
            dead |= !alive && r.revision > 0;
            let (members, counters) = if alive {
                let sock = self.balancer_dir(&b.id).join("stats.sock");
                match stat(&sock).await {
                    Ok(csv) => haproxy::parse_stats(&csv, b),
                    Err(e) => {
                        tracing::debug!(loadbalancer_id = %b.id, error = %e, "reading haproxy stats failed");
                        Default::default()
                    }
                }
            } else {
                Default::default()
            };
            out.push(BalancerReport {
                id: b.id.clone(),
                revision: if alive { r.revision } else { 0 },
                fault: r.fault,
                members,
                counters,
            });
        }
        (out, dead)
    }
}

/// Writes a file only its owner may read (a certificate's private key).
async fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await?;
    f.write_all(text.as_bytes()).await?;
    f.sync_all().await
}

/// `show stat` over HAProxy's stats socket.
async fn stat(sock: &std::path::Path) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fut = async {
        let mut s = tokio::net::UnixStream::connect(sock).await?;
        s.write_all(b"show stat\n").await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), fut)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "stats socket timed out"))?
}
