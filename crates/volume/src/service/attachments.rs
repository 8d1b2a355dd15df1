//! Attachments: a volume's link to a server, in Cinder's 3.27 model.
//!
//! ```text
//!  reserve (attachment `reserved`, volume `reserved`)
//!    └─▶ connect (attachment `attaching`, volume `attaching`; the host plugs it)
//!          └─▶ complete (attachment `attached`, volume `in-use`)
//!                └─▶ begin_detaching (volume `detaching`)
//!  release: the attachment is gone; the volume is `available` again
//!           (`in-use` while another attachment of a multiattach volume lives)
//! ```
//!
//! Every step is safe to repeat: compute's attach and detach sagas call
//! them again after a crash. Attachment ids are chosen by the caller, so a
//! repeated reserve finds the attachment it made before.

use ferro_common::policy::Rule;
use ferro_common::{time, AuthContext};

use super::VolumeService;
use crate::backend::Connection;
use crate::error::{Result, VolumeError};
use crate::model::Attachment;

impl VolumeService {
    pub async fn get_attachment(&self, id: &str) -> Result<Option<Attachment>> {
        Ok(
            sqlx::query_as("SELECT * FROM volume_attachments WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Reserves volume `volume_id` for `server_id` under attachment `id`,
    /// for a caller who may change the volume. Repeating it is a no-op.
    pub async fn reserve(
        &self,
        ctx: &AuthContext,
        id: &str,
        volume_id: &str,
        server_id: Option<&str>,
    ) -> Result<Attachment> {
        if let Some(a) = self.get_attachment(id).await? {
            return Ok(a);
        }
        let v = self
            .changeable(ctx, volume_id, "volume:attachment_create")
            .await?;
        let others = self
            .attachments_of(&[volume_id])
            .await?
            .remove(volume_id)
            .unwrap_or_default();
        if let Some(server) = server_id {
            if others
                .iter()
                .any(|a| a.server_id.as_deref() == Some(server))
            {
                return Err(VolumeError::bad(format!(
                    "Invalid volume: volume {volume_id} is already attached to server {server}."
                )));
            }
        }
        let shareable = v.multiattach != 0 && v.status == "in-use";
        if v.status != "available" && !shareable {
            return Err(VolumeError::invalid_volume(format!(
                "Volume {volume_id} status must be available or in-use (multiattach) to reserve, but the current status is: {}.",
                v.status
            )));
        }
        let now = time::now_micros();
        let mut tx = self.pool().begin().await?;
        if !shareable {
            let n = sqlx::query(
                "UPDATE volumes SET status = 'reserved', updated_at = $1 WHERE id = $2 AND status = 'available'",
            )
            .bind(now)
            .bind(volume_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(VolumeError::invalid_volume(format!(
                    "Volume {volume_id} was taken meanwhile; it is no longer available."
                )));
            }
        }
        sqlx::query(
            "INSERT INTO volume_attachments (id, volume_id, server_id, status, created_at) VALUES ($1, $2, $3, 'reserved', $4)",
        )
        .bind(id)
        .bind(volume_id)
        .bind(server_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(attachment_id = %id, volume_id, server_id = ?server_id, "volume reserved");
        self.get_attachment(id)
            .await?
            .ok_or_else(|| VolumeError::Internal(format!("attachment {id} vanished")))
    }

    /// The host is about to plug the volume in (Cinder's attachment update
    /// with a connector).
    pub async fn connect(
        &self,
        id: &str,
        host: Option<&str>,
        device: Option<&str>,
    ) -> Result<Connection> {
        let a = self
            .get_attachment(id)
            .await?
            .ok_or_else(|| VolumeError::NotFound(format!("Attachment {id} could not be found.")))?;
        let now = time::now_micros();
        if a.status == "reserved" {
            let mut tx = self.pool().begin().await?;
            sqlx::query(
                "UPDATE volume_attachments SET status = 'attaching', host = $1, device = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(host)
            .bind(device)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE volumes SET status = 'attaching', updated_at = $1 WHERE id = $2 AND status = 'reserved'",
            )
            .bind(now)
            .bind(&a.volume_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(self.backend.connection(&a.volume_id))
    }

    /// The host plugged it: the volume is `in-use`.
    pub async fn complete(&self, id: &str) -> Result<()> {
        let a = self
            .get_attachment(id)
            .await?
            .ok_or_else(|| VolumeError::NotFound(format!("Attachment {id} could not be found.")))?;
        if a.status == "attached" {
            return Ok(());
        }
        let now = time::now_micros();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE volume_attachments SET status = 'attached', attached_at = $1, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE volumes SET status = 'in-use', updated_at = $1 WHERE id = $2 AND status IN ('reserved', 'attaching')",
        )
        .bind(now)
        .bind(&a.volume_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(attachment_id = %id, volume_id = %a.volume_id, "volume attached");
        Ok(())
    }

    /// A detach started: the volume is `detaching` until released.
    pub async fn begin_detaching(&self, id: &str) -> Result<()> {
        if let Some(a) = self.get_attachment(id).await? {
            sqlx::query(
                "UPDATE volumes SET status = 'detaching', updated_at = $1 WHERE id = $2 AND status = 'in-use'",
            )
            .bind(time::now_micros())
            .bind(&a.volume_id)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }

    /// Ends attachment `id` (absent is fine): the volume is `available`
    /// again unless another attachment holds it.
    pub async fn release(&self, id: &str) -> Result<()> {
        let Some(a) = self.get_attachment(id).await? else {
            return Ok(());
        };
        let now = time::now_micros();
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM volume_attachments WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let (left,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM volume_attachments WHERE volume_id = $1")
                .bind(&a.volume_id)
                .fetch_one(&mut *tx)
                .await?;
        let status = if left == 0 { "available" } else { "in-use" };
        sqlx::query(
            "UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3 \
             AND status IN ('reserved', 'attaching', 'in-use', 'detaching')",
        )
        .bind(status)
        .bind(now)
        .bind(&a.volume_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(attachment_id = %id, volume_id = %a.volume_id, status, "volume attachment released");
        Ok(())
    }

    /// How the volume's host opens the volume.
    pub fn connection(&self, volume_id: &str) -> Connection {
        self.backend.connection(volume_id)
    }

    /// Attachments of the caller's volumes (all, for an admin).
    pub async fn list_attachments(&self, ctx: &AuthContext) -> Result<Vec<(Attachment, String)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT a.id, v.project_id, v.id FROM volume_attachments a JOIN volumes v ON v.id = a.volume_id \
             ORDER BY a.created_at DESC, a.id DESC",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for (id, project, _) in rows {
            if ctx.is_admin() || ctx.project_id() == Some(project.as_str()) {
                if let Some(a) = self.get_attachment(&id).await? {
                    out.push((a, project));
                }
            }
        }
        Ok(out)
    }

    /// An attachment the caller may see, with its volume's project.
    pub async fn visible_attachment(
        &self,
        ctx: &AuthContext,
        id: &str,
    ) -> Result<(Attachment, String)> {
        let nf = || VolumeError::NotFound(format!("Attachment {id} could not be found."));
        let a = self.get_attachment(id).await?.ok_or_else(nf)?;
        let v = self.visible(ctx, &a.volume_id).await.map_err(|_| nf())?;
        self.enforce(
            ctx,
            "volume:attachment_get",
            Rule::ProjectReader,
            Some(&v.project_id),
        )?;
        Ok((a, v.project_id))
    }
}
