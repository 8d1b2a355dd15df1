//! A secret store with Barbican's v1 API (catalog type `key-manager`):
//! secrets (a payload of text or bytes, with Barbican's metadata) and
//! containers naming secrets (`certificate`, `rsa`, `generic`). It holds
//! what load balancers need for TERMINATED_HTTPS: the certificate, its key
//! and intermediates, referred to by URL as Octavia refers to Barbican.
//! `api` is the HTTP edge, `service` the rules, `store` the SQL,
//! `certificate` the reading of a PEM bundle.
#![forbid(unsafe_code)]

pub mod api;
pub mod certificate;
pub mod error;
pub mod model;
pub mod service;
mod store;

pub use api::router;
pub use certificate::CertificateBundle;
pub use error::KmError;
pub use service::KeyManager;
