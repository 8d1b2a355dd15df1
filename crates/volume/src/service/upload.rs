//! `os-volume_upload_image`: a volume's data becomes a new image. The image
//! is `queued` at once; the volume is `uploading` while its data is copied
//! (converted to the asked disk format) and streamed into the image
//! service, then returns to the status it had.

use std::sync::Arc;

use ferro_common::{ids, time, AuthContext};
use ferro_image::model::Image;
use serde_json::{json, Value};

use super::VolumeService;
use crate::error::{Result, VolumeError};

impl VolumeService {
    pub async fn upload_to_image(
        self: &Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        arg: &Value,
    ) -> Result<Value> {
        let v = self
            .changeable(ctx, id, "volume_extension:volume_actions:upload_image")
            .await?;
        let force = arg
            .get("force")
            .and_then(super::types::truthy)
            .unwrap_or(false);
        let ok = v.status == "available" || (v.status == "in-use" && force);
        if !ok {
            return Err(VolumeError::invalid_volume(format!(
                "Volume {id} status must be available or in-use with force, but is {}.",
                v.status
            )));
        }
        let name = arg
            .get("image_name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                VolumeError::bad("No image_name was specified in request.".to_owned())
            })?;
        let disk_format = arg
            .get("disk_format")
            .and_then(Value::as_str)
            .unwrap_or("raw");
        if !["raw", "qcow2"].contains(&disk_format) {
            return Err(VolumeError::bad(format!(
                "Invalid disk-format '{disk_format}' is specified. Allowed disk-formats are raw and qcow2."
            )));
        }
        let container_format = arg
            .get("container_format")
            .and_then(Value::as_str)
            .unwrap_or("bare");
        let visibility = arg
            .get("visibility")
            .and_then(Value::as_str)
            .unwrap_or("private");
        if visibility == "public" && !ctx.is_admin() {
            return Err(VolumeError::Denied(ferro_common::Denied {
                action: "volume_extension:volume_actions:upload_public",
            }));
        }
        let now = time::now_micros();
        let img = Image {
            id: ids::uuid_id(),
            name: Some(name.to_owned()),
            status: "queued".into(),
            visibility: visibility.to_owned(),
            protected: 0,
            os_hidden: 0,
            owner: v.project_id.clone(),
            disk_format: Some(disk_format.to_owned()),
            container_format: Some(container_format.to_owned()),
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            min_disk: v.size,
            min_ram: 0,
            tags: "[]".into(),
            properties: "{}".into(),
            created_at: now,
            updated_at: now,
        };
        self.images
            .insert_queued(&img)
            .await
            .map_err(|e| VolumeError::Internal(format!("creating the image: {e}")))?;
        let before = v.status.clone();
        if !self.transition(id, &before, "uploading").await? {
            return Err(VolumeError::invalid_volume(format!(
                "Volume {id} changed meanwhile; try again."
            )));
        }
        let me = self.clone();
        let (vid, image) = (id.to_owned(), img.clone());
        tokio::spawn(async move {
            if let Err(e) = me.copy_to_image(&vid, &image).await {
                tracing::error!(volume_id = %vid, image_id = %image.id, error = %e, "uploading a volume to an image failed");
                let _ = me.images.set_status(&image.id, "killed").await;
            }
            let _ = me.transition(&vid, "uploading", &before).await;
        });
        Ok(json!({
            "id": id,
            "updated_at": super::super::model::cinder_time(now),
            "status": "uploading",
            "display_description": v.description,
            "size": v.size,
            "volume_type": Value::Null,
            "image_id": img.id,
            "container_format": container_format,
            "disk_format": disk_format,
            "image_name": name,
            "visibility": visibility,
            "protected": false,
        }))
    }

    async fn copy_to_image(&self, id: &str, img: &Image) -> Result<()> {
        let tmp = std::env::temp_dir().join(format!("ferro-upload-{}", img.id));
        let fmt = img.disk_format.clone().unwrap_or_else(|| "raw".into());
        let result = async {
            self.backend.export(id, &fmt, &tmp).await?;
            let file = tokio::fs::File::open(&tmp)
                .await
                .map_err(|e| VolumeError::Internal(format!("opening {}: {e}", tmp.display())))?;
            let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
            self.images
                .upload(img, body)
                .await
                .map_err(|e| VolumeError::Internal(format!("storing the image: {e}")))
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        result?;
        tracing::info!(volume_id = %id, image_id = %img.id, "volume uploaded to an image");
        Ok(())
    }
}
