//! Nova's image proxy (`/images`, `/images/detail`, `/images/{id}` and
//! its `metadata`), removed at microversion 2.36 and still what older
//! clients call: the image service's images as Nova shows them.
//!
//! Lists take Nova's filters (`name`, `status`, `changes-since`, `server`
//! by id or link, `type`, `minRam`, `minDisk`) and pages (`limit`,
//! `marker`). Metadata is the image's free-form properties; changing it
//! needs what changing the image needs, and at most `metadata_items` keys.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use ferro_common::time;
use ferro_image::error::ImageError;
use ferro_image::model::{Image, CORE};
use serde_json::{json, Map, Value};

use super::servers::check_metadata;
use super::{empty, gone_at, reply, Body, Ctx, Params, State};
use crate::error::{ComputeError, Result};
use crate::service::ComputeService;

fn image_error(e: ImageError) -> ComputeError {
    match e {
        ImageError::NotFound(_) => ComputeError::NotFound("Image not found.".into()),
        ImageError::Forbidden(m) => ComputeError::Forbidden(m),
        ImageError::Denied(d) => ComputeError::Denied(d),
        ImageError::BadRequest(m) => ComputeError::BadRequest(m),
        ImageError::Conflict(m) => ComputeError::Conflict(m),
        other => ComputeError::Internal(format!("the image service: {other}")),
    }
}

/// Glance's status as Nova names it, and Nova's progress for it.
fn status(img: &Image) -> (&'static str, i64) {
    match img.status.as_str() {
        "active" => ("ACTIVE", 100),
        "queued" => ("SAVING", 25),
        "saving" => ("SAVING", 50),
        "deleted" | "pending_delete" => ("DELETED", 0),
        "killed" => ("ERROR", 0),
        _ => ("UNKNOWN", 0),
    }
}

fn links(s: &ComputeService, id: &str) -> Value {
    let mut l = json!(super::server_body::links(
        &s.base_url,
        &format!("images/{id}")
    ));
    if let (Some(glance), Some(arr)) = (s.image_url.get(), l.as_array_mut()) {
        arr.push(
            json!({"rel": "alternate", "type": "application/vnd.openstack.image",
                        "href": format!("{glance}/images/{id}")}),
        );
    }
    l
}

fn render(s: &ComputeService, img: &Image, detail: bool) -> Value {
    let mut o = json!({"id": img.id, "name": img.name, "links": links(s, &img.id)});
    if !detail {
        return o;
    }
    let (st, progress) = status(img);
    let props = img.props();
    o["status"] = json!(st);
    o["progress"] = json!(progress);
    o["minDisk"] = json!(img.min_disk);
    o["minRam"] = json!(img.min_ram);
    o["created"] = json!(time::iso_seconds(img.created_at));
    o["updated"] = json!(time::iso_seconds(img.updated_at));
    o["OS-EXT-IMG-SIZE:size"] = json!(img.size);
    if let Some(server) = props.get("instance_uuid").and_then(Value::as_str) {
        o["server"] = json!({"id": server,
                             "links": super::server_body::links(&s.base_url, &format!("servers/{server}"))});
    }
    if let Some(auto) = props.get("auto_disk_config") {
        let on = auto.as_bool().unwrap_or(false)
            || auto
                .as_str()
                .is_some_and(|a| a.eq_ignore_ascii_case("true"));
        o["OS-DCF:diskConfig"] = json!(if on { "AUTO" } else { "MANUAL" });
    }
    o["metadata"] = Value::Object(props);
    o
}

/// Nova's list filters applied to `rows`.
fn filter(rows: &mut Vec<Image>, p: &Params) -> Result<()> {
    if let Some(name) = p.get("name") {
        rows.retain(|i| i.name.as_deref() == Some(name));
    }
    if let Some(st) = p.get("status") {
        let st = st.to_ascii_lowercase();
        rows.retain(|i| i.status == st);
    }
    if let Some(since) = p.get("changes-since") {
        let t = super::query_time(since).ok_or_else(|| {
            ComputeError::bad(format!("Invalid filter field: changes-since ({since})."))
        })?;
        rows.retain(|i| i.updated_at >= t);
    }
    let prop = |i: &Image, key: &str| {
        i.props()
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if let Some(server) = p.get("server") {
        // An id, or a link whose last part is the id.
        let id = server
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("");
        rows.retain(|i| prop(i, "instance_uuid").as_deref() == Some(id));
    }
    if let Some(kind) = p.get("type") {
        rows.retain(|i| prop(i, "image_type").as_deref() == Some(kind));
    }
    for (key, field) in [("minRam", 0), ("minDisk", 1)] {
        if let Some(v) = p.get(key) {
            let min: i64 = v
                .parse()
                .map_err(|_| ComputeError::bad(format!("Invalid filter field: {key}.")))?;
            rows.retain(|i| {
                let have = if field == 0 { i.min_ram } else { i.min_disk };
                have >= min
            });
        }
    }
    Ok(())
}

async fn listed(s: &ComputeService, c: &Ctx, p: &Params, detail: bool) -> Result<Response> {
    gone_at(c, 36)?;
    let mut rows = s
        .images
        .listable(&c.auth, None, "accepted")
        .await
        .map_err(image_error)?;
    rows.retain(|i| i.os_hidden == 0);
    filter(&mut rows, p)?;
    if let Some(m) = p.get("marker") {
        let pos = rows
            .iter()
            .position(|i| i.id == *m)
            .ok_or_else(|| ComputeError::bad(format!("marker [{m}] not found")))?;
        rows.drain(..=pos);
    }
    let limit = match p.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| ComputeError::bad("limit must be an integer 0 or greater"))?
            .min(s.max_limit),
        None => s.max_limit,
    };
    let more = rows.len() > limit;
    rows.truncate(limit);
    let items: Vec<Value> = rows.iter().map(|i| render(s, i, detail)).collect();
    let mut body = json!({"images": items});
    if more {
        if let Some(last) = rows.last() {
            let path = if detail { "images/detail" } else { "images" };
            body["images_links"] = json!([{"rel": "next",
                "href": format!("{}/{path}?limit={limit}&marker={}", s.base_url, last.id)}]);
        }
    }
    Ok(reply(StatusCode::OK, c.version, body))
}

