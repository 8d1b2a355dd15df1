//! Load balancers in a host's desired state (the network node runs them)
//! and what the host reports of them: which revision it runs, each
//! member's health as its health monitor sees it, and traffic counters.
//!
//! One [`BalancerSpec`] is a whole Octavia load balancer: its VIP port,
//! listeners and pools (with members and health monitor), at a revision
//! the control plane bumps with every change of any of them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerSpec {
    pub id: String,
    /// Bumped by every change of the load balancer or anything under it.
    pub revision: i64,
    pub vip_port_id: String,
    pub vip_network_id: String,
    pub vip_mac: String,
    /// With its prefix, e.g. `10.0.0.10/24`.
    pub vip_cidr: String,
    /// The VIP subnet's gateway: the way to members behind a router and
    /// back to clients that come through a floating IP.
    pub gateway: Option<String>,
    pub listeners: Vec<ListenerSpec>,
    pub pools: Vec<PoolSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerSpec {
    pub id: String,
    /// `HTTP`, `TERMINATED_HTTPS`, `TCP` or `HTTPS` (passed through).
    pub protocol: String,
    pub port: u16,
    /// `None` for unlimited.
    pub connection_limit: Option<i64>,
    pub default_pool: Option<String>,
    pub timeout_client_ms: i64,
    pub timeout_member_connect_ms: i64,
    pub timeout_member_data_ms: i64,
    /// Add `X-Forwarded-For` (HTTP only).
    pub forwarded_for: bool,
    /// Client addresses let in; empty lets everyone in.
    pub allowed_cidrs: Vec<String>,
    /// Enabled L7 policies that have enabled rules, in position order.
    #[serde(default)]
    pub l7policies: Vec<L7PolicySpec>,
    /// TERMINATED_HTTPS: PEM bundles (certificate, intermediates, private
    /// key), the default first, then those chosen by SNI.
    #[serde(default)]
    pub certificates: Vec<String>,
}

/// An L7 policy: when every rule matches, do `action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct L7PolicySpec {
    pub id: String,
    /// `REDIRECT_TO_POOL`, `REDIRECT_TO_URL`, `REDIRECT_PREFIX` or `REJECT`.
    pub action: String,
    pub redirect_pool: Option<String>,
    pub redirect_url: Option<String>,
    pub redirect_prefix: Option<String>,
    pub redirect_code: Option<i64>,
    pub rules: Vec<L7RuleSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct L7RuleSpec {
    pub id: String,
    /// `HOST_NAME`, `PATH`, `FILE_TYPE`, `HEADER` or `COOKIE`.
    pub kind: String,
    /// `EQUAL_TO`, `STARTS_WITH`, `ENDS_WITH`, `CONTAINS` or `REGEX`.
    pub compare: String,
    /// The header or cookie name.
    pub key: Option<String>,
    pub value: String,
    pub invert: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolSpec {
    pub id: String,
    /// `HTTP` or `TCP`.
    pub protocol: String,
    /// `ROUND_ROBIN`, `LEAST_CONNECTIONS` or `SOURCE_IP`.
    pub algorithm: String,
    /// `SOURCE_IP`, `HTTP_COOKIE` or `APP_COOKIE` (with its cookie name).
    pub persistence: Option<(String, Option<String>)>,
    pub members: Vec<MemberSpec>,
    pub monitor: Option<MonitorSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    pub id: String,
    pub address: String,
    pub port: u16,
    pub weight: i64,
    pub backup: bool,
    /// Administratively down: kept in the pool, sent nothing.
    pub disabled: bool,
    pub monitor_address: Option<String>,
    pub monitor_port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorSpec {
    /// `HTTP`, `TCP` or `PING`.
    pub kind: String,
    pub delay_s: i64,
    pub timeout_s: i64,
    /// Successes that bring a member back.
    pub rise: i64,
    /// Failures that take a member out.
    pub fall: i64,
    pub http_method: String,
    pub url_path: String,
    /// As Octavia takes them: `200`, `200,202` or `200-204`.
    pub expected_codes: String,
}

/// A member's health as the network node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberHealth {
    /// Passing its health checks.
    Up,
    /// Failing them: out of the rotation.
    Down,
    /// No health monitor: always in the rotation.
    Unchecked,
    /// Administratively down.
    Disabled,
}

/// Traffic through a load balancer since its proxy started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerCounters {
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub active_connections: i64,
    pub total_connections: i64,
    pub request_errors: i64,
}

/// What the network node says of one load balancer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalancerReport {
    pub id: String,
    /// The revision its proxy runs (0: none runs).
    pub revision: i64,
    /// Why the last revision could not be applied, if it couldn't.
    pub fault: Option<String>,
    /// (member id, health).
    pub members: Vec<(String, MemberHealth)>,
    pub counters: BalancerCounters,
}
