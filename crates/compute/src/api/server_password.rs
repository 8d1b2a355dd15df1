//! `/servers/{id}/os-server-password`: the encrypted password a guest posts
//! to the metadata service (`openstack/<version>/password`), shown to its
//! project ("" until the guest posts one) and cleared by its members.

use axum::extract::{Path, State as St};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::servers::changeable;
use super::{empty, reply, Ctx, State};
use crate::error::Result;

pub async fn show(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    s.visible_server(&c.auth, &id).await?;
    let password = s.server_password(&id).await?;
    Ok(reply(
        StatusCode::OK,
        c.version,
        json!({ "password": password }),
    ))
}

pub async fn clear(St(s): St<State>, c: Ctx, Path(id): Path<String>) -> Result<Response> {
    changeable(&s, &c, &id, "os_compute_api:os-server-password:clear").await?;
    s.clear_server_password(&id).await?;
    Ok(empty(StatusCode::NO_CONTENT, c.version))
}
