//! `/v2.0/security-groups` and `/v2.0/security-group-rules`.

use std::collections::HashMap;

use axum::extract::{Path, State as S};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{list_reply, one, pick_fields, Body, Ctx, Query, State};
use crate::error::Result;
use crate::model::Rule;
use crate::service::{RuleCreate, SecurityGroupCreate};

fn project_filter(q: &Query) -> Option<&str> {
    q.get("project_id").or_else(|| q.get("tenant_id"))
}

pub async fn list(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let groups = s.groups(&ctx, project_filter(&q)).await?;
    let mut rules: HashMap<String, Vec<Rule>> = HashMap::new();
    for r in s.rules_of(None).await? {
        rules
            .entry(r.security_group_id.clone())
            .or_default()
            .push(r);
    }
    let items = groups
        .iter()
        .map(|g| g.render(rules.get(&g.id).map(Vec::as_slice).unwrap_or(&[])))
        .collect();
    Ok(list_reply(&s, "security-groups", items, &q))
}

pub async fn show(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let g = s.visible_group(&ctx, &id).await?;
    let rules = s.rules_of(Some(std::slice::from_ref(&id))).await?;
    Ok(one(
        StatusCode::OK,
        "security_group",
        pick_fields(g.render(&rules), &q),
    ))
}

pub async fn create(S(s): S<State>, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: SecurityGroupCreate = body.resource("security_group")?;
    let g = s.create_group(&ctx, req).await?;
    let rules = s.rules_of(Some(std::slice::from_ref(&g.id))).await?;
    Ok(one(StatusCode::CREATED, "security_group", g.render(&rules)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupUpdate {
    name: Option<String>,
    description: Option<String>,
    stateful: Option<bool>,
}

pub async fn update(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let req: GroupUpdate = body.resource("security_group")?;
    if req.stateful == Some(false) {
        return Err(crate::error::NetworkError::bad(
            "Stateless security groups are not supported by this cloud.",
        ));
    }
    let g = s.update_group(&ctx, &id, req.name, req.description).await?;
    let rules = s.rules_of(Some(std::slice::from_ref(&id))).await?;
    Ok(one(StatusCode::OK, "security_group", g.render(&rules)))
}

pub async fn delete(S(s): S<State>, Ctx(ctx): Ctx, Path(id): Path<String>) -> Result<Response> {
    s.delete_group(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_rules(S(s): S<State>, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let groups = s.groups(&ctx, project_filter(&q)).await?;
    let ids: Vec<String> = match q.get("security_group_id") {
        // A named group is shown whatever the admin's project.
        Some(g) => vec![s
            .visible_group(&ctx, g)
            .await
            .map(|g| g.id)
            .unwrap_or_default()],
        None => groups.iter().map(|g| g.id.clone()).collect(),
    };
    let defaults: Vec<&String> = groups
        .iter()
        .filter(|g| g.is_default != 0)
        .map(|g| &g.id)
        .collect();
    let items = s
        .rules_of(Some(&ids))
        .await?
        .iter()
        .map(|r| r.render(defaults.contains(&&r.security_group_id)))
        .collect();
    Ok(list_reply(&s, "security-group-rules", items, &q))
}

pub async fn show_rule(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response> {
    let (r, default) = s.rule(&ctx, &id).await?;
    Ok(one(
        StatusCode::OK,
        "security_group_rule",
        pick_fields(r.render(default), &q),
    ))
}

pub async fn create_rule(S(s): S<State>, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: RuleCreate = body.resource("security_group_rule")?;
    let r = s.create_rule(&ctx, req).await?;
    let default = s
        .group(&r.security_group_id)
        .await?
        .is_some_and(|g| g.is_default != 0);
    Ok(one(
        StatusCode::CREATED,
        "security_group_rule",
        r.render(default),
    ))
}

pub async fn delete_rule(
    S(s): S<State>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.delete_rule(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
