//! Neutron's agents (`openstack network agent list`): what runs the
//! dataplane on each host, derived from the compute hosts — every host runs
//! the port and bridge side ("Linux bridge agent"); the network node also
//! runs DHCP, routers (L3) and metadata. There is no separate agent
//! process: each is the host's ferrostack agent, alive while it
//! heartbeats.

use ferro_common::{host, time};
use ferro_store::sqlx;
use md5::{Digest, Md5};

use super::NetworkService;
use crate::error::Result;

/// One agent of one host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: String,
    pub agent_type: &'static str,
    pub binary: &'static str,
    pub topic: &'static str,
    pub host: String,
    pub availability_zone: Option<String>,
    pub alive: bool,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

/// (type, binary, topic, only on the network node, zone-scoped)
const KINDS: &[(&str, &str, &str, bool, bool)] = &[
    (
        "Linux bridge agent",
        "neutron-linuxbridge-agent",
        "N/A",
        false,
        false,
    ),
    ("DHCP agent", "neutron-dhcp-agent", "dhcp_agent", true, true),
    ("L3 agent", "neutron-l3-agent", "l3_agent", true, true),
    (
        "Metadata agent",
        "neutron-metadata-agent",
        "N/A",
        true,
        false,
    ),
];

/// A stable id for a host's agent of one kind (a name-based UUID).
fn agent_id(host: &str, binary: &str) -> String {
    let digest = Md5::digest(format!("ferrostack-agent/{host}/{binary}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest);
    uuid::Builder::from_md5_bytes(bytes).into_uuid().to_string()
}

impl NetworkService {
    /// Every host's agents, by host then type.
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        let hosts: Vec<(String, String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT name, availability_zone, network_node, forced_down, heartbeat_at, started_at FROM hosts ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        let now = time::now_micros();
        let mut out = Vec::new();
        for (host, zone, network_node, forced_down, heartbeat_at, started_at) in hosts {
            for (agent_type, binary, topic, on_network_node, zoned) in KINDS {
                if *on_network_node && network_node == 0 {
                    continue;
                }
                out.push(Agent {
                    id: agent_id(&host, binary),
                    agent_type,
                    binary,
                    topic,
                    host: host.clone(),
                    availability_zone: zoned.then(|| zone.clone()),
                    alive: host::is_up(heartbeat_at, forced_down, now, host::DOWN_AFTER_MICROS),
                    started_at,
                    heartbeat_at,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_differ_per_host_and_kind() {
        let a = agent_id("h1", "neutron-l3-agent");
        assert_eq!(a, agent_id("h1", "neutron-l3-agent"));
        assert_ne!(a, agent_id("h2", "neutron-l3-agent"));
        assert_ne!(a, agent_id("h1", "neutron-dhcp-agent"));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 3);
    }
}
