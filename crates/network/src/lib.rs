//! Networking (Neutron v2.0 compatible), being built for the networking
//! issue. So far: `ipam`, the pure address arithmetic every network, subnet,
//! port, router and floating IP will rest on.
#![forbid(unsafe_code)]

pub mod ipam;
