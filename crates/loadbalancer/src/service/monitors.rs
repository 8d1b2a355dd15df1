//! Health monitors: one per pool; HTTP (a request whose status must be
//! among the expected codes), TCP (a connect) or PING (an ICMP echo).

use ferro_common::{ids, time, AuthContext};
use ferro_store::flag;
use serde::Deserialize;

use super::balancers::tags_json;
use super::{next_seq, LoadBalancerService};
use crate::error::{LbError, Result};
use crate::model::{Monitor, Tree};

const TYPES: &[&str] = &["HTTP", "TCP", "PING"];
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
];

#[derive(Debug, Default, Deserialize)]
pub struct MonitorCreate {
    pub name: Option<String>,
    pub pool_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub delay: Option<i64>,
    pub timeout: Option<i64>,
    pub max_retries: Option<i64>,
    pub max_retries_down: Option<i64>,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorUpdate {
    pub name: Option<String>,
    pub delay: Option<i64>,
    pub timeout: Option<i64>,
    pub max_retries: Option<i64>,
    pub max_retries_down: Option<i64>,
    pub http_method: Option<String>,
    pub url_path: Option<String>,
    pub expected_codes: Option<String>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
}

/// `200`, `200,202` or `200-204`, codes of three digits.
fn codes_ok(s: &str) -> bool {
    let code = |c: &str| c.len() == 3 && c.chars().all(|x| x.is_ascii_digit());
    match s.split_once('-') {
        Some((a, b)) => code(a) && code(b) && a <= b,
        None => !s.is_empty() && s.split(',').all(code),
    }
}

/// Checks a monitor's settings as a whole (after an update's merge).
fn check(m: &Monitor) -> Result<()> {
    let range = |field: &str, v: i64, lo: i64, hi: i64| {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(LbError::invalid(
                field,
                v,
                &format!("Value should be greater or equal to {lo} and lower or equal to {hi}"),
            ))
        }
    };
    range("delay", m.delay, 1, 2_147_483_647)?;
    range("timeout", m.timeout, 1, 2_147_483_647)?;
    range("max_retries", m.max_retries, 1, 10)?;
    range("max_retries_down", m.max_retries_down, 1, 10)?;
    if m.timeout > m.delay {
        return Err(LbError::bad(
            "Validation failure: The timeout value must be less than or equal to the delay.",
        ));
    }
    if !METHODS.contains(&m.http_method.as_str()) {
        return Err(LbError::invalid(
            "http_method",
            &m.http_method,
            &format!("Value should be one of: {}", METHODS.join(", ")),
        ));
    }
    if !m.url_path.starts_with('/')
        || m.url_path
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(LbError::invalid(
            "url_path",
            &m.url_path,
            "Value must be a URL path starting with /",
        ));
    }
    if !codes_ok(&m.expected_codes) {
        return Err(LbError::invalid(
            "expected_codes",
            &m.expected_codes,
            "Value should be a code, a list of codes (200,202) or a range (200-204)",
        ));
    }
    Ok(())
}

