//! The compute service's error type, rendered as Nova's fault bodies:
//! `{"itemNotFound": {"code": 404, "message": "…"}}` and kin.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferro_common::{BodyError, Denied};

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("Policy doesn't allow {} to be performed.", .0.action)]
    Denied(#[from] Denied),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The server changed between the read an action was decided on and
    /// its write (compare-and-set failed): handlers decide again on a fresh
    /// read; a client sees 409 only if that keeps happening.
    #[error("Instance {0} changed while the request was handled; try again.")]
    Stale(String),
    #[error("{0}")]
    NotAcceptable(String),
    /// What the hypervisor can't do (Nova's libvirt driver's 501s).
    #[error("{0}")]
    NotImplemented(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.")]
    Internal(String),
}

impl ComputeError {
    pub fn bad(m: impl Into<String>) -> Self {
        ComputeError::BadRequest(m.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ComputeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ComputeError::Unauthorized => StatusCode::UNAUTHORIZED,
            ComputeError::Denied(_) | ComputeError::Forbidden(_) => StatusCode::FORBIDDEN,
            ComputeError::NotFound(_) => StatusCode::NOT_FOUND,
            ComputeError::Conflict(_) | ComputeError::Stale(_) => StatusCode::CONFLICT,
            ComputeError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ComputeError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ComputeError::Body(e) => e.status(),
            ComputeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn key(&self) -> &'static str {
        match self {
            ComputeError::BadRequest(_) | ComputeError::Body(_) => "badRequest",
            ComputeError::Unauthorized => "unauthorized",
            ComputeError::Denied(_) | ComputeError::Forbidden(_) => "forbidden",
            ComputeError::NotFound(_) => "itemNotFound",
            ComputeError::Conflict(_) | ComputeError::Stale(_) => "conflictingRequest",
            ComputeError::NotAcceptable(_) => "notAcceptable",
            ComputeError::NotImplemented(_) => "notImplemented",
            ComputeError::Internal(_) => "computeFault",
        }
    }
}

impl From<sqlx::Error> for ComputeError {
    fn from(e: sqlx::Error) -> Self {
        ComputeError::Internal(format!("database: {e}"))
    }
}

impl IntoResponse for ComputeError {
    fn into_response(self) -> Response {
        if let ComputeError::Internal(cause) = &self {
            tracing::error!(%cause, "compute request failed");
        }
        let status = self.status();
        let body = serde_json::json!({ self.key(): {"code": status.as_u16(), "message": self.to_string()} });
        (status, axum::Json(body)).into_response()
    }
}

pub type Result<T, E = ComputeError> = std::result::Result<T, E>;
