//! `/v3/volumes`, their metadata and actions.

use std::collections::BTreeMap;

use axum::extract::State as S;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{many, one, Body, Ctx, Query, State, P};
use crate::error::{Result, VolumeError};
use crate::model::{json_map, Volume};
use crate::service::{ListQuery, VolumeCreate, VolumeUpdate};

async fn render(s: &State, ctx: &Ctx, v: &Volume) -> Result<Value> {
    render_as(s, ctx, v, false).await
}

/// `written`: the view of a create or update answer ([`Volume::render_written`]).
async fn render_as(s: &State, ctx: &Ctx, v: &Volume, written: bool) -> Result<Value> {
    let names = s.type_names().await?;
    let atts = s
        .attachments_of(&[&v.id])
        .await?
        .remove(&v.id)
        .unwrap_or_default();
    let tname = names
        .get(&v.volume_type_id)
        .map(String::as_str)
        .unwrap_or("");
    Ok(if written {
        v.render_written(&s.base_url, tname, &atts, ctx.view())
    } else {
        v.render(&s.base_url, tname, &atts, ctx.view())
    })
}

async fn listing(s: &State, ctx: &Ctx, q: &Query, detail: bool) -> Result<Response> {
    let lq = q.list()?;
    let rows = s.list_volumes(&ctx.0, &lq).await?;
    let count = if q.flag("with_count") && ctx.1.at_least(45) {
        let all = ListQuery {
            limit: None,
            marker: None,
            offset: 0,
            ..q.list()?
        };
        Some(s.list_volumes(&ctx.0, &all).await?.len())
    } else {
        None
    };
    let items: Vec<Value> = if detail {
        let names = s.type_names().await?;
        let ids: Vec<&str> = rows.iter().map(|v| v.id.as_str()).collect();
        let mut atts = s.attachments_of(&ids).await?;
        rows.iter()
            .map(|v| {
                let tname = names
                    .get(&v.volume_type_id)
                    .map(String::as_str)
                    .unwrap_or("");
                v.render(
                    &s.base_url,
                    tname,
                    &atts.remove(&v.id).unwrap_or_default(),
                    ctx.view(),
                )
            })
            .collect()
    } else {
        rows.iter().map(|v| v.summary(&s.base_url)).collect()
    };
    let path = if detail { "volumes/detail" } else { "volumes" };
    Ok(many(s, path, "volumes", items, &lq, count))
}

pub async fn list(S(s): S<State>, ctx: Ctx, q: Query) -> Result<Response> {
    listing(&s, &ctx, &q, false).await
}

pub async fn list_detail(S(s): S<State>, ctx: Ctx, q: Query) -> Result<Response> {
    listing(&s, &ctx, &q, true).await
}

pub async fn show(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let v = s.visible(&ctx.0, p.get("id")).await?;
    Ok(one(StatusCode::OK, "volume", render(&s, &ctx, &v).await?))
}

pub async fn create(S(s): S<State>, ctx: Ctx, body: Body) -> Result<Response> {
    let req: VolumeCreate = body.resource("volume")?;
    let v = s.create_volume(&ctx.0, req).await?;
    Ok(one(
        StatusCode::ACCEPTED,
        "volume",
        render_as(&s, &ctx, &v, true).await?,
    ))
}

pub async fn update(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let req: VolumeUpdate = body.resource("volume")?;
    let v = s.update_volume(&ctx.0, p.get("id"), req).await?;
    Ok(one(
        StatusCode::OK,
        "volume",
        render_as(&s, &ctx, &v, true).await?,
    ))
}

