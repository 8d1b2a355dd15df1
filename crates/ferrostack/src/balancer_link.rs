//! Compute's narrow view of the load-balancer service (`ferro_compute::
//! balancers::Balancers`) over the in-process `LoadBalancerService`: the
//! network node's load balancers and its reports of them.

use std::sync::Arc;

use ferro_agent_api::balancer::{BalancerReport, BalancerSpec};
use ferro_compute::balancers::Balancers;
use ferro_loadbalancer::LoadBalancerService;

pub struct BalancerLink(pub Arc<LoadBalancerService>);

#[async_trait::async_trait]
impl Balancers for BalancerLink {
    async fn specs(&self) -> Result<Vec<BalancerSpec>, String> {
        self.0.specs().await.map_err(|e| format!("{e}: {e:?}"))
    }

    async fn reported(&self, reports: Vec<BalancerReport>) -> Result<(), String> {
        self.0
            .reported(reports)
            .await
            .map_err(|e| format!("{e}: {e:?}"))
    }
}
