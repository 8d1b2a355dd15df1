//! The key manager's error type, rendered as Barbican's error bodies:
//! `{"code": 404, "title": "Not Found", "description": "…"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferro_common::{BodyError, Denied};

#[derive(Debug, thiserror::Error)]
pub enum KmError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The message for the log; the client sees a generic one.
    #[error("Internal Server Error")]
    Internal(String),
}

impl From<Denied> for KmError {
    fn from(d: Denied) -> Self {
        KmError::Forbidden(d.to_string())
    }
}

impl KmError {
    pub fn bad(m: impl Into<String>) -> Self {
        KmError::BadRequest(m.into())
    }

    /// Barbican's words for a secret or container that isn't there.
    pub fn not_found(kind: &str) -> Self {
        KmError::NotFound(format!(
            "Not Found. Sorry but your {kind} is in another castle."
        ))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            KmError::BadRequest(_) => StatusCode::BAD_REQUEST,
            KmError::Unauthorized => StatusCode::UNAUTHORIZED,
            KmError::Forbidden(_) => StatusCode::FORBIDDEN,
            KmError::NotFound(_) => StatusCode::NOT_FOUND,
            KmError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            KmError::Body(e) => e.status(),
            KmError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for KmError {
    fn from(e: sqlx::Error) -> Self {
        KmError::Internal(format!("database: {e}"))
    }
}

impl IntoResponse for KmError {
    fn into_response(self) -> Response {
        if let KmError::Internal(cause) = &self {
            tracing::error!(%cause, "key-manager request failed");
        }
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = serde_json::json!({
            "code": status.as_u16(),
            "title": title,
            "description": self.to_string(),
        });
        (status, axum::Json(body)).into_response()
    }
}

pub type Result<T, E = KmError> = std::result::Result<T, E>;
