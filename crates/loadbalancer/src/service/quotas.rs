//! Octavia's quotas: per project, how many load balancers, listeners,
//! pools, health monitors, members, L7 policies and L7 rules it may have
//! (-1: no limit, the default, as Octavia's own). Admins set and reset
//! them; a project's readers see its own. A create past the limit gets
//! Octavia's 403 "Quota has been met for resources: …" and writes nothing.
//!
//! The count and the insert are not one transaction: two creates racing
//! for the last unit may both pass (Octavia locks a usage row instead).

use ferro_common::policy::Rule;
use ferro_common::AuthContext;
use serde_json::{json, Map, Value};

use super::LoadBalancerService;
use crate::error::{LbError, Result};

/// The limits, in Octavia's order: (field, table counted, name in the 403).
pub const KINDS: [(&str, &str, &str); 7] = [
    ("load_balancer", "lb_loadbalancers", "Load Balancer"),
    ("listener", "lb_listeners", "Listener"),
    ("pool", "lb_pools", "Pool"),
    ("health_monitor", "lb_healthmonitors", "Health Monitor"),
    ("member", "lb_members", "Member"),
    ("l7policy", "lb_l7policies", "L7 Policy"),
    ("l7rule", "lb_l7rules", "L7 Rule"),
];

/// Octavia's largest quota value.
const MAX_QUOTA: i64 = 2_000_000_000;

/// The default for every kind: no limit.
pub const DEFAULT_LIMIT: i64 = -1;

/// One project's limits, in [`KINDS`] order (`None`: the default).
type Row = (String, [Option<i64>; 7]);

fn render(limits: &[Option<i64>; 7]) -> Map<String, Value> {
    let mut m = Map::new();
    for ((field, _, _), v) in KINDS.iter().zip(limits) {
        m.insert((*field).into(), json!(v.unwrap_or(DEFAULT_LIMIT)));
    }
    // Octavia still answers with the deprecated spellings too.
    m.insert("loadbalancer".into(), m["load_balancer"].clone());
    m.insert("healthmonitor".into(), m["health_monitor"].clone());
    m
}

impl LoadBalancerService {
    async fn quota_row(&self, project: &str) -> Result<Option<[Option<i64>; 7]>> {
        Ok(self
            .quota_rows(Some(project))
            .await?
            .into_iter()
            .next()
            .map(|(_, limits)| limits))
    }

    async fn quota_rows(&self, project: Option<&str>) -> Result<Vec<Row>> {
        use sqlx::Row as _;
        let rows = sqlx::query(
            "SELECT project_id, load_balancer, listener, pool, health_monitor, member, l7policy, l7rule \
             FROM lb_quotas WHERE ($1 = '' OR project_id = $1) ORDER BY project_id",
        )
        .bind(project.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let mut limits = [None; 7];
                for (i, l) in limits.iter_mut().enumerate() {
                    *l = r.try_get::<Option<i64>, _>(i + 1)?;
                }
                Ok((r.try_get::<String, _>(0)?, limits))
            })
            .collect()
    }

    /// `GET /quotas/defaults`.
    pub fn quota_defaults(&self) -> Value {
        json!({ "quota": render(&[None; 7]) })
    }

    /// `GET /quotas/{project}`: admins any project, others their own.
    pub async fn show_quota(&self, ctx: &AuthContext, project: &str) -> Result<Value> {
        self.enforce(
            ctx,
            "load-balancer:quota:get_one",
            Rule::ProjectReader,
            project,
        )?;
        let limits = self.quota_row(project).await?.unwrap_or([None; 7]);
        Ok(json!({ "quota": render(&limits) }))
    }

    /// `GET /quotas`: the projects with quotas set (a caller who is not
    /// admin sees at most their own).
    pub async fn list_quotas(&self, ctx: &AuthContext) -> Result<Value> {
        let only = if ctx.is_admin() {
            None
        } else {
            Some(
                ctx.project_id()
                    .ok_or_else(|| LbError::bad("A project-scoped token is required."))?,
            )
        };
        let quotas: Vec<Value> = self
            .quota_rows(only)
            .await?
            .into_iter()
            .map(|(project, limits)| {
                let mut m = render(&limits);
                m.insert("project_id".into(), json!(project));
                Value::Object(m)
            })
            .collect();
        Ok(json!({ "quotas": quotas, "quotas_links": [] }))
    }

    /// `PUT /quotas/{project}` (admin): the fields given change, `null`
    /// puts one back to the default.
    pub async fn set_quota(&self, ctx: &AuthContext, project: &str, body: &Value) -> Result<Value> {
        self.enforce(ctx, "load-balancer:quota:put", Rule::Admin, project)?;
        let Some(fields) = body.get("quota").and_then(Value::as_object) else {
            return Err(LbError::invalid(
                "quota",
                "None",
                "Mandatory field missing.",
            ));
        };
        let mut limits = self.quota_row(project).await?.unwrap_or([None; 7]);
        for (key, v) in fields {
            let field = match key.as_str() {
                "loadbalancer" => "load_balancer",
                "healthmonitor" => "health_monitor",
                k => k,
            };
            let Some(i) = KINDS.iter().position(|(f, _, _)| *f == field) else {
                return Err(LbError::bad(format!(
                    "Invalid input for field/attribute quota. Unknown attribute '{key}'."
                )));
            };
            limits[i] = match v {
                Value::Null => None,
                Value::Number(n) => match n.as_i64() {
                    Some(x) if (-1..=MAX_QUOTA).contains(&x) => Some(x),
                    _ => {
                        return Err(LbError::invalid(
                            field,
                            n,
                            &format!("Value should be between -1 and {MAX_QUOTA}"),
                        ))
                    }
                },
                other => return Err(LbError::invalid(field, other, "Value should be an integer")),
            };
        }
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM lb_quotas WHERE project_id = $1")
            .bind(project)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO lb_quotas (project_id, load_balancer, listener, pool, health_monitor, member, l7policy, l7rule) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(project)
        .bind(limits[0])
        .bind(limits[1])
        .bind(limits[2])
        .bind(limits[3])
        .bind(limits[4])
        .bind(limits[5])
        .bind(limits[6])
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(project_id = project, "load-balancer quota set");
        Ok(json!({ "quota": render(&limits) }))
    }

    /// `DELETE /quotas/{project}` (admin): back to the defaults.
    pub async fn reset_quota(&self, ctx: &AuthContext, project: &str) -> Result<()> {
        self.enforce(ctx, "load-balancer:quota:delete", Rule::Admin, project)?;
        sqlx::query("DELETE FROM lb_quotas WHERE project_id = $1")
            .bind(project)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Refuses a create of `kind` (a [`KINDS`] field) in `project` that
    /// would pass its quota.
    pub(crate) async fn check_quota(&self, project: &str, kind: &str) -> Result<()> {
        let Some(i) = KINDS.iter().position(|(f, _, _)| *f == kind) else {
            return Ok(());
        };
        let limit = self
            .quota_row(project)
            .await?
            .and_then(|l| l[i])
            .unwrap_or(DEFAULT_LIMIT);
        if limit < 0 {
            return Ok(());
        }
        let (_, table, name) = KINDS[i];
        let (used,): (i64,) = sqlx::query_as(&format!(
            "SELECT COUNT(*) FROM {table} WHERE project_id = $1"
        ))
        .bind(project)
        .fetch_one(self.pool())
        .await?;
        if used >= limit {
            return Err(LbError::Quota(format!(
                "Quota has been met for resources: {name}"
            )));
        }
        Ok(())
    }
}
