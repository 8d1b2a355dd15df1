//! Query parameters, for every service. Never fails: undecodable bytes are
//! replaced, and each service validates the values it uses.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::FromRequestParts;
use http::request::Parts;

pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        Ok(Params(
            form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        ))
    }
}

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// A boolean filter as 0/1 (`true|false|1|0|yes|no`, empty means true);
    /// anything else is an error message for a 400.
    pub fn flag(&self, k: &str) -> Result<Option<i64>, String> {
        match self.get(k).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("true" | "1" | "yes" | "") => Ok(Some(1)),
            Some("false" | "0" | "no") => Ok(Some(0)),
            Some(other) => Err(format!(
                "Invalid value for {k}: {other:?}; expected true or false."
            )),
        }
    }
}
