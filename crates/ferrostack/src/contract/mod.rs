//! The contract between controllers and joined hosts, over the network.
//!
//! ```text
//!  ferrostack host add h1            → one-time token  SECRET.CA_SHA256
//!  agent: GET  /contract/v1/ca        (no client certificate; pinned by CA_SHA256)
//!  agent: POST /contract/v1/enrol     {token, name, csr, advertise_ip} → certificate host:h1
//!  agent ⇄ controller, mutual TLS from then on:
//!    POST /contract/v1/register | heartbeat | reports,  GET desired | images/{id} | instance-at
//!  controller → agent (mutual TLS, only a `controller` certificate is served):
//!    POST /agent/v1/wake,  GET /agent/v1/console/{id}
//! ```
//!
//! Both ends call the same [`ferro_agent_api::ControlPlane`] and
//! [`ferro_agent_api::HostAgent`] traits as the in-process agent of
//! `ferrostack up`; this module only carries them over HTTPS. A request is
//! served only for a certificate that verifies against the cloud's CA and is
//! still enrolled; the host it speaks for is the one in its certificate,
//! never one named in the request.

pub mod agent_http;
pub mod client;
pub mod heartbeats;
pub mod join;
pub mod pki;
pub mod server;
pub mod store;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The contract port's default (the agent's endpoint is the next one).
pub const DEFAULT_PORT: u16 = 8790;
pub const DEFAULT_AGENT_PORT: u16 = 8791;

#[derive(Debug, Serialize, Deserialize)]
pub struct EnrolRequest {
    pub token: String,
    pub name: String,
    pub csr: String,
    pub advertise_ip: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub certificate: String,
}

/// The error body of every contract endpoint.
#[derive(Debug, Serialize, Deserialize)]
pub struct ContractError {
    pub error: String,
}

/// A join token: the secret, and the SHA-256 of the CA certificate the
/// joining host must find at the controller.
pub fn format_token(secret: &str, ca_sha256: &str) -> String {
    format!("{secret}.{ca_sha256}")
}

pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (secret, fp) = token.trim().split_once('.')?;
    (!secret.is_empty() && fp.len() == 64 && fp.chars().all(|c| c.is_ascii_hexdigit()))
        .then_some((secret, fp))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config presenting `identity` and verifying client certificates
/// against the CA; `optional` lets clients without one through (for the
/// enrolment endpoints, which check a token instead).
pub fn server_config(
    identity: &pki::Identity,
    ca: &rustls::pki_types::CertificateDer<'static>,
    optional: bool,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let roots = pki::roots(ca)?;
    let builder = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
    let verifier = if optional {
        builder.allow_unauthenticated().build()?
    } else {
        builder.build()?
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert_der()?, ca.clone()], identity.key_der()?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An HTTPS client that trusts only the cloud's CA and presents `identity`.
pub fn client(ca_pem: &str, identity: Option<&pki::Identity>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(60));
    if let Some(id) = identity {
        b = b.identity(id.reqwest()?);
    }
    Ok(b.build()?)
}

/// Every address of this machine's interfaces (the names a controller's
/// certificate is valid for, when it listens on all of them).
fn local_addresses() -> Vec<String> {
    nix::ifaddrs::getifaddrs()
        .map(|addrs| {
            addrs
                .filter_map(|a| a.address)
                .filter_map(|a| {
                    a.as_sockaddr_in()
                        .map(|v4| std::net::IpAddr::V4(v4.ip()).to_string())
                        .or_else(|| {
                            a.as_sockaddr_in6()
                                .map(|v6| std::net::IpAddr::V6(v6.ip()).to_string())
                        })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Serves the contract on `listener` for the cloud's hosts, and makes the
/// hosts that already joined reachable from this controller.
pub async fn start(
    cfg: &crate::Config,
    host: &str,
    url: &str,
    listener: tokio::net::TcpListener,
    compute: Arc<ferro_compute::ComputeService>,
    db: ferro_store::Db,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let ca = Arc::new(pki::Ca::load_or_create(&cfg.state_dir)?);
    let mut names = vec![
        host.to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ];
    if !cfg.bind.is_unspecified() {
        names.push(cfg.bind.to_string());
    }
    names.extend(local_addresses());
    names.sort();
    names.dedup();
    let identity = ca.controller_identity(&names)?;
    let tls = server_config(&identity, &ca.cert_der, true)?;
    let agents = client(&ca.cert_pem, Some(&identity))?;
    match store::agent_endpoints(&db).await {
        Ok(known) => {
            for (name, agent_url) in known {
                agent_http::attach(&compute, &name, &agent_url, &agents);
            }
        }
        Err(e) => tracing::warn!(error = %e, "listing joined hosts failed"),
    }
    crate::files::write_private(&pki::dir(&cfg.state_dir).join("url"), url.as_bytes())?;
    let state = Arc::new(server::ContractState {
        compute,
        db: db.clone(),
        ca,
        agents,
        heartbeats: Default::default(),
        enrolments: Default::default(),
    });
    tracing::info!(url, "host contract ready");
    let beats = state.clone();
    let beats_stop = shutdown.clone();
    let serving = crate::serve::serve_tls_with_peer(listener, server::router(state), tls, shutdown);
    Ok(tokio::spawn(async move {
        tokio::join!(serving, beats.heartbeats.run(db, beats_stop));
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_a_secret_and_a_ca_fingerprint() {
        let fp = "ab".repeat(32);
        let t = format_token("s3cret", &fp);
        assert_eq!(parse_token(&t), Some(("s3cret", fp.as_str())));
        assert_eq!(parse_token("s3cret"), None);
        assert_eq!(parse_token("s3cret.abc"), None);
        assert_eq!(parse_token(&format!(".{fp}")), None);
    }
}
