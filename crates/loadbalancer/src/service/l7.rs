//! L7 policies and rules: on an HTTP listener, requests that match every
//! enabled rule of a policy are sent to another pool (REDIRECT_TO_POOL),
//! redirected (REDIRECT_TO_URL, REDIRECT_PREFIX) or refused (REJECT).
//!
//! As in Octavia, a policy has a 1-based `position` among its listener's
//! policies, kept dense (a create or move at position p shifts the rest;
//! a position past the end appends), and policies are evaluated REJECT
//! first, then redirects, then REDIRECT_TO_POOL, in position order within
//! each. A policy without enabled rules never matches.

use ferro_common::{ids, time, AuthContext};
use ferro_store::flag;
use serde::Deserialize;
use sqlx::{Any, Transaction};

use super::balancers::tags_json;
use super::listeners::some_or_null;
use super::{next_seq, LoadBalancerService};
use crate::error::{LbError, Result};
use crate::model::{L7Policy, L7Rule, Tree};

pub(crate) const ACTIONS: &[&str] = &[
    "REDIRECT_TO_POOL",
    "REDIRECT_TO_URL",
    "REDIRECT_PREFIX",
    "REJECT",
];
const REDIRECT_CODES: &[i64] = &[301, 302, 303, 307, 308];
pub(crate) const RULE_TYPES: &[&str] = &["COOKIE", "FILE_TYPE", "HEADER", "HOST_NAME", "PATH"];
/// Rule types Octavia has for client-certificate checks: they need a
/// TERMINATED_HTTPS listener with client authentication.
const TLS_RULE_TYPES: &[&str] = &["SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD"];
pub(crate) const COMPARE_TYPES: &[&str] =
    &["CONTAINS", "ENDS_WITH", "EQUAL_TO", "REGEX", "STARTS_WITH"];

