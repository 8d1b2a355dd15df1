//! Block storage, compatible with Cinder v3: volumes (blank, from an image,
//! a snapshot or another volume), snapshots, volume types with extra specs,
//! attachments (the 3.27 API and the older actions), quotas, limits,
//! availability zones and services. `api` is the HTTP edge, `service` the
//! logic and the SQL, `backend` the disks themselves.
#![forbid(unsafe_code)]

pub mod api;
pub mod backend;
pub mod error;
pub mod model;
pub mod service;

pub use api::router;
pub use backend::{Backend, Connection, FakeBackend, LocalBackend};
pub use error::VolumeError;
pub use service::VolumeService;
