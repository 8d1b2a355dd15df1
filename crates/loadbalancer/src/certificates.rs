//! The load-balancer service's narrow view of the key manager: the PEM
//! bundle (certificate, intermediates, private key) that a
//! TERMINATED_HTTPS listener's reference names, looked up for the
//! listener's project, as Octavia reads a Barbican container.

/// Why a reference gives no certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// No such secret or container in the project.
    #[error("it does not exist in this project")]
    Missing,
    /// It exists but is not a usable certificate (the reason says why).
    #[error("{0}")]
    Invalid(String),
    /// The store could not be read.
    #[error("{0}")]
    Failed(String),
}

#[async_trait::async_trait]
pub trait Certificates: Send + Sync + 'static {
    /// The PEM bundle `reference` (a secret or container URL) names.
    async fn bundle(&self, project: &str, reference: &str) -> Result<String, CertificateError>;
}
