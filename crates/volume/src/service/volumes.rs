//! Volumes: create (blank, from an image, a snapshot or a volume), list with
//! filters, sorting and paging, update, metadata, extend, bootable, reset,
//! delete. Every status change is compare-and-set on the status read.

use std::collections::{BTreeMap, HashMap};

use ferro_common::policy::Rule;
use ferro_common::{ids, time, AuthContext};
use serde::Deserialize;
use serde_json::Value;

use super::types::truthy;
use super::work::Job;
use super::{VolumeService, ZONE};
use crate::error::{Result, VolumeError};
use crate::model::{json_map, Attachment, Volume};

#[derive(Debug, Default, Deserialize)]
pub struct VolumeCreate {
    /// The id to give it (compute's block device mappings choose theirs
    /// first); never read from a request body.
    #[serde(skip)]
    pub id: Option<String>,
    #[serde(default)]
    pub size: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, alias = "display_name")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub volume_type: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub source_volid: Option<String>,
    #[serde(default, rename = "imageRef")]
    pub image_ref: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub multiattach: Option<Value>,
    #[serde(default)]
    pub backup_id: Option<String>,
    #[serde(default)]
    pub consistencygroup_id: Option<String>,
    #[serde(default)]
    pub group_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub display_description: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// What a list asks for (`?name=…&status=…&sort=…&limit=…&marker=…`).
#[derive(Debug, Default)]
pub struct ListQuery {
    pub all_projects: bool,
    pub project_id: Option<String>,
    pub filters: Vec<(String, String)>,
    pub sort: Vec<(String, bool)>,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    pub offset: usize,
}

/// Statuses a volume may be deleted from (Cinder's list).
const DELETABLE: &[&str] = &[
    "available",
    "error",
    "error_restoring",
    "error_extending",
    "error_managing",
];

fn check_text(what: &str, v: &Option<String>) -> Result<()> {
    if v.as_ref().is_some_and(|s| s.len() > 255) {
        return Err(VolumeError::bad(format!(
            "Invalid input for field/attribute {what}. Value is longer than 255 characters."
        )));
    }
    Ok(())
}

