//! `/os-quota-class-sets/{class}`: a quota class's limits, shown and set.
//! The `default` class's limits are every project's defaults (those a
//! project's own limits don't change).

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::admin::{parse_limits, quota_body};
use super::{reply, require_admin, Body, Ctx, State};
use crate::error::{ComputeError, Result};

pub async fn show(St(s): St<State>, c: Ctx, Path(class): Path<String>) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-quota-class-sets:show")?;
    let q = s.class_quotas(&class).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"quota_class_set": quota_body(&class, &q, c.version)}),
    ))
}

pub async fn update(
    St(s): St<State>,
    c: Ctx,
    Path(class): Path<String>,
    Body(b): Body<Value>,
) -> Result<Response> {
    require_admin(&c, "os_compute_api:os-quota-class-sets:update")?;
    if class.is_empty() || class.chars().count() > 255 {
        return Err(ComputeError::bad(
            "A quota class name is 1 to 255 characters.",
        ));
    }
    let set = b
        .get("quota_class_set")
        .and_then(Value::as_object)
        .ok_or_else(|| ComputeError::bad("'quota_class_set' is a required property."))?;
    let limits = parse_limits(set, c.version)?;
    s.set_quotas(&format!("quota-class:{class}"), &limits)
        .await?;
    let q = s.class_quotas(&class).await?;
    let mut body = quota_body(&class, &q, c.version);
    if let Some(m) = body.as_object_mut() {
        m.remove("id");
    }
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({"quota_class_set": body}),
    ))
}