pub async fn list(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    listed(&s, &c, &p, false).await
}

pub async fn list_detail(St(s): St<State>, c: Ctx, p: Params) -> Result<Response> {
    listed(&s, &c, &p, true).await
}

async fn visible(s: &ComputeService, c: &Ctx, id: &str) -> Result<Image> {
    gone_at(c, 36)?;
    s.images.visible(&c.auth, id).await.map_err(image_error)
}

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let img = visible(&s, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"image": render(&s, &img, true)}),
    ))
}

pub async fn delete(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    gone_at(&c, 36)?;
    s.images.delete(&c.auth, &id).await.map_err(image_error)?;
    tracing::info!(image_id = %id, "image deleted through the compute API");
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}

// ---- metadata ----

fn meta_not_found(key: &str) -> ComputeError {
    ComputeError::NotFound(format!("Image metadata key {key} not found."))
}

/// Writes `props` as the image's free-form properties, within the
/// project's `metadata_items`; returns them.
async fn write(
    s: &ComputeService,
    c: &Ctx,
    mut img: Image,
    props: Map<String, Value>,
) -> Result<Map<String, Value>> {
    let limit = s
        .quotas(&img.owner)
        .await?
        .get("metadata_items")
        .copied()
        .unwrap_or(128);
    if limit >= 0 && props.len() as i64 > limit {
        return Err(ComputeError::Forbidden(format!(
            "Quota exceeded for metadata_items: too many metadata items ({} > {limit}).",
            props.len()
        )));
    }
    img.properties = serde_json::to_string(&props).unwrap_or_else(|_| "{}".into());
    s.images.save(&img).await.map_err(image_error)?;
    tracing::info!(image_id = %img.id, items = props.len(), by = %c.auth.user_id, "image metadata changed through the compute API");
    Ok(props)
}

async fn modifiable(s: &ComputeService, c: &Ctx, id: &str) -> Result<Image> {
    gone_at(c, 36)?;
    s.images.modifiable(&c.auth, id).await.map_err(image_error)
}

/// New items, checked: keys of 1 to 255 characters that are not the
/// image's own attributes, string values of at most 255.
fn check_items(items: &Value) -> Result<Map<String, Value>> {
    let m = check_metadata(items, -1)?;
    if let Some(k) = m.keys().find(|k| CORE.contains(&k.as_str())) {
        return Err(ComputeError::Forbidden(format!(
            "Attribute '{k}' is reserved and can't be set as image metadata."
        )));
    }
    Ok(m)
}

fn metadata_of(body: &Value) -> Result<Map<String, Value>> {
    let m = body
        .get("metadata")
        .ok_or_else(|| ComputeError::bad("Malformed request body: 'metadata' is required."))?;
    check_items(m)
}

pub async fn metadata(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    let img = visible(&s, &c, &id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"metadata": img.props()}),
    ))
}

/// `POST .../metadata`: merged into what the image has.
pub async fn merge_metadata(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    let new = metadata_of(&body)?;
    let img = modifiable(&s, &c, &id).await?;
    let mut props = img.props();
    props.extend(new);
    let props = write(&s, &c, img, props).await?;
    Ok(reply(StatusCode::OK, c.version, json!({"metadata": props})))
}

/// `PUT .../metadata`: replaces all of it.
pub async fn replace_metadata(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    let new = metadata_of(&body)?;
    let img = modifiable(&s, &c, &id).await?;
    let props = write(&s, &c, img, new).await?;
    Ok(reply(StatusCode::OK, c.version, json!({"metadata": props})))
}

pub async fn metadata_item(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let img = visible(&s, &c, &id).await?;
    let v = img
        .props()
        .get(&key)
        .cloned()
        .ok_or_else(|| meta_not_found(&key))?;
    Ok(reply(StatusCode::OK, c.version, json!({"meta": {key: v}})))
}

/// `PUT .../metadata/{key}` with `{"meta": {key: value}}`.
pub async fn set_metadata_item(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
    Body(body): Body<Value>,
) -> Result<Response> {
    let meta = body
        .get("meta")
        .and_then(Value::as_object)
        .ok_or_else(|| ComputeError::bad("Malformed request body: 'meta' is required."))?;
    if meta.len() != 1 {
        return Err(ComputeError::bad("Request body contains too many items"));
    }
    let Some(v) = meta.get(&key) else {
        return Err(ComputeError::bad("Request body and URI mismatch"));
    };
    check_items(&json!({&key: v}))?;
    let img = modifiable(&s, &c, &id).await?;
    let mut props = img.props();
    props.insert(key.clone(), v.clone());
    write(&s, &c, img, props).await?;
    Ok(reply(StatusCode::OK, c.version, json!({"meta": {key: v}})))
}

pub async fn delete_metadata_item(
    St(s): St<State>,
    c: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<Response> {
    let img = modifiable(&s, &c, &id).await?;
    let mut props = img.props();
    if props.remove(&key).is_none() {
        return Err(meta_not_found(&key));
    }
    write(&s, &c, img, props).await?;
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}
