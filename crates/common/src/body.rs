//! Reading JSON request bodies without trusting them.
//!
//! Every service reads its bodies through [`read_json`]: a size limit, a
//! content check and serde, each failure a [`BodyError`] that the service
//! renders as a 4xx in its own fault format. Nothing reaches service logic
//! unless it parsed completely.

use axum::body::Body;
use axum::extract::Request;
use serde::de::DeserializeOwned;

/// Largest JSON body any API accepts (image data goes through streaming
/// endpoints instead).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("Request body is larger than {limit} bytes.")]
    TooLarge { limit: usize },
    #[error("The request body could not be read.")]
    Unreadable,
    #[error("Request body is empty; a JSON object is required.")]
    Empty,
    #[error("Malformed request body: {0}")]
    Malformed(String),
    #[error("Invalid input for field or request body: {0}")]
    Invalid(String),
}

impl BodyError {
    /// 413 for oversized bodies, 400 for the rest.
    pub fn status(&self) -> http::StatusCode {
        match self {
            BodyError::TooLarge { .. } => http::StatusCode::PAYLOAD_TOO_LARGE,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads at most [`MAX_JSON_BODY`] bytes and parses them as `T`.
pub async fn read_json<T: DeserializeOwned>(req: Request) -> Result<T, BodyError> {
    read_json_body(req.into_body()).await
}

pub async fn read_json_body<T: DeserializeOwned>(body: Body) -> Result<T, BodyError> {
    let bytes = axum::body::to_bytes(body, MAX_JSON_BODY)
        .await
        .map_err(|e| {
            // to_bytes reports the limit through a length-limit error in its chain.
            if format!("{e:?}").contains("LengthLimit") {
                BodyError::TooLarge {
                    limit: MAX_JSON_BODY,
                }
            } else {
                BodyError::Unreadable
            }
        })?;
    parse_json(&bytes)
}

/// Parses a complete body. Syntax errors and type errors are told apart so
/// the message says which it was.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(BodyError::Empty);
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| BodyError::Malformed(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| BodyError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct T {
        a: u32,
    }

    #[test]
    fn errors_are_told_apart() {
        assert!(matches!(parse_json::<T>(b"  "), Err(BodyError::Empty)));
        assert!(matches!(
            parse_json::<T>(b"{"),
            Err(BodyError::Malformed(_))
        ));
        assert!(matches!(
            parse_json::<T>(br#"{"a":"x"}"#),
            Err(BodyError::Invalid(_))
        ));
        assert!(matches!(
            parse_json::<T>(br#"{"a":-1}"#),
            Err(BodyError::Invalid(_))
        ));
        assert_eq!(parse_json::<T>(br#"{"a":1}"#).unwrap().a, 1);
    }
}
