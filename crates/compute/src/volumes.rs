//! What compute needs of the volume service, as a narrow trait (the
//! binary wires the real one), and compute's own record of a server's
//! volumes: its block device mappings.
//!
//! A mapping's `state` is what the host has been asked and has said:
//!
//! ```text
//!  attaching ──(host reports the disk plugged)──▶ attached
//!  attached  ──(detach asked)──▶ detaching ──(host reports it gone)──▶ detached
//! ```
//!
//! The host is asked to plug the mappings in `attaching` and `attached`;
//! every write to the mappings also touches the server's row, which bumps
//! the host's desired-state generation in the same transaction.

use ferro_common::{time, AuthContext};
use sqlx::{Any, Transaction};

use crate::error::{ComputeError, Result};

/// Why the volume service refused.
#[derive(Debug, thiserror::Error)]
pub enum VolumeCallError {
    #[error("{0}")]
    NotFound(String),
    /// The volume's state or the request forbids it (Cinder's 400s).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    Other(String),
}

impl From<VolumeCallError> for ComputeError {
    fn from(e: VolumeCallError) -> Self {
        match e {
            VolumeCallError::NotFound(m) => ComputeError::NotFound(m),
            VolumeCallError::Invalid(m) => ComputeError::BadRequest(m),
            VolumeCallError::Denied(m) => ComputeError::Forbidden(m),
            VolumeCallError::Other(m) => ComputeError::Internal(format!("volume service: {m}")),
        }
    }
}

/// A volume as compute sees it.
#[derive(Clone, Debug)]
pub struct VolumeInfo {
    pub id: String,
    pub status: String,
    pub size: i64,
    pub multiattach: bool,
}

/// A volume as Nova's `os-volumes` proxy shows it.
#[derive(Clone, Debug)]
pub struct ProxyVolume {
    pub id: String,
    pub status: String,
    pub size: i64,
    pub availability_zone: String,
    /// Unix microseconds.
    pub created_at: i64,
    pub name: Option<String>,
    pub description: Option<String>,
    pub volume_type: String,
    pub snapshot_id: Option<String>,
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// A snapshot as Nova's `os-snapshots` proxy shows it.
#[derive(Clone, Debug)]
pub struct ProxySnapshot {
    pub id: String,
    pub volume_id: String,
    pub status: String,
    pub size: i64,
    pub created_at: i64,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// What an `os-volumes` create asks for.
#[derive(Clone, Debug, Default)]
pub struct ProxyVolumeCreate {
    /// As the request gave it (the volume service checks it).
    pub size: Option<serde_json::Value>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    pub snapshot_id: Option<String>,
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
}

/// Where a host opens a volume.
#[derive(Clone, Debug)]
pub struct VolumeConnection {
    pub path: String,
    pub format: String,
}

/// What a volume made for a server is made from (a block device mapping
/// of `server create`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "id")]
pub enum NewVolume {
    Image(String),
    Snapshot(String),
    Blank,
}

#[async_trait::async_trait]
pub trait VolumeApi: Send + Sync + 'static {
    /// Makes volume `volume_id` for a server, on behalf of `ctx` (making
    /// the same id again is a no-op). `size` in GiB; `None` takes the
    /// source's.
    async fn create_for_server(
        &self,
        ctx: &AuthContext,
        volume_id: &str,
        name: &str,
        source: &NewVolume,
        size: Option<i64>,
    ) -> Result<(), VolumeCallError>;
    /// The volume, if `ctx` may see it.
    async fn volume(&self, ctx: &AuthContext, id: &str) -> Result<VolumeInfo, VolumeCallError>;
    /// Reserves the volume for the server under attachment `attachment_id`
    /// (repeating it is a no-op).
    async fn reserve(
        &self,
        ctx: &AuthContext,
        attachment_id: &str,
        volume_id: &str,
        server_id: &str,
    ) -> Result<(), VolumeCallError>;
    /// The host is about to plug it in.
    async fn connect(
        &self,
        attachment_id: &str,
        host: &str,
        device: &str,
    ) -> Result<VolumeConnection, VolumeCallError>;
    /// How a host opens the volume (no state change).
    fn connection(&self, volume_id: &str) -> VolumeConnection;
    /// The sizes in GiB of these volumes (those that exist).
    async fn sizes(
        &self,
        volume_ids: &[String],
    ) -> Result<std::collections::HashMap<String, i64>, VolumeCallError>;
    async fn complete(&self, attachment_id: &str) -> Result<(), VolumeCallError>;
    async fn begin_detaching(&self, attachment_id: &str) -> Result<(), VolumeCallError>;
    /// Ends the attachment (absent is fine).
    async fn release(&self, attachment_id: &str) -> Result<(), VolumeCallError>;
    /// Snapshots volume `volume_id` (in use or not: a crash-consistent
    /// copy) as snapshot `snapshot_id`, for an image of a server; asking
    /// again for the same id is a no-op. Returns the snapshot's status.
    async fn snapshot_for_image(
        &self,
        ctx: &AuthContext,
        snapshot_id: &str,
        volume_id: &str,
        name: &str,
    ) -> Result<String, VolumeCallError>;
    /// Deletes such a snapshot (absent is fine); `false` while it is still
    /// being made.
    async fn delete_snapshot(
        &self,
        ctx: &AuthContext,
        snapshot_id: &str,
    ) -> Result<bool, VolumeCallError>;
    /// Deletes a volume whose server went with `delete_on_termination`
    /// (one still in use elsewhere is kept).
    async fn delete_on_termination(&self, volume_id: &str) -> Result<(), VolumeCallError>;

