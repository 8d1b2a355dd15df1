//! `/v3/types` and their extra specs.

use std::collections::BTreeMap;

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{one, Body, Ctx, Query, State, P};
use crate::error::{Result, VolumeError};
use crate::model::json_map;
use crate::service::{TypeCreate, TypeUpdate};

pub async fn list(S(s): S<State>, ctx: Ctx, q: Query) -> Result<Response> {
    let types = s.list_types(&ctx.0).await?;
    let public_filter = q.get("is_public").map(|v| v.to_ascii_lowercase());
    let items: Vec<Value> = types
        .iter()
        .filter(|t| match public_filter.as_deref() {
            Some("true") => t.is_public != 0,
            Some("false") => t.is_public == 0,
            _ => true,
        })
        .map(|t| t.render(ctx.view()))
        .collect();
    Ok(one(StatusCode::OK, "volume_types", Value::Array(items)))
}

pub async fn show(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let t = s.show_type(&ctx.0, p.get("id")).await?;
    Ok(one(StatusCode::OK, "volume_type", t.render(ctx.view())))
}

pub async fn create(S(s): S<State>, ctx: Ctx, body: Body) -> Result<Response> {
    let req: TypeCreate = body.resource("volume_type")?;
    let t = s.create_type(&ctx.0, req).await?;
    // Cinder's create answer has no qos_specs_id
    let mut v = t.render(ctx.view());
    if let Some(m) = v.as_object_mut() {
        m.remove("qos_specs_id");
    }
    Ok(one(StatusCode::OK, "volume_type", v))
}

pub async fn update(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let req: TypeUpdate = body.resource("volume_type")?;
    let t = s.update_type(&ctx.0, p.get("id"), req).await?;
    Ok(one(StatusCode::OK, "volume_type", t.render(ctx.view())))
}

pub async fn delete(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    s.delete_type(&ctx.0, p.get("id")).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn extra_specs(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let t = s.show_type(&ctx.0, p.get("id")).await?;
    Ok(one(
        StatusCode::OK,
        "extra_specs",
        t.render(ctx.view())["extra_specs"].clone(),
    ))
}

fn specs_body(body: Body, key: &str) -> Result<BTreeMap<String, String>> {
    let v = body.object(key)?;
    let Value::Object(m) = v else {
        return Err(VolumeError::bad("Malformed request body.".to_owned()));
    };
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            _ => Err(VolumeError::bad(format!(
                "Invalid input for field/attribute {k}: extra spec values must be strings."
            ))),
        })
        .collect()
}

pub async fn set_extra_specs(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let specs = specs_body(body, "extra_specs")?;
    let wanted = specs.clone();
    s.set_extra_specs(
        &ctx.0,
        p.get("id"),
        specs.into_iter().map(|(k, v)| (k, Some(v))).collect(),
    )
    .await?;
    Ok(one(StatusCode::OK, "extra_specs", json!(wanted)))
}

pub async fn extra_spec(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let t = s.show_type(&ctx.0, p.get("id")).await?;
    let key = p.get("key");
    if !ctx.0.is_admin() {
        return Err(VolumeError::NotFound(format!(
            "Volume Type {} has no extra specs with key {key}.",
            t.id
        )));
    }
    match json_map(&t.extra_specs).get(key) {
        Some(v) => Ok((StatusCode::OK, axum::Json(json!({ key: v }))).into_response()),
        None => Err(VolumeError::NotFound(format!(
            "Volume Type {} has no extra specs with key {key}.",
            t.id
        ))),
    }
}

pub async fn put_extra_spec(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let key = p.get("key").to_owned();
    let Value::Object(m) = body.0 else {
        return Err(VolumeError::bad("Malformed request body.".to_owned()));
    };
    let specs = specs_body(Body(json!({ "x": Value::Object(m) })), "x")?;
    if specs.len() != 1 || !specs.contains_key(&key) {
        return Err(VolumeError::bad("Request body and URI mismatch".to_owned()));
    }
    s.set_extra_specs(
        &ctx.0,
        p.get("id"),
        specs
            .clone()
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect(),
    )
    .await?;
    Ok((StatusCode::OK, axum::Json(json!(specs))).into_response())
}

pub async fn delete_extra_spec(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let mut m = BTreeMap::new();
    m.insert(p.get("key").to_owned(), None);
    s.set_extra_specs(&ctx.0, p.get("id"), m).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
