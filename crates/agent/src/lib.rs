//! The host agent.
//!
//! One per compute host. It registers the host, heartbeats, fetches the
//! desired state of its instances (with a generation number) from the
//! control plane, drives a [`driver::Hypervisor`] toward it, and reports
//! what it observes. Applying the same state twice changes nothing, and a
//! restarted agent adopts running VMs without touching them.
#![forbid(unsafe_code)]

pub mod configdrive;
pub mod dataplane;
pub mod driver;
pub mod fake;
pub mod hotplug;
pub mod live;
pub mod metadata;
pub mod qemu;
pub mod qmp;
pub mod reconcile;

pub use ferro_agent_api::{balancer, netspec, spec};
pub use reconcile::Agent;
pub use spec::{
    ControlPlane, DesiredState, HostAgent, HostInfo, InstanceSpec, Observed, Power, Report,
};
