//! The dashboard's one error type, rendered as Keystone's error body
//! (`{"error": {"code", "title", "message"}}`): the dashboard's own
//! endpoints are about sessions, which are identity's business.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A service answered with an error; its status and message are passed on.
    #[error("{message}")]
    Upstream { status: StatusCode, message: String },
    /// Something on our side failed; the cause goes to the log only.
    #[error("internal: {0}")]
    Internal(String),
}

impl DashboardError {
    fn status(&self) -> StatusCode {
        match self {
            DashboardError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DashboardError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            DashboardError::Forbidden(_) => StatusCode::FORBIDDEN,
            DashboardError::NotFound(_) => StatusCode::NOT_FOUND,
            DashboardError::Upstream { status, .. } => *status,
            DashboardError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            DashboardError::Internal(cause) => {
                tracing::error!(%cause, "dashboard request failed");
                "An unexpected error prevented the dashboard from doing that.".to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = (
            status,
            axum::Json(json!({"error": {
                "code": status.as_u16(),
                "title": status.canonical_reason().unwrap_or("Error"),
                "message": message,
            }})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            // A stale cookie goes with the refusal.
            if let Ok(v) = crate::session::clear_cookie().parse() {
                resp.headers_mut().insert(axum::http::header::SET_COOKIE, v);
            }
        }
        resp
    }
}

pub type Result<T, E = DashboardError> = std::result::Result<T, E>;
