//! Nova v2.1 compatible compute service.
//!
//! `api` (routes, wire types, microversion rendering) → `service` (quotas,
//! the boot saga, desired state, agent reports) → SQL. Scheduling is
//! `ferro-placement`'s pure function; hosts run `ferro-agent`.
#![forbid(unsafe_code)]

pub mod aggregates;
pub mod api;
pub mod balancers;
pub mod error;
pub mod executor;
pub mod gc;
pub mod microversion;
pub mod model;
pub mod nics;
pub mod saga;
pub mod server_create;
pub mod server_delete;
pub mod server_groups;
pub mod server_live_migrate;
pub mod server_migrate;
pub mod server_password;
pub mod server_resize;
pub mod server_shelve;
pub mod server_snapshot;
pub mod service;
pub mod usage;
pub mod volume_attach;
pub mod volumes;

pub use api::router;
pub use service::{ComputeService, LocalLink};
