//! `/servers/{id}/os-volume_attachments[/{volume_id}]`: list, attach
//! (POST, 200 with the attachment, the disk plugged in), show and detach
//! (DELETE, 202). As Nova: readers may look, members change; an attachment
//! is named by its volume's id; the device is `/dev/vdX`; `tag` shows from
//! 2.70 and `delete_on_termination` from 2.79 (which may also set it).

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::servers::changeable;
use super::{empty, reply, Body, Ctx, State};
use crate::error::{ComputeError, Result};
use crate::microversion::Version;
use crate::model::Server;
use crate::volumes::{self, Mapping};

fn render(m: &Mapping, v: Version) -> Value {
    let mut o = json!({
        "id": m.volume_id,
        "serverId": m.server_id,
        "volumeId": m.volume_id,
        "device": m.device,
    });
    if v >= Version(2, 70) {
        o["tag"] = Value::Null;
    }
    if v >= Version(2, 79) {
        o["delete_on_termination"] = json!(m.delete_on_termination != 0);
    }
    o
}

/// Mappings a user sees: detached ones are on their way out.
fn shown(maps: Vec<Mapping>) -> impl Iterator<Item = Mapping> {
    maps.into_iter().filter(|m| m.state != "detached")
}

pub async fn list(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    let list: Vec<Value> = shown(volumes::mappings_of(s.pool(), &id).await?)
        .map(|m| render(&m, c.version))
        .collect();
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"volumeAttachments": list}),
    ))
}

pub async fn show(
    St(s): St<State>,
    c: Ctx,
    Path((id, volume_id)): Path<(String, String)>,
) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    let m = find(&s, &id, &volume_id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"volumeAttachment": render(&m, c.version)}),
    ))
}

async fn find(s: &crate::service::ComputeService, id: &str, volume_id: &str) -> Result<Mapping> {
    shown(volumes::mappings_of(s.pool(), id).await?)
        .find(|m| m.volume_id == volume_id)
        .ok_or_else(|| {
            ComputeError::NotFound(format!(
                "Volume {volume_id} is not attached to instance {id}."
            ))
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachRequest {
    #[serde(rename = "volumeId")]
    volume_id: String,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    delete_on_termination: Option<bool>,
}

fn attach_request(body: Value, v: Version) -> Result<AttachRequest> {
    let inner = body.get("volumeAttachment").cloned().ok_or_else(|| {
        ComputeError::bad(
            "Invalid input for field/attribute volumeAttachment. 'volumeAttachment' is a required property.",
        )
    })?;
    let r: AttachRequest = serde_json::from_value(inner).map_err(|e| {
        ComputeError::bad(format!(
            "Invalid input for field/attribute volumeAttachment. {e}"
        ))
    })?;
    if r.tag.is_some() && v < Version(2, 49) {
        return Err(ComputeError::bad(
            "Invalid input for field/attribute volumeAttachment. Additional properties are not allowed ('tag' was unexpected)",
        ));
    }
    if r.delete_on_termination.is_some() && v < Version(2, 79) {
        return Err(ComputeError::bad(
            "Invalid input for field/attribute volumeAttachment. Additional properties are not allowed ('delete_on_termination' was unexpected)",
        ));
    }
    if uuid::Uuid::parse_str(&r.volume_id).is_err() {
        return Err(ComputeError::bad(format!(
            "Invalid input for field/attribute volumeId. Value: {}. '{}' is not a 'uuid'",
            r.volume_id, r.volume_id
        )));
    }
    Ok(r)
}

/// Nova attaches to servers that are running, paused, suspended or
/// stopped, and not in the middle of another task.
fn attachable(srv: &Server, action: &str) -> Result<()> {
    if !matches!(
        srv.vm_state.as_str(),
        "active" | "paused" | "suspended" | "stopped"
    ) || srv.task_state.is_some()
    {
        return Err(ComputeError::Conflict(format!(
            "Cannot '{action}' instance {} while it is in vm_state {}",
            srv.id, srv.vm_state
        )));
    }
    if srv.host.is_none() {
        return Err(ComputeError::Conflict(format!(
            "Instance {} has no host to plug a volume into.",
            srv.id
        )));
    }
    Ok(())
}

pub async fn attach(
    St(s): St<State>,
    c: Ctx,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Response> {
    let req = attach_request(body, c.version)?;
    let srv = changeable(&s, &c, &id, "os_compute_api:os-volumes-attachments:create").await?;
    attachable(&srv, "attach_volume")?;
    let m = s
        .attach_volume(
            &c.auth,
            &srv,
            &req.volume_id,
            req.device.as_deref(),
            req.delete_on_termination.unwrap_or(false),
        )
        .await?;
    s.record_action(&id, "attach_volume", &c.auth, &c.request_id)
        .await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"volumeAttachment": render(&m, c.version)}),
    ))
}

pub async fn detach(
    St(s): St<State>,
    c: Ctx,
    Path((id, volume_id)): Path<(String, String)>,
) -> Result<Response> {
    let srv = changeable(&s, &c, &id, "os_compute_api:os-volumes-attachments:delete").await?;
    let m = find(&s, &id, &volume_id).await?;
    if m.device == "/dev/vda" {
        return Err(ComputeError::BadRequest(
            "Cannot detach a root device volume".into(),
        ));
    }
    attachable(&srv, "detach_volume")?;
    s.detach_volume(&srv, &m).await?;
    s.record_action(&id, "detach_volume", &c.auth, &c.request_id)
        .await?;
    Ok(empty(StatusCode::ACCEPTED, c.version))
}
