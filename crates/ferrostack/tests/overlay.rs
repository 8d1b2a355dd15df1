//! The VXLAN overlay as the control plane computes it (l2population): for
//! every host, the tunnels of the VXLAN networks it has, whose flood list is
//! the other hosts with the network and whose forwarding entries pin each
//! remote MAC (instance ports, router interfaces, the DHCP leg) to its
//! host's underlay address. Hosts are registered through the same link a
//! joined host's calls go through; ports are bound by an admin's
//! `binding:host_id`. On SQLite and PostgreSQL. (Real tunnels between
//! hosts in namespaces: tests/cli/overlay.sh.)

use std::collections::BTreeSet;

use ferro_agent::{netspec::names, ControlPlane, HostInfo};
use ferro_compute::LocalLink;
use ferro_test_support::{backends, Backend, TestCloud};
use ferrostack::contract::store;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn host(name: &str, tunnel_ip: &str, network_node: bool) -> HostInfo {
    HostInfo {
        name: name.into(),
        hypervisor_type: "fake".into(),
        hypervisor_version: 1,
        host_ip: "192.0.2.99".into(),
        vcpus: 4,
        memory_mb: 8192,
        disk_gb: 100,
        agent_url: None,
        network_node,
        tunnel_ip: Some(tunnel_ip.into()),
    }
}

async fn post(tc: &TestCloud, admin: &str, path: &str, body: Value) -> Value {
    let r = tc.network(Method::POST, path, admin, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.json);
    r.json
}

/// (peers, MAC → address) of `network`'s tunnel on `host` (both empty when
/// the host has the network but no tunnel: no other host has it); None:
/// the host doesn't have the network.
type View = Option<(BTreeSet<String>, BTreeSet<(String, String)>)>;

