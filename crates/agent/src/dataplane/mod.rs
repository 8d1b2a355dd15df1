//! The dataplane: what a host does so its instances' ports carry traffic as
//! the network API says. [`Dataplane::apply`] takes the host's whole desired
//! [`HostNetwork`] and converges on it; applying the same state again
//! changes nothing. Drivers: [`linux::LinuxDataplane`] (bridges, taps,
//! namespaces, nftables, dnsmasq) and [`FakeDataplane`], which records what
//! it was asked.

pub mod dhcp;
pub mod linux;
pub mod nft;

use std::sync::Mutex;

use crate::driver::Result;
use crate::netspec::HostNetwork;

#[async_trait::async_trait]
pub trait Dataplane: Send + Sync + 'static {
    /// Converges the host on `net`.
    async fn apply(&self, net: &HostNetwork) -> Result<()>;
    /// Removes everything this dataplane made (agent shutdown for good).
    async fn teardown(&self) -> Result<()>;
}

/// Records every state it is given; touches nothing.
#[derive(Default)]
pub struct FakeDataplane {
    pub applied: Mutex<Vec<HostNetwork>>,
}

#[async_trait::async_trait]
impl Dataplane for FakeDataplane {
    async fn apply(&self, net: &HostNetwork) -> Result<()> {
        if let Ok(mut a) = self.applied.lock() {
            if a.last() != Some(net) {
                a.push(net.clone());
            }
        }
        Ok(())
    }

    async fn teardown(&self) -> Result<()> {
        if let Ok(mut a) = self.applied.lock() {
            a.push(HostNetwork::default());
        }
        Ok(())
    }
}
