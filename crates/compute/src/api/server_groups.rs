//! `/os-server-groups`: list, create, show, delete. Before 2.64 a group has
//! `policies` (a list of one) and `metadata`; from 2.64 `policy` and
//! `rules`. Soft policies exist from 2.15; `project_id`/`user_id` are shown
//! from 2.13.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_placement::Affinity;
use serde_json::{json, Map, Value};

use super::{check_name, empty, reply, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::server_groups::{GroupCreate, ServerGroup};

fn bad(m: impl Into<String>) -> ComputeError {
    ComputeError::BadRequest(m.into())
}

fn render(c: &Ctx, g: &ServerGroup) -> Value {
    let mut o = json!({"id": g.id, "name": g.name, "members": g.members});
    if c.version.at_least(64) {
        o["policy"] = json!(g.policy.as_str());
        o["rules"] = match g.max_server_per_host {
            Some(n) => json!({"max_server_per_host": n}),
            None => json!({}),
        };
    } else {
        o["policies"] = json!([g.policy.as_str()]);
        o["metadata"] = json!({});
    }
    if c.version.at_least(13) {
        o["project_id"] = json!(g.project_id);
        o["user_id"] = json!(g.user_id);
    }
    o
}

fn member_or_admin(c: &Ctx, action: &'static str) -> Result<()> {
    if c.auth.is_admin() || c.auth.has_role("member") {
        Ok(())
    } else {
        Err(ComputeError::Denied(ferro_common::Denied { action }))
    }
}

fn policy_of(c: &Ctx, name: &str) -> Result<Affinity> {
    let p = Affinity::parse(name).filter(|p| {
        c.version.at_least(15) || matches!(p, Affinity::Affinity | Affinity::AntiAffinity)
    });
    p.ok_or_else(|| {
        bad(format!(
            "Invalid input for field/attribute policy. Value: {name}. '{name}' is not one of the allowed policies"
        ))
    })
}

/// Checks a create body against the schema of the request's microversion.
fn parse_create(c: &Ctx, body: &Value) -> Result<GroupCreate> {
    let g = body
        .get("server_group")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("Invalid input for field/attribute server_group. 'server_group' is a required property."))?;
    let allowed: &[&str] = if c.version.at_least(64) {
        &["name", "policy", "rules"]
    } else {
        &["name", "policies"]
    };
    if let Some(k) = g.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("Invalid input for field/attribute server_group. Additional properties are not allowed ('{k}' was unexpected)")));
    }
    let name = g.get("name").and_then(Value::as_str).ok_or_else(|| {
        bad("Invalid input for field/attribute name. 'name' is a required property.")
    })?;
    check_name("name", name)?;
    let (policy, max) = if c.version.at_least(64) {
        let p = g.get("policy").and_then(Value::as_str).ok_or_else(|| {
            bad("Invalid input for field/attribute policy. 'policy' is a required property.")
        })?;
        let policy = policy_of(c, p)?;
        let max = match g.get("rules") {
            None => None,
            Some(Value::Object(r)) => parse_rules(policy, r)?,
            Some(_) => return Err(bad("Invalid input for field/attribute rules.")),
        };
        (policy, max)
    } else {
        let list = g.get("policies").and_then(Value::as_array).ok_or_else(|| {
            bad("Invalid input for field/attribute policies. 'policies' is a required property.")
        })?;
        let [one] = list.as_slice() else {
            return Err(bad(
                "Invalid input for field/attribute policies. Exactly one policy is required.",
            ));
        };
        let p = one
            .as_str()
            .ok_or_else(|| bad("Invalid input for field/attribute policies."))?;
        (policy_of(c, p)?, None)
    };
    Ok(GroupCreate {
        name: name.to_owned(),
        policy,
        max_server_per_host: max,
    })
}

fn parse_rules(policy: Affinity, r: &Map<String, Value>) -> Result<Option<i64>> {
    if let Some(k) = r.keys().find(|k| *k != "max_server_per_host") {
        return Err(bad(format!("Invalid input for field/attribute rules. Additional properties are not allowed ('{k}' was unexpected)")));
    }
    let Some(v) = r.get("max_server_per_host") else {
        return Ok(None);
    };
    if policy != Affinity::AntiAffinity {
        return Err(bad("Only anti-affinity policy supports rules."));
    }
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if n >= 1 => Ok(Some(n)),
        _ => Err(bad(format!(
            "Invalid input for field/attribute max_server_per_host. Value: {v}. It must be an integer of at least 1."
        ))),
    }
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    let all = c.auth.is_admin()
        && p.get("all_projects")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let project = c.auth.project_id().unwrap_or_default().to_owned();
    let groups = s
        .server_groups(if all { None } else { Some(&project) })
        .await?;
    let offset = p
        .get("offset")
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| bad("Invalid input for query parameters offset."))
        })
        .transpose()?
        .unwrap_or(0);
    let limit = p
        .get("limit")
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| bad("Invalid input for query parameters limit."))
        })
        .transpose()?
        .unwrap_or(usize::MAX);
    let items: Vec<Value> = groups
        .iter()
        .skip(offset)
        .take(limit)
        .map(|g| render(&c, g))
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"server_groups": items}),
    ))
}

pub async fn create(St(s): St<State>, c: Ctx, Body(body): Body<Value>) -> Result<Response> {
    member_or_admin(&c, "os_compute_api:os-server-groups:create")?;
    let project = c
        .auth
        .project_id()
        .ok_or_else(|| {
            ComputeError::Forbidden(
                "Server groups belong to projects: use a project-scoped token.".into(),
            )
        })?
        .to_owned();
    let req = parse_create(&c, &body)?;
    let g = s.create_server_group(&c.auth, &project, req).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"server_group": render(&c, &g)}),
    ))
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let g = s.visible_server_group(&c.auth, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"server_group": render(&c, &g)}),
    ))
}

pub async fn delete(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let g = s.visible_server_group(&c.auth, &id).await?;
    member_or_admin(&c, "os_compute_api:os-server-groups:delete")?;
    s.delete_server_group(&g.id).await?;
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}
