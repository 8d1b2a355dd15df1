//! How services other than identity learn who is calling: the identity
//! service implements [`Authenticator`], and each service's handlers turn
//! `X-Auth-Token` into an [`AuthContext`] through it. In one process this is
//! a function call; nothing goes over HTTP.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::context::AuthContext;

pub trait Authenticator: Send + Sync + 'static {
    /// The caller behind `token`, or `None` when it is not valid now.
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<AuthContext>>;
}

pub type SharedAuth = Arc<dyn Authenticator>;

/// The token of a request, if it carries one.
pub fn token_of(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
}
