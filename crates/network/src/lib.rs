//! Networking, compatible with Neutron v2.0: networks with provider
//! attributes, IPv4 subnets over [`ipam`], ports, routers with interfaces,
//! gateways and static routes, floating IPs, security groups and rules,
//! quotas and IP availability. `api` is the HTTP edge, `service` the logic,
//! `model` the rows and their JSON.
#![forbid(unsafe_code)]

pub mod api;
pub mod error;
pub mod ipam;
pub mod model;
pub mod service;

pub use api::router;
pub use error::NetworkError;
pub use service::{NetworkConfig, NetworkService};
