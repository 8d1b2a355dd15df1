//! Request ids and the per-request tracing span.
//!
//! Every response carries `X-Openstack-Request-Id: req-<uuid>`, the same id
//! appears in every log line of the request, and services can read it from
//! the request extensions (Nova puts it in instance actions).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use tracing::Instrument;

/// The request id, stored in the request's extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub const HEADER: &str = "x-openstack-request-id";

/// Middleware: assigns the id, opens the span, stamps the response.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = format!("req-{}", uuid::Uuid::new_v4());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut resp = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| tracing::debug!(status = resp.status().as_u16(), "done"));
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
