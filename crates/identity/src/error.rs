//! The identity service's one error type, rendered as Keystone's fault body
//! `{"error": {"code", "title", "message"}}` at the edge.
//!
//! The message sent to the client is separate from what is logged: database
//! and crypto failures log their cause and answer a bland 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferro_common::{BodyError, Denied};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("{0}")]
    UnauthorizedWith(String),
    #[error(transparent)]
    Forbidden(#[from] Denied),
    #[error("{0}")]
    ForbiddenWith(String),
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    #[error("Conflict occurred attempting to store {kind} - {detail}.")]
    Conflict { kind: &'static str, detail: String },
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("internal error")]
    Internal(String),
}

impl IdentityError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        IdentityError::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub fn bad(msg: impl Into<String>) -> Self {
        IdentityError::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            IdentityError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IdentityError::Unauthorized | IdentityError::UnauthorizedWith(_) => {
                StatusCode::UNAUTHORIZED
            }
            IdentityError::Forbidden(_) | IdentityError::ForbiddenWith(_) => StatusCode::FORBIDDEN,
            IdentityError::NotFound { .. } => StatusCode::NOT_FOUND,
            IdentityError::Conflict { .. } => StatusCode::CONFLICT,
            IdentityError::Body(e) => e.status(),
            IdentityError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        // A unique-constraint violation that slipped past the explicit checks
        // (two concurrent creates) is still a conflict, not a 500.
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return IdentityError::Conflict {
                    kind: "resource",
                    detail: "Duplicate entry".into(),
                };
            }
        }
        IdentityError::Internal(format!("database: {e}"))
    }
}

impl From<ferro_store::StoreError> for IdentityError {
    fn from(e: ferro_store::StoreError) -> Self {
        IdentityError::Internal(format!("store: {e}"))
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            IdentityError::Internal(cause) => {
                tracing::error!(%cause, "identity request failed");
                "An unexpected error prevented the server from fulfilling your request.".to_owned()
            }
            other => other.to_string(),
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = serde_json::json!({"error": {"code": status.as_u16(), "title": title, "message": message}});
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                "www-authenticate",
                axum::http::HeaderValue::from_static("Keystone uri=\"/v3\""),
            );
        }
        resp
    }
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;
