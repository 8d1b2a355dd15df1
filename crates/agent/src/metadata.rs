//! The metadata service at 169.254.169.254, inside each network's DHCP
//! namespace: OpenStack's `openstack/<version>/…` tree and the EC2
//! `<version>/meta-data/…` tree that cloud-init reads. Each instance is
//! told about itself only: the caller is found by (network, source
//! address), which the dataplane's anti-spoofing makes trustworthy.
//!
//! The listening socket is made inside the namespace by a short-lived
//! thread that enters it (`setns`); the server itself runs on the agent's
//! runtime, so no process per network is needed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::configdrive;
use crate::driver::{DriverError, Result};
use crate::spec::{ControlPlane, MetadataTarget};

pub struct MetadataService {
    control: Arc<dyn ControlPlane>,
    servers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

#[derive(Clone)]
struct Served {
    control: Arc<dyn ControlPlane>,
    network_id: String,
}

/// Dated versions listed, oldest first, then `latest`.
const OPENSTACK_VERSIONS: &[&str] = &[
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "latest",
];
const EC2_VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "latest",
];

impl MetadataService {
    pub fn new(control: Arc<dyn ControlPlane>) -> Self {
        MetadataService {
            control,
            servers: Mutex::new(HashMap::new()),
        }
    }

    /// Serves `network_id` inside namespace `ns`, unless already serving.
    pub async fn serve(&self, network_id: &str, ns: &str) -> Result<()> {
        if let Ok(s) = self.servers.lock() {
            if s.get(network_id).is_some_and(|h| !h.is_finished()) {
                return Ok(());
            }
        }
        let path = format!("/run/netns/{ns}");
        let listener =
            tokio::task::spawn_blocking(move || -> std::io::Result<std::net::TcpListener> {
                let f = std::fs::File::open(&path)?;
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                let l = std::net::TcpListener::bind((configdrive_ip(), 80))?;
                l.set_nonblocking(true)?;
                Ok(l)
            })
            .await
            .map_err(|e| DriverError::Failed(format!("metadata listener thread: {e}")))?
            .map_err(|source| DriverError::Io {
                what: format!("metadata listener in {ns}"),
                source,
            })?;
        let listener =
            tokio::net::TcpListener::from_std(listener).map_err(|source| DriverError::Io {
                what: "metadata listener".into(),
                source,
            })?;
        let app = axum::Router::new().fallback(answer).with_state(Served {
            control: self.control.clone(),
            network_id: network_id.to_owned(),
        });
        let id = network_id.to_owned();
        let handle = tokio::spawn(async move {
            if let Err(e) = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            {
                tracing::warn!(network_id = %id, error = %e, "metadata service stopped");
            }
        });
        tracing::info!(
            network_id,
            namespace = ns,
            "metadata service listening on 169.254.169.254:80"
        );
        if let Ok(mut s) = self.servers.lock() {
            s.insert(network_id.to_owned(), handle);
        }
        Ok(())
    }

    pub fn stop(&self, network_id: &str) {
        if let Some(h) = self
            .servers
            .lock()
            .ok()
            .and_then(|mut s| s.remove(network_id))
        {
            h.abort();
        }
    }
}

fn configdrive_ip() -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(169, 254, 169, 254)
}

fn text(body: impl Into<String>) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/plain")],
        body.into(),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 Not Found").into_response()
}

async fn answer(
    State(s): State<Served>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
) -> Response {
    let ip = peer.ip().to_string();
    let target = match s.control.instance_at(&s.network_id, &ip).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::info!(network_id = %s.network_id, %ip, "metadata request from an unknown address");
            return not_found();
        }
        Err(e) => {
            tracing::warn!(error = %e, "metadata lookup failed");
            return (StatusCode::SERVICE_UNAVAILABLE, "metadata unavailable").into_response();
        }
    };
    let path = uri.path().trim_start_matches('/');
    respond(&target, path)
}

/// The answer to `path` (without its leading `/`) for one instance.
pub fn respond(t: &MetadataTarget, path: &str) -> Response {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [] => text(EC2_VERSIONS.join("\n")),
        ["openstack"] => text(OPENSTACK_VERSIONS.join("\n")),
        ["openstack", v, rest @ ..] if OPENSTACK_VERSIONS.contains(v) => openstack(t, rest),
        [v, rest @ ..] if EC2_VERSIONS.contains(v) => ec2(t, rest),
        _ => not_found(),
    }
}

fn openstack(t: &MetadataTarget, rest: &[&str]) -> Response {
    let spec = &t.spec;
    match rest {
        [] => text(
            "meta_data.json\nnetwork_data.json\nuser_data\nvendor_data.json\nvendor_data2.json",
        ),
        ["meta_data.json"] => axum::Json(configdrive::meta_data(spec)).into_response(),
        ["network_data.json"] => axum::Json(configdrive::network_data(spec)).into_response(),
        ["vendor_data.json"] | ["vendor_data2.json"] => axum::Json(json!({})).into_response(),
        ["user_data"] => match configdrive::user_data(spec) {
            Some(u) => (
                StatusCode::OK,
                [("content-type", "application/octet-stream")],
                u,
            )
                .into_response(),
            None => not_found(),
        },
        _ => not_found(),
    }
}

fn ec2(t: &MetadataTarget, rest: &[&str]) -> Response {
    let spec = &t.spec;
    match rest {
        [] => text("meta-data/\nuser-data"),
        ["user-data"] => match configdrive::user_data(spec) {
            Some(u) => (StatusCode::OK, u).into_response(),
            None => not_found(),
        },
        ["meta-data", md @ ..] => {
            let hostname = format!("{}.{}", spec.hostname, crate::dataplane::dhcp::DOMAIN);
            match md {
                [] => {
                    let mut items = vec![
                        "ami-id",
                        "ami-launch-index",
                        "hostname",
                        "instance-id",
                        "instance-type",
                        "local-hostname",
                        "local-ipv4",
                        "placement/",
                        "reservation-id",
                        "security-groups",
                    ];
                    if t.floating_ip.is_some() {
                        items.push("public-ipv4");
                    }
                    if spec.key_name.is_some() {
                        items.push("public-keys/");
                    }
                    text(items.join("\n"))
                }
                ["ami-id"] => text(spec.image_id.clone()),
                ["ami-launch-index"] => text(spec.launch_index.to_string()),
                ["hostname"] | ["local-hostname"] => text(hostname),
                ["instance-id"] => text(spec.name.clone()),
                ["instance-type"] => text(t.flavor_name.clone()),
                ["local-ipv4"] => text(t.fixed_ip.clone()),
                ["public-ipv4"] => t.floating_ip.clone().map(text).unwrap_or_else(not_found),
                ["placement"] => text("availability-zone"),
                ["placement", "availability-zone"] => text(spec.availability_zone.clone()),
                ["reservation-id"] => text(spec.reservation_id.clone()),
                ["security-groups"] => text(t.security_groups.join("\n")),
                ["public-keys"] => match &spec.key_name {
                    Some(k) => text(format!("0={k}")),
                    None => not_found(),
                },
                ["public-keys", "0"] if spec.public_key.is_some() => text("openssh-key"),
                ["public-keys", "0", "openssh-key"] => {
                    spec.public_key.clone().map(text).unwrap_or_else(not_found)
                }
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}
