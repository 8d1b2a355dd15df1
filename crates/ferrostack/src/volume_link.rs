//! Compute's narrow view of the volume service (`ferro_compute::volumes::
//! VolumeApi`) over the in-process `VolumeService`: the volume service's
//! errors become the semantic kinds compute maps to its own faults.

use std::sync::Arc;

use ferro_common::AuthContext;
use ferro_compute::volumes::{NewVolume, VolumeApi, VolumeCallError, VolumeConnection, VolumeInfo};
use ferro_volume::model::Version;
use ferro_volume::service::{SnapshotCreate, VolumeCreate};
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
