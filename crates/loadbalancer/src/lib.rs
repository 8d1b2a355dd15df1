//! Load balancers, compatible with Octavia's v2 API: load balancers (a VIP
//! port on a tenant subnet), listeners (HTTP, TCP, TERMINATED_HTTPS with a
//! certificate from the key manager), L7 policies and rules, pools (round robin,
//! least connections, source IP; session persistence), members on any
//! host, and health monitors (HTTP, TCP, PING). The network node runs each
//! load balancer as HAProxy in a namespace of its own (the agent's
//! dataplane), from the [`BalancerSpec`](ferro_agent_api::balancer::BalancerSpec)s
//! this crate builds; what it reports back sets provisioning and
//! operating status. `api` is the HTTP edge, `service` the logic and SQL.
#![forbid(unsafe_code)]

pub mod api;
pub mod certificates;
pub mod error;
pub mod model;
pub mod service;

pub use api::router;
pub use certificates::{CertificateError, Certificates};
pub use error::LbError;
pub use service::LoadBalancerService;
