//! The load-balancer service's error type, rendered as Octavia's fault
//! bodies: `{"faultcode": "Client", "faultstring": "…", "debuginfo": null}`
//! ("Server" for a 5xx).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferro_common::{BodyError, Denied};

#[derive(Debug, thiserror::Error)]
pub enum LbError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("Policy does not allow this request to be performed.")]
    Denied(#[from] Denied),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Octavia answers a create past a quota with 403.
    #[error("{0}")]
    Quota(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The message for the log; the client sees a generic one.
    #[error("An unknown exception occurred.")]
    Internal(String),
}

impl LbError {
    pub fn bad(m: impl Into<String>) -> Self {
        LbError::BadRequest(m.into())
    }

    /// Octavia's "Invalid input for field/attribute …" (400).
    pub fn invalid(field: &str, value: impl std::fmt::Display, why: &str) -> Self {
        LbError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: '{value}'. {why}"
        ))
    }

    /// `kind` as Octavia names it: "Load Balancer", "Listener", "Pool", …
    pub fn not_found(kind: &str, id: &str) -> Self {
        LbError::NotFound(format!("{kind} {id} not found."))
    }

    /// A change under a load balancer whose last change is not applied yet.
    pub fn immutable(lb_id: &str) -> Self {
        LbError::Conflict(format!(
            "Load Balancer {lb_id} is immutable and cannot be updated."
        ))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            LbError::BadRequest(_) => StatusCode::BAD_REQUEST,
            LbError::Unauthorized => StatusCode::UNAUTHORIZED,
            LbError::Denied(_) | LbError::Quota(_) => StatusCode::FORBIDDEN,
            LbError::NotFound(_) => StatusCode::NOT_FOUND,
            LbError::Conflict(_) => StatusCode::CONFLICT,
            LbError::Body(e) => e.status(),
            LbError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for LbError {
    fn from(e: sqlx::Error) -> Self {
        LbError::Internal(format!("database: {e}"))
    }
}

impl From<ferro_network::error::NetworkError> for LbError {
    fn from(e: ferro_network::error::NetworkError) -> Self {
        let status = e.status;
        let message = e.message.clone();
        match status.as_u16() {
            400 => LbError::BadRequest(message),
            403 => LbError::Denied(Denied {
                action: "load-balancer:vip_port",
            }),
            404 => LbError::NotFound(message),
            409 => LbError::Conflict(message),
            _ => LbError::Internal(format!("network: {message}")),
        }
    }
}

impl IntoResponse for LbError {
    fn into_response(self) -> Response {
        if let LbError::Internal(cause) = &self {
            tracing::error!(%cause, "load-balancer request failed");
        }
        let status = self.status();
        let code = if status.is_server_error() {
            "Server"
        } else {
            "Client"
        };
        let body = serde_json::json!({"faultcode": code, "faultstring": self.to_string(), "debuginfo": null});
        (status, axum::Json(body)).into_response()
    }
}

pub type Result<T, E = LbError> = std::result::Result<T, E>;
