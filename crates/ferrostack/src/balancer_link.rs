//! Compute's narrow view of the load-balancer service (`ferro_compute::
//! balancers::Balancers`) over the in-process `LoadBalancerService`: the
//! network node's load balancers and its reports of them; and the
//! load-balancer service's view of the key manager.

use std::sync::Arc;

use ferro_agent_api::balancer::{BalancerReport, BalancerSpec};
use ferro_compute::balancers::Balancers;
use ferro_keymanager::service::BundleError;
use ferro_keymanager::KeyManager;
use ferro_loadbalancer::{CertificateError, Certificates, LoadBalancerService};

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

/// The load-balancer service's view of the key manager: the certificate
/// bundle a TERMINATED_HTTPS listener names.
pub struct CertificateLink(pub Arc<KeyManager>);

#[async_trait::async_trait]
impl Certificates for CertificateLink {
    async fn bundle(&self, project: &str, reference: &str) -> Result<String, CertificateError> {
        self.0
            .bundle(project, reference)
            .await
            .map(|b| b.pem)
            .map_err(|e| match e {
                BundleError::Missing(_) => CertificateError::Missing,
                BundleError::Invalid(why) => CertificateError::Invalid(why),
                BundleError::Failed(why) => CertificateError::Failed(why),
            })
    }
}
