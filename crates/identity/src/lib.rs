//! Keystone v3 compatible identity service.
//!
//! `api` (routes and wire types) → `service` (authentication, validation,
//! effective roles, caches; no HTTP) → `store` (SQL). Tokens are encrypted
//! and stateless (`token`), revocations are indexed in memory
//! (`revocation`), and `bootstrap` creates what the seed's openrc expects.
#![forbid(unsafe_code)]

pub mod api;
pub mod bootstrap;
pub mod error;
pub mod model;
pub mod policy;
pub mod revocation;
pub mod service;
pub mod store;
pub mod token;

pub use api::router;
pub use error::IdentityError;
pub use service::{Identity, IdentityConfig};
pub use token::TokenKeys;
