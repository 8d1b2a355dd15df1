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

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::configdrive;
use crate::driver::{DriverError, Result};
use crate::spec::{ControlPlane, MetadataTarget, PasswordPost};

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
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let ip = peer.ip().to_string();
    let path = uri.path().trim_start_matches('/').to_owned();
    if method == Method::POST {
        return post(&s, &ip, &path, &body).await;
    }
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "GET only").into_response();
    }
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
    respond(&target, &path)
}

/// The one thing an instance may write: its password, once
/// (`POST openstack/<version>/password`, as Nova's metadata service takes it).
async fn post(s: &Served, ip: &str, path: &str, body: &[u8]) -> Response {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["openstack", v, "password"] if has_password(v) => {}
        _ => return (StatusCode::METHOD_NOT_ALLOWED, "GET only").into_response(),
    }
    if body.len() > MAX_PASSWORD_BYTES {
        return (StatusCode::BAD_REQUEST, "Request is too large.").into_response();
    }
    let password = String::from_utf8_lossy(body);
    match s.control.post_password(&s.network_id, ip, &password).await {
        Ok(PasswordPost::Stored) => StatusCode::OK.into_response(),
        Ok(PasswordPost::AlreadySet) => {
            (StatusCode::CONFLICT, "The password is already set.").into_response()
        }
        Ok(PasswordPost::Unknown) => not_found(),
        Err(e) => {
            tracing::warn!(error = %e, %ip, "storing a posted password failed");
            (StatusCode::SERVICE_UNAVAILABLE, "metadata unavailable").into_response()
        }
    }
}

/// The most an instance may post as its password (Nova's limit).
const MAX_PASSWORD_BYTES: usize = 256;

/// `password` exists from the 2013-04-04 version on.
fn has_password(version: &str) -> bool {
    OPENSTACK_VERSIONS.contains(&version) && version != "2012-08-10"
}

/// The answer to `path` (without its leading `/`) for one instance.
pub fn respond(t: &MetadataTarget, path: &str) -> Response {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [] => text(EC2_VERSIONS.join("\n")),
        ["openstack"] => text(OPENSTACK_VERSIONS.join("\n")),
        ["openstack", v, rest @ ..] if OPENSTACK_VERSIONS.contains(v) => openstack(t, v, rest),
        [v, rest @ ..] if EC2_VERSIONS.contains(v) => ec2(t, rest),
        _ => not_found(),
    }
}

fn openstack(t: &MetadataTarget, version: &str, rest: &[&str]) -> Response {
    let spec = &t.spec;
    match rest {
        [] => {
            let mut items = vec!["meta_data.json", "network_data.json", "user_data"];
            if has_password(version) {
                items.push("password");
            }
            items.extend(["vendor_data.json", "vendor_data2.json"]);
            text(items.join("\n"))
        }
        ["password"] if has_password(version) => text(t.password.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{DesiredState, HostInfo, LinkError, Report};
    use std::path::PathBuf;

    fn target(password: &str) -> MetadataTarget {
        serde_json::from_value(json!({
            "spec": {"id": "s1", "name": "s1", "display_name": "web", "hostname": "web", "project_id": "p",
                     "image_id": "i", "vcpus": 1, "memory_mb": 256, "disk_gb": 1, "key_name": null,
                     "public_key": null, "user_data": null, "metadata": {}, "availability_zone": "nova",
                     "launch_index": 0, "reservation_id": "r-1", "power": "running", "reboot_seq": 0,
                     "reboot_hard": false, "rebuild_seq": 0, "resize_seq": 0, "deleted": false},
            "fixed_ip": "10.0.0.5", "floating_ip": null, "flavor_name": "m1.tiny",
            "security_groups": ["default"], "password": password,
        }))
        .unwrap()
    }

    async fn body_of(r: Response) -> (StatusCode, String) {
        let status = r.status();
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&b).into_owned())
    }

    #[tokio::test]
    async fn the_password_is_listed_and_read_from_2013_04_04_on() {
        let t = target("ZW5jcnlwdGVk");
        let (_, list) = body_of(respond(&t, "openstack/latest")).await;
        assert!(list.lines().any(|l| l == "password"), "{list}");
        let (_, old) = body_of(respond(&t, "openstack/2012-08-10")).await;
        assert!(!old.lines().any(|l| l == "password"), "{old}");
        assert_eq!(
            body_of(respond(&t, "openstack/2013-04-04/password")).await,
            (StatusCode::OK, "ZW5jcnlwdGVk".to_owned())
        );
        assert_eq!(
            body_of(respond(&t, "openstack/2012-08-10/password"))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }

    /// A control plane that records posted passwords and knows one address.
    #[derive(Default)]
    struct Passwords(Mutex<Vec<(String, String, String)>>);

    #[async_trait::async_trait]
    impl ControlPlane for Passwords {
        async fn register(&self, _: &HostInfo) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn heartbeat(&self, _: &str) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn desired(&self, _: &str, _: i64) -> std::result::Result<DesiredState, LinkError> {
            Ok(DesiredState::default())
        }
        async fn report(&self, _: &str, _: Vec<Report>) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn report_balancers(
            &self,
            _: &str,
            _: Vec<crate::balancer::BalancerReport>,
        ) -> std::result::Result<(), LinkError> {
            Ok(())
        }
        async fn image_file(&self, _: &str) -> std::result::Result<(PathBuf, String), LinkError> {
            Err(LinkError("no images".into()))
        }
        async fn migration_disk(&self, _: &str) -> std::result::Result<PathBuf, LinkError> {
            Err(LinkError("no disks".into()))
        }
        async fn instance_at(
            &self,
            _: &str,
            _: &str,
        ) -> std::result::Result<Option<MetadataTarget>, LinkError> {
            Ok(None)
        }
        async fn post_password(
            &self,
            network_id: &str,
            ip: &str,
            password: &str,
        ) -> std::result::Result<PasswordPost, LinkError> {
            if ip != "10.0.0.5" {
                return Ok(PasswordPost::Unknown);
            }
            let mut posted = self.0.lock().unwrap();
            if !posted.is_empty() {
                return Ok(PasswordPost::AlreadySet);
            }
            posted.push((network_id.into(), ip.into(), password.into()));
            Ok(PasswordPost::Stored)
        }
    }

    #[tokio::test]
    async fn an_instance_posts_its_password_once() {
        let control = Arc::new(Passwords::default());
        let s = Served {
            control: control.clone(),
            network_id: "n1".into(),
        };
        let path = "openstack/latest/password";
        assert_eq!(
            body_of(post(&s, "10.0.0.5", path, b"c2VjcmV0").await)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            body_of(post(&s, "10.0.0.5", path, b"b3RoZXI=").await).await,
            (
                StatusCode::CONFLICT,
                "The password is already set.".to_owned()
            )
        );
        assert_eq!(
            control.0.lock().unwrap().clone(),
            vec![(
                "n1".to_owned(),
                "10.0.0.5".to_owned(),
                "c2VjcmV0".to_owned()
            )]
        );
        assert_eq!(
            body_of(post(&s, "10.0.0.5", path, &[b'x'; 257]).await).await,
            (StatusCode::BAD_REQUEST, "Request is too large.".to_owned())
        );
        assert_eq!(
            body_of(post(&s, "10.0.0.9", path, b"x").await).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            body_of(post(&s, "10.0.0.5", "openstack/latest/meta_data.json", b"x").await)
                .await
                .0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            body_of(post(&s, "10.0.0.5", "openstack/2012-08-10/password", b"x").await)
                .await
                .0,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
