//! Image logic: who may see and change an image, and the upload pipeline.
//!
//! ```text
//!  create ──► queued ──PUT file──► saving ──data ok──► active ◄─reactivate─┐
//!                ▲                   │  │                 │               │
//!                └── refused format ─┘  └─ stream broke ─► killed   deactivate ─► deactivated
//! ```

use std::sync::Arc;

use axum::body::Body;
use ferro_common::auth::SharedAuth;
use ferro_common::{time, AuthContext};
use ferro_store::{sqlx, Db};
use futures::StreamExt;
use md5::{Digest, Md5};
use sha2::Sha512;
use tokio::io::AsyncWriteExt;

use crate::error::{ImageError, Result};
use crate::inspect::{self, Verdict, HEAD_LEN};
use crate::model::{Image, Member};
use crate::storage::ImageStore;

pub struct ImageService {
    pub db: Db,
    pub store: Arc<dyn ImageStore>,
    pub auth: SharedAuth,
    /// Largest accepted upload, in bytes.
    pub max_image_size: u64,
    /// Public base URL (`http://host:9292`), for the versions document.
    pub base_url: String,
}

impl ImageService {
    pub fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }

    pub async fn get(&self, id: &str) -> Result<Option<Image>> {
        Ok(sqlx::query_as("SELECT * FROM images WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn member(&self, image_id: &str, project: &str) -> Result<Option<Member>> {
        Ok(
            sqlx::query_as("SELECT * FROM image_members WHERE image_id = $1 AND member_id = $2")
                .bind(image_id)
                .bind(project)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// Visible to the caller: public and community images to all; private
    /// ones to their owner; shared ones to the owner and members.
    pub async fn can_see(&self, ctx: &AuthContext, img: &Image) -> Result<bool> {
        if ctx.is_admin() || img.visibility == "public" || img.visibility == "community" {
            return Ok(true);
        }
        let Some(project) = ctx.project_id() else {
            return Ok(false);
        };
        if img.owner == project {
            return Ok(true);
        }
        Ok(img.visibility == "shared" && self.member(&img.id, project).await?.is_some())
    }

    /// The image if the caller may see it; 404 otherwise (never 403, so
    /// ids of others' images don't leak).
    pub async fn visible(&self, ctx: &AuthContext, id: &str) -> Result<Image> {
        match self.get(id).await? {
            Some(img) if self.can_see(ctx, &img).await? => Ok(img),
            _ => Err(ImageError::no_image(id)),
        }
    }

    /// The images a list shows `ctx`, newest first, as Glance lists them:
    /// admins see all; others their own, public ones, shared ones whose
    /// membership has `member_status` (`all`: any), and community ones
    /// when `visibility` asks for them. `visibility` (checked by the
    /// caller) narrows to one kind, `all` to none.
    pub async fn listable(
        &self,
        ctx: &AuthContext,
        visibility: Option<&str>,
        member_status: &str,
    ) -> Result<Vec<Image>> {
        let mut rows: Vec<Image> =
            sqlx::query_as("SELECT * FROM images ORDER BY created_at DESC, id DESC")
                .fetch_all(self.pool())
                .await?;
        let project = ctx.project_id().map(str::to_owned);
        let memberships: Vec<Member> = match &project {
            Some(pid) => {
                sqlx::query_as("SELECT * FROM image_members WHERE member_id = $1")
                    .bind(pid)
                    .fetch_all(self.pool())
                    .await?
            }
            None => Vec::new(),
        };
        rows.retain(|img| {
            let own = project.as_deref() == Some(img.owner.as_str());
            let membership = memberships.iter().find(|m| m.image_id == img.id);
            let visible = ctx.is_admin()
                || own
                || img.visibility == "public"
                || (img.visibility == "community" && visibility == Some("community"))
                || (img.visibility == "shared"
                    && membership
                        .is_some_and(|m| member_status == "all" || m.status == member_status));
            let vis_ok = match visibility {
                None => img.visibility != "community" || own,
                Some("all") => true,
                Some(v) => img.visibility == v,
            };
            visible && vis_ok
        });
        Ok(rows)
    }

    /// The image if the caller may change it: 404 if it can't see it,
    /// 403 if it sees but may not change it.
    pub async fn modifiable(&self, ctx: &AuthContext, id: &str) -> Result<Image> {
        let img = self.visible(ctx, id).await?;
        if !Self::can_modify(ctx, &img) {
            return Err(ImageError::Forbidden(
                "You are not permitted to modify this image.".into(),
            ));
        }
        Ok(img)
    }

    /// Deletes an image the caller may change, unless it is protected.
    pub async fn delete(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let img = self.modifiable(ctx, id).await?;
        if img.protected != 0 {
            return Err(ImageError::Forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            )));
        }
        self.remove(id).await
    }

    /// Writes an image's changeable attributes.
    pub async fn save(&self, img: &Image) -> Result<()> {
        sqlx::query(
            "UPDATE images SET name = $1, visibility = $2, protected = $3, os_hidden = $4, disk_format = $5, \
             container_format = $6, min_disk = $7, min_ram = $8, tags = $9, properties = $10, updated_at = $11 WHERE id = $12",
        )
        .bind(img.name.clone())
        .bind(&img.visibility)
        .bind(img.protected)
        .bind(img.os_hidden)
        .bind(img.disk_format.clone())
        .bind(img.container_format.clone())
        .bind(img.min_disk)
        .bind(img.min_ram)
        .bind(&img.tags)
        .bind(&img.properties)
        .bind(time::now_micros())
        .bind(&img.id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Owner (member role or better) or admin.
    pub fn can_modify(ctx: &AuthContext, img: &Image) -> bool {
        ctx.is_admin() || (ctx.project_id() == Some(img.owner.as_str()) && ctx.has_role("member"))
    }

    /// Records a new image, `queued` for its data.
    pub async fn insert_queued(&self, img: &Image) -> Result<()> {
        sqlx::query(
            "INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner, disk_format, container_format, \
             min_disk, min_ram, tags, properties, created_at, updated_at) \
             VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(&img.id)
        .bind(img.name.clone())
        .bind(&img.visibility)
        .bind(img.protected)
        .bind(img.os_hidden)
        .bind(&img.owner)
        .bind(img.disk_format.clone())
        .bind(img.container_format.clone())
        .bind(img.min_disk)
        .bind(img.min_ram)
        .bind(&img.tags)
        .bind(&img.properties)
        .bind(img.created_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The images a project owns whose property `key` is `value`, newest
    /// first (a server's backups).
    pub async fn owned_with(&self, owner: &str, key: &str, value: &str) -> Result<Vec<Image>> {
        let rows: Vec<Image> =
            sqlx::query_as("SELECT * FROM images WHERE owner = $1 ORDER BY created_at DESC, id")
                .bind(owner)
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .filter(|i| i.props().get(key).and_then(serde_json::Value::as_str) == Some(value))
            .collect())
    }

    /// Deletes an image, its members and its data; an absent one is fine.
    pub async fn remove(&self, id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM image_members WHERE image_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM images WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.store.delete(id)?;
        tracing::info!(image_id = %id, "image deleted");
        Ok(())
    }

    pub async fn set_status(&self, id: &str, status: &str) -> Result<()> {
        sqlx::query("UPDATE images SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(time::now_micros())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Makes a queued image active with no data: the image of a server
    /// booted from a volume (Nova's), which holds only the volumes'
    /// mapping in its properties. `false` if it was not queued.
    pub async fn activate_empty(&self, id: &str) -> Result<bool> {
        let md5 = format!("{:x}", Md5::new().finalize());
        let sha512 = format!("{:x}", Sha512::new().finalize());
        let n = sqlx::query(
            "UPDATE images SET status = 'active', size = 0, virtual_size = NULL, checksum = $1, \
             os_hash_algo = 'sha512', os_hash_value = $2, updated_at = $3 WHERE id = $4 AND status = 'queued'",
        )
        .bind(md5)
        .bind(sha512)
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Streams `body` into storage, hashing and inspecting as it goes. On
    /// success the image is active; on refused content it returns to
    /// `queued` with nothing stored; on a broken stream it is `killed`.
    pub async fn upload(&self, img: &Image, body: Body) -> Result<()> {
        let disk_format = img.disk_format.clone().unwrap_or_default();
        let swapped = sqlx::query("UPDATE images SET status = 'saving', updated_at = $1 WHERE id = $2 AND status = 'queued'")
            .bind(time::now_micros())
            .bind(&img.id)
            .execute(self.pool())
            .await?
            .rows_affected();
        if swapped == 0 {
            return Err(ImageError::Conflict(format!(
                "Image status transition from {} to saving is not allowed",
                img.status
            )));
        }
        tracing::info!(image_id = %img.id, "upload started");
        match self.receive(img, &disk_format, body).await {
            Ok((size, md5, sha512, virtual_size)) => {
                self.store.commit(&img.id)?;
                sqlx::query(
                    "UPDATE images SET status = 'active', size = $1, virtual_size = $2, checksum = $3, \
                     os_hash_algo = 'sha512', os_hash_value = $4, updated_at = $5 WHERE id = $6",
                )
                .bind(size as i64)
                .bind(virtual_size as i64)
                .bind(md5)
                .bind(sha512)
                .bind(time::now_micros())
                .bind(&img.id)
                .execute(self.pool())
                .await?;
                tracing::info!(image_id = %img.id, size, "image active");
                Ok(())
            }
            Err(e) => {
                let _ = self.store.delete(&img.id);
                let status = match &e {
                    ImageError::BadRequest(_) | ImageError::TooLarge(_) => "queued",
                    _ => "killed",
                };
                self.set_status(&img.id, status).await?;
                tracing::warn!(image_id = %img.id, status, error = %e, "upload failed");
                Err(e)
            }
        }
    }

    async fn receive(
        &self,
        img: &Image,
        disk_format: &str,
        body: Body,
    ) -> Result<(u64, String, String, u64)> {
        let path = self.store.staging_path(&img.id);
        let mut file = tokio::fs::File::create(&path).await?;
        let mut md5 = Md5::new();
        let mut sha = Sha512::new();
        let mut head: Vec<u8> = Vec::with_capacity(HEAD_LEN);
        let mut size: u64 = 0;
        let mut verdict: Option<Verdict> = None;
        // Refused content is read to its end (nothing kept): answering while
        // the client still sends makes the server close the connection, and
        // the client sees a reset instead of the 400.
        let mut refused: Option<ImageError> = None;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ImageError::Internal(format!("upload stream: {e}")))?;
            size += chunk.len() as u64;
            if size > self.max_image_size {
                return Err(ImageError::TooLarge(format!(
                    "the image is larger than {} bytes",
                    self.max_image_size
                )));
            }
            if refused.is_some() {
                continue;
            }
            if verdict.is_none() {
                let take = (HEAD_LEN - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if head.len() == HEAD_LEN {
                    match check(disk_format, &head) {
                        Ok(v) => verdict = Some(v),
                        Err(e) => {
                            refused = Some(e);
                            continue;
                        }
                    }
                }
            }
            md5.update(&chunk);
            sha.update(&chunk);
            file.write_all(&chunk).await?;
        }
        if let Some(e) = refused {
            return Err(e);
        }
        file.flush().await?;
        file.sync_data().await?;
        let verdict = match verdict {
            Some(v) => v,
            None => check(disk_format, &head)?,
        };
        if size == 0 {
            return Err(ImageError::BadRequest("The image data is empty.".into()));
        }
        let virtual_size = match verdict {
            Verdict::Ok { virtual_size } => virtual_size.unwrap_or(size),
            Verdict::Refused(m) => return Err(ImageError::BadRequest(m)),
        };
        Ok((
            size,
            hex::encode(md5.finalize()),
            hex::encode(sha.finalize()),
            virtual_size,
        ))
    }
}

fn check(disk_format: &str, head: &[u8]) -> Result<Verdict> {
    match inspect::inspect(disk_format, head) {
        Verdict::Refused(m) => Err(ImageError::BadRequest(m)),
        ok => Ok(ok),
    }
}
