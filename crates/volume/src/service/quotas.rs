//! Per-project quotas (`os-quota-sets`) and the usage they are checked
//! against. A volume's and a snapshot's GiB both count as `gigabytes`, as in
//! Cinder.

use std::collections::BTreeMap;

use ferro_common::policy::Rule;
use ferro_common::AuthContext;

use super::VolumeService;
use crate::error::{Result, VolumeError};

pub const DEFAULT_QUOTAS: &[(&str, i64)] = &[
    ("volumes", 10),
    ("snapshots", 10),
    ("gigabytes", 1000),
    ("backups", 10),
    ("backup_gigabytes", 1000),
    ("groups", 10),
    ("per_volume_gigabytes", -1),
];

/// Limits and what is in use, per resource.
#[derive(Clone, Debug, Default)]
pub struct QuotaSet {
    pub limits: BTreeMap<String, i64>,
    pub in_use: BTreeMap<String, i64>,
}

impl VolumeService {
    pub async fn quota_limits(&self, project: &str) -> Result<BTreeMap<String, i64>> {
        let mut limits: BTreeMap<String, i64> = DEFAULT_QUOTAS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT resource, hard_limit FROM volume_quotas WHERE project_id = $1")
                .bind(project)
                .fetch_all(self.pool())
                .await?;
        limits.extend(rows);
        Ok(limits)
    }

    pub async fn usage(&self, project: &str) -> Result<BTreeMap<String, i64>> {
        let (volumes, vol_gb): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM volumes WHERE project_id = $1")
                .bind(project)
                .fetch_one(self.pool())
                .await?;
        let (snapshots, snap_gb): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM volume_snapshots WHERE project_id = $1",
        )
        .bind(project)
        .fetch_one(self.pool())
        .await?;
        let mut u = BTreeMap::new();
        u.insert("volumes".to_owned(), volumes);
        u.insert("snapshots".to_owned(), snapshots);
        u.insert(
            "gigabytes".to_owned(),
            vol_gb.unwrap_or(0) + snap_gb.unwrap_or(0),
        );
        for k in [
            "backups",
            "backup_gigabytes",
            "groups",
            "per_volume_gigabytes",
        ] {
            u.insert(k.to_owned(), 0);
        }
        Ok(u)
    }

    /// Refuses (413, Cinder's messages) when adding `count` of `resource`
    /// and `gigabytes` GiB would pass the project's limits.
    pub async fn check_quota(
        &self,
        project: &str,
        resource: &str,
        count: i64,
        gigabytes: i64,
    ) -> Result<()> {
        let limits = self.quota_limits(project).await?;
        let usage = self.usage(project).await?;
        let per_volume = limits.get("per_volume_gigabytes").copied().unwrap_or(-1);
        if resource == "volumes" && per_volume >= 0 && gigabytes > per_volume {
            return Err(VolumeError::OverLimit(format!(
                "VolumeSizeExceedsLimit: Requested volume size {gigabytes}G is larger than maximum allowed limit {per_volume}G."
            )));
        }
        let limit = limits.get(resource).copied().unwrap_or(-1);
        let used = usage.get(resource).copied().unwrap_or(0);
        if limit >= 0 && used + count > limit {
            let what = if resource == "volumes" {
                "VolumeLimitExceeded: Maximum number of volumes allowed"
            } else {
                "SnapshotLimitExceeded: Maximum number of snapshots allowed"
            };
            return Err(VolumeError::OverLimit(format!(
                "{what} ({limit}) exceeded for quota '{resource}'."
            )));
        }
        let gb_limit = limits.get("gigabytes").copied().unwrap_or(-1);
        let gb_used = usage.get("gigabytes").copied().unwrap_or(0);
        if gb_limit >= 0 && gb_used + gigabytes > gb_limit {
            let what = "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota.";
            return Err(VolumeError::OverLimit(format!(
                "{what} Requested {gigabytes}G, quota is {gb_limit}G and {gb_used}G has been consumed."
            )));
        }
        Ok(())
    }

    /// The quota set of `project`, for its readers and admins.
    pub async fn show_quotas(&self, ctx: &AuthContext, project: &str) -> Result<QuotaSet> {
        self.enforce(
            ctx,
            "volume_extension:quotas:show",
            Rule::ProjectReader,
            Some(project),
        )?;
        Ok(QuotaSet {
            limits: self.quota_limits(project).await?,
            in_use: self.usage(project).await?,
        })
    }

    pub async fn update_quotas(
        &self,
        ctx: &AuthContext,
        project: &str,
        changes: BTreeMap<String, i64>,
    ) -> Result<QuotaSet> {
        self.enforce(ctx, "volume_extension:quotas:update", Rule::Admin, None)?;
        for (k, v) in &changes {
            if !DEFAULT_QUOTAS.iter().any(|(name, _)| name == k) {
                return Err(VolumeError::bad(format!("Bad key(s) in quota set: {k}")));
            }
            if *v < -1 {
                return Err(VolumeError::bad(format!(
                    "Quota limit {v} for {k} must be -1 or greater."
                )));
            }
        }
        let mut tx = self.pool().begin().await?;
        for (k, v) in &changes {
            sqlx::query(
                "INSERT INTO volume_quotas (project_id, resource, hard_limit) VALUES ($1, $2, $3) \
                 ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = $3",
            )
            .bind(project)
            .bind(k)
            .bind(v)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(QuotaSet {
            limits: self.quota_limits(project).await?,
            in_use: self.usage(project).await?,
        })
    }

    pub async fn reset_quotas(&self, ctx: &AuthContext, project: &str) -> Result<()> {
        self.enforce(ctx, "volume_extension:quotas:delete", Rule::Admin, None)?;
        sqlx::query("DELETE FROM volume_quotas WHERE project_id = $1")
            .bind(project)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