fn check_metadata(m: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in m {
        if k.is_empty() || k.len() > 255 || v.len() > 255 {
            return Err(VolumeError::bad(
                "Invalid input received: metadata keys must be 1 to 255 characters and values at most 255."
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// A size as Cinder takes it: an integer or a string of digits, ≥ 1.
fn parse_size(v: &Value) -> Result<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(VolumeError::bad(format!(
            "Invalid input for field/attribute size. Value: {v}. {v} is not a positive integer."
        ))),
    }
}

impl VolumeService {
    pub async fn get_volume(&self, id: &str) -> Result<Option<Volume>> {
        Ok(sqlx::query_as("SELECT * FROM volumes WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// The sizes in GiB of these volumes (those that exist), by id.
    pub async fn sizes(&self, ids: &[String]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id, size FROM volumes WHERE id IN ({})",
                ferro_store::marks(1, chunk.len())
            );
            let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            out.extend(q.fetch_all(self.pool()).await?);
        }
        Ok(out)
    }

    /// The volume if the caller may see it; 404 otherwise.
    pub async fn visible(&self, ctx: &AuthContext, id: &str) -> Result<Volume> {
        match self.get_volume(id).await? {
            Some(v) if ctx.is_admin() || ctx.project_id() == Some(v.project_id.as_str()) => {
                self.enforce(ctx, "volume:get", Rule::ProjectReader, Some(&v.project_id))?;
                Ok(v)
            }
            _ => Err(VolumeError::volume_not_found(id)),
        }
    }

    /// The volume if the caller may change it (member of its project).
    pub async fn changeable(
        &self,
        ctx: &AuthContext,
        id: &str,
        action: &'static str,
    ) -> Result<Volume> {
        let v = self.visible(ctx, id).await?;
        self.enforce(ctx, action, Rule::ProjectMember, Some(&v.project_id))?;
        Ok(v)
    }

    /// Live attachments of these volumes, by volume id (one query per 500).
    pub async fn attachments_of(
        &self,
        volume_ids: &[&str],
    ) -> Result<HashMap<String, Vec<Attachment>>> {
        let mut out: HashMap<String, Vec<Attachment>> = HashMap::new();
        for chunk in volume_ids.chunks(500) {
            let sql = format!(
                "SELECT * FROM volume_attachments WHERE volume_id IN ({}) ORDER BY created_at, id",
                ferro_store::marks(1, chunk.len())
            );
            let mut q = sqlx::query_as::<_, Attachment>(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for a in q.fetch_all(self.pool()).await? {
                out.entry(a.volume_id.clone()).or_default().push(a);
            }
        }
        Ok(out)
    }

    /// Type names by id.
    pub async fn type_names(&self) -> Result<HashMap<String, String>> {
        Ok(self
            .types()
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect())
    }

    pub async fn list_volumes(&self, ctx: &AuthContext, q: &ListQuery) -> Result<Vec<Volume>> {
        let rows: Vec<Volume> = if q.all_projects && ctx.is_admin() {
            match &q.project_id {
                Some(p) => {
                    sqlx::query_as("SELECT * FROM volumes WHERE project_id = $1")
                        .bind(p)
                        .fetch_all(self.pool())
                        .await?
                }
                None => {
                    sqlx::query_as("SELECT * FROM volumes")
                        .fetch_all(self.pool())
                        .await?
                }
            }
        } else {
            let p = self.project_of(ctx)?;
            self.enforce(ctx, "volume:get_all", Rule::ProjectReader, Some(p))?;
            sqlx::query_as("SELECT * FROM volumes WHERE project_id = $1")
                .bind(p)
                .fetch_all(self.pool())
                .await?
        };
        let names = self.type_names().await?;
        let mut rows: Vec<Volume> = rows
            .into_iter()
            .filter(|v| {
                q.filters
                    .iter()
                    .all(|(k, want)| matches(v, &names, k, want))
            })
            .collect();
        sort_volumes(&mut rows, &q.sort);
        page(rows, q, |v| &v.id)
    }

    pub async fn create_volume(&self, ctx: &AuthContext, req: VolumeCreate) -> Result<Volume> {
        let project = self.project_of(ctx)?.to_owned();
        self.enforce(ctx, "volume:create", Rule::ProjectMember, Some(&project))?;
        if let Some(id) = &req.id {
            if let Some(v) = self.get_volume(id).await? {
                return Ok(v);
            }
        }
        let name = req.name.clone().or(req.display_name.clone());
        check_text("name", &name)?;
        if req.backup_id.is_some() {
            return Err(VolumeError::bad(
                "Invalid input received: backups are not supported by this cloud.".to_owned(),
            ));
        }
        if let Some(m) = &req.metadata {
            check_metadata(m)?;
        }
        let zone = req.availability_zone.clone().unwrap_or_else(|| ZONE.into());
        if zone != ZONE {
            return Err(VolumeError::bad(format!(
                "Invalid input received: Availability zone '{zone}' is invalid."
            )));
        }
        let multiattach = match &req.multiattach {
            None => false,
            Some(v) => truthy(v).ok_or_else(|| {
                VolumeError::bad(format!(
                    "Invalid input received: multiattach {v} is not a boolean."
                ))
            })?,
        };
        let sources = [
            req.snapshot_id.is_some(),
            req.source_volid.is_some(),
            req.image_ref.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(VolumeError::bad(
                "Invalid input received: only one of snapshot_id, source_volid and imageRef may be given."
                    .to_owned(),
            ));
        }
        let size = req.size.as_ref().map(parse_size).transpose()?;
        let mut min_size = 1;
        let mut bootable = false;
        let mut image_metadata = None;
        let mut type_id = None;
        if let Some(snap_id) = &req.snapshot_id {
            let s = self.visible_snapshot(ctx, snap_id).await.map_err(|_| {
                VolumeError::NotFound(format!("Snapshot {snap_id} could not be found."))
            })?;
            if s.status != "available" {
                return Err(VolumeError::bad(format!(
                    "Invalid snapshot: Originating snapshot status must be one of 'available' values, but is {}.",
                    s.status
                )));
            }
            min_size = s.size;
            if let Some(src) = self.get_volume(&s.volume_id).await? {
                type_id = Some(src.volume_type_id);
                bootable = src.bootable != 0;
                image_metadata = src.image_metadata;
            }
        }
        if let Some(src_id) = &req.source_volid {
            let src = self.visible(ctx, src_id).await?;
            if !["available", "in-use"].contains(&src.status.as_str()) {
                return Err(VolumeError::invalid_volume(format!(
                    "Volume {src_id} status must be available or in-use, but is {}.",
                    src.status
                )));
            }
            min_size = src.size;
            type_id = Some(src.volume_type_id);
            bootable = src.bootable != 0;
            image_metadata = src.image_metadata;
        }
        if let Some(image_id) = &req.image_ref {
            let img = self.images.visible(ctx, image_id).await.map_err(|_| {
                VolumeError::bad(
                    "Invalid image identifier or unable to access requested image.".to_owned(),
                )
            })?;
            if img.status != "active" {
                return Err(VolumeError::bad(format!(
                    "Invalid image: Image {image_id} is not active."
                )));
            }
            let virtual_gb = img
                .virtual_size
                .or(img.size)
                .map(|b| (b + (1 << 30) - 1) >> 30)
                .unwrap_or(1);
            min_size = virtual_gb.max(img.min_disk).max(1);
            bootable = true;
            let mut meta: BTreeMap<String, String> = BTreeMap::new();
            meta.insert("image_id".into(), img.id.clone());
            if let Some(n) = &img.name {
                meta.insert("image_name".into(), n.clone());
            }
            for (k, v) in [
                ("disk_format", img.disk_format.clone()),
                ("container_format", img.container_format.clone()),
                ("checksum", img.checksum.clone()),
                ("size", img.size.map(|s| s.to_string())),
                ("min_disk", Some(img.min_disk.to_string())),
                ("min_ram", Some(img.min_ram.to_string())),
            ] {
                if let Some(v) = v {
                    meta.insert(k.into(), v);
                }
            }
            for (k, v) in json_map(&img.properties) {
                meta.insert(k, v);
            }
            image_metadata = Some(
                serde_json::to_string(&meta).map_err(|e| VolumeError::Internal(e.to_string()))?,
            );
        }
        let size = match size {
            Some(s) if s < min_size => {
                return Err(VolumeError::bad(format!(
                    "Invalid input received: Volume size '{s}GB' must not be smaller than its source's {min_size}GB."
                )))
            }
            Some(s) => s,
            // From a snapshot or a volume: its size; from an image, only
            // for compute's block device mappings (Cinder's API wants one).
            None if sources.iter().any(|s| *s) && (req.image_ref.is_none() || req.id.is_some()) => {
                min_size
            }
            None => {
                return Err(VolumeError::bad(
                    "Invalid input received: size is required to create a volume.".to_owned(),
                ))
            }
        };
        let vtype = match (&req.volume_type, type_id) {
            (Some(t), _) => self.type_by_ref(t).await.map_err(|_| {
                VolumeError::NotFound(format!("Volume type {t} could not be found."))
            })?,
            (None, Some(id)) => self.type_by_ref(&id).await?,
            (None, None) => self.default_type().await?,
        };
        self.check_quota(&project, "volumes", 1, size).await?;
        let id = req.id.clone().unwrap_or_else(ids::uuid_id);
        let now = time::now_micros();
        let metadata = serde_json::to_string(&req.metadata.unwrap_or_default())
            .map_err(|e| VolumeError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO volumes (id, project_id, user_id, name, description, size, status, volume_type_id, \
             availability_zone, bootable, multiattach, snapshot_id, source_volid, image_id, image_metadata, \
             metadata, host, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'creating', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&id)
        .bind(&project)
        .bind(&ctx.user_id)
        .bind(&name)
        .bind(&req.description)
        .bind(size)
        .bind(&vtype.id)
        .bind(&zone)
        .bind(i64::from(bootable))
        .bind(i64::from(multiattach))
        .bind(&req.snapshot_id)
        .bind(&req.source_volid)
        .bind(&req.image_ref)
        .bind(&image_metadata)
        .bind(&metadata)
        .bind(&self.host)
        .bind(now)
        .execute(self.pool())
        .await?;
        tracing::info!(volume_id = %id, size, project_id = %project, "volume accepted");
        self.start(Job::CreateVolume(id.clone()));
        self.get_volume(&id)
            .await?
            .ok_or_else(|| VolumeError::Internal(format!("volume {id} vanished")))
    }

    pub async fn update_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: VolumeUpdate,
    ) -> Result<Volume> {
        let v = self.changeable(ctx, id, "volume:update").await?;
        let name = req.name.or(req.display_name).or(v.name);
        let description = req
            .description
            .or(req.display_description)
            .or(v.description);
        check_text("name", &name)?;
        let metadata = match req.metadata {
            Some(m) => {
                check_metadata(&m)?;
                serde_json::to_string(&m).map_err(|e| VolumeError::Internal(e.to_string()))?
            }
            None => v.metadata,
        };
        sqlx::query(
            "UPDATE volumes SET name = $1, description = $2, metadata = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(&name)
        .bind(&description)
        .bind(&metadata)
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.visible(ctx, id).await
    }

    /// Sets (`replace` = the whole set) or merges metadata; `remove` drops one key.
    pub async fn set_volume_metadata(
        &self,
        ctx: &AuthContext,
        id: &str,
        meta: BTreeMap<String, String>,
        replace: bool,
    ) -> Result<BTreeMap<String, String>> {
        let v = self
            .changeable(ctx, id, "volume:update_volume_metadata")
            .await?;
        check_metadata(&meta)?;
        let mut have = if replace {
            BTreeMap::new()
        } else {
            json_map(&v.metadata)
        };
        have.extend(meta);
        self.write_metadata(id, &have).await?;
        Ok(have)
    }

    pub async fn delete_volume_metadata(
        &self,
        ctx: &AuthContext,
        id: &str,
        key: &str,
    ) -> Result<()> {
        let v = self
            .changeable(ctx, id, "volume:delete_volume_metadata")
            .await?;
        let mut have = json_map(&v.metadata);
        if have.remove(key).is_none() {
            return Err(VolumeError::NotFound(format!(
                "Volume {id} has no metadata with key {key}."
            )));
        }
        self.write_metadata(id, &have).await
    }

    async fn write_metadata(&self, id: &str, m: &BTreeMap<String, String>) -> Result<()> {
        let s = serde_json::to_string(m).map_err(|e| VolumeError::Internal(e.to_string()))?;
        sqlx::query("UPDATE volumes SET metadata = $1, updated_at = $2 WHERE id = $3")
            .bind(&s)
            .bind(time::now_micros())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Moves a volume from `from` to `to`; false when it wasn't in `from`.
    pub(crate) async fn transition(&self, id: &str, from: &str, to: &str) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(to)
        .bind(time::now_micros())
        .bind(id)
        .bind(from)
        .execute(self.pool())
        .await?
        .rows_affected();
        if n == 1 {
            tracing::info!(volume_id = %id, from, to, "volume status");
        }
        Ok(n == 1)
    }

    pub async fn delete_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
        cascade: bool,
        force: bool,
    ) -> Result<()> {
        let v = self.changeable(ctx, id, "volume:delete").await?;
        if force {
            self.enforce(
                ctx,
                "volume_extension:volume_admin_actions:force_delete",
                Rule::Admin,
                None,
            )?;
        }
        let attached = self
            .attachments_of(&[id])
            .await?
            .remove(id)
            .unwrap_or_default();
        let deletable = DELETABLE.contains(&v.status.as_str())
            || (force
                && !["in-use", "attaching", "detaching", "reserved"].contains(&v.status.as_str()));
        if !deletable || !attached.is_empty() {
            return Err(VolumeError::invalid_volume(
                "Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
            ));
        }
        let snaps = self.snapshots_of(id).await?;
        if !snaps.is_empty() && !cascade {
            return Err(VolumeError::invalid_volume(
                "Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
            ));
        }
        if !self.transition(id, &v.status, "deleting").await? {
            return Err(VolumeError::invalid_volume(format!(
                "Volume {id} changed while it was being deleted; try again."
            )));
        }
        for s in snaps {
            sqlx::query("UPDATE volume_snapshots SET status = 'deleting' WHERE id = $1")
                .bind(&s.id)
                .execute(self.pool())
                .await?;
        }
        self.start(Job::DeleteVolume(id.to_owned()));
        Ok(())
    }

    /// Deletes a volume whose server was deleted with
    /// `delete_on_termination` (compute's call, after the attachment is
    /// released). A volume already going or gone is fine; one that another
    /// server holds stays.
    pub async fn delete_on_termination(&self, id: &str) -> Result<()> {
        let Some(v) = self.get_volume(id).await? else {
            return Ok(());
        };
        if v.status == "deleting" {
            return Ok(());
        }
        let attached = self
            .attachments_of(&[id])
            .await?
            .remove(id)
            .unwrap_or_default();
        if !attached.is_empty() || !DELETABLE.contains(&v.status.as_str()) {
            tracing::warn!(volume_id = %id, status = %v.status, "a volume marked delete_on_termination is still in use; kept");
            return Ok(());
        }
        if !self.snapshots_of(id).await?.is_empty() {
            tracing::warn!(volume_id = %id, "a volume marked delete_on_termination has snapshots; kept");
            return Ok(());
        }
        if self.transition(id, &v.status, "deleting").await? {
            tracing::info!(volume_id = %id, "deleting a volume with its server");
            self.start(Job::DeleteVolume(id.to_owned()));
        }
        Ok(())
    }

    /// Extends a volume; an attached one (`in_use`, from 3.42) is grown by
    /// the host that has it plugged in (the guest sees the new size).
    pub async fn extend_volume(
        &self,
        ctx: &AuthContext,
        id: &str,
        new_size: &Value,
        in_use: bool,
    ) -> Result<()> {
        let v = self
            .changeable(ctx, id, "volume_extension:volume_actions:extend")
            .await?;
        let new = parse_size(new_size)?;
        let allowed = v.status == "available" || (in_use && v.status == "in-use");
        if !allowed {
            let wanted = if in_use {
                "available or in-use"
            } else {
                "available"
            };
            return Err(VolumeError::invalid_volume(format!(
                "Volume {id} status must be {wanted} to extend, but is {}.",
                v.status
            )));
        }
        if new <= v.size {
            return Err(VolumeError::bad(format!(
                "Invalid input received: New size for extend must be greater than current size. (current: {}, extended: {new})",
                v.size
            )));
        }
        self.check_quota(&v.project_id, "extend", 0, new - v.size)
            .await?;
        let n = sqlx::query(
            "UPDATE volumes SET status = 'extending', size = $1, updated_at = $2 WHERE id = $3 AND status = $4",
        )
        .bind(new)
        .bind(time::now_micros())
        .bind(id)
        .bind(&v.status)
        .execute(self.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(VolumeError::invalid_volume(format!(
                "Volume {id} changed while it was being extended; try again."
            )));
        }
        self.start(Job::Extend(id.to_owned()));
        Ok(())
    }

    pub async fn set_bootable(&self, ctx: &AuthContext, id: &str, bootable: &Value) -> Result<()> {
        self.changeable(ctx, id, "volume_extension:volume_actions:update_bootable")
            .await?;
        let b = truthy(bootable).ok_or_else(|| {
            VolumeError::bad(format!(
                "Invalid input received: bootable={bootable} is not a boolean."
            ))
        })?;
        sqlx::query("UPDATE volumes SET bootable = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(b))
            .bind(time::now_micros())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// `os-reset_status` (admin): sets the status as told; `attach_status`
    /// `detached` also drops the volume's attachments.
    pub async fn reset_status(
        &self,
        ctx: &AuthContext,
        id: &str,
        status: Option<&str>,
        attach_status: Option<&str>,
    ) -> Result<()> {
        self.enforce(
            ctx,
            "volume_extension:volume_admin_actions:reset_status",
            Rule::Admin,
            None,
        )?;
        self.visible(ctx, id).await?;
        const STATUSES: &[&str] = &[
            "available",
            "error",
            "creating",
            "deleting",
            "in-use",
            "attaching",
            "detaching",
            "error_deleting",
            "maintenance",
            "reserved",
            "error_extending",
            "extending",
        ];
        if let Some(s) = status {
            if !STATUSES.contains(&s) {
                return Err(VolumeError::bad(format!(
                    "Must specify a valid status: {s} is not one."
                )));
            }
            sqlx::query("UPDATE volumes SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(s)
                .bind(time::now_micros())
                .bind(id)
                .execute(self.pool())
                .await?;
        }
        match attach_status {
            None | Some("attached") => {}
            Some("detached") => {
                sqlx::query("DELETE FROM volume_attachments WHERE volume_id = $1")
                    .bind(id)
                    .execute(self.pool())
                    .await?;
            }
            Some(other) => {
                return Err(VolumeError::bad(format!(
                    "Must specify a valid attach status: {other} is not one."
                )))
            }
        }
        if status.is_none() && attach_status.is_none() {
            return Err(VolumeError::bad(
                "Must specify 'status', 'attach_status' or 'migration_status' for update."
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

fn matches(v: &Volume, type_names: &HashMap<String, String>, key: &str, want: &str) -> bool {
    match key {
        "name" | "display_name" => v.name.as_deref() == Some(want),
        "name~" => v.name.as_deref().is_some_and(|n| n.contains(want)),
        "status" => v.status.eq_ignore_ascii_case(want),
        "bootable" => truthy(&Value::String(want.into())) == Some(v.bootable != 0),
        "availability_zone" => v.availability_zone == want,
        "volume_type" => {
            v.volume_type_id == want
                || type_names.get(&v.volume_type_id).map(String::as_str) == Some(want)
        }
        "user_id" => v.user_id == want,
        "size" => v.size.to_string() == want,
        "metadata" => {
            // `metadata={'k': 'v'}` (Python's repr, as the CLI sends it) or JSON.
            let json = want.replace('\'', "\"");
            let Ok(wanted) = serde_json::from_str::<BTreeMap<String, String>>(&json) else {
                return false;
            };
            let have = json_map(&v.metadata);
            wanted.iter().all(|(k, val)| have.get(k) == Some(val))
        }
        // Unknown filters are ignored, as Cinder does for those it doesn't know.
        _ => true,
    }
}

fn sort_volumes(rows: &mut [Volume], keys: &[(String, bool)]) {
    let default = [("created_at".to_owned(), false), ("id".to_owned(), false)];
    let keys = if keys.is_empty() { &default[..] } else { keys };
    rows.sort_by(|a, b| {
        for (k, asc) in keys {
            let ord = match k.as_str() {
                "name" | "display_name" => a.name.cmp(&b.name),
                "size" => a.size.cmp(&b.size),
                "status" => a.status.cmp(&b.status),
                "updated_at" => a.updated_at.cmp(&b.updated_at),
                "id" => a.id.cmp(&b.id),
                _ => a.created_at.cmp(&b.created_at),
            };
            let ord = if *asc { ord } else { ord.reverse() };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        b.id.cmp(&a.id)
    });
}

/// `marker`, `offset` and `limit` over sorted rows.
pub(crate) fn page<T>(rows: Vec<T>, q: &ListQuery, id: impl Fn(&T) -> &String) -> Result<Vec<T>> {
    let mut rows = rows;
    if let Some(m) = &q.marker {
        match rows.iter().position(|r| id(r) == m) {
            Some(pos) => {
                rows.drain(..=pos);
            }
            None => {
                return Err(VolumeError::bad(format!(
                    "Invalid marker: marker {m} could not be found."
                )))
            }
        }
    }
    let rows: Vec<T> = rows.into_iter().skip(q.offset).collect();
    Ok(match q.limit {
        Some(l) => rows.into_iter().take(l).collect(),
        None => rows,
    })
}