async fn tunnel_of(tc: &TestCloud, host: &str, network: &str) -> View {
    let network_node = store::is_network_node(&tc.cloud.db, host).await.unwrap();
    let link = LocalLink {
        compute: tc.cloud.compute.clone(),
        network_node,
    };
    let d = link.desired(host, 0).await.expect("desired state");
    let n = d.network.networks.iter().find(|n| n.id == network)?;
    let Some(t) = n.tunnel.clone() else {
        return Some((BTreeSet::new(), BTreeSet::new()));
    };
    assert!(!t.peers.is_empty(), "a tunnel has peers: {t:?}");
    Some((t.peers.into_iter().collect(), t.macs.into_iter().collect()))
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn macs(v: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    v.iter()
        .map(|(m, a)| ((*m).to_owned(), (*a).to_owned()))
        .collect()
}

#[tokio::test]
async fn tunnels_follow_ports_and_hosts_on_every_backend() {
    for b in backends() {
        overlay(b).await;
    }
}

async fn overlay(backend: Backend) {
    let tc = TestCloud::start_controller(backend).await;
    let admin = tc.admin_token().await;
    let link = LocalLink {
        compute: tc.cloud.compute.clone(),
        network_node: false,
    };
    link.register(&host("net1", "10.0.0.1", true))
        .await
        .unwrap();
    link.register(&host("cmp2", "10.0.0.2", false))
        .await
        .unwrap();
    link.register(&host("cmp3", "10.0.0.3", false))
        .await
        .unwrap();
    // A second host with the role does not become a second network node.
    link.register(&host("net4", "10.0.0.4", true))
        .await
        .unwrap();
    assert!(store::is_network_node(&tc.cloud.db, "net1").await.unwrap());
    assert!(!store::is_network_node(&tc.cloud.db, "net4").await.unwrap());

    let net = post(
        &tc,
        &admin,
        "networks",
        json!({"network": {"name": "blue"}}),
    )
    .await;
    assert_eq!(net["network"]["provider:network_type"], "vxlan", "{net}");
    assert_eq!(net["network"]["mtu"], 1450, "{net}");
    let net_id = net["network"]["id"].as_str().unwrap().to_owned();
    let sub = post(
        &tc,
        &admin,
        "subnets",
        json!({"subnet": {"network_id": net_id, "cidr": "10.10.0.0/24", "ip_version": 4}}),
    )
    .await;
    let sub_id = sub["subnet"]["id"].as_str().unwrap().to_owned();
    let router = post(&tc, &admin, "routers", json!({"router": {"name": "r"}})).await;
    let router_id = router["router"]["id"].as_str().unwrap().to_owned();
    let r = tc
        .network(
            Method::PUT,
            &format!("routers/{router_id}/add_router_interface"),
            &admin,
            Some(json!({"subnet_id": sub_id})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let ports = tc
        .network(
            Method::GET,
            &format!("ports?device_id={router_id}"),
            &admin,
            None,
        )
        .await;
    let router_mac = ports.json["ports"][0]["mac_address"]
        .as_str()
        .unwrap()
        .to_owned();
    let dhcp_mac = names::dhcp_mac(&net_id);

    // Before any instance: the network node has the network (DHCP, router)
    // and no tunnel, as no other host has it; compute hosts don't have it.
    assert_eq!(
        tunnel_of(&tc, "net1", &net_id).await,
        Some((set(&[]), macs(&[])))
    );
    assert_eq!(tunnel_of(&tc, "cmp2", &net_id).await, None);
    assert_eq!(tunnel_of(&tc, "net4", &net_id).await, None);

    let port_on = |host: &str| {
        json!({"port": {"network_id": net_id, "device_owner": "compute:nova",
                        "device_id": uuid::Uuid::new_v4().to_string(), "binding:host_id": host}})
    };
    let a = post(&tc, &admin, "ports", port_on("cmp2")).await;
    let b = post(&tc, &admin, "ports", port_on("cmp3")).await;
    let mac_a = a["port"]["mac_address"].as_str().unwrap().to_owned();
    let mac_b = b["port"]["mac_address"].as_str().unwrap().to_owned();
    let b_id = b["port"]["id"].as_str().unwrap().to_owned();

    assert_eq!(
        tunnel_of(&tc, "cmp2", &net_id).await,
        Some((
            set(&["10.0.0.1", "10.0.0.3"]),
            macs(&[
                (&mac_b, "10.0.0.3"),
                (&router_mac, "10.0.0.1"),
                (&dhcp_mac, "10.0.0.1")
            ])
        )),
        "cmp2 floods to the network node and cmp3, and pins their MACs"
    );
    assert_eq!(
        tunnel_of(&tc, "net1", &net_id).await,
        Some((
            set(&["10.0.0.2", "10.0.0.3"]),
            macs(&[(&mac_a, "10.0.0.2"), (&mac_b, "10.0.0.3")])
        )),
        "the network node reaches both instances"
    );
    assert_eq!(tunnel_of(&tc, "net4", &net_id).await, None);

    // The port moves to cmp2: cmp3 has the network no more, and cmp2 pins
    // nothing on cmp3.
    let r = tc
        .network(
            Method::PUT,
            &format!("ports/{b_id}"),
            &admin,
            Some(json!({"port": {"binding:host_id": "cmp2"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(tunnel_of(&tc, "cmp3", &net_id).await, None);
    assert_eq!(
        tunnel_of(&tc, "cmp2", &net_id).await,
        Some((
            set(&["10.0.0.1"]),
            macs(&[(&router_mac, "10.0.0.1"), (&dhcp_mac, "10.0.0.1")])
        ))
    );

    // The network node comes back with another underlay address: the
    // generation moves, and the other hosts' tunnels follow.
    let before = link.desired("cmp2", 0).await.unwrap().generation;
    link.register(&host("net1", "10.0.0.11", true))
        .await
        .unwrap();
    let after = link.desired("cmp2", 0).await.unwrap().generation;
    assert!(after > before, "generation {before} -> {after}");
    assert_eq!(
        tunnel_of(&tc, "cmp2", &net_id).await,
        Some((
            set(&["10.0.0.11"]),
            macs(&[(&router_mac, "10.0.0.11"), (&dhcp_mac, "10.0.0.11")])
        ))
    );
    tc.stop().await;
}
