//! The controller's side of the contract: enrolment, and the
//! [`ControlPlane`] calls of joined agents, authenticated by their
//! certificates.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferro_agent_api::{ControlPlane, HostInfo, Report};
use ferro_compute::{ComputeService, LocalLink};
use ferro_store::Db;
use serde::Deserialize;

use super::heartbeats::Heartbeats;
use super::pki::{self, Ca};
use super::store::{self, JoinError};
use super::{agent_http, ContractError, EnrolRequest, EnrolResponse};
use crate::serve::PeerCert;

pub struct ContractState {
    pub compute: Arc<ComputeService>,
    pub db: Db,
    pub ca: Arc<Ca>,
    /// How this controller reaches agents (its `controller` certificate).
    pub agents: reqwest::Client,
    pub heartbeats: Heartbeats,
    /// Certificate fingerprint → enrolled host, as read recently.
    pub enrolments: Mutex<HashMap<String, (String, Instant)>>,
}

/// How long an enrolment read from the database is trusted: a host removed
/// with `ferrostack host remove` (perhaps by another process) is refused at
/// most this much later.
const ENROLMENT_TTL: Duration = Duration::from_secs(5);

type St = State<Arc<ContractState>>;

fn refuse(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ContractError { error: msg.into() })).into_response()
}

/// The enrolled host a request comes from, or the refusal to send.
async fn host_of(st: &ContractState, peer: &PeerCert) -> Result<String, Response> {
    let unknown = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            "a certificate of an enrolled host is required",
        )
    };
    let Some(cert) = &peer.0 else {
        return Err(unknown());
    };
    let cached = st
        .enrolments
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&cert.fingerprint)
        .filter(|(_, at)| at.elapsed() < ENROLMENT_TTL)
        .map(|(h, _)| h.clone());
    let host = match cached {
        Some(h) => h,
        None => {
            let h = store::host_of_cert(&st.db, &cert.fingerprint)
                .await
                .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")))?
                .ok_or_else(unknown)?;
            st.enrolments
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(cert.fingerprint.clone(), (h.clone(), Instant::now()));
            h
        }
    };
    if cert.common_name.as_deref() != Some(pki::host_cn(&host).as_str()) {
        return Err(unknown());
    }
    Ok(host)
}

/// The in-process link the host's calls go through. Only the desired
/// state depends on the network-node role, so only it looks the role up.
fn link(st: &ContractState, network_node: bool) -> LocalLink {
    LocalLink {
        compute: st.compute.clone(),
        network_node,
    }
}

fn failed(e: impl std::fmt::Display) -> Response {
    refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub fn router(state: Arc<ContractState>) -> Router {
    Router::new()
        .route("/contract/v1/ca", get(ca))
        .route("/contract/v1/enrol", post(enrol))
        .route("/contract/v1/register", post(register))
        .route("/contract/v1/heartbeat", post(heartbeat))
        .route("/contract/v1/desired", get(desired))
        .route("/contract/v1/reports", post(reports))
        .route("/contract/v1/balancer-reports", post(balancer_reports))
        .route("/contract/v1/images/{id}", get(image))
        .route("/contract/v1/migrations/{id}/disk", get(migration_disk))
        .route("/contract/v1/instance-at", get(instance_at))
        .route("/contract/v1/instance-password", post(instance_password))
        .with_state(state)
}

async fn ca(State(st): St) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        st.ca.cert_pem.clone(),
    )
        .into_response()
}

