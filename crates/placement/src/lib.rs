//! Placement and scheduling.
//!
//! `scheduler` is a pure, deterministic function from host states and a
//! request to a ranked list of hosts (or the reasons none fits). `inventory`
//! reads host states and claims allocations atomically in SQL. `api` serves
//! the Placement API over the same tables.
#![forbid(unsafe_code)]

pub mod api;
pub mod inventory;
pub mod scheduler;

pub use scheduler::{schedule, Affinity, GroupPlacement, HostState, NoValidHost, Request};
