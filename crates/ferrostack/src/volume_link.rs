//! Compute's narrow view of the volume service (`ferro_compute::volumes::
//! VolumeApi`) over the in-process `VolumeService`: the volume service's
//! errors become the semantic kinds compute maps to its own faults.

use std::sync::Arc;

use ferro_common::AuthContext;
use ferro_compute::volumes::{
    NewVolume, ProxySnapshot, ProxyVolume, ProxyVolumeCreate, VolumeApi, VolumeCallError,
    VolumeConnection, VolumeInfo,
};
use ferro_volume::model::Version;
use ferro_volume::model::{Snapshot, Volume};
use ferro_volume::service::{ListQuery, SnapshotCreate, VolumeCreate};
use ferro_volume::{Connection, VolumeError, VolumeService};

pub struct VolumeLink(pub Arc<VolumeService>);

fn call_error(e: VolumeError) -> VolumeCallError {
    match e {
        VolumeError::NotFound(m) => VolumeCallError::NotFound(m),
        VolumeError::BadRequest(m) | VolumeError::Conflict(m) => VolumeCallError::Invalid(m),
        VolumeError::Denied(d) => VolumeCallError::Denied(format!(
            "Policy doesn't allow {} to be performed.",
            d.action
        )),
        other => VolumeCallError::Other(format!("{other}: {other:?}")),
    }
}

impl VolumeLink {
    async fn proxy_volume(&self, v: Volume) -> Result<ProxyVolume, VolumeCallError> {
        let types = self.0.types().await.map_err(call_error)?;
        let volume_type = types
            .iter()
            .find(|t| t.id == v.volume_type_id)
            .map(|t| t.name.clone())
            .unwrap_or(v.volume_type_id.clone());
        Ok(ProxyVolume {
            metadata: serde_json::from_str(&v.metadata).unwrap_or_default(),
            id: v.id,
            status: v.status,
            size: v.size,
            availability_zone: v.availability_zone,
            created_at: v.created_at,
            name: v.name,
            description: v.description,
            volume_type,
            snapshot_id: v.snapshot_id,
        })
    }
}

fn proxy_snapshot(s: Snapshot) -> ProxySnapshot {
    ProxySnapshot {
        id: s.id,
        volume_id: s.volume_id,
        status: s.status,
        size: s.size,
        created_at: s.created_at,
        name: s.name,
        description: s.description,
    }
}

fn connection(c: Connection) -> VolumeConnection {
    VolumeConnection {
        path: c.path,
        format: c.format,
    }
}

#[async_trait::async_trait]
impl VolumeApi for VolumeLink {
    async fn create_for_server(
        &self,
        ctx: &AuthContext,
        volume_id: &str,
        name: &str,
        source: &NewVolume,
        size: Option<i64>,
    ) -> Result<(), VolumeCallError> {
        let mut req = VolumeCreate {
            id: Some(volume_id.to_owned()),
            name: Some(name.to_owned()),
            size: size.map(serde_json::Value::from),
            ..Default::default()
        };
        match source {
            NewVolume::Image(id) => req.image_ref = Some(id.clone()),
            NewVolume::Snapshot(id) => req.snapshot_id = Some(id.clone()),
            NewVolume::Blank => {}
        }
        self.0
            .create_volume(ctx, req)
            .await
            .map(|_| ())
            .map_err(call_error)
    }

    async fn volume(&self, ctx: &AuthContext, id: &str) -> Result<VolumeInfo, VolumeCallError> {
        let v = self.0.visible(ctx, id).await.map_err(call_error)?;
        Ok(VolumeInfo {
            id: v.id,
            status: v.status,
            size: v.size,
            multiattach: v.multiattach != 0,
        })
    }

    async fn reserve(
        &self,
        ctx: &AuthContext,
        attachment_id: &str,
        volume_id: &str,
        server_id: &str,
    ) -> Result<(), VolumeCallError> {
        self.0
            .reserve(ctx, attachment_id, volume_id, Some(server_id))
            .await
            .map(|_| ())
            .map_err(call_error)
    }

    async fn connect(
        &self,
        attachment_id: &str,
        host: &str,
        device: &str,
    ) -> Result<VolumeConnection, VolumeCallError> {
        self.0
            .connect(attachment_id, Some(host), Some(device))
            .await
            .map(connection)
            .map_err(call_error)
    }

    fn connection(&self, volume_id: &str) -> VolumeConnection {
        connection(self.0.connection(volume_id))
    }

    async fn sizes(
        &self,
        volume_ids: &[String],
    ) -> Result<std::collections::HashMap<String, i64>, VolumeCallError> {
        self.0.sizes(volume_ids).await.map_err(call_error)
    }

