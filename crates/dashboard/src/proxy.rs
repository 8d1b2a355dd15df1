//! The pass-through from `/api/<service>/<path>` to a service's own router,
//! in-process, with the session's token as `X-Auth-Token`.
//!
//! Only a short list of request headers crosses (content type and length,
//! accept, microversions); cookies and any token the page might send do
//! not. Bodies stream both ways, so image uploads and downloads of any
//! size pass without being held in memory.

use axum::body::Body;
use axum::extract::{Path, Request, State as St};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tower::ServiceExt;

use crate::error::{DashboardError, Result};
use crate::session::token_of;
use crate::State;

/// Request headers the page may pass to a service.
const PASSED: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::ACCEPT,
    HeaderName::from_static("openstack-api-version"),
    HeaderName::from_static("x-openstack-nova-api-version"),
];

/// Bodies the session code reads from identity are small.
const MAX_JSON_REPLY: usize = 4 << 20;

/// `ANY /api/{service}/{*path}`. The path is passed on as the browser
/// encoded it (`%2F` in a name stays `%2F`), not as the router decoded it.
pub async fn forward(
    St(s): St<State>,
    Path((service, _)): Path<(String, String)>,
    req: Request,
) -> Result<Response> {
    let app = s
        .services
        .get(service.as_str())
        .ok_or_else(|| DashboardError::NotFound(format!("There is no {service:?} service.")))?
        .clone();
    let token = token_of(req.headers())
        .ok_or_else(|| DashboardError::Unauthorized("You are not logged in.".into()))?;
    let (parts, body) = req.into_parts();
    let raw = parts.uri.path();
    let rest = raw
        .strip_prefix("/api/")
        .and_then(|p| p.split_once('/'))
        .map(|(_, rest)| rest)
        .unwrap_or("");
    let mut uri = format!("/{rest}");
    if let Some(q) = parts.uri.query() {
        uri.push('?');
        uri.push_str(q);
    }
    let mut out = Request::builder()
        .method(parts.method)
        .uri(&uri)
        .body(body)
        .map_err(|_| DashboardError::BadRequest(format!("{uri:?} is not a valid path.")))?;
    for name in &PASSED {
        if let Some(v) = parts.headers.get(name) {
            out.headers_mut().insert(name.clone(), v.clone());
        }
    }
    out.headers_mut().insert(
        "x-auth-token",
        HeaderValue::from_str(&token)
            .map_err(|_| DashboardError::Unauthorized("You are not logged in.".into()))?,
    );
    let mut resp = match app.oneshot(out).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    resp.headers_mut().remove(header::SET_COOKIE);
    Ok(resp.into_response())
}

/// A service's JSON answer.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The reply when it is a success, else the service's refusal passed on.
    pub fn ok(self) -> Result<Reply> {
        if self.status.is_success() {
            return Ok(self);
        }
        let message = self
            .body
            .as_object()
            .and_then(|o| o.values().find_map(|v| v["message"].as_str()))
            .unwrap_or("The request was refused.")
            .to_owned();
        Err(DashboardError::Upstream {
            status: self.status,
            message,
        })
    }
}

/// Calls a service with an optional token and JSON body.
pub async fn call(
    s: &State,
    service: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Reply> {
    call_with(s, service, method, path, token, HeaderMap::new(), body).await
}

/// [`call`] with extra request headers.
pub async fn call_with(
    s: &State,
    service: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    mut headers: HeaderMap,
    body: Option<Value>,
) -> Result<Reply> {
    let app = s
        .services
        .get(service)
        .ok_or_else(|| DashboardError::Internal(format!("no {service} service")))?
        .clone();
    if let Some(t) = token {
        headers.insert(
            "x-auth-token",
            HeaderValue::from_str(t)
                .map_err(|_| DashboardError::Unauthorized("You are not logged in.".into()))?,
        );
    }
    let body = match body {
        Some(b) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .body(body)
        .map_err(|e| DashboardError::Internal(format!("request to {path}: {e}")))?;
    *req.headers_mut() = headers;
    let resp = match app.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_JSON_REPLY)
        .await
        .map_err(|e| DashboardError::Internal(format!("reading {service}'s answer: {e}")))?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