#[derive(Debug, Default, Deserialize)]
pub struct L7PolicyCreate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub listener_id: Option<String>,
    pub action: Option<String>,
    pub position: Option<i64>,
    pub redirect_pool_id: Option<String>,
    pub redirect_url: Option<String>,
    pub redirect_prefix: Option<String>,
    pub redirect_http_code: Option<i64>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
    /// Rules made with the policy (Octavia's single-call create).
    pub rules: Option<Vec<L7RuleCreate>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L7PolicyUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub action: Option<String>,
    pub position: Option<i64>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub redirect_pool_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub redirect_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub redirect_prefix: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub redirect_http_code: Option<Option<i64>>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct L7RuleCreate {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub compare_type: Option<String>,
    pub key: Option<String>,
    pub value: Option<String>,
    pub invert: Option<bool>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub project_id: Option<String>,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct L7RuleUpdate {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub compare_type: Option<String>,
    #[serde(default, deserialize_with = "some_or_null")]
    pub key: Option<Option<String>>,
    pub value: Option<String>,
    pub invert: Option<bool>,
    pub admin_state_up: Option<bool>,
    pub tags: Option<Vec<String>>,
}

/// What a policy does, with only the fields its action uses.
#[derive(Debug, Default, PartialEq)]
struct Action {
    action: String,
    pool: Option<String>,
    url: Option<String>,
    prefix: Option<String>,
    code: Option<i64>,
}

fn one_of(field: &str, v: &str, allowed: &[&str]) -> Result<()> {
    if allowed.contains(&v) {
        return Ok(());
    }
    Err(LbError::invalid(
        field,
        v,
        &format!("Value should be one of: {}", allowed.join(", ")),
    ))
}

/// A character HAProxy's configuration carries inside single quotes.
fn visible(c: char) -> bool {
    c.is_ascii_graphic() && c != '"' && c != '\''
}

/// An absolute http(s) URL HAProxy can carry: no whitespace, quotes or
/// control characters.
fn check_url(field: &str, v: &str) -> Result<()> {
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"));
    let host_ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
    if !host_ok || v.len() > 2048 || !v.chars().all(visible) {
        return Err(LbError::invalid(field, v, "Value must be a valid URL."));
    }
    Ok(())
}

/// Checks an action and keeps only the fields it uses (Octavia clears
/// the others); redirects default to 302.
fn settle(a: Action) -> Result<Action> {
    one_of("action", &a.action, ACTIONS)?;
    let need = |field: &str, v: &Option<String>| match v {
        Some(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(LbError::bad(format!(
            "Validation failure: A valid {field} is required for the {} action.",
            a.action
        ))),
    };
    let code = |c: Option<i64>| -> Result<Option<i64>> {
        match c.unwrap_or(302) {
            c if REDIRECT_CODES.contains(&c) => Ok(Some(c)),
            c => Err(LbError::invalid(
                "redirect_http_code",
                c,
                "Value should be one of: 301, 302, 303, 307, 308",
            )),
        }
    };
    Ok(match a.action.as_str() {
        "REDIRECT_TO_POOL" => Action {
            pool: Some(need("redirect_pool_id", &a.pool)?),
            ..Action {
                action: a.action,
                ..Default::default()
            }
        },
        "REDIRECT_TO_URL" => {
            let url = need("redirect_url", &a.url)?;
            check_url("redirect_url", &url)?;
            Action {
                url: Some(url),
                code: code(a.code)?,
                action: a.action,
                ..Default::default()
            }
        }
        "REDIRECT_PREFIX" => {
            let prefix = need("redirect_prefix", &a.prefix)?;
            check_url("redirect_prefix", &prefix)?;
            Action {
                prefix: Some(prefix),
                code: code(a.code)?,
                action: a.action,
                ..Default::default()
            }
        }
        _ => Action {
            action: a.action,
            ..Default::default()
        },
    })
}

/// A rule's fields, checked: a key for HEADER and COOKIE (a token), a
/// value HAProxy can carry (no whitespace or quotes), a REGEX that
/// compiles, FILE_TYPE compared only EQUAL_TO or REGEX.
fn check_rule(
    kind: &str,
    compare: &str,
    key: &Option<String>,
    value: &str,
) -> Result<Option<String>> {
    if TLS_RULE_TYPES.contains(&kind) {
        return Err(LbError::bad(format!(
            "Validation failure: L7 rules of type {kind} need a TERMINATED_HTTPS listener with client authentication, which is not offered."
        )));
    }
    one_of("type", kind, RULE_TYPES)?;
    one_of("compare_type", compare, COMPARE_TYPES)?;
    if kind == "FILE_TYPE" && compare != "EQUAL_TO" && compare != "REGEX" {
        return Err(LbError::bad(format!(
            "Validation failure: L7 rule type FILE_TYPE may only use the EQUAL_TO or REGEX compare types, not {compare}."
        )));
    }
    if value.is_empty() || !value.chars().all(visible) {
        return Err(LbError::invalid(
            "value",
            value,
            "Value must be a string of visible characters without whitespace or quotes.",
        ));
    }
    if compare == "REGEX" {
        if let Err(e) = regex::Regex::new(value) {
            return Err(LbError::bad(format!(
                "Validation failure: The value '{value}' is not a valid regular expression: {e}"
            )));
        }
    }
    let token = |k: &str| {
        !k.is_empty()
            && k.len() <= 255
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    match kind {
        "HEADER" | "COOKIE" => match key {
            Some(k) if token(k) => Ok(Some(k.clone())),
            Some(k) => Err(LbError::invalid(
                "key",
                k,
                "Value must be an HTTP header or cookie name.",
            )),
            None => Err(LbError::bad(format!(
                "Validation failure: L7 rules of type {kind} require a key."
            ))),
        },
        _ => Ok(None),
    }
}

impl LoadBalancerService {
    /// The policy `id` with its tree, if `ctx` may see it.
    pub async fn policy_tree(&self, ctx: &AuthContext, id: &str) -> Result<(Tree, L7Policy)> {
        let tree = self.tree_of(ctx, "lb_l7policies", "L7 Policy", id).await?;
        let p = tree
            .l7policies
            .iter()
            .find(|p| p.id == id)
            .cloned()
            .ok_or_else(|| LbError::not_found("L7 Policy", id))?;
        Ok((tree, p))
    }

    /// The rule `rule_id` of `policy_id`, with its tree.
    pub async fn rule_tree(
        &self,
        ctx: &AuthContext,
        policy_id: &str,
        rule_id: &str,
    ) -> Result<(Tree, L7Rule)> {
        let (tree, _) = self.policy_tree(ctx, policy_id).await?;
        let r = tree
            .l7rules
            .iter()
            .find(|r| r.id == rule_id && r.l7policy_id == policy_id)
            .cloned()
            .ok_or_else(|| LbError::not_found("L7 Rule", rule_id))?;
        Ok((tree, r))
    }

    /// A redirect pool must be of the same load balancer and speak what
    /// the listener speaks.
    fn check_redirect_pool(tree: &Tree, listener_protocol: &str, pool: &str) -> Result<()> {
        let Some(p) = tree.pools.iter().find(|p| p.id == pool) else {
            return Err(LbError::not_found("Pool", pool));
        };
        if !super::pools::compatible(listener_protocol, &p.protocol) {
            return Err(LbError::bad(format!(
                "Validation failure: The pool protocol '{}' is invalid while the listener protocol is '{listener_protocol}'.",
                p.protocol
            )));
        }
        Ok(())
    }

    pub async fn create_l7policy(
        &self,
        ctx: &AuthContext,
        req: L7PolicyCreate,
    ) -> Result<(Tree, String)> {
        let Some(listener_id) = req.listener_id.clone() else {
            return Err(LbError::invalid(
                "listener_id",
                "None",
                "Mandatory field missing.",
            ));
        };
        let action = settle(Action {
            action: req
                .action
                .clone()
                .ok_or_else(|| LbError::invalid("action", "None", "Mandatory field missing."))?,
            pool: req.redirect_pool_id.clone(),
            url: req.redirect_url.clone(),
            prefix: req.redirect_prefix.clone(),
            code: req.redirect_http_code,
        })?;
        if let Some(p) = req.position.filter(|p| *p < 1) {
            return Err(LbError::invalid(
                "position",
                p,
                "Value should be greater or equal to 1",
            ));
        }
        let rules = req.rules.unwrap_or_default();
        let mut checked = Vec::new();
        for r in &rules {
            checked.push(self.rule_fields(r)?);
        }
        let tree = self
            .tree_of(ctx, "lb_listeners", "Listener", &listener_id)
            .await?;
        let Some(l) = tree.listeners.iter().find(|l| l.id == listener_id).cloned() else {
            return Err(LbError::not_found("Listener", &listener_id));
        };
        let project = l.project_id.clone();
        self.may_write(ctx, "load-balancer:l7policy:post", &project)?;
        if l.protocol != "HTTP" && l.protocol != "TERMINATED_HTTPS" {
            return Err(LbError::bad(format!(
                "Validation failure: L7 policies are only allowed on HTTP and TERMINATED_HTTPS listeners; listener {listener_id} is {}.",
                l.protocol
            )));
        }
        if let Some(pool) = &action.pool {
            Self::check_redirect_pool(&tree, &l.protocol, pool)?;
        }
        self.check_quota(&project, "l7policy").await?;
        if !checked.is_empty() {
            self.check_quota(&project, "l7rule").await?;
        }
        let count = tree.listener_policies(&listener_id).count() as i64;
        let position = req.position.unwrap_or(count + 1).min(count + 1);
        let (mut tx, revision) = self.begin(&tree).await?;
        sqlx::query(
            "UPDATE lb_l7policies SET position = position + 1 WHERE listener_id = $1 AND position >= $2",
        )
        .bind(&listener_id)
        .bind(position)
        .execute(&mut *tx)
        .await?;
        let id = ids::uuid_id();
        let now = time::now_micros();
        sqlx::query(
            "INSERT INTO lb_l7policies (id, seq, project_id, listener_id, name, description, action, position, \
             redirect_pool_id, redirect_url, redirect_prefix, redirect_http_code, admin_state_up, revision, tags, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
        )
        .bind(&id)
        .bind(next_seq())
        .bind(&project)
        .bind(&listener_id)
        .bind(req.name.unwrap_or_default())
        .bind(req.description.unwrap_or_default())
        .bind(&action.action)
        .bind(position)
        .bind(&action.pool)
        .bind(&action.url)
        .bind(&action.prefix)
        .bind(action.code)
        .bind(flag(req.admin_state_up.unwrap_or(true)))
        .bind(revision)
        .bind(tags_json(&req.tags))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for (r, fields) in rules.iter().zip(&checked) {
            insert_rule(&mut tx, &project, &id, r, fields, revision).await?;
        }
        tx.commit().await?;
        tracing::info!(l7policy_id = %id, listener_id = %listener_id, action = %action.action, position, "l7 policy created");
        self.changed();
        Ok((self.tree(ctx, &tree.lb.id).await?, id))
    }

    pub async fn update_l7policy(
        &self,
        ctx: &AuthContext,
        id: &str,
        req: L7PolicyUpdate,
    ) -> Result<Tree> {
        let (tree, p) = self.policy_tree(ctx, id).await?;
        self.may_write(ctx, "load-balancer:l7policy:put", &p.project_id)?;
        let action_given = req.action.is_some();
        let action = settle(Action {
            action: req.action.unwrap_or(p.action.clone()),
            pool: req.redirect_pool_id.unwrap_or(if action_given {
                None
            } else {
                p.redirect_pool_id.clone()
            }),
            url: req.redirect_url.unwrap_or(if action_given {
                None
            } else {
                p.redirect_url.clone()
            }),
            prefix: req.redirect_prefix.unwrap_or(if action_given {
                None
            } else {
                p.redirect_prefix.clone()
            }),
            code: req.redirect_http_code.unwrap_or(p.redirect_http_code),
        })?;
        if let Some(pos) = req.position.filter(|p| *p < 1) {
            return Err(LbError::invalid(
                "position",
                pos,
                "Value should be greater or equal to 1",
            ));
        }
        if let Some(pool) = &action.pool {
            let protocol = tree
                .listeners
                .iter()
                .find(|l| l.id == p.listener_id)
                .map(|l| l.protocol.clone())
                .unwrap_or_default();
            Self::check_redirect_pool(&tree, &protocol, pool)?;
        }
        let count = tree.listener_policies(&p.listener_id).count() as i64;
        let to = req.position.unwrap_or(p.position).min(count);
        let (mut tx, revision) = self.begin(&tree).await?;
        if to != p.position {
            let (shift, lo, hi) = if to > p.position {
                (-1, p.position + 1, to)
            } else {
                (1, to, p.position - 1)
            };
            sqlx::query(
                "UPDATE lb_l7policies SET position = position + $1 WHERE listener_id = $2 AND position >= $3 AND position <= $4",
            )
            .bind(shift)
            .bind(&p.listener_id)
            .bind(lo)
            .bind(hi)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE lb_l7policies SET name = $1, description = $2, action = $3, position = $4, redirect_pool_id = $5, \
             redirect_url = $6, redirect_prefix = $7, redirect_http_code = $8, admin_state_up = $9, tags = $10, \
             revision = $11, updated_at = $12 WHERE id = $13",
        )
        .bind(req.name.unwrap_or(p.name.clone()))
        .bind(req.description.unwrap_or(p.description.clone()))
        .bind(&action.action)
        .bind(to)
        .bind(&action.pool)
        .bind(&action.url)
        .bind(&action.prefix)
        .bind(action.code)
        .bind(req.admin_state_up.map(flag).unwrap_or(p.admin_state_up))
        .bind(if req.tags.is_some() { tags_json(&req.tags) } else { p.tags.clone() })
        .bind(revision)
        .bind(time::now_micros())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed();
        self.tree(ctx, &tree.lb.id).await
    }

    /// Removes a policy with its rules; the policies after it move up.
    pub async fn delete_l7policy(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let (tree, p) = self.policy_tree(ctx, id).await?;
        self.may_write(ctx, "load-balancer:l7policy:delete", &p.project_id)?;
        let (mut tx, _) = self.begin(&tree).await?;
        for sql in [
            "DELETE FROM lb_l7rules WHERE l7policy_id = $1",
            "DELETE FROM lb_l7policies WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE lb_l7policies SET position = position - 1 WHERE listener_id = $1 AND position > $2",
        )
        .bind(&p.listener_id)
        .bind(p.position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(l7policy_id = %id, "l7 policy deleted");
        self.changed();
        Ok(())
    }

    /// A rule create's type, compare type, key and value, checked.
    fn rule_fields(&self, r: &L7RuleCreate) -> Result<RuleFields> {
        let kind = r
            .kind
            .clone()
            .ok_or_else(|| LbError::invalid("type", "None", "Mandatory field missing."))?;
        let compare = r
            .compare_type
            .clone()
            .ok_or_else(|| LbError::invalid("compare_type", "None", "Mandatory field missing."))?;
        let value = r
            .value
            .clone()
            .ok_or_else(|| LbError::invalid("value", "None", "Mandatory field missing."))?;
        let key = check_rule(&kind, &compare, &r.key, &value)?;
        Ok(RuleFields {
            kind,
            compare,
            key,
            value,
        })
    }

    pub async fn create_l7rule(
        &self,
        ctx: &AuthContext,
        policy_id: &str,
        req: L7RuleCreate,
    ) -> Result<(Tree, String)> {
        let fields = self.rule_fields(&req)?;
        let (tree, p) = self.policy_tree(ctx, policy_id).await?;
        self.may_write(ctx, "load-balancer:l7rule:post", &p.project_id)?;
        self.check_quota(&p.project_id, "l7rule").await?;
        let (mut tx, revision) = self.begin(&tree).await?;
        let id = insert_rule(&mut tx, &p.project_id, policy_id, &req, &fields, revision).await?;
        tx.commit().await?;
        tracing::info!(l7rule_id = %id, l7policy_id = policy_id, "l7 rule created");
        self.changed();
        Ok((self.tree(ctx, &tree.lb.id).await?, id))
    }

    pub async fn update_l7rule(
        &self,
        ctx: &AuthContext,
        policy_id: &str,
        rule_id: &str,
        req: L7RuleUpdate,
    ) -> Result<Tree> {
        let (tree, r) = self.rule_tree(ctx, policy_id, rule_id).await?;
        self.may_write(ctx, "load-balancer:l7rule:put", &r.project_id)?;
        let kind = req.kind.unwrap_or(r.kind.clone());
        let compare = req.compare_type.unwrap_or(r.compare_type.clone());
        let value = req.value.unwrap_or(r.rule_value.clone());
        let key = check_rule(
            &kind,
            &compare,
            &req.key.unwrap_or(r.rule_key.clone()),
            &value,
        )?;
        let (mut tx, revision) = self.begin(&tree).await?;
        sqlx::query(
            "UPDATE lb_l7rules SET type = $1, compare_type = $2, rule_key = $3, rule_value = $4, invert = $5, \
             admin_state_up = $6, tags = $7, revision = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(&kind)
        .bind(&compare)
        .bind(&key)
        .bind(&value)
        .bind(req.invert.map(flag).unwrap_or(r.invert))
        .bind(req.admin_state_up.map(flag).unwrap_or(r.admin_state_up))
        .bind(if req.tags.is_some() { tags_json(&req.tags) } else { r.tags.clone() })
        .bind(revision)
        .bind(time::now_micros())
        .bind(rule_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.changed();
        self.tree(ctx, &tree.lb.id).await
    }

    pub async fn delete_l7rule(
        &self,
        ctx: &AuthContext,
        policy_id: &str,
        rule_id: &str,
    ) -> Result<()> {
        let (tree, r) = self.rule_tree(ctx, policy_id, rule_id).await?;
        self.may_write(ctx, "load-balancer:l7rule:delete", &r.project_id)?;
        let (mut tx, _) = self.begin(&tree).await?;
        sqlx::query("DELETE FROM lb_l7rules WHERE id = $1")
            .bind(rule_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            l7rule_id = rule_id,
            l7policy_id = policy_id,
            "l7 rule deleted"
        );
        self.changed();
        Ok(())
    }
}

/// A rule's checked fields.
struct RuleFields {
    kind: String,
    compare: String,
    key: Option<String>,
    value: String,
}

async fn insert_rule(
    tx: &mut Transaction<'static, Any>,
    project: &str,
    policy_id: &str,
    r: &L7RuleCreate,
    f: &RuleFields,
    revision: i64,
) -> Result<String> {
    let id = ids::uuid_id();
    sqlx::query(
        "INSERT INTO lb_l7rules (id, seq, project_id, l7policy_id, type, compare_type, rule_key, rule_value, invert, \
         admin_state_up, revision, tags, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(&id)
    .bind(next_seq())
    .bind(project)
    .bind(policy_id)
    .bind(&f.kind)
    .bind(&f.compare)
    .bind(&f.key)
    .bind(&f.value)
    .bind(flag(r.invert.unwrap_or(false)))
    .bind(flag(r.admin_state_up.unwrap_or(true)))
    .bind(revision)
    .bind(tags_json(&r.tags))
    .bind(time::now_micros())
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(a: &str) -> Action {
        Action {
            action: a.into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_action_keeps_only_its_own_fields() {
        let a = settle(Action {
            pool: Some("p1".into()),
            url: Some("http://example.com/".into()),
            code: Some(301),
            ..action("REDIRECT_TO_POOL")
        })
        .unwrap();
        assert_eq!(
            a,
            Action {
                pool: Some("p1".into()),
                ..action("REDIRECT_TO_POOL")
            }
        );
        let a = settle(Action {
            url: Some("https://example.com/x".into()),
            ..action("REDIRECT_TO_URL")
        })
        .unwrap();
        assert_eq!(a.code, Some(302));
        assert_eq!(settle(action("REJECT")).unwrap(), action("REJECT"));
    }

    #[test]
    fn actions_need_their_target() {
        let e = settle(action("REDIRECT_TO_POOL")).unwrap_err();
        assert!(
            e.to_string().contains("redirect_pool_id is required"),
            "{e}"
        );
        assert!(settle(action("REDIRECT_PREFIX")).is_err());
        assert!(settle(Action {
            url: Some("ftp://x".into()),
            ..action("REDIRECT_TO_URL")
        })
        .is_err());
        assert!(settle(Action {
            url: Some("http://x/a b".into()),
            ..action("REDIRECT_TO_URL")
        })
        .is_err());
        assert!(settle(Action {
            url: Some("http://x/".into()),
            code: Some(300),
            ..action("REDIRECT_TO_URL")
        })
        .is_err());
        assert!(settle(action("DROP")).is_err());
    }

    #[test]
    fn rules_are_checked_as_octavia_does() {
        assert_eq!(
            check_rule("PATH", "STARTS_WITH", &None, "/api").unwrap(),
            None
        );
        assert_eq!(
            check_rule("HEADER", "EQUAL_TO", &Some("X-Env".into()), "blue").unwrap(),
            Some("X-Env".into())
        );
        assert!(check_rule("HEADER", "EQUAL_TO", &None, "blue").is_err());
        assert!(check_rule("HEADER", "EQUAL_TO", &Some("X Env".into()), "blue").is_err());
        assert!(check_rule("PATH", "STARTS_WITH", &None, "/a b").is_err());
        assert!(check_rule("PATH", "STARTS_WITH", &None, "/a\"b").is_err());
        assert!(check_rule("PATH", "REGEX", &None, "^/(a").is_err());
        assert!(check_rule("FILE_TYPE", "CONTAINS", &None, "jpg").is_err());
        assert!(check_rule("SSL_CONN_HAS_CERT", "EQUAL_TO", &None, "True").is_err());
        // A key on a rule type without one is dropped.
        assert_eq!(
            check_rule("HOST_NAME", "EQUAL_TO", &Some("x".into()), "a.example").unwrap(),
            None
        );
    }
}