    async fn complete(&self, attachment_id: &str) -> Result<(), VolumeCallError> {
        self.0.complete(attachment_id).await.map_err(call_error)
    }

    async fn begin_detaching(&self, attachment_id: &str) -> Result<(), VolumeCallError> {
        self.0
            .begin_detaching(attachment_id)
            .await
            .map_err(call_error)
    }

    async fn release(&self, attachment_id: &str) -> Result<(), VolumeCallError> {
        self.0.release(attachment_id).await.map_err(call_error)
    }

    async fn delete_on_termination(&self, volume_id: &str) -> Result<(), VolumeCallError> {
        self.0
            .delete_on_termination(volume_id)
            .await
            .map_err(call_error)
    }

    async fn snapshot_for_image(
        &self,
        ctx: &AuthContext,
        snapshot_id: &str,
        volume_id: &str,
        name: &str,
    ) -> Result<String, VolumeCallError> {
        if let Some(s) = self.0.get_snapshot(snapshot_id).await.map_err(call_error)? {
            return Ok(s.status);
        }
        let req = SnapshotCreate {
            id: Some(snapshot_id.to_owned()),
            volume_id: volume_id.to_owned(),
            name: Some(name.to_owned()),
            display_name: None,
            description: None,
            force: Some(serde_json::Value::Bool(true)),
            metadata: None,
        };
        self.0
            .create_snapshot(ctx, req, Version(3, 0))
            .await
            .map(|s| s.status)
            .map_err(call_error)
    }

    async fn list_volumes(&self, ctx: &AuthContext) -> Result<Vec<ProxyVolume>, VolumeCallError> {
        let rows = self
            .0
            .list_volumes(ctx, &ListQuery::default())
            .await
            .map_err(call_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for v in rows {
            out.push(self.proxy_volume(v).await?);
        }
        Ok(out)
    }

    async fn show_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<ProxyVolume, VolumeCallError> {
        let v = self.0.visible(ctx, id).await.map_err(call_error)?;
        self.proxy_volume(v).await
    }

    async fn create_volume(
        &self,
        ctx: &AuthContext,
        req: ProxyVolumeCreate,
    ) -> Result<ProxyVolume, VolumeCallError> {
        let req = VolumeCreate {
            size: req.size,
            name: req.name,
            description: req.description,
            volume_type: req.volume_type,
            availability_zone: req.availability_zone,
            snapshot_id: req.snapshot_id,
            metadata: req.metadata,
            ..Default::default()
        };
        let v = self.0.create_volume(ctx, req).await.map_err(call_error)?;
        self.proxy_volume(v).await
    }

    async fn delete_volume(&self, ctx: &AuthContext, id: &str) -> Result<(), VolumeCallError> {
        self.0
            .delete_volume(ctx, id, false, false)
            .await
            .map_err(call_error)
    }

    async fn list_snapshots(
        &self,
        ctx: &AuthContext,
    ) -> Result<Vec<ProxySnapshot>, VolumeCallError> {
        Ok(self
            .0
            .list_snapshots(ctx, &ListQuery::default())
            .await
            .map_err(call_error)?
            .into_iter()
            .map(proxy_snapshot)
            .collect())
    }

    async fn show_snapshot(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<ProxySnapshot, VolumeCallError> {
        self.0
            .visible_snapshot(ctx, id)
            .await
            .map(proxy_snapshot)
            .map_err(call_error)
    }

    async fn create_snapshot(
        &self,
        ctx: &AuthContext,
        volume_id: &str,
        name: Option<String>,
        description: Option<String>,
        force: bool,
    ) -> Result<ProxySnapshot, VolumeCallError> {
        let req = SnapshotCreate {
            id: None,
            volume_id: volume_id.to_owned(),
            name,
            display_name: None,
            description,
            force: Some(serde_json::Value::Bool(force)),
            metadata: None,
        };
        self.0
            .create_snapshot(ctx, req, Version(3, 0))
            .await
            .map(proxy_snapshot)
            .map_err(call_error)
    }

    async fn delete_user_snapshot(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<(), VolumeCallError> {
        self.0.delete_snapshot(ctx, id).await.map_err(call_error)
    }

    async fn delete_snapshot(
        &self,
        ctx: &AuthContext,
        snapshot_id: &str,
    ) -> Result<bool, VolumeCallError> {
        match self.0.get_snapshot(snapshot_id).await.map_err(call_error)? {
            None => Ok(true),
            Some(s) if s.status == "creating" => Ok(false),
            Some(s) if s.status == "deleting" => Ok(true),
            Some(_) => self
                .0
                .delete_snapshot(ctx, snapshot_id)
                .await
                .map(|_| true)
                .map_err(call_error),
        }
    }
}
