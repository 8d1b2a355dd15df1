//! The contract between the control plane and the agents of its hosts.
//!
//! Both sides depend on this crate and nothing more of each other: the
//! controller builds [`DesiredState`] for a host and applies its
//! [`Report`]s; the agent fetches the first and sends the second, in
//! process (`ferrostack up`) or over mutual TLS (`ferrostack agent
//! --join`). Nothing here runs QEMU, touches nftables or speaks SQL.
#![forbid(unsafe_code)]

pub mod balancer;
pub mod netspec;
pub mod spec;

pub use spec::{
    ControlPlane, DesiredState, HostAgent, HostInfo, InstanceSpec, LinkError, MetadataTarget,
    NicSpec, Observed, Power, Report, VolumeSpec,
};
