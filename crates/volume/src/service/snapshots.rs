//! Snapshots of volumes: a point-in-time copy made by the backend
//! (creating → available, deleting → gone). Snapshotting an attached
//! volume needs `force` before microversion 3.66, as in Cinder.

use std::collections::BTreeMap;

use ferro_common::policy::Rule;
use ferro_common::{ids, time, AuthContext};
use serde::Deserialize;
use serde_json::Value;

use super::types::truthy;
use super::volumes::{page, ListQuery};
use super::work::Job;
use super::VolumeService;
use crate::error::{Result, VolumeError};
use crate::model::{Snapshot, Version};

#[derive(Debug, Deserialize)]
pub struct SnapshotCreate {
    /// Set by other services (compute plans a snapshot's id); a request
    /// can't choose it.
    #[serde(skip)]
    pub id: Option<String>,
    pub volume_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub force: Option<Value>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotUpdate {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub display_description: Option<String>,
}

fn not_found(id: &str) -> VolumeError {
    VolumeError::NotFound(format!("Snapshot {id} could not be found."))
}

impl VolumeService {
    pub async fn get_snapshot(&self, id: &str) -> Result<Option<Snapshot>> {
        Ok(
            sqlx::query_as("SELECT * FROM volume_snapshots WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn snapshots_of(&self, volume_id: &str) -> Result<Vec<Snapshot>> {
        Ok(
            sqlx::query_as("SELECT * FROM volume_snapshots WHERE volume_id = $1")
                .bind(volume_id)
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn visible_snapshot(&self, ctx: &AuthContext, id: &str) -> Result<Snapshot> {
        match self.get_snapshot(id).await? {
            Some(s) if ctx.is_admin() || ctx.project_id() == Some(s.project_id.as_str()) => {
                self.enforce(
                    ctx,
                    "volume:get_snapshot",
                    Rule::ProjectReader,
                    Some(&s.project_id),
                )?;
                Ok(s)
            }
            _ => Err(not_found(id)),
        }
    }

    pub async fn list_snapshots(&self, ctx: &AuthContext, q: &ListQuery) -> Result<Vec<Snapshot>> {
        let rows: Vec<Snapshot> = if q.all_projects && ctx.is_admin() {
            sqlx::query_as("SELECT * FROM volume_snapshots ORDER BY created_at DESC, id DESC")
                .fetch_all(self.pool())
                .await?
        } else {
            let p = self.project_of(ctx)?;
            self.enforce(
                ctx,
                "volume:get_all_snapshots",
                Rule::ProjectReader,
                Some(p),
            )?;
            sqlx::query_as(
                "SELECT * FROM volume_snapshots WHERE project_id = $1 ORDER BY created_at DESC, id DESC",
            )
            .bind(p)
            .fetch_all(self.pool())
            .await?
        };
        let rows = rows
            .into_iter()
            .filter(|s| {
                q.filters.iter().all(|(k, want)| match k.as_str() {
                    "name" | "display_name" => s.name.as_deref() == Some(want.as_str()),
                    "status" => s.status == *want,
                    "volume_id" => s.volume_id == *want,
                    "project_id" => s.project_id == *want,
                    _ => true,
                })
            })
            .collect::<Vec<_>>();
        let mut rows = rows;
        sort_snapshots(&mut rows, &q.sort);
        page(rows, q, |s| &s.id)
    }

    pub async fn create_snapshot(
        &self,
        ctx: &AuthContext,
        req: SnapshotCreate,
        version: Version,
    ) -> Result<Snapshot> {
        let v = self
            .visible(ctx, &req.volume_id)
            .await
            .map_err(|_| VolumeError::volume_not_found(&req.volume_id))?;
        self.enforce(
            ctx,
            "volume:create_snapshot",
            Rule::ProjectMember,
            Some(&v.project_id),
        )?;
        let force = match &req.force {
            None => false,
            Some(f) => truthy(f)
                .ok_or_else(|| VolumeError::bad(format!("Invalid value '{f}' for force.")))?,
        };
        let ok = match v.status.as_str() {
            "available" => true,
            "in-use" => force || version.at_least(66),
            _ => false,
        };
        if !ok {
            return Err(VolumeError::invalid_volume(format!(
                "Volume {} status must be available, but current status is: {}.",
                v.id, v.status
            )));
        }
        let name = req.name.or(req.display_name);
        if name.as_ref().is_some_and(|n| n.len() > 255) {
            return Err(VolumeError::bad(
                "Invalid input for field/attribute name. Value is longer than 255 characters."
                    .to_owned(),
            ));
        }
        self.check_quota(&v.project_id, "snapshots", 1, v.size)
            .await?;
        let id = req.id.unwrap_or_else(ids::uuid_id);
        let metadata = serde_json::to_string(&req.metadata.unwrap_or_default())
            .map_err(|e| VolumeError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO volume_snapshots (id, project_id, user_id, volume_id, name, description, size, status, metadata, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'creating', $8, $9)",
        )
        .bind(&id)
        .bind(&v.project_id)
        .bind(&ctx.user_id)
        .bind(&v.id)
        .bind(&name)
        .bind(&req.description)
        .bind(v.size)
        .bind(&metadata)
        .bind(time::now_micros())
        .execute(self.pool())
        .await?;
        tracing::info!(snapshot_id = %id, volume_id = %v.id, "snapshot accepted");
        self.start(Job::CreateSnapshot(id.clone()));
        self.get_snapshot(&id).await?.ok_or_else(|| not_found(&id))
    }

    pub async fn update_snapshot(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: SnapshotUpdate,
    ) -> Result<Snapshot> {
        let s = self.visible_snapshot(ctx, id).await?;
        self.enforce(
            ctx,
            "volume:update_snapshot",
            Rule::ProjectMember,
            Some(&s.project_id),
        )?;
        let name = req.name.or(req.display_name).or(s.name);
        let description = req
            .description
            .or(req.display_description)
            .or(s.description);
        sqlx::query(
            "UPDATE volume_snapshots SET name = $1, description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&name)
        .bind(&description)
        .bind(time::now_micros())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.visible_snapshot(ctx, id).await
    }

    pub async fn delete_snapshot(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let s = self.visible_snapshot(ctx, id).await?;
        self.enforce(
            ctx,
            "volume:delete_snapshot",
            Rule::ProjectMember,
            Some(&s.project_id),
        )?;
        if !["available", "error"].contains(&s.status.as_str()) {
            return Err(VolumeError::bad(format!(
                "Invalid snapshot: Volume Snapshot status must be available or error, but is {}.",
                s.status
            )));
        }
        let n = sqlx::query(
            "UPDATE volume_snapshots SET status = 'deleting', updated_at = $1 WHERE id = $2 AND status = $3",
        )
        .bind(time::now_micros())
        .bind(id)
        .bind(&s.status)
        .execute(self.pool())
        .await?
        .rows_affected();
        if n == 0 {
            return Err(VolumeError::bad(format!(
                "Invalid snapshot: snapshot {id} changed meanwhile; try again."
            )));
        }
        self.start(Job::DeleteSnapshot(id.to_owned()));
        Ok(())
    }
}

/// Cinder's `sort` (or `sort_key`/`sort_dir`) over snapshots; newest first
/// when none is given.
fn sort_snapshots(rows: &mut [Snapshot], keys: &[(String, bool)]) {
    if keys.is_empty() {
        return;
    }
    rows.sort_by(|a, b| {
        for (k, asc) in keys {
            let ord = match k.as_str() {
                "name" | "display_name" => a.name.cmp(&b.name),
                "size" => a.size.cmp(&b.size),
                "status" => a.status.cmp(&b.status),
                "volume_id" => a.volume_id.cmp(&b.volume_id),
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