impl LoadBalancerService {
    pub async fn create_monitor(
        &self,
        ctx: &AuthContext,
        req: MonitorCreate,
    ) -> Result<(Tree, String)> {
        let Some(pool_id) = req.pool_id.clone() else {
            return Err(LbError::invalid(
                "pool_id",
                "None",
                "Mandatory field missing.",
            ));
        };
        let kind = req
            .kind
            .clone()
            .ok_or_else(|| LbError::invalid("type", "None", "Mandatory field missing."))?;
        if !TYPES.contains(&kind.as_str()) {
            return Err(LbError::invalid(
                "type",
                &kind,
                &format!("Value should be one of: {}", TYPES.join(", ")),
            ));
        }
        let need = |field: &str, v: Option<i64>| {
            v.ok_or_else(|| LbError::invalid(field, "None", "Mandatory field missing."))
        };
        let now = time::now_micros();
        let tree = self.tree_of(ctx, "lb_pools", "Pool", &pool_id).await?;
        let m = Monitor {
            id: ids::uuid_id(),
            seq: next_seq(),
            project_id: tree.lb.project_id.clone(),
            pool_id: pool_id.clone(),
            name: req.name.clone().unwrap_or_default(),
            kind,
            delay: need("delay", req.delay)?,
            timeout: need("timeout", req.timeout)?,
            max_retries: need("max_retries", req.max_retries)?,
            max_retries_down: req.max_retries_down.unwrap_or(3),
            http_method: req.http_method.clone().unwrap_or_else(|| "GET".into()),
            url_path: req.url_path.clone().unwrap_or_else(|| "/".into()),
            expected_codes: req.expected_codes.clone().unwrap_or_else(|| "200".into()),
            admin_state_up: flag(req.admin_state_up.unwrap_or(true)),
            revision: 0,
            tags: tags_json(&req.tags),
            created_at: now,
            updated_at: now,
        };
        check(&m)?;
        self.may_write(ctx, "load-balancer:healthmonitor:post", &m.project_id)?;
        if tree.pool_monitor(&pool_id).is_some() {
            return Err(LbError::Conflict(format!(
                "Pool {pool_id} already has a health monitor."
            )));
        }
        self.check_quota(&m.project_id, "health_monitor").await?;
        let (mut tx, revision) = self.begin(&tree).await?;
        sqlx::query(
            "INSERT INTO lb_healthmonitors (id, seq, project_id, pool_id, name, type, delay, timeout, max_retries, \
             max_retries_down, http_method, url_path, expected_codes, admin_state_up, revision, tags, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)",
        )
        .bind(&m.id)
        .bind(m.seq)
        .bind(&m.project_id)
        .bind(&m.pool_id)
        .bind(&m.name)
        .bind(&m.kind)
        .bind(m.delay)
        .bind(m.timeout)
        .bind(m.max_retries)
        .bind(m.max_retries_down)
        .bind(&m.http_method)
        .bind(&m.url_path)
        .bind(&m.expected_codes)
        .bind(m.admin_state_up)
        .bind(revision)
        .bind(&m.tags)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(healthmonitor_id = %m.id, pool_id = %pool_id, "health monitor created");
        self.changed();
        Ok((self.tree(ctx, &tree.lb.id).await?, m.id))
    }

    pub async fn update_monitor(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: MonitorUpdate,
    ) -> Result<Tree> {
        let tree = self
            .tree_of(ctx, "lb_healthmonitors", "Health Monitor", id)
            .await?;
        let Some(old) = tree.monitors.iter().find(|m| m.id == id).cloned() else {
            return Err(LbError::not_found("Health Monitor", id));
        };
        self.may_write(ctx, "load-balancer:healthmonitor:put", &old.project_id)?;
        let m = Monitor {
            name: req.name.unwrap_or(old.name.clone()),
            delay: req.delay.unwrap_or(old.delay),
            timeout: req.timeout.unwrap_or(old.timeout),
            max_retries: req.max_retries.unwrap_or(old.max_retries),
            max_retries_down: req.max_retries_down.unwrap_or(old.max_retries_down),
            http_method: req.http_method.unwrap_or(old.http_method.clone()),
            url_path: req.url_path.unwrap_or(old.url_path.clone()),
            expected_codes: req.expected_codes.unwrap_or(old.expected_codes.clone()),
            admin_state_up: req.admin_state_up.map(flag).unwrap_or(old.admin_state_up),
            tags: if req.tags.is_some() {
                tags_json(&req.tags)
            } else {
                old.tags.clone()
            },
            ..old
        };
        check(&m)?;
        let (mut tx, revision) = self.begin(&tree).await?;
        sqlx::query(
            "UPDATE lb_healthmonitors SET name = $1, delay = $2, timeout = $3, max_retries = $4, max_retries_down = $5, \
             http_method = $6, url_path = $7, expected_codes = $8, admin_state_up = $9, tags = $10, revision = $11, \
             updated_at = $12 WHERE id = $13",
        )
        .bind(&m.name)
        .bind(m.delay)
        .bind(m.timeout)
        .bind(m.max_retries)
        .bind(m.max_retries_down)
        .bind(&m.http_method)
        .bind(&m.url_path)
        .bind(&m.expected_codes)
        .bind(m.admin_state_up)
        .bind(&m.tags)
        .bind(revision)
        .bind(time::now_micros())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed();
        self.tree(ctx, &tree.lb.id).await
    }

    pub async fn delete_monitor(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let tree = self
            .tree_of(ctx, "lb_healthmonitors", "Health Monitor", id)
            .await?;
        self.may_write(
            ctx,
            "load-balancer:healthmonitor:delete",
            &tree.lb.project_id,
        )?;
        let (mut tx, _) = self.begin(&tree).await?;
        sqlx::query("DELETE FROM lb_healthmonitors WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(healthmonitor_id = %id, "health monitor deleted");
        self.changed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::codes_ok;

    #[test]
    fn expected_codes_take_octavias_three_forms() {
        for ok in ["200", "200,202", "200-204"] {
            assert!(codes_ok(ok), "{ok}");
        }
        for bad in ["", "20", "200-", "abc", "204-200", "200;202"] {
            assert!(!codes_ok(bad), "{bad}");
        }
    }
}
