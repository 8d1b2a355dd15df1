//! L7 policy and rule handlers: extract, call the service (which
//! authorizes), render. Rules live under their policy
//! (`/l7policies/{id}/rules`) and answer under the key `rule`.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{many, one, Body, Ctx, Query, State};
use crate::error::{LbError, Result};
use crate::model::Tree;
use crate::service::{L7PolicyCreate, L7RuleCreate};

type St = AxState<State>;

fn render_policy(t: &Tree, id: &str, status: StatusCode) -> Result<Response> {
    let p = t
        .l7policies
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| LbError::not_found("L7 Policy", id))?;
    Ok(one(status, "l7policy", t.render_l7policy(p)))
}

fn render_rule(t: &Tree, id: &str, status: StatusCode) -> Result<Response> {
    let r = t
        .l7rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| LbError::not_found("L7 Rule", id))?;
    Ok(one(status, "rule", t.render_l7rule(r)))
}

pub async fn list_policies(AxState(s): St, Ctx(ctx): Ctx, q: Query) -> Result<Response> {
    let items = s
        .visible_trees(&ctx)
        .await?
        .iter()
        .flat_map(|t| t.l7policies.iter().map(|p| t.render_l7policy(p)))
        .collect();
    many(&s, "l7policies", "l7policies", items, &q)
}

pub async fn create_policy(AxState(s): St, Ctx(ctx): Ctx, body: Body) -> Result<Response> {
    let req: L7PolicyCreate = body.resource("l7policy")?;
    let (t, id) = s.create_l7policy(&ctx, req).await?;
    render_policy(&t, &id, StatusCode::CREATED)
}

pub async fn show_policy(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    let (t, _) = s.policy_tree(&ctx, &id).await?;
    render_policy(&t, &id, StatusCode::OK)
}

pub async fn update_policy(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response> {
    let t = s
        .update_l7policy(&ctx, &id, body.resource("l7policy")?)
        .await?;
    render_policy(&t, &id, StatusCode::OK)
}

pub async fn delete_policy(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response> {
    s.delete_l7policy(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_rules(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(policy): Path<String>,
    q: Query,
) -> Result<Response> {
    let (t, _) = s.policy_tree(&ctx, &policy).await?;
    let items = t
        .policy_rules(&policy)
        .map(|r| t.render_l7rule(r))
        .collect();
    many(
        &s,
        &format!("l7policies/{policy}/rules"),
        "rules",
        items,
        &q,
    )
}

pub async fn create_rule(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path(policy): Path<String>,
    body: Body,
) -> Result<Response> {
    let req: L7RuleCreate = body.resource("rule")?;
    let (t, id) = s.create_l7rule(&ctx, &policy, req).await?;
    render_rule(&t, &id, StatusCode::CREATED)
}

pub async fn show_rule(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path((policy, rule)): Path<(String, String)>,
) -> Result<Response> {
    let (t, _) = s.rule_tree(&ctx, &policy, &rule).await?;
    render_rule(&t, &rule, StatusCode::OK)
}

pub async fn update_rule(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path((policy, rule)): Path<(String, String)>,
    body: Body,
) -> Result<Response> {
    let t = s
        .update_l7rule(&ctx, &policy, &rule, body.resource("rule")?)
        .await?;
    render_rule(&t, &rule, StatusCode::OK)
}

pub async fn delete_rule(
    AxState(s): St,
    Ctx(ctx): Ctx,
    Path((policy, rule)): Path<(String, String)>,
) -> Result<Response> {
    s.delete_l7rule(&ctx, &policy, &rule).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
