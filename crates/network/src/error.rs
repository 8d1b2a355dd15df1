//! The network service's error type, rendered as Neutron renders faults:
//! `{"NeutronError": {"type": "NetworkNotFound", "message": "…", "detail": ""}}`.
//!
//! `type` is Neutron's exception class name, which clients and tests match
//! on; `message` is what the CLI prints.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferro_common::{BodyError, Denied};

#[derive(Debug)]
pub struct NetworkError {
    pub status: StatusCode,
    pub kind: Cow<'static, str>,
    pub message: String,
    /// What goes to the log instead of the client (internal errors).
    cause: Option<String>,
}

impl std::fmt::Display for NetworkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for NetworkError {}

impl NetworkError {
    pub fn new(
        status: StatusCode,
        kind: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        NetworkError {
            status,
            kind: kind.into(),
            message: message.into(),
            cause: None,
        }
    }

    /// 400 with Neutron's generic `HTTPBadRequest` type.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }

    /// 400 `InvalidInput`: "Invalid input for operation: …".
    pub fn invalid(reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("Invalid input for operation: {reason}."),
        )
    }

    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, message)
    }

    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kind, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "HTTPUnauthorized",
            "The request you have made requires authentication.",
        )
    }

    /// What went wrong inside, for the log (internal errors only).
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    pub fn internal(cause: impl Into<String>) -> Self {
        NetworkError {
            cause: Some(cause.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "HTTPInternalServerError",
                "Request Failed: internal server error while processing your request.",
            )
        }
    }
}

impl From<Denied> for NetworkError {
    fn from(d: Denied) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
            format!("({}) is disallowed by policy", d.action),
        )
    }
}

impl From<BodyError> for NetworkError {
    fn from(e: BodyError) -> Self {
        let status = e.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "HTTPRequestEntityTooLarge"
        } else {
            "HTTPBadRequest"
        };
        Self::new(status, kind, e.to_string())
    }
}

impl From<sqlx::Error> for NetworkError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(format!("database: {e}"))
    }
}

impl From<crate::ipam::IpamError> for NetworkError {
    fn from(e: crate::ipam::IpamError) -> Self {
        use crate::ipam::IpamError as I;
        match &e {
            I::Exhausted(_) => Self::conflict("IpAddressGenerationFailure", e.to_string()),
            I::SubnetOverlap { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "InvalidInput", e.to_string())
            }
            I::BadCidr(_) | I::BadAddress { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "InvalidInput", e.to_string())
            }
            I::GatewayInPool { .. } => {
                Self::conflict("GatewayConflictWithAllocationPools", e.to_string())
            }
            I::GatewayOutside { .. } => Self::bad(e.to_string()),
            I::PoolOutside { .. } => Self::bad(e.to_string()),
            I::PoolReversed { .. } => Self::bad(e.to_string()),
            I::PoolsOverlap(..) => Self::bad(e.to_string()),
        }
    }
}

impl IntoResponse for NetworkError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            tracing::error!(%cause, "network request failed");
        }
        let body = serde_json::json!({"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}});
        (self.status, axum::Json(body)).into_response()
    }
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;
