//! `ferrostack agent --join URL --token T`: enrol once (the host's key is
//! made here and never leaves it), then run the host's agent against the
//! controller over mutual TLS, and serve the controller's requests.
//!
//! What enrolment leaves in `<state>/agent-contract/`: `host.key`,
//! `host.pem` (signed by the cloud's CA), `ca.pem`, and `joined.json` (the
//! controller's URL and this host's name). Later starts need no token.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::client::RemoteLink;
use super::pki::{self, Identity};
use super::{agent_http, ContractError, EnrolRequest, EnrolResponse};
use crate::Config;

/// How to join and run.
pub struct JoinConfig {
    /// The controller's contract URL, `https://controller:8790`.
    pub controller_url: String,
    /// The one-time join token (needed only until the host is enrolled).
    pub token: Option<String>,
    /// The host's agent settings (state dir, hypervisor, dataplane, name).
    pub cfg: Config,
    /// Port of this host's own endpoint for the controller; 0 picks one.
    pub agent_port: u16,
    /// The address other machines reach this host at (default: the one it
    /// reaches the controller from).
    pub advertise_ip: Option<IpAddr>,
    /// Run routers, DHCP and metadata for the cloud.
    pub network_node: bool,
}

#[derive(Serialize, Deserialize)]
struct Joined {
    controller_url: String,
    name: String,
    advertise_ip: String,
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("agent-contract")
}

/// The local address this machine reaches `url` from.
fn route_to(url: &str) -> anyhow::Result<IpAddr> {
    let u = reqwest::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    let host = u.host_str().context("the join URL has no host")?;
    let port = u.port_or_known_default().unwrap_or(super::DEFAULT_PORT);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let s = std::net::TcpStream::connect_timeout(
        &std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
            .next()
            .context("the controller's name resolves to nothing")?,
        std::time::Duration::from_secs(5),
    )
    .with_context(|| format!("reaching the controller at {url}"))?;
    Ok(s.local_addr()?.ip())
}

/// Enrols this host with a join token; returns its identity and the CA.
pub async fn enrol(
    url: &str,
    token: &str,
    name: &str,
    advertise_ip: IpAddr,
) -> anyhow::Result<(Identity, String)> {
    let (_, ca_sha) = super::parse_token(token)
        .context("the join token is malformed (expected what `ferrostack host add` printed)")?;
    // The CA is fetched without verification, then pinned by the token.
    let insecure = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let ca_pem = insecure
        .get(format!("{}/contract/v1/ca", url.trim_end_matches('/')))
        .send()
        .await
        .with_context(|| format!("reaching the controller at {url}"))?
        .error_for_status()?
        .text()
        .await?;
    let ca_der = pki::parse_pem_cert(&ca_pem)?;
    if pki::fingerprint(&ca_der) != ca_sha {
        anyhow::bail!(
            "the controller at {url} is not the cloud this token was made for (its CA does not match the token)"
        );
    }
    let (key, csr) = pki::host_key_and_csr(name)?;
    let resp = super::client(&ca_pem, None)?
        .post(format!("{}/contract/v1/enrol", url.trim_end_matches('/')))
        .json(&EnrolRequest {
            token: token.trim().to_owned(),
            name: name.to_owned(),
            csr,
            advertise_ip: advertise_ip.to_string(),
        })
        .send()
        .await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let why = resp
            .json::<ContractError>()
            .await
            .map(|e| e.error)
            .unwrap_or_else(|_| status.to_string());
        anyhow::bail!("the controller refused to enrol this host: {why}");
    }
    let cert = resp.json::<EnrolResponse>().await?.certificate;
    Ok((
        Identity {
            cert_pem: cert,
            key_pem: key.serialize_pem(),
        },
        ca_pem,
    ))
}

/// Loads this host's enrolment, or enrols it with the token.
async fn enrolment(j: &JoinConfig) -> anyhow::Result<(Identity, String, Joined)> {
    let d = dir(&j.cfg.state_dir);
    let read = |f: &str| std::fs::read_to_string(d.join(f));
    if let (Ok(cert_pem), Ok(key_pem), Ok(ca), Ok(joined)) = (
        read("host.pem"),
        read("host.key"),
        read("ca.pem"),
        read("joined.json"),
    ) {
        let joined: Joined = serde_json::from_str(&joined).context("reading joined.json")?;
        if let Some(n) = &j.cfg.host_name {
            if *n != joined.name {
                anyhow::bail!(
                    "this state directory was enrolled as host {:?}, not {n:?}",
                    joined.name
                );
            }
        }
        return Ok((Identity { cert_pem, key_pem }, ca, joined));
    }
    let token = j.token.as_deref().context(
        "this host is not enrolled yet: pass --token (from `ferrostack host add NAME` on a controller)",
    )?;
    let name = j
        .cfg
        .host_name
        .clone()
        .unwrap_or_else(crate::host::hostname);
    let ip = match j.advertise_ip {
        Some(ip) => ip,
        None => route_to(&j.controller_url)?,
    };
    let (id, ca) = enrol(&j.controller_url, token, &name, ip).await?;
    std::fs::create_dir_all(&d)?;
    crate::files::write_private(&d.join("host.key"), id.key_pem.as_bytes())?;
    crate::files::write_private(&d.join("host.pem"), id.cert_pem.as_bytes())?;
    crate::files::write_private(&d.join("ca.pem"), ca.as_bytes())?;
    let joined = Joined {
        controller_url: j.controller_url.clone(),
        name,
        advertise_ip: ip.to_string(),
    };
    crate::files::write_private(&d.join("joined.json"), &serde_json::to_vec(&joined)?)?;
    tracing::info!(host = %joined.name, controller = %j.controller_url, "host enrolled");
    Ok((id, ca, joined))
}

/// Enrols if needed, then runs the agent until `shutdown`.
pub async fn run(j: JoinConfig, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&j.cfg.state_dir)
        .with_context(|| format!("creating {}", j.cfg.state_dir.display()))?;
    let (identity, ca_pem, joined) = enrolment(&j).await?;
    let ip: IpAddr = joined
        .advertise_ip
        .parse()
        .context("joined.json: advertise_ip")?;
    let listener = tokio::net::TcpListener::bind((ip, j.agent_port))
        .await
        .with_context(|| format!("binding the agent's endpoint to {ip}:{}", j.agent_port))?;
    let port = listener.local_addr()?.port();
    let agent_url = if ip.is_ipv6() {
        format!("https://[{ip}]:{port}")
    } else {
        format!("https://{ip}:{port}")
    };
    let ca_der = pki::parse_pem_cert(&ca_pem)?;
    let link = Arc::new(RemoteLink {
        url: joined.controller_url.clone(),
        client: super::client(&ca_pem, Some(&identity))?,
        image_cache: j.cfg.state_dir.join("image-cache"),
    });
    let mut cfg = j.cfg.clone();
    cfg.host_name = Some(joined.name.clone());
    cfg.bind = ip;
    let agent = crate::cloud::make_agent(&cfg, link, Some(agent_url.clone()), j.network_node)
        .await
        .context("the hypervisor driver could not start")?;
    let tls = super::server_config(&identity, &ca_der, false)?;
    let serving = tokio::spawn(crate::serve::serve_tls_with_peer(
        listener,
        agent_http::router(agent.clone(), j.cfg.state_dir.join("snapshots")),
        tls,
        shutdown.clone(),
    ));
    tracing::info!(host = %joined.name, controller = %joined.controller_url, agent = %agent_url, "agent running");
    agent.run(shutdown).await;
    let _ = serving.await;
    Ok(())
}
