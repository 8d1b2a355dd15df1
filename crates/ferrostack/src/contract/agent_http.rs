//! The agent's own endpoint, and the controller's client for it: what a
//! controller asks of a joined host directly (console logs, "your desired
//! state changed"). Only a certificate whose name is `controller` is served.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferro_agent_api::spec::{Incoming, InstanceSpec, LiveStats};
use ferro_agent_api::{HostAgent, LinkError};
use ferro_compute::ComputeService;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::pki;
use super::ContractError;
use crate::serve::PeerCert;

/// A joined host's agent as the controller sees it.
pub struct RemoteAgent {
    host: String,
    url: String,
    client: reqwest::Client,
    /// A wake-up is on its way: more wakes meanwhile fold into it.
    waking: Arc<AtomicBool>,
    again: Arc<AtomicBool>,
}

/// Makes the agent of `host` at `url` reachable from this controller.
pub fn attach(compute: &ComputeService, host: &str, url: &str, client: &reqwest::Client) {
    compute.attach_agent(
        host,
        Arc::new(RemoteAgent {
            host: host.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
            client: client.clone(),
            waking: Arc::new(AtomicBool::new(false)),
            again: Arc::new(AtomicBool::new(false)),
        }),
    );
}

fn link_err(e: impl std::fmt::Display) -> LinkError {
    LinkError(e.to_string())
}

impl RemoteAgent {
    /// POSTs `body` to `/agent/v1/PATH` and reads the JSON answer (a live
    /// migration's steps may take minutes).
    async fn call<B: serde::Serialize + ?Sized, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, LinkError> {
        let resp = self
            .client
            .post(format!("{}/agent/v1/{path}", self.url))
            .timeout(std::time::Duration::from_secs(3600))
            .json(body)
            .send()
            .await
            .map_err(link_err)?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body: Option<ContractError> = resp.json().await.ok();
            return Err(LinkError(match body {
                Some(b) => b.error,
                None => format!("host {} answered {status}", self.host),
            }));
        }
        resp.json().await.map_err(link_err)
    }
}

#[async_trait::async_trait]
impl HostAgent for RemoteAgent {
    async fn console_log(&self, id: &str, lines: Option<usize>) -> Result<String, LinkError> {
        let mut req = self
            .client
            .get(format!("{}/agent/v1/console/{id}", self.url));
        if let Some(n) = lines {
            req = req.query(&[("lines", n)]);
        }
        let resp = req.send().await.map_err(link_err)?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body: Option<ContractError> = resp.json().await.ok();
            return Err(LinkError(match body {
                Some(b) => b.error,
                None => format!("host {} answered {status}", self.host),
            }));
        }
        resp.text().await.map_err(link_err)
    }

    async fn instances(&self) -> Result<Vec<String>, LinkError> {
        let resp = self
            .client
            .get(format!("{}/agent/v1/instances", self.url))
            .send()
            .await
            .map_err(link_err)?;
        if !resp.status().is_success() {
            return Err(LinkError(format!(
                "host {} answered {}",
                self.host,
                resp.status()
            )));
        }
        resp.json().await.map_err(link_err)
    }

    async fn snapshot(&self, id: &str, to: &std::path::Path) -> Result<(), LinkError> {
        let mut resp = self
            .client
            .post(format!("{}/agent/v1/snapshot/{id}", self.url))
            .timeout(std::time::Duration::from_secs(3600))
            .send()
            .await
            .map_err(link_err)?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body: Option<ContractError> = resp.json().await.ok();
            return Err(LinkError(match body {
                Some(b) => b.error,
                None => format!("host {} answered {status}", self.host),
            }));
        }
        let mut file = tokio::fs::File::create(to).await.map_err(link_err)?;
        while let Some(chunk) = resp.chunk().await.map_err(link_err)? {
            file.write_all(&chunk).await.map_err(link_err)?;
        }
        file.flush().await.map_err(link_err)?;
        Ok(())
    }

    async fn prepare_incoming(
        &self,
        spec: &InstanceSpec,
        listen_ip: &str,
    ) -> Result<Incoming, LinkError> {
        self.call(
            &format!("live/{}/incoming", spec.id),
            &serde_json::json!({"spec": spec, "listen_ip": listen_ip}),
        )
        .await
    }

    async fn migrate_out(&self, id: &str, to: &Incoming) -> Result<LiveStats, LinkError> {
        self.call(&format!("live/{id}/out"), to).await
    }

    async fn finish_incoming(&self, id: &str) -> Result<(), LinkError> {
        self.call(&format!("live/{id}/finish"), &serde_json::json!({}))
            .await
    }

    async fn cancel_migration(&self, id: &str) -> Result<(), LinkError> {
        self.call(&format!("live/{id}/cancel"), &serde_json::json!({}))
            .await
    }

    fn wake(&self) {
        if self.waking.swap(true, Ordering::AcqRel) {
            self.again.store(true, Ordering::Release);
            return;
        }
        let (client, url, host) = (self.client.clone(), self.url.clone(), self.host.clone());
        let (waking, again) = (self.waking.clone(), self.again.clone());
        tokio::spawn(async move {
            // At most a few rounds: each folds every wake that came meanwhile.
            for _ in 0..8 {
                again.store(false, Ordering::Release);
                let r = client
                    .post(format!("{url}/agent/v1/wake"))
                    .timeout(std::time::Duration::from_secs(5))
                    .send()
                    .await;
                if let Err(e) = r {
                    tracing::debug!(host = %host, error = %e, "waking a host failed; it will look at its next tick");
                }
                if !again.load(Ordering::Acquire) {
                    break;
                }
            }
            waking.store(false, Ordering::Release);
        });
    }
}