async fn enrol(State(st): St, Json(req): Json<EnrolRequest>) -> Response {
    let Some((secret, ca_sha)) = super::parse_token(&req.token) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            JoinError::UnknownToken.to_string(),
        );
    };
    if ca_sha != st.ca.fingerprint() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            JoinError::UnknownToken.to_string(),
        );
    }
    if !store::valid_host_name(&req.name) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("{:?} is not a valid host name", req.name),
        );
    }
    let Ok(ip) = req.advertise_ip.parse::<IpAddr>() else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("{:?} is not an IP address", req.advertise_ip),
        );
    };
    let cert = match st.ca.sign_host(&req.name, &req.csr, ip) {
        Ok(c) => c,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let der = match pki::parse_pem_cert(&cert) {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    match store::consume_token(&st.db, secret, &req.name, &pki::fingerprint(&der)).await {
        Ok(()) => {
            tracing::info!(host = %req.name, advertise_ip = %ip, "host enrolled");
            Json(EnrolResponse { certificate: cert }).into_response()
        }
        Err(JoinError::Db(e)) => refuse(StatusCode::SERVICE_UNAVAILABLE, format!("database: {e}")),
        Err(e @ JoinError::Bad(_)) => refuse(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => {
            tracing::warn!(host = %req.name, error = %e, "join refused");
            refuse(StatusCode::UNAUTHORIZED, e.to_string())
        }
    }
}

async fn register(
    State(st): St,
    Extension(peer): Extension<PeerCert>,
    Json(info): Json<HostInfo>,
) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    if info.name != host {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("this certificate speaks for host {host}, not {}", info.name),
        );
    }
    if let Err(e) = link(&st, false).register(&info).await {
        return failed(e);
    }
    if let Some(url) = &info.agent_url {
        agent_http::attach(&st.compute, &host, url, &st.agents);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn heartbeat(State(st): St, Extension(peer): Extension<PeerCert>) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    st.heartbeats.note(&host);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Applied {
    #[serde(default)]
    applied: i64,
}

async fn desired(
    State(st): St,
    Extension(peer): Extension<PeerCert>,
    Query(q): Query<Applied>,
) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    match link(
        &st,
        store::is_network_node(&st.db, &host).await.unwrap_or(false),
    )
    .desired(&host, q.applied)
    .await
    {
        Ok(d) => Json(d).into_response(),
        Err(e) => failed(e),
    }
}

async fn reports(
    State(st): St,
    Extension(peer): Extension<PeerCert>,
    Json(reports): Json<Vec<Report>>,
) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    match link(&st, false).report(&host, reports).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(e),
    }
}

async fn balancer_reports(
    State(st): St,
    Extension(peer): Extension<PeerCert>,
    Json(reports): Json<Vec<ferro_agent_api::balancer::BalancerReport>>,
) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    match link(&st, false).report_balancers(&host, reports).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(e),
    }
}

async fn image(
    State(st): St,
    Extension(peer): Extension<PeerCert>,
    Path(id): Path<String>,
) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let (path, format) = match link(&st, false).image_file(&id).await {
        Ok(x) => x,
        Err(e) => return refuse(StatusCode::NOT_FOUND, e.to_string()),
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => return failed(format!("opening image {id}: {e}")),
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    tracing::info!(host = %host, image_id = %id, bytes = len, "sending an image to a host");
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::HeaderName::from_static("x-disk-format"), format),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response()
}

/// The disk copy of a server moving to the asking host: only the host the
/// server now runs on gets it.
async fn migration_disk(
    State(st): St,
    Extension(peer): Extension<PeerCert>,
    Path(id): Path<String>,
) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    let on = st
        .compute
        .server(&id)
        .await
        .ok()
        .flatten()
        .and_then(|s| s.host);
    if on.as_deref() != Some(host.as_str()) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("instance {id} is not moving to host {host}"),
        );
    }
    let path = match link(&st, false).migration_disk(&id).await {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::NOT_FOUND, e.to_string()),
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => return failed(format!("opening the disk copy of {id}: {e}")),
    };
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    tracing::info!(host = %host, server_id = %id, bytes = len, "sending a migrated disk to its new host");
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::HeaderName::from_static("x-disk-format"),
                "qcow2".to_owned(),
            ),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response()
}

#[derive(Deserialize)]
struct At {
    network_id: String,
    ip: String,
}

async fn instance_at(
    State(st): St,
    Extension(peer): Extension<PeerCert>,
    Query(at): Query<At>,
) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    // Only the host serving metadata learns about other hosts' instances.
    if !store::is_network_node(&st.db, &host).await.unwrap_or(false) {
        return refuse(
            StatusCode::FORBIDDEN,
            "only a network node serves instance metadata",
        );
    }
    match link(&st, true).instance_at(&at.network_id, &at.ip).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct PostedPassword {
    network_id: String,
    ip: String,
    password: String,
}

/// A password an instance posted to the metadata service its network node
/// serves; like metadata, only a network node may speak for instances.
async fn instance_password(
    State(st): St,
    Extension(peer): Extension<PeerCert>,
    Json(p): Json<PostedPassword>,
) -> Response {
    let host = match host_of(&st, &peer).await {
        Ok(h) => h,
        Err(r) => return r,
    };
    if !store::is_network_node(&st.db, &host).await.unwrap_or(false) {
        return refuse(
            StatusCode::FORBIDDEN,
            "only a network node serves instance metadata",
        );
    }
    if p.password.len() > ferro_compute::server_password::MAX_PASSWORD_BYTES {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the password is longer than 256 bytes",
        );
    }
    match link(&st, true)
        .post_password(&p.network_id, &p.ip, &p.password)
        .await
    {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => failed(e),
    }
}
