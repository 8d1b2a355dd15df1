//! Compute's narrow view of the load-balancer service, as the host
//! contract needs it: the load balancers the network node must run (part
//! of its desired state) and what the network node reports of them.

use ferro_agent_api::balancer::{BalancerReport, BalancerSpec};

#[async_trait::async_trait]
pub trait Balancers: Send + Sync + 'static {
    /// Every load balancer the network node should run.
    async fn specs(&self) -> Result<Vec<BalancerSpec>, String>;
    /// The network node's word on its load balancers.
    async fn reported(&self, reports: Vec<BalancerReport>) -> Result<(), String>;
}
