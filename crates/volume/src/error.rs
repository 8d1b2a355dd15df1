//! The volume service's error type, rendered as Cinder's fault bodies:
//! `{"itemNotFound": {"code": 404, "message": "…"}}`, `badRequest`,
//! `overLimit` (413, quotas) and kin.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferro_common::{BodyError, Denied};

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("Policy doesn't allow {} to be performed.", .0.action)]
    Denied(#[from] Denied),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    OverLimit(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The message for the log; the client sees a generic one.
    #[error("The server has either erred or is incapable of performing the requested operation.")]
    Internal(String),
}

impl VolumeError {
    pub fn bad(m: impl Into<String>) -> Self {
        VolumeError::BadRequest(m.into())
    }

    /// Cinder's `InvalidVolume` (400): the volume's state forbids it.
    pub fn invalid_volume(reason: impl std::fmt::Display) -> Self {
        VolumeError::BadRequest(format!("Invalid volume: {reason}"))
    }

    pub fn volume_not_found(id: &str) -> Self {
        VolumeError::NotFound(format!("Volume {id} could not be found."))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            VolumeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            VolumeError::Unauthorized => StatusCode::UNAUTHORIZED,
            VolumeError::Denied(_) => StatusCode::FORBIDDEN,
            VolumeError::NotFound(_) => StatusCode::NOT_FOUND,
            VolumeError::Conflict(_) => StatusCode::CONFLICT,
            VolumeError::OverLimit(_) => StatusCode::PAYLOAD_TOO_LARGE,
            VolumeError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            VolumeError::Body(e) => e.status(),
            VolumeError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn fault(&self) -> &'static str {
        match self {
            VolumeError::BadRequest(_) | VolumeError::Body(_) => "badRequest",
            VolumeError::Unauthorized => "unauthorized",
            VolumeError::Denied(_) => "forbidden",
            VolumeError::NotFound(_) => "itemNotFound",
            VolumeError::Conflict(_) => "conflictingRequest",
            VolumeError::OverLimit(_) => "overLimit",
            VolumeError::NotAcceptable(_) => "notAcceptable",
            VolumeError::Internal(_) => "computeFault",
        }
    }
}

impl From<sqlx::Error> for VolumeError {
    fn from(e: sqlx::Error) -> Self {
        VolumeError::Internal(format!("database: {e}"))
    }
}

impl From<crate::backend::BackendError> for VolumeError {
    fn from(e: crate::backend::BackendError) -> Self {
        VolumeError::Internal(e.to_string())
    }
}

impl IntoResponse for VolumeError {
    fn into_response(self) -> Response {
        if let VolumeError::Internal(cause) = &self {
            tracing::error!(%cause, "volume request failed");
        }
        let status = self.status();
        let body = serde_json::json!({ self.fault(): {"code": status.as_u16(), "message": self.to_string()} });
        (status, axum::Json(body)).into_response()
    }
}

pub type Result<T, E = VolumeError> = std::result::Result<T, E>;
