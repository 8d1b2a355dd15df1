//! `createImage` and `createBackup`: a server's disk becomes a new image
//! (the work is the `server_snapshot` saga). Answers 202 with the image's
//! id in the body from 2.45, in a `Location` header before.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{empty, reply, Ctx, State};
use crate::error::{ComputeError, Result};
use crate::model::Server;

/// Nova's `maxImageMeta`.
const MAX_IMAGE_META: usize = 128;

fn invalid(action: &str, why: impl std::fmt::Display) -> ComputeError {
    ComputeError::BadRequest(format!("Invalid input for field/attribute {action}. {why}"))
}

/// An image request's name and extra properties, and its whole body.
struct Asked<'a> {
    name: String,
    metadata: Map<String, Value>,
    body: &'a Map<String, Value>,
}

/// The image's name and extra properties, checked as Nova's schema for
/// `action` does (the body may have `keys`).
fn parse<'a>(action: &str, arg: &'a Value, keys: &[&str]) -> Result<Asked<'a>> {
    let invalid = |why: String| invalid(action, why);
    let o = arg
        .as_object()
        .ok_or_else(|| invalid("Value: must be an object.".into()))?;
    if let Some(k) = o.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(invalid(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let name = match o.get("name") {
        None => return Err(invalid("'name' is a required property".into())),
        Some(Value::String(n)) => n.clone(),
        Some(other) => return Err(invalid(format!("{other} is not of type 'string'"))),
    };
    if name.trim().is_empty() || name.trim() != name || name.chars().count() > 255 {
        return Err(invalid(format!(
            "Value: {name:?}. 'name' must be 1 to 255 characters without leading or trailing whitespace."
        )));
    }
    let metadata = match o.get("metadata") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(invalid(format!("{other} is not of type 'object'"))),
    };
    for (k, v) in &metadata {
        let key_ok = (1..=255).contains(&k.len())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c));
        let value_ok = v.as_str().is_some_and(|s| s.chars().count() <= 255);
        if !key_ok || !value_ok {
            return Err(invalid(format!(
                "Metadata item {k:?} must have a key of 1 to 255 letters, digits or '-_:. ' and a string value of at most 255 characters."
            )));
        }
    }
    if metadata.len() > MAX_IMAGE_META {
        return Err(ComputeError::Forbidden(format!(
            "Quota exceeded for metadata_items: at most {MAX_IMAGE_META} image properties are allowed."
        )));
    }
    Ok(Asked {
        name,
        metadata,
        body: o,
    })
}

pub async fn create_image(s: &State, c: &Ctx, srv: Server, arg: &Value) -> Result<Response> {
    let Asked { name, metadata, .. } = parse("createImage", arg, &["name", "metadata"])?;
    start(s, c, srv, "createImage", name, metadata, None).await
}

pub async fn create_backup(s: &State, c: &Ctx, srv: Server, arg: &Value) -> Result<Response> {
    let keys = ["name", "backup_type", "rotation", "metadata"];
    let Asked {
        name,
        metadata,
        body: o,
    } = parse("createBackup", arg, &keys)?;
    let invalid = |why: &str| invalid("createBackup", why);
    let backup_type = match o.get("backup_type") {
        Some(Value::String(t)) if !t.is_empty() && t.len() <= 255 => t.clone(),
        None => return Err(invalid("'backup_type' is a required property")),
        Some(_) => return Err(invalid("'backup_type' must be a string.")),
    };
    let rotation = match o.get("rotation") {
        None => return Err(invalid("'rotation' is a required property")),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                invalid(&format!(
                    "Value: {v}. 'rotation' must be a non-negative integer."
                ))
            })?,
    };
    let backup = crate::server_snapshot::Backup {
        backup_type,
        rotation,
    };
    start(s, c, srv, "createBackup", name, metadata, Some(backup)).await
}

async fn start(
    s: &State,
    c: &Ctx,
    srv: Server,
    action: &str,
    name: String,
    metadata: Map<String, Value>,
    backup: Option<crate::server_snapshot::Backup>,
) -> Result<Response> {
    if let Some(t) = &srv.task_state {
        return Err(ComputeError::Conflict(format!(
            "Cannot '{action}' instance {} while it is in task_state {t}",
            srv.id
        )));
    }
    if !matches!(
        srv.vm_state.as_str(),
        "active" | "stopped" | "paused" | "suspended"
    ) {
        return Err(ComputeError::Conflict(format!(
            "Cannot '{action}' instance {} while it is in vm_state {}",
            srv.id, srv.vm_state
        )));
    }
    let image_id = s
        .create_image(&c.auth, &srv, &name, metadata, backup)
        .await?;
    s.record_action(&srv.id, action, &c.auth, &c.request_id)
        .await?;
    if c.version.at_least(45) {
        return Ok(reply(
            StatusCode::ACCEPTED,
            c.version,
            json!({"image_id": image_id}),
        ));
    }
    let mut r = empty(StatusCode::ACCEPTED, c.version);
    let base = s.image_url.get().cloned().unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/images/{image_id}")) {
        r.headers_mut().insert("location", v);
    }
    Ok(r)
}
