//! Shared pieces of every ferrostack service.
//!
//! Nothing in here knows about a particular OpenStack service: ids, the
//! authenticated request context and the policy layer that every handler goes
//! through, the JSON body extractor that turns bad input into a 4xx, request
//! ids, Prometheus metrics and timestamp formatting.
#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod context;
pub mod failpoint;
pub mod host;
pub mod ids;
pub mod metrics;
pub mod params;
pub mod policy;
pub mod request_id;
pub mod time;

pub use body::{read_json, read_json_body, BodyError, MAX_JSON_BODY};
pub use context::{AuthContext, Scope};
pub use policy::{enforce, Action, Denied, Rule, Target};
