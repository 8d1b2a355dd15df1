//! `/v3/attachments` (microversion 3.27 and later): what Nova and other
//! consumers use to attach volumes.

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{one, Body, Ctx, State, P};
use crate::error::{Result, VolumeError};

fn need_327(ctx: &Ctx) -> Result<()> {
    if ctx.1.at_least(27) {
        Ok(())
    } else {
        Err(VolumeError::NotFound(
            "The attachments API needs microversion 3.27 or later.".to_owned(),
        ))
    }
}

pub async fn list(S(s): S<State>, ctx: Ctx) -> Result<Response> {
    need_327(&ctx)?;
    let items: Vec<Value> = s
        .list_attachments(&ctx.0)
        .await?
        .iter()
        .map(|(a, project)| a.render(project))
        .collect();
    Ok(one(StatusCode::OK, "attachments", Value::Array(items)))
}

pub async fn show(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    need_327(&ctx)?;
    let (a, project) = s.visible_attachment(&ctx.0, p.get("id")).await?;
    Ok(one(StatusCode::OK, "attachment", a.render(&project)))
}

pub async fn create(S(s): S<State>, ctx: Ctx, body: Body) -> Result<Response> {
    need_327(&ctx)?;
    let req = body.object("attachment")?;
    let volume = req
        .get("volume_uuid")
        .and_then(Value::as_str)
        .ok_or_else(|| VolumeError::bad("Invalid input: volume_uuid is required.".to_owned()))?;
    let server = req.get("instance_uuid").and_then(Value::as_str);
    let id = ferro_common::ids::uuid_id();
    s.reserve(&ctx.0, &id, volume, server).await?;
    let connection = match req.get("connector") {
        Some(c) if c.is_object() => {
            let host = c.get("host").and_then(Value::as_str);
            let conn = s
                .connect(&id, host, c.get("mountpoint").and_then(Value::as_str))
                .await?;
            json!({"driver_volume_type": "file", "data": {"device_path": conn.path, "format": conn.format}})
        }
        _ => json!({}),
    };
    let (a, project) = s.visible_attachment(&ctx.0, &id).await?;
    let mut v = a.render(&project);
    v["connection_info"] = connection;
    Ok(one(StatusCode::OK, "attachment", v))
}

pub async fn update(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    need_327(&ctx)?;
    let id = p.get("id");
    let (_, _) = s.visible_attachment(&ctx.0, id).await?;
    let req = body.object("attachment")?;
    let c = req
        .get("connector")
        .filter(|c| c.is_object())
        .ok_or_else(|| VolumeError::bad("Invalid input: connector is required.".to_owned()))?;
    let conn = s
        .connect(
            id,
            c.get("host").and_then(Value::as_str),
            c.get("mountpoint").and_then(Value::as_str),
        )
        .await?;
    let (a, project) = s.visible_attachment(&ctx.0, id).await?;
    let mut v = a.render(&project);
    v["connection_info"] = json!({"driver_volume_type": "file", "data": {"device_path": conn.path, "format": conn.format}});
    Ok(one(StatusCode::OK, "attachment", v))
}

pub async fn delete(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    need_327(&ctx)?;
    let id = p.get("id");
    s.visible_attachment(&ctx.0, id).await?;
    s.release(id).await?;
    Ok(one(StatusCode::OK, "attachments", json!([])))
}

pub async fn action(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    if !ctx.1.at_least(44) {
        return Err(VolumeError::NotFound(
            "Completing an attachment needs microversion 3.44 or later.".to_owned(),
        ));
    }
    let id = p.get("id");
    s.visible_attachment(&ctx.0, id).await?;
    match &body.0 {
        Value::Object(m) if m.contains_key("os-complete") => {
            s.complete(id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(VolumeError::bad("There is no such action.".to_owned())),
    }
}
