//! ferrostack: the composition of every service into one cloud, shared by
//! the `ferrostack` binary and the integration-test harness.
#![forbid(unsafe_code)]

pub mod balancer_link;
pub mod cloud;
pub mod contract;
pub mod external;
pub mod files;
pub mod host;
pub mod openrc;
pub mod serve;
pub mod tls;
pub mod volume_link;

pub use cloud::{Cloud, Config, Hypervisor};
