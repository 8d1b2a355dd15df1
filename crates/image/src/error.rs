//! The image service's error type, rendered as Glance renders its faults: a
//! small HTML document whose text the SDK shows as `404 Not Found: No image
//! found with ID …`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use ferro_common::{BodyError, Denied};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Image storage media is full: {0}")]
    TooLarge(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("internal error")]
    Internal(String),
}

impl ImageError {
    pub fn no_image(id: &str) -> Self {
        ImageError::NotFound(format!("No image found with ID {id}"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ImageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ImageError::Unauthorized => StatusCode::UNAUTHORIZED,
            ImageError::Denied(_) | ImageError::Forbidden(_) => StatusCode::FORBIDDEN,
            ImageError::NotFound(_) => StatusCode::NOT_FOUND,
            ImageError::Conflict(_) => StatusCode::CONFLICT,
            ImageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ImageError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ImageError::Body(e) => e.status(),
            ImageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for ImageError {
    fn from(e: sqlx::Error) -> Self {
        ImageError::Internal(format!("database: {e}"))
    }
}

impl From<std::io::Error> for ImageError {
    fn from(e: std::io::Error) -> Self {
        ImageError::Internal(format!("storage: {e}"))
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl IntoResponse for ImageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ImageError::Internal(cause) => {
                tracing::error!(%cause, "image request failed");
                "The server has either erred or is incapable of performing the requested operation."
                    .to_owned()
            }
            other => other.to_string(),
        };
        let title = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        let body = format!(
            "<html>\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n  {}<br /><br />\n\n\n\n </body>\n</html>",
            escape(&message)
        );
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            body,
        )
            .into_response()
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
