//! Version discovery: `GET /` (300, the list) and `GET /v3` (this version).
//! The `self` link becomes the client's base URL, so it is the public one.

use axum::extract::State as St;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::State;

fn version(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]
    })
}

pub async fn root(St(s): St<State>) -> Response {
    let body = json!({"versions": {"values": [version(&s.base_url())]}});
    (StatusCode::MULTIPLE_CHOICES, axum::Json(body)).into_response()
}

pub async fn v3(St(s): St<State>) -> Response {
    axum::Json(json!({"version": version(&s.base_url())})).into_response()
}
