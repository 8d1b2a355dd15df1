//! The dataplane: what a host does so its instances' ports carry traffic as
//! the network API says. [`Dataplane::apply`] takes the host's whole desired
//! [`HostNetwork`] and converges on it; applying the same state again
//! changes nothing. Drivers: [`linux::LinuxDataplane`] (bridges, taps,
//! namespaces, nftables, dnsmasq, HAProxy) and [`FakeDataplane`], which
//! records what it was asked.

pub mod dhcp;
pub mod haproxy;
pub mod linux;
pub mod nft;

use std::sync::Mutex;

use crate::balancer::{BalancerReport, MemberHealth};
use crate::driver::Result;
use crate::netspec::HostNetwork;

#[async_trait::async_trait]
pub trait Dataplane: Send + Sync + 'static {
    /// Converges the host on `net`.
    async fn apply(&self, net: &HostNetwork) -> Result<()>;
    /// Removes everything this dataplane made (agent shutdown for good).
    async fn teardown(&self) -> Result<()>;
    /// What runs of each load balancer it was asked for (network node).
    async fn balancers(&self) -> Vec<BalancerReport>;
}

/// Records the state it was last given and how many times it changed;
/// touches nothing. (Not every state: a scale run with thousands of ports
/// would hold each version of the whole host network.)
#[derive(Default)]
pub struct FakeDataplane {
    pub last: Mutex<Option<HostNetwork>>,
    pub changes: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Dataplane for FakeDataplane {
    async fn apply(&self, net: &HostNetwork) -> Result<()> {
        if let Ok(mut last) = self.last.lock() {
            if last.as_ref() != Some(net) {
                *last = Some(net.clone());
                self.changes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    async fn teardown(&self) -> Result<()> {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(HostNetwork::default());
        }
        Ok(())
    }

    /// Every load balancer runs the revision it was given; members pass
    /// their checks when a monitor checks them.
    async fn balancers(&self) -> Vec<BalancerReport> {
        let Ok(last) = self.last.lock() else {
            return Vec::new();
        };
        last.iter()
            .flat_map(|n| n.balancers.iter())
            .map(|b| BalancerReport {
                id: b.id.clone(),
                revision: b.revision,
                fault: None,
                members: b
                    .pools
                    .iter()
                    .flat_map(|p| {
                        p.members.iter().map(|m| {
                            let h = match (m.disabled, &p.monitor) {
                                (true, _) => MemberHealth::Disabled,
                                (false, Some(_)) => MemberHealth::Up,
                                (false, None) => MemberHealth::Unchecked,
                            };
                            (m.id.clone(), h)
                        })
                    })
                    .collect(),
                counters: Default::default(),
            })
            .collect()
    }
}