    // ---- what the os-volumes and os-snapshots proxies ask, for `ctx` ----

    /// The volumes `ctx` sees, newest first.
    async fn list_volumes(&self, ctx: &AuthContext) -> Result<Vec<ProxyVolume>, VolumeCallError>;
    async fn show_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<ProxyVolume, VolumeCallError>;
    async fn create_volume(
        &self,
        ctx: &AuthContext,
        req: ProxyVolumeCreate,
    ) -> Result<ProxyVolume, VolumeCallError>;
    async fn delete_volume(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeCallError>;
    /// The snapshots `ctx` sees, newest first.
    async fn list_snapshots(
        &self,
        ctx: &AuthContext,
    ) -> Result<Vec<ProxySnapshot>, VolumeCallError>;
    async fn show_snapshot(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<ProxySnapshot, VolumeCallError>;
    async fn create_snapshot(
        &self,
        ctx: &AuthContext,
        volume_id: &str,
        name: Option<String>,
        description: Option<String>,
        force: bool,
    ) -> Result<ProxySnapshot, VolumeCallError>;
    async fn delete_user_snapshot(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<(), VolumeCallError>;
}

/// One of a server's volumes.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Mapping {
    pub id: String,
    pub server_id: String,
    pub volume_id: String,
    pub device: String,
    pub state: String,
    pub delete_on_termination: i64,
    pub created_at: i64,
}

pub async fn mappings_of(pool: &sqlx::AnyPool, server_id: &str) -> Result<Vec<Mapping>> {
    Ok(sqlx::query_as(
        "SELECT * FROM block_device_mappings WHERE server_id = $1 ORDER BY created_at, id",
    )
    .bind(server_id)
    .fetch_all(pool)
    .await?)
}

pub async fn mapping(pool: &sqlx::AnyPool, id: &str) -> Result<Option<Mapping>> {
    Ok(
        sqlx::query_as("SELECT * FROM block_device_mappings WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// The volumes of these servers, in attach order: (volume id,
/// delete_on_termination) by server id, as `volumes_attached` shows them.
pub async fn attached_to(
    pool: &sqlx::AnyPool,
    server_ids: &[String],
) -> Result<std::collections::HashMap<String, Vec<(String, bool)>>> {
    let mut out: std::collections::HashMap<String, Vec<(String, bool)>> = Default::default();
    for chunk in server_ids.chunks(500) {
        let sql = format!(
            "SELECT server_id, volume_id, delete_on_termination FROM block_device_mappings \
             WHERE server_id IN ({}) ORDER BY created_at, id",
            ferro_store::marks(1, chunk.len())
        );
        let mut q = sqlx::query_as::<_, (String, String, i64)>(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for (server, volume, dot) in q.fetch_all(pool).await? {
            out.entry(server).or_default().push((volume, dot != 0));
        }
    }
    Ok(out)
}

/// Every plugged-or-plugging mapping of the servers of a host, by server.
pub async fn wanted_on(
    pool: &sqlx::AnyPool,
    host: &str,
) -> Result<std::collections::HashMap<String, Vec<Mapping>>> {
    let rows: Vec<Mapping> = sqlx::query_as(
        "SELECT b.* FROM block_device_mappings b JOIN servers s ON s.id = b.server_id \
         WHERE s.host = $1 AND b.state IN ('attaching', 'attached') ORDER BY b.created_at, b.id",
    )
    .bind(host)
    .fetch_all(pool)
    .await?;
    let mut out: std::collections::HashMap<String, Vec<Mapping>> = Default::default();
    for m in rows {
        out.entry(m.server_id.clone()).or_default().push(m);
    }
    Ok(out)
}

/// Touches the server's row: its host's desired-state generation moves in
/// the same transaction as a change of its mappings.
pub async fn touch_server(tx: &mut Transaction<'_, Any>, server_id: &str) -> Result<()> {
    sqlx::query("UPDATE servers SET updated_at = $1 WHERE id = $2")
        .bind(time::now_micros())
        .bind(server_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The next free `/dev/vdX` after the root disk (`vda`).
pub fn next_device(taken: &[String]) -> Option<String> {
    (b'b'..=b'z')
        .map(|c| format!("/dev/vd{}", c as char))
        .find(|d| !taken.iter().any(|t| t == d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fill_the_first_gap() {
        assert_eq!(next_device(&[]).as_deref(), Some("/dev/vdb"));
        let taken = vec!["/dev/vdb".to_string(), "/dev/vdd".to_string()];
        assert_eq!(next_device(&taken).as_deref(), Some("/dev/vdc"));
        let all: Vec<String> = (b'b'..=b'z')
            .map(|c| format!("/dev/vd{}", c as char))
            .collect();
        assert_eq!(next_device(&all), None);
    }
}