// ---- the agent's side ----

type St = State<Arc<dyn HostAgent>>;

/// Where a snapshot is written before it is streamed to the controller.
#[derive(Clone)]
struct Scratch(Arc<std::path::PathBuf>);

fn refuse(status: StatusCode, msg: &str) -> Response {
    (
        status,
        Json(ContractError {
            error: msg.to_owned(),
        }),
    )
        .into_response()
}

fn from_controller(peer: &PeerCert) -> bool {
    peer.0
        .as_ref()
        .and_then(|p| p.common_name.as_deref())
        .is_some_and(|cn| cn == pki::CONTROLLER_CN)
}

/// The agent's endpoint; snapshots pass through `scratch` (on the host's
/// state disk, as they may be large).
pub fn router(agent: Arc<dyn HostAgent>, scratch: std::path::PathBuf) -> Router {
    Router::new()
        .route("/agent/v1/wake", post(wake))
        .route("/agent/v1/console/{id}", get(console))
        .route("/agent/v1/instances", get(instances))
        .route("/agent/v1/snapshot/{id}", post(snapshot))
        .route("/agent/v1/live/{id}/incoming", post(live_incoming))
        .route("/agent/v1/live/{id}/out", post(live_out))
        .route("/agent/v1/live/{id}/finish", post(live_finish))
        .route("/agent/v1/live/{id}/cancel", post(live_cancel))
        .layer(Extension(Scratch(Arc::new(scratch))))
        .with_state(agent)
}

async fn snapshot(
    State(agent): St,
    Extension(peer): Extension<PeerCert>,
    Extension(Scratch(dir)): Extension<Scratch>,
    Path(id): Path<String>,
) -> Response {
    if !from_controller(&peer) {
        return refuse(StatusCode::FORBIDDEN, "only a controller may ask this");
    }
    if let Err(e) = tokio::fs::create_dir_all(&*dir).await {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    let path = dir.join(format!("{}.qcow2", ferro_common::ids::uuid_id()));
    if let Err(LinkError(e)) = agent.snapshot(&id, &path).await {
        let _ = tokio::fs::remove_file(&path).await;
        return refuse(StatusCode::CONFLICT, &e);
    }
    // Unlinked once open: the stream holds the data, nothing is left
    // behind however the transfer ends.
    let file = tokio::fs::File::open(&path).await;
    let _ = tokio::fs::remove_file(&path).await;
    match file {
        Ok(f) => {
            axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(f)).into_response()
        }
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[derive(Deserialize)]
struct IncomingAsk {
    spec: InstanceSpec,
    listen_ip: String,
}

fn answer<T: serde::Serialize>(r: Result<T, LinkError>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(LinkError(e)) => refuse(StatusCode::CONFLICT, &e),
    }
}

async fn live_incoming(
    State(agent): St,
    Extension(peer): Extension<PeerCert>,
    Path(id): Path<String>,
    Json(ask): Json<IncomingAsk>,
) -> Response {
    if !from_controller(&peer) {
        return refuse(StatusCode::FORBIDDEN, "only a controller may ask this");
    }
    if ask.spec.id != id {
        return refuse(StatusCode::BAD_REQUEST, "the spec is of another instance");
    }
    answer(agent.prepare_incoming(&ask.spec, &ask.listen_ip).await)
}

async fn live_out(
    State(agent): St,
    Extension(peer): Extension<PeerCert>,
    Path(id): Path<String>,
    Json(to): Json<Incoming>,
) -> Response {
    if !from_controller(&peer) {
        return refuse(StatusCode::FORBIDDEN, "only a controller may ask this");
    }
    answer(agent.migrate_out(&id, &to).await)
}

async fn live_finish(
    State(agent): St,
    Extension(peer): Extension<PeerCert>,
    Path(id): Path<String>,
) -> Response {
    if !from_controller(&peer) {
        return refuse(StatusCode::FORBIDDEN, "only a controller may ask this");
    }
    answer(agent.finish_incoming(&id).await)
}

async fn live_cancel(
    State(agent): St,
    Extension(peer): Extension<PeerCert>,
    Path(id): Path<String>,
) -> Response {
    if !from_controller(&peer) {
        return refuse(StatusCode::FORBIDDEN, "only a controller may ask this");
    }
    answer(agent.cancel_migration(&id).await)
}

async fn wake(State(agent): St, Extension(peer): Extension<PeerCert>) -> Response {
    if !from_controller(&peer) {
        return refuse(StatusCode::FORBIDDEN, "only a controller may ask this");
    }
    agent.wake();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Lines {
    lines: Option<usize>,
}

async fn console(
    State(agent): St,
    Extension(peer): Extension<PeerCert>,
    Path(id): Path<String>,
    Query(q): Query<Lines>,
) -> Response {
    if !from_controller(&peer) {
        return refuse(StatusCode::FORBIDDEN, "only a controller may ask this");
    }
    match agent.console_log(&id, q.lines).await {
        Ok(log) => log.into_response(),
        Err(LinkError(e)) => refuse(StatusCode::NOT_FOUND, &e),
    }
}

async fn instances(State(agent): St, Extension(peer): Extension<PeerCert>) -> Response {
    if !from_controller(&peer) {
        return refuse(StatusCode::FORBIDDEN, "only a controller may ask this");
    }
    match agent.instances().await {
        Ok(ids) => Json(ids).into_response(),
        Err(LinkError(e)) => refuse(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}
