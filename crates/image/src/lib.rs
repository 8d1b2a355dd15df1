//! Glance v2 compatible image service.
//!
//! `api` holds the routes and handlers, `service` the visibility rules and
//! the streaming upload (hash while writing, inspect the head, commit or
//! undo), `inspect` the format checks, `storage` where bytes live.
#![forbid(unsafe_code)]

pub mod api;
pub mod error;
pub mod inspect;
pub mod model;
pub mod service;
pub mod storage;

pub use api::router;
pub use service::ImageService;
pub use storage::{ImageStore, LocalStore};
