//! Server groups: a project's named placement policy (affinity,
//! anti-affinity and their soft kinds) over the servers that join it at
//! create time. The scheduler reads a member's group as a
//! [`GroupPlacement`] and filters or weighs hosts by where the other
//! members run.

use ferro_common::{ids, time, AuthContext};
use ferro_placement::{Affinity, GroupPlacement};
use ferro_store::sqlx;

use crate::error::{ComputeError, Result};
use crate::service::ComputeService;

#[derive(Clone, Debug)]
pub struct ServerGroup {
    pub id: String,
    pub name: String,
    pub policy: Affinity,
    /// Anti-affinity only: how many members one host may hold (Nova's
    /// `rules.max_server_per_host`, 2.64); `None` means one.
    pub max_server_per_host: Option<i64>,
    pub project_id: String,
    pub user_id: String,
    pub members: Vec<String>,
}

/// What a create asks for, already checked against the microversion's schema.
pub struct GroupCreate {
    pub name: String,
    pub policy: Affinity,
    pub max_server_per_host: Option<i64>,
}

type Row = (String, String, String, Option<i64>, String, String);

const COLUMNS: &str = "id, name, policy, max_server_per_host, project_id, user_id";

impl ComputeService {
    async fn group_from(&self, r: Row) -> Result<ServerGroup> {
        let (id, name, policy, max, project_id, user_id) = r;
        let members: Vec<(String,)> = sqlx::query_as(
            "SELECT m.server_id FROM server_group_members m JOIN servers s ON s.id = m.server_id \
             WHERE m.group_id = $1 AND s.deleted = 0 ORDER BY s.created_at, s.id",
        )
        .bind(&id)
        .fetch_all(self.pool())
        .await?;
        Ok(ServerGroup {
            policy: Affinity::parse(&policy).ok_or_else(|| {
                ComputeError::Internal(format!("server group {id}: policy {policy}"))
            })?,
            id,
            name,
            max_server_per_host: max,
            project_id,
            user_id,
            members: members.into_iter().map(|(m,)| m).collect(),
        })
    }

    /// Groups of one project, or of every project when `None`.
    pub async fn server_groups(&self, project: Option<&str>) -> Result<Vec<ServerGroup>> {
        let rows: Vec<Row> = match project {
            Some(p) => {
                sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM server_groups WHERE project_id = $1 ORDER BY created_at, id"
            ))
                .bind(p)
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM server_groups ORDER BY created_at, id"
                ))
                .fetch_all(self.pool())
                .await?
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.group_from(r).await?);
        }
        Ok(out)
    }

    /// A group the caller may see (its project's, or any for an admin).
    pub async fn visible_server_group(&self, ctx: &AuthContext, id: &str) -> Result<ServerGroup> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM server_groups WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(r) if ctx.is_admin() || ctx.project_id() == Some(r.4.as_str()) => {
                self.group_from(r).await
            }
            _ => Err(ComputeError::NotFound(format!(
                "Instance group {id} could not be found."
            ))),
        }
    }

    pub async fn create_server_group(
        &self,
        ctx: &AuthContext,
        project: &str,
        req: GroupCreate,
    ) -> Result<ServerGroup> {
        let limit = self
            .quotas(project)
            .await?
            .get("server_groups")
            .copied()
            .unwrap_or(-1);
        let (have,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM server_groups WHERE project_id = $1")
                .bind(project)
                .fetch_one(self.pool())
                .await?;
        if limit >= 0 && have + 1 > limit {
            return Err(ComputeError::Forbidden(
                "Quota exceeded, too many server groups.".into(),
            ));
        }
        let id = ids::uuid_id();
        sqlx::query(
            "INSERT INTO server_groups (id, name, policy, max_server_per_host, project_id, user_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&req.name)
        .bind(req.policy.as_str())
        .bind(req.max_server_per_host)
        .bind(project)
        .bind(&ctx.user_id)
        .bind(time::now_micros())
        .execute(self.pool())
        .await?;
        tracing::info!(server_group_id = %id, policy = req.policy.as_str(), "server group created");
        Ok(ServerGroup {
            id,
            name: req.name,
            policy: req.policy,
            max_server_per_host: req.max_server_per_host,
            project_id: project.to_owned(),
            user_id: ctx.user_id.clone(),
            members: Vec::new(),
        })
    }

    pub async fn delete_server_group(&self, id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM server_group_members WHERE group_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM server_groups WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(server_group_id = %id, "server group deleted");
        Ok(())
    }

    /// Refuses `count` more members beyond the `server_group_members` quota.
    pub async fn check_group_room(&self, g: &ServerGroup, count: i64) -> Result<()> {
        let limit = self
            .quotas(&g.project_id)
            .await?
            .get("server_group_members")
            .copied()
            .unwrap_or(-1);
        if limit >= 0 && g.members.len() as i64 + count > limit {
            return Err(ComputeError::Forbidden(
                "Quota exceeded, too many servers in group".into(),
            ));
        }
        Ok(())
    }

    pub async fn join_server_group(&self, group_id: &str, server_id: &str) -> Result<()> {
        sqlx::query("INSERT INTO server_group_members (group_id, server_id) VALUES ($1, $2)")
            .bind(group_id)
            .bind(server_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The ids of the groups a server is in (at most one, as in Nova).
    pub async fn groups_of(&self, server_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT group_id FROM server_group_members WHERE server_id = $1")
                .bind(server_id)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|(g,)| g).collect())
    }

    /// The scheduler's view of the server's group: where its other members
    /// hold resources (claimed or running).
    pub async fn group_placement(&self, server_id: &str) -> Result<Option<GroupPlacement>> {
        let row: Option<(String, String, Option<i64>)> = sqlx::query_as(
            "SELECT g.id, g.policy, g.max_server_per_host FROM server_groups g \
             JOIN server_group_members m ON m.group_id = g.id WHERE m.server_id = $1",
        )
        .bind(server_id)
        .fetch_optional(self.pool())
        .await?;
        let Some((group_id, policy, max)) = row else {
            return Ok(None);
        };
        let Some(policy) = Affinity::parse(&policy) else {
            return Ok(None);
        };
        let hosts: Vec<(String,)> = sqlx::query_as(
            "SELECT a.host FROM allocations a JOIN server_group_members m ON m.server_id = a.consumer_id \
             WHERE m.group_id = $1 AND a.consumer_id <> $2",
        )
        .bind(&group_id)
        .bind(server_id)
        .fetch_all(self.pool())
        .await?;
        Ok(Some(GroupPlacement {
            policy,
            member_hosts: hosts.into_iter().map(|(h,)| h).collect(),
            max_server_per_host: max.unwrap_or(1),
        }))
    }
}