pub async fn delete(S(s): S<State>, ctx: Ctx, p: P, q: Query) -> Result<Response> {
    s.delete_volume(&ctx.0, p.get("id"), q.flag("cascade"), q.flag("force"))
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST /volumes/{id}/action`: one action per body.
pub async fn action(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let id = p.get("id");
    let Value::Object(m) = body.0 else {
        return Err(VolumeError::bad("Malformed request body.".to_owned()));
    };
    let Some((name, arg)) = m.into_iter().next() else {
        return Err(VolumeError::bad(
            "Malformed request body: no action given.".to_owned(),
        ));
    };
    let field = |k: &str| arg.get(k).cloned().unwrap_or(Value::Null);
    match name.as_str() {
        "os-extend" => {
            // In-use volumes from 3.42, as Cinder.
            s.extend_volume(&ctx.0, id, &field("new_size"), ctx.1.at_least(42))
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-set_bootable" => {
            s.set_bootable(&ctx.0, id, &field("bootable")).await?;
            Ok(StatusCode::OK.into_response())
        }
        "os-reset_status" => {
            let status = arg.get("status").and_then(Value::as_str);
            let attach = arg.get("attach_status").and_then(Value::as_str);
            s.reset_status(&ctx.0, id, status, attach).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-force_delete" => {
            s.delete_volume(&ctx.0, id, true, true).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-update_readonly_flag" => {
            s.changeable(&ctx.0, id, "volume:update_readonly_flag")
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-reserve" => {
            let att = ferro_common::ids::uuid_id();
            s.reserve(&ctx.0, &att, id, None).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "os-unreserve" | "os-detach" | "os-roll_detaching" | "os-begin_detaching" | "os-attach" => {
            legacy_attach_action(&s, &ctx, id, &name, &arg).await
        }
        "os-volume_upload_image" => {
            let img = s.upload_to_image(&ctx.0, id, &arg).await?;
            Ok(one(StatusCode::ACCEPTED, "os-volume_upload_image", img))
        }
        other => Err(VolumeError::bad(format!(
            "There is no such action: {other}"
        ))),
    }
}

/// The attach actions of the pre-3.27 flow, on the volume's (single)
/// attachment.
async fn legacy_attach_action(
    s: &State,
    ctx: &Ctx,
    id: &str,
    name: &str,
    arg: &Value,
) -> Result<Response> {
    let v = s.changeable(&ctx.0, id, "volume:attach").await?;
    let atts = s
        .attachments_of(&[id])
        .await?
        .remove(id)
        .unwrap_or_default();
    let wanted = arg.get("attachment_id").and_then(Value::as_str);
    let att = atts
        .iter()
        .find(|a| wanted.is_none_or(|w| w == a.id))
        .cloned();
    match (name, att) {
        ("os-attach", att) => {
            let att = match att {
                Some(a) => a,
                None => {
                    let new = ferro_common::ids::uuid_id();
                    s.reserve(
                        &ctx.0,
                        &new,
                        id,
                        arg.get("instance_uuid").and_then(Value::as_str),
                    )
                    .await?
                }
            };
            let mount = arg.get("mountpoint").and_then(Value::as_str);
            s.connect(&att.id, arg.get("host_name").and_then(Value::as_str), mount)
                .await?;
            s.complete(&att.id).await?;
        }
        ("os-begin_detaching", Some(a)) => s.begin_detaching(&a.id).await?,
        ("os-roll_detaching", Some(_)) => {
            s.transition(&v.id, "detaching", "in-use").await?;
        }
        ("os-unreserve" | "os-detach", Some(a)) => s.release(&a.id).await?,
        (_, None) => {
            return Err(VolumeError::invalid_volume(format!(
                "Volume {id} has no attachment to act on (status {}).",
                v.status
            )))
        }
        _ => {}
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

pub async fn metadata(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let v = s.visible(&ctx.0, p.get("id")).await?;
    Ok(one(
        StatusCode::OK,
        "metadata",
        json!(json_map(&v.metadata)),
    ))
}

fn meta_body(body: Body) -> Result<BTreeMap<String, String>> {
    let m = body.object("metadata")?;
    serde_json::from_value(m).map_err(|e| {
        VolumeError::bad(format!(
            "Malformed request body: metadata must be strings. {e}"
        ))
    })
}

pub async fn merge_metadata(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let m = s
        .set_volume_metadata(&ctx.0, p.get("id"), meta_body(body)?, false)
        .await?;
    Ok(one(StatusCode::OK, "metadata", json!(m)))
}

pub async fn replace_metadata(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let m = s
        .set_volume_metadata(&ctx.0, p.get("id"), meta_body(body)?, true)
        .await?;
    Ok(one(StatusCode::OK, "metadata", json!(m)))
}

pub async fn metadata_key(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    let v = s.visible(&ctx.0, p.get("id")).await?;
    let key = p.get("key");
    match json_map(&v.metadata).get(key) {
        Some(val) => Ok(one(StatusCode::OK, "meta", json!({ key: val }))),
        None => Err(VolumeError::NotFound(format!(
            "Volume {} has no metadata with key {key}.",
            v.id
        ))),
    }
}

pub async fn put_metadata_key(S(s): S<State>, ctx: Ctx, p: P, body: Body) -> Result<Response> {
    let key = p.get("key").to_owned();
    let meta: BTreeMap<String, String> = serde_json::from_value(body.object("meta")?)
        .map_err(|e| VolumeError::bad(format!("Malformed request body: {e}")))?;
    if meta.len() != 1 || !meta.contains_key(&key) {
        return Err(VolumeError::bad("Request body and URI mismatch".to_owned()));
    }
    s.set_volume_metadata(&ctx.0, p.get("id"), meta.clone(), false)
        .await?;
    Ok(one(StatusCode::OK, "meta", json!(meta)))
}

pub async fn delete_metadata_key(S(s): S<State>, ctx: Ctx, p: P) -> Result<Response> {
    s.delete_volume_metadata(&ctx.0, p.get("id"), p.get("key"))
        .await?;
    Ok(StatusCode::OK.into_response())
}
