//! A controller with no host of its own and three hosts joined to it over
//! the host contract (one-time tokens, certificates of the cloud's CA,
//! mutual TLS), with the fake hypervisor: servers spread over the hosts,
//! console logs come from the host that runs the server, deletes leave no
//! allocation, and every way of joining without the right to gets nothing.
//! (Real VMs on hosts in network namespaces: tests/cli/multihost.sh.)

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferro_test_support::{backends, tiny_qcow2, Backend, TestCloud};
use ferrostack::contract::{self, join, pki, store};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::watch;

const V: &str = "2.79";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Host {
    dir: PathBuf,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Host {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ca_fingerprint(tc: &TestCloud) -> String {
    pki::Ca::load_or_create(tc.state_dir())
        .expect("the controller's CA")
        .fingerprint()
}

async fn token_for(tc: &TestCloud, host: &str) -> String {
    let (secret, _) = store::create_token(&tc.cloud.db, host, 600)
        .await
        .expect("a join token");
    contract::format_token(&secret, &ca_fingerprint(tc))
}

fn agent_config(name: &str) -> ferrostack::Config {
    let dir = std::env::temp_dir().join(format!(
        "ferro-host-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut cfg = ferrostack::Config::new(dir);
    cfg.hypervisor = ferrostack::Hypervisor::Fake;
    cfg.host_name = Some(name.to_owned());
    cfg.fake_capacity = Some([4, 8192, 100]);
    cfg
}

/// Starts host `name`'s agent, joining with `token` (none: already enrolled
/// in `cfg`'s state directory).
fn run_host(tc: &TestCloud, cfg: ferrostack::Config, token: Option<String>) -> Host {
    let (stop, shutdown) = watch::channel(false);
    let dir = cfg.state_dir.clone();
    let task = tokio::spawn(join::run(
        join::JoinConfig {
            controller_url: tc.cloud.contract_url.clone(),
            token,
            cfg,
            agent_port: 0,
            advertise_ip: Some(LOOPBACK),
            network_node: false,
        },
        shutdown,
    ));
    Host { dir, stop, task }
}

async fn hypervisors(tc: &TestCloud, admin: &str) -> Vec<Value> {
    let r = tc
        .compute(Method::GET, "os-hypervisors/detail", admin, None, "2.53")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["hypervisors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_hosts_up(tc: &TestCloud, admin: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let hs = hypervisors(tc, admin).await;
        if hs.iter().filter(|h| h["state"] == "up").count() == n {
            return hs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{n} hosts never came up: {hs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_server(tc: &TestCloud, token: &str, id: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let r = tc
            .compute(Method::GET, &format!("servers/{id}"), token, None, V)
            .await;
        if want == "DELETED" && r.status == StatusCode::NOT_FOUND {
            return Value::Null;
        }
        if r.json["server"]["status"] == want {
            return r.json["server"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server {id} never became {want}: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(tc: &TestCloud, sql: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .fetch_one(tc.cloud.db.pool())
        .await
        .expect(sql);
    n
}

async fn wait_count(tc: &TestCloud, sql: &str, want: i64) {
    let start = Instant::now();
    loop {
        let n = count(tc, sql).await;
        if n == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{sql}: {n}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_joined_hosts_run_a_cloud_on_every_backend() {
    for backend in backends() {
        three_hosts(backend).await;
    }
}

async fn three_hosts(backend: Backend) {
    let tc = TestCloud::start_controller(backend).await;
    let admin = tc.admin_token().await;
    assert!(
        hypervisors(&tc, &admin).await.is_empty(),
        "a controller runs no host of its own"
    );
    let mut hosts = Vec::new();
    for name in ["h1", "h2", "h3"] {
        let token = token_for(&tc, name).await;
        hosts.push(run_host(&tc, agent_config(name), Some(token)));
    }
    let hs = wait_hosts_up(&tc, &admin, 3).await;
    let mut names: Vec<&str> = hs
        .iter()
        .filter_map(|h| h["hypervisor_hostname"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["h1", "h2", "h3"]);

    let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "m1.small", "ram": 1024, "vcpus": 1, "disk": 5}})),
            "2.61",
        )
        .await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.json);
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = tc
            .compute(Method::POST, "servers", &admin,
                Some(json!({"server": {"name": format!("vm{i}"), "imageRef": image, "flavorRef": flavor, "networks": "none"}})), V)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
        let id = r.json["server"]["id"].as_str().unwrap().to_owned();
        wait_server(&tc, &admin, &id, "ACTIVE").await;
        ids.push(id);
    }
    let mut per_host = std::collections::BTreeMap::new();
    for id in &ids {
        let s = wait_server(&tc, &admin, id, "ACTIVE").await;
        let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
        *per_host.entry(host).or_insert(0) += 1;
        // The console log comes from the host's agent, over mutual TLS.
        let log = tc
            .compute(
                Method::POST,
                &format!("servers/{id}/action"),
                &admin,
                Some(json!({"os-getConsoleOutput": {"length": 10}})),
                V,
            )
            .await;
        assert_eq!(log.status, StatusCode::OK, "{}", log.json);
        assert_eq!(
            log.json["output"],
            format!("fake console of instance {id}\n")
        );
    }
    assert_eq!(
        per_host.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "servers spread over the hosts: {per_host:?}"
    );
    // A snapshot's disk copy is streamed from the server's host to the
    // controller over mutual TLS, and becomes an active image.
    let snap = tc
        .compute(
            Method::POST,
            &format!("servers/{}/action", ids[0]),
            &admin,
            Some(json!({"createImage": {"name": "from-a-joined-host"}})),
            "2.45",
        )
        .await;
    assert_eq!(snap.status, StatusCode::ACCEPTED, "{}", snap.json);
    let snap_id = snap.json["image_id"].as_str().unwrap().to_owned();
    let start = std::time::Instant::now();
    loop {
        let url = format!("{}/v2/images/{snap_id}", tc.cloud.image_url);
        let r = tc.send(Method::GET, &url, Some(&admin), None).await;
        if r.json["status"] == "active" {
            assert_eq!(r.json["instance_uuid"], json!(ids[0]));
            assert!(r.json["size"].as_i64().unwrap() > 0, "{}", r.json);
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the snapshot never became active: {}",
            r.json
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for h in hypervisors(&tc, &admin).await {
        assert_eq!(h["running_vms"], 2, "{h}");
    }

    // `host list` reads every host's generation in one query; each equals
    // what that host's desired state carries.
    let listed = store::host_list(&tc.cloud.db).await.unwrap();
    assert_eq!(listed.len(), 3);
    for line in &listed {
        let one = ferro_compute::service::host_generation(tc.cloud.db.pool(), &line.name)
            .await
            .unwrap();
        assert!(one > 0, "{}", line.name);
        assert_eq!(line.generation, one, "{}", line.name);
    }

    // A host that is still running servers can't be removed without --force.
    let busy = store::remove_host(&tc.cloud.db, "h1", false).await.unwrap();
    assert!(
        matches!(busy, store::Removed::Busy(ref s) if s.len() == 2),
        "{busy:?}"
    );

    // An admin puts a server on one host: `zone:host`, or `host` from 2.74.
    let boot = |body: Value, token: &str, v: &'static str| {
        let token = token.to_owned();
        let tc = &tc;
        async move {
            tc.compute(
                Method::POST,
                "servers",
                &token,
                Some(json!({"server": body})),
                v,
            )
            .await
        }
    };
    let base = json!({"imageRef": image, "flavorRef": flavor, "networks": "none"});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (name, extra, v, host) in [
        ("on-h3", json!({"availability_zone": "nova:h3"}), V, "h3"),
        ("on-h1", json!({"availability_zone": ":h1"}), V, "h1"),
        ("host-h3", json!({"host": "h3"}), "2.74", "h3"),
    ] {
        let mut e = extra.clone();
        e["name"] = json!(name);
        let r = boot(with(e), &admin, v).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{name}: {}", r.json);
        let id = r.json["server"]["id"].as_str().unwrap().to_owned();
        let s = wait_server(&tc, &admin, &id, "ACTIVE").await;
        assert_eq!(s["OS-EXT-SRV-ATTR:host"], host, "{name}");
        ids.push(id);
    }
    let (_, member) = tc.project_user(&admin, "placer", "member").await;
    for (extra, v, token, status, says) in [
        (
            json!({"availability_zone": "nova:h2"}),
            V,
            member.as_str(),
            StatusCode::FORBIDDEN,
            "requested_destination",
        ),
        (
            json!({"host": "h2"}),
            "2.74",
            member.as_str(),
            StatusCode::FORBIDDEN,
            "requested_destination",
        ),
        (
            json!({"availability_zone": "nova:h9"}),
            V,
            admin.as_str(),
            StatusCode::BAD_REQUEST,
            "Compute host h9 could not be found.",
        ),
        (
            json!({"host": "h9"}),
            "2.74",
            admin.as_str(),
            StatusCode::BAD_REQUEST,
            "Compute host h9 could not be found.",
        ),
        (
            json!({"host": "h2"}),
            "2.73",
            admin.as_str(),
            StatusCode::BAD_REQUEST,
            "'host' was unexpected",
        ),
        (
            json!({"availability_zone": "elsewhere:h2"}),
            V,
            admin.as_str(),
            StatusCode::BAD_REQUEST,
            "availability zone is not available",
        ),
    ] {
        let mut b = with(extra.clone());
        b["name"] = json!("refused");
        let r = boot(b, token, v).await;
        assert_eq!(r.status, status, "{extra}: {}", r.json);
        assert!(r.json.to_string().contains(says), "{extra}: {}", r.json);
    }
    assert_eq!(
        count(&tc, "SELECT COUNT(*) FROM servers WHERE name = 'refused'").await,
        0,
        "a refused boot leaves no server"
    );

    for id in &ids {
        let r = tc
            .compute(Method::DELETE, &format!("servers/{id}"), &admin, None, V)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
    }
    for id in &ids {
        wait_server(&tc, &admin, id, "DELETED").await;
    }
    // A deleted server's row and allocation go when its host reports it gone.
    wait_count(&tc, "SELECT COUNT(*) FROM servers", 0).await;
    wait_count(&tc, "SELECT COUNT(*) FROM allocations", 0).await;
    for h in hypervisors(&tc, &admin).await {
        assert_eq!(h["running_vms"], 0, "{h}");
    }
    for name in ["h1", "h2", "h3"] {
        wait_instances(&tc, name, &[]).await;
    }

    refusals(&tc, &hosts).await;

    for h in hosts {
        h.stop().await;
    }
    tc.stop().await;
}

/// Waits until host `name`'s hypervisor has exactly the instances `want`
/// (asked over the contract, as the controller asks it).
async fn wait_instances(tc: &TestCloud, name: &str, want: &[&str]) {
    let agent = tc.cloud.compute.agent(name).expect("a joined host's agent");
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    let start = Instant::now();
    loop {
        let have = ferro_agent_api::HostAgent::instances(agent.as_ref()).await;
        if have.as_ref().ok() == Some(&want) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "host {name} has {have:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client speaking for an enrolled host, with the files its enrolment left.
fn host_client(host: &Host) -> reqwest::Client {
    let d = host.dir.join("agent-contract");
    let read = |f: &str| std::fs::read_to_string(d.join(f)).expect(f);
    let id = pki::Identity {
        cert_pem: read("host.pem"),
        key_pem: read("host.key"),
    };
    contract::client(&read("ca.pem"), Some(&id)).expect("client")
}

async fn refusals(tc: &TestCloud, hosts: &[Host]) {
    let url = &tc.cloud.contract_url;
    let desired = format!("{url}/contract/v1/desired");

    // An enrolled host gets its desired state.
    let ok = host_client(&hosts[0]).get(&desired).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // Only a network node speaks for instances: another host can neither
    // read their metadata nor post a password for one.
    let r = host_client(&hosts[0])
        .post(format!("{url}/contract/v1/instance-password"))
        .json(&json!({"network_id": "n", "ip": "10.0.0.5", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r: Value = r.json().await.unwrap();
    assert!(
        r["error"].as_str().unwrap().contains("only a network node"),
        "{r}"
    );

    // A token is used once.
    let t = token_for(tc, "h4").await;
    let first = join::enrol(url, &t, "h4", LOOPBACK).await;
    assert!(first.is_ok(), "{:?}", first.err());
    let again = join::enrol(url, &t, "h4", LOOPBACK).await.unwrap_err();
    assert!(again.to_string().contains("already used"), "{again}");

    // A token is for one host name only.
    let t = token_for(tc, "h5").await;
    let other = join::enrol(url, &t, "h6", LOOPBACK).await.unwrap_err();
    assert!(other.to_string().contains("another host"), "{other}");

    // An expired token enrols nothing.
    let t = token_for(tc, "h7").await;
    sqlx::query("UPDATE join_tokens SET expires_at = 1 WHERE host = 'h7'")
        .execute(tc.cloud.db.pool())
        .await
        .unwrap();
    let expired = join::enrol(url, &t, "h7", LOOPBACK).await.unwrap_err();
    assert!(expired.to_string().contains("expired"), "{expired}");

    // A made-up token, and one for another cloud's CA.
    let fp = ca_fingerprint(tc);
    let made_up = join::enrol(url, &contract::format_token("guess", &fp), "h8", LOOPBACK)
        .await
        .unwrap_err();
    assert!(made_up.to_string().contains("refused"), "{made_up}");
    let (secret, _) = store::create_token(&tc.cloud.db, "h8", 600).await.unwrap();
    let foreign = join::enrol(
        url,
        &contract::format_token(&secret, &"ab".repeat(32)),
        "h8",
        LOOPBACK,
    )
    .await
    .unwrap_err();
    assert!(
        foreign.to_string().contains("CA does not match"),
        "{foreign}"
    );
    assert_eq!(
        count(
            tc,
            "SELECT COUNT(*) FROM enrolled_hosts WHERE name IN ('h5', 'h6', 'h7', 'h8')"
        )
        .await,
        0
    );

    // Without a certificate, or with one of another CA, nothing is served.
    let ca_pem = std::fs::read_to_string(hosts[0].dir.join("agent-contract/ca.pem")).unwrap();
    let anonymous = contract::client(&ca_pem, None).unwrap();
    let r = anonymous.get(&desired).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r: Value = r.json().await.unwrap();
    assert!(r["error"].as_str().unwrap().contains("certificate"), "{r}");
    let elsewhere =
        std::env::temp_dir().join(format!("ferro-ca-{}", uuid::Uuid::new_v4().simple()));
    let other_ca = pki::Ca::load_or_create(&elsewhere).unwrap();
    let (key, csr) = pki::host_key_and_csr("h1").unwrap();
    let forged = pki::Identity {
        cert_pem: other_ca.sign_host("h1", &csr, LOOPBACK).unwrap(),
        key_pem: key.serialize_pem(),
    };
    let _ = std::fs::remove_dir_all(&elsewhere);
    let r = contract::client(&ca_pem, Some(&forged))
        .unwrap()
        .get(&desired)
        .send()
        .await;
    match r {
        Err(_) => {} // the handshake itself fails
        Ok(r) => assert_eq!(r.status(), StatusCode::UNAUTHORIZED),
    }

    // A removed host's certificate is refused from then on — at most a few
    // seconds later, as the controller trusts an enrolment it read for 5 s
    // (`ferrostack host remove` may run in another process).
    assert_eq!(
        store::remove_host(&tc.cloud.db, "h3", false).await.unwrap(),
        store::Removed::Done
    );
    let removed_at = std::time::Instant::now();
    loop {
        let r = host_client(&hosts[2]).get(&desired).send().await.unwrap();
        if r.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            removed_at.elapsed() < std::time::Duration::from_secs(10),
            "a removed host is still served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let r = host_client(&hosts[2])
        .post(format!("{url}/contract/v1/heartbeat"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_controller_on_an_older_backup_never_removes_guests() {
    for backend in backends() {
        restored_backup(backend).await;
    }
}

async fn boot_one(tc: &TestCloud, admin: &str, name: &str, image: &str, flavor: &str) -> Value {
    let r = tc
        .compute(Method::POST, "servers", admin,
            Some(json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}})), V)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    r.json["server"].clone()
}

async fn service_of(tc: &TestCloud, admin: &str, host: &str) -> Value {
    let r = tc
        .compute(
            Method::GET,
            &format!("os-services?host={host}"),
            admin,
            None,
            "2.53",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["services"][0].clone()
}

async fn restored_backup(backend: Backend) {
    let tc = TestCloud::start_controller(backend).await;
    let admin = tc.admin_token().await;
    let cfg = agent_config("h1");
    let host_cfg = cfg.clone();
    let token = token_for(&tc, "h1").await;
    let host = run_host(&tc, cfg, Some(token));
    wait_hosts_up(&tc, &admin, 1).await;
    let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "m1.small", "ram": 1024, "vcpus": 1, "disk": 5}})),
            "2.61",
        )
        .await;
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    let old = boot_one(&tc, &admin, "old", &image, &flavor).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_server(&tc, &admin, &old, "ACTIVE").await;

    // A backup now; then a server the backup doesn't know.
    let (tc, backup) = tc.restart_with_backup().await;
    let admin = tc.admin_token().await;
    wait_hosts_up(&tc, &admin, 1).await;
    let new = boot_one(&tc, &admin, "new", &image, &flavor).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_server(&tc, &admin, &new, "ACTIVE").await;
    wait_instances(&tc, "h1", &[&old, &new]).await;

    // The controller comes back on the backup: the host refuses its older
    // state and keeps both guests, and the controller marks it out of sync.
    let tc = tc.restart_from(&backup).await;
    let admin = tc.admin_token().await;
    let start = Instant::now();
    let svc = loop {
        let svc = service_of(&tc, &admin, "h1").await;
        if svc["status"] == "disabled" {
            break svc;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "h1 never went out of sync: {svc}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let reason = svc["disabled_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("out of sync"), "{svc}");
    assert!(reason.contains("ferrostack host resync h1"), "{svc}");
    assert_eq!(svc["state"], "up", "{svc}");
    // Several passes of the agent later, both guests are still there.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        wait_instances(&tc, "h1", &[&old, &new]).await;
    }
    // An out-of-sync host takes no new servers.
    let third = boot_one(&tc, &admin, "third", &image, &flavor).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = wait_server(&tc, &admin, &third, "ERROR").await;
    assert!(
        failed["fault"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("No valid host"),
        "{failed}"
    );
    let r = tc
        .compute(Method::DELETE, &format!("servers/{third}"), &admin, None, V)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    wait_server(&tc, &admin, &third, "DELETED").await;

    // The operator takes the database as the truth: the host converges to
    // it (the guest it doesn't know goes) and takes servers again.
    let done = ferro_compute::service::resync(tc.cloud.db.pool(), "h1")
        .await
        .unwrap();
    assert!(
        matches!(done, ferro_compute::service::Resync::Done { from, to } if to > from),
        "{done:?}"
    );
    wait_instances(&tc, "h1", &[&old]).await;
    let svc = service_of(&tc, &admin, "h1").await;
    assert_eq!(svc["status"], "enabled", "{svc}");
    assert_eq!(svc["disabled_reason"], Value::Null, "{svc}");
    assert_eq!(
        ferro_compute::service::resync(tc.cloud.db.pool(), "h1")
            .await
            .unwrap(),
        ferro_compute::service::Resync::InSync
    );
    let again = boot_one(&tc, &admin, "again", &image, &flavor).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_server(&tc, &admin, &again, "ACTIVE").await;
    let applied = std::fs::read_to_string(host_cfg.state_dir.join("agent/generation")).unwrap();
    assert!(applied.trim().parse::<i64>().unwrap() > 0, "{applied}");

    host.stop().await;
    tc.stop().await;
}

#[tokio::test]
async fn evacuate_rebuilds_a_down_hosts_server_elsewhere() {
    for backend in backends() {
        evacuation(backend).await;
    }
}

async fn put_service(tc: &TestCloud, admin: &str, host: &str, body: Value) -> Value {
    let id = service_of(tc, admin, host).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = tc
        .compute(
            Method::PUT,
            &format!("os-services/{id}"),
            admin,
            Some(body),
            "2.53",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["service"].clone()
}

async fn evacuation(backend: Backend) {
    let tc = TestCloud::start_controller(backend).await;
    let admin = tc.admin_token().await;
    let h1_cfg = agent_config("h1");
    let h1 = run_host(&tc, h1_cfg.clone(), Some(token_for(&tc, "h1").await));
    let h2 = run_host(&tc, agent_config("h2"), Some(token_for(&tc, "h2").await));
    wait_hosts_up(&tc, &admin, 2).await;
    let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "m1.small", "ram": 1024, "vcpus": 1, "disk": 5}})),
            "2.61",
        )
        .await;
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    // With h2 disabled the server lands on h1.
    put_service(&tc, &admin, "h2", json!({"status": "disabled"})).await;
    let id = boot_one(&tc, &admin, "evac", &image, &flavor).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let srv = wait_server(&tc, &admin, &id, "ACTIVE").await;
    assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "h1");
    put_service(&tc, &admin, "h2", json!({"status": "enabled"})).await;
    let action = format!("servers/{id}/action");

    // While h1 is up, Nova's 409.
    let r = tc
        .compute(
            Method::POST,
            &action,
            &admin,
            Some(json!({"evacuate": {}})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.json);
    assert!(
        r.json["conflictingRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("still in use"),
        "{}",
        r.json
    );

    // h1's agent stops and the host is forced down: evacuate to h2.
    h1.stop.send(true).unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), h1.task).await;
    let down = put_service(&tc, &admin, "h1", json!({"forced_down": true})).await;
    assert_eq!(down["state"], "down");
    for (body, status) in [
        (json!({"evacuate": {"host": "h1"}}), StatusCode::BAD_REQUEST),
        (
            json!({"evacuate": {"host": "nowhere"}}),
            StatusCode::NOT_FOUND,
        ),
        (
            json!({"evacuate": {"colour": "red"}}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = tc
            .compute(Method::POST, &action, &admin, Some(body.clone()), V)
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.json);
    }
    let (_, member) = tc.project_user(&admin, "p1", "member").await;
    let r = tc
        .compute(
            Method::POST,
            &action,
            &member,
            Some(json!({"evacuate": {}})),
            V,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another project's server: {}",
        r.json
    );
    let r = tc
        .compute(
            Method::POST,
            &action,
            &admin,
            Some(json!({"evacuate": {"host": "h2"}})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json, Value::Null, "no body from 2.14");
    let start = Instant::now();
    loop {
        let s = wait_server(&tc, &admin, &id, "ACTIVE").await;
        if s["OS-EXT-SRV-ATTR:host"] == "h2" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never rebuilt on h2: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_instances(&tc, "h2", &[&id]).await;
    wait_count(
        &tc,
        &format!("SELECT COUNT(*) FROM allocations WHERE consumer_id = '{id}' AND host = 'h2'"),
        1,
    )
    .await;
    wait_count(&tc, "SELECT COUNT(*) FROM allocations", 1).await;

    // h1 comes back (without a token: it is enrolled) and is up again.
    // (The fake driver forgets its guests with its process; that the old
    // host removes its stale copy is checked with QEMU, tests/cli/multihost.sh.)
    let h1 = run_host(&tc, h1_cfg, None);
    put_service(&tc, &admin, "h1", json!({"forced_down": false})).await;
    wait_hosts_up(&tc, &admin, 2).await;
    wait_instances(&tc, "h2", &[&id]).await;
    h1.stop().await;
    h2.stop().await;
    tc.stop().await;
}

#[tokio::test]
async fn cold_migration_moves_a_server_and_confirm_or_revert_settles_it() {
    for backend in backends() {
        cold_migration(backend).await;
    }
}

async fn migrations_of(tc: &TestCloud, admin: &str, id: &str) -> Vec<Value> {
    let r = tc
        .compute(
            Method::GET,
            &format!("os-migrations?instance_uuid={id}"),
            admin,
            None,
            "2.59",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    r.json["migrations"].as_array().cloned().unwrap_or_default()
}

async fn action(
    tc: &TestCloud,
    token: &str,
    id: &str,
    body: Value,
    v: &str,
) -> reqwest::StatusCode {
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{id}/action"),
            token,
            Some(body),
            v,
        )
        .await;
    r.status
}

async fn allocations_of(tc: &TestCloud, id: &str) -> Vec<(String, String)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT consumer_id, host FROM allocations WHERE consumer_id LIKE $1 ORDER BY consumer_id",
    )
    .bind(format!("{id}%"))
    .fetch_all(tc.cloud.db.pool())
    .await
    .unwrap();
    rows
}

async fn cold_migration(backend: Backend) {
    let tc = TestCloud::start_controller(backend).await;
    let admin = tc.admin_token().await;
    let h1 = run_host(&tc, agent_config("h1"), Some(token_for(&tc, "h1").await));
    let h2 = run_host(&tc, agent_config("h2"), Some(token_for(&tc, "h2").await));
    wait_hosts_up(&tc, &admin, 2).await;
    let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
    let mut flavors = Vec::new();
    for (name, ram) in [("m1.small", 4096), ("m1.big", 9000)] {
        let f = tc
            .compute(
                Method::POST,
                "flavors",
                &admin,
                Some(json!({"flavor": {"name": name, "ram": ram, "vcpus": 1, "disk": 5}})),
                "2.61",
            )
            .await;
        assert_eq!(f.status, StatusCode::OK, "{}", f.json);
        flavors.push(f.json["flavor"]["id"].as_str().unwrap().to_owned());
    }
    let net = tc
        .network(
            Method::POST,
            "networks",
            &admin,
            Some(json!({"network": {"name": "n"}})),
        )
        .await;
    let net_id = net.json["network"]["id"].as_str().unwrap().to_owned();
    let sub = tc
        .network(
            Method::POST,
            "subnets",
            &admin,
            Some(json!({"subnet": {"network_id": net_id, "cidr": "10.1.0.0/24", "ip_version": 4}})),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.json);
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(
                json!({"server": {"name": "mover", "imageRef": image, "flavorRef": flavors[0],
                "networks": [{"uuid": net_id}], "availability_zone": "nova:h1"}}),
            ),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let id = r.json["server"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_server(&tc, &admin, &id, "ACTIVE").await["OS-EXT-SRV-ATTR:host"],
        "h1"
    );
    let binding = |tc: &TestCloud| {
        let id = id.clone();
        let pool = tc.cloud.db.pool().clone();
        async move {
            let (h,): (String,) =
                sqlx::query_as("SELECT binding_host FROM ports WHERE device_id = $1")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            h
        }
    };
    assert_eq!(binding(&tc).await, "h1");

    // Refusals: Nova's statuses, nothing taken.
    let (_, member) = tc.project_user(&admin, "mover-p", "member").await;
    for (token, body, v, want) in [
        // Another project's member doesn't see the server at all.
        (
            member.as_str(),
            json!({"migrate": null}),
            V,
            StatusCode::NOT_FOUND,
        ),
        (
            admin.as_str(),
            json!({"migrate": {"host": "h1"}}),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            admin.as_str(),
            json!({"migrate": {"host": "h9"}}),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            admin.as_str(),
            json!({"migrate": {"host": "h2"}}),
            "2.55",
            StatusCode::BAD_REQUEST,
        ),
        (
            admin.as_str(),
            json!({"migrate": {"host": "h2", "x": 1}}),
            V,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            action(&tc, token, &id, body.clone(), v).await,
            want,
            "{body} at {v}"
        );
    }
    assert!(migrations_of(&tc, &admin, &id).await.is_empty());
    // A member may not move even its own server (admin only, as in Nova).
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &member,
            Some(json!({"server": {"name": "own", "imageRef": image, "flavorRef": flavors[0], "networks": "none"}})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
    let own = r.json["server"]["id"].as_str().unwrap().to_owned();
    wait_server(&tc, &member, &own, "ACTIVE").await;
    assert_eq!(
        action(&tc, &member, &own, json!({"migrate": null}), V).await,
        StatusCode::FORBIDDEN
    );
    let r = tc
        .compute(Method::DELETE, &format!("servers/{own}"), &member, None, V)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    wait_server(&tc, &admin, &own, "DELETED").await;

    // Migrate to h2: the disk is copied off h1 over the contract, the
    // server waits in VERIFY_RESIZE on h2, its port follows; h1 keeps its
    // stopped copy until confirm.
    assert_eq!(
        action(&tc, &admin, &id, json!({"migrate": {"host": "h2"}}), V).await,
        StatusCode::ACCEPTED
    );
    let srv = wait_server(&tc, &admin, &id, "VERIFY_RESIZE").await;
    assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "h2");
    assert_eq!(binding(&tc).await, "h2");
    assert_eq!(
        action(&tc, &admin, &id, json!({"migrate": null}), V).await,
        StatusCode::CONFLICT,
        "a second migrate while one waits for confirm"
    );
    assert_eq!(
        action(&tc, &admin, &id, json!({"migrate": {}}), V).await,
        StatusCode::CONFLICT,
        "an empty object is no arguments, as null is"
    );
    wait_instances(&tc, "h2", &[&id]).await;
    wait_instances(&tc, "h1", &[&id]).await;
    let m = migrations_of(&tc, &admin, &id).await;
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(
        (
            &m[0]["source_compute"],
            &m[0]["dest_compute"],
            &m[0]["status"],
            &m[0]["migration_type"]
        ),
        (
            &json!("h1"),
            &json!("h2"),
            &json!("finished"),
            &json!("migration")
        ),
        "{}",
        m[0]
    );
    assert!(m[0]["uuid"].is_string());
    assert_eq!(
        allocations_of(&tc, &id).await,
        [
            (id.clone(), "h1".to_owned()),
            (format!("{id}-resize"), "h2".to_owned())
        ]
    );
    assert_eq!(
        action(&tc, &admin, &id, json!({"confirmResize": null}), V).await,
        StatusCode::NO_CONTENT
    );
    wait_server(&tc, &admin, &id, "ACTIVE").await;
    wait_instances(&tc, "h1", &[]).await;
    assert_eq!(
        allocations_of(&tc, &id).await,
        [(id.clone(), "h2".to_owned())]
    );
    assert_eq!(
        migrations_of(&tc, &admin, &id).await[0]["status"],
        "confirmed"
    );

    // Back to h1 by the scheduler's pick, then reverted: it stays on h2.
    assert_eq!(
        action(&tc, &admin, &id, json!({"migrate": null}), V).await,
        StatusCode::ACCEPTED
    );
    let srv = wait_server(&tc, &admin, &id, "VERIFY_RESIZE").await;
    assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "h1");
    assert_eq!(binding(&tc).await, "h1");
    assert_eq!(
        action(&tc, &admin, &id, json!({"revertResize": null}), V).await,
        StatusCode::ACCEPTED
    );
    let srv = wait_server(&tc, &admin, &id, "ACTIVE").await;
    assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "h2");
    assert_eq!(binding(&tc).await, "h2");
    wait_instances(&tc, "h1", &[]).await;
    wait_instances(&tc, "h2", &[&id]).await;
    assert_eq!(
        allocations_of(&tc, &id).await,
        [(id.clone(), "h2".to_owned())]
    );
    let m = migrations_of(&tc, &admin, &id).await;
    assert_eq!((m.len(), &m[0]["status"]), (2, &json!("reverted")), "{m:?}");

    // A resize h2 has no room for (4096 + 9000 MB > 8192 × 1.5) moves it.
    assert_eq!(
        action(
            &tc,
            &admin,
            &id,
            json!({"resize": {"flavorRef": flavors[1]}}),
            V
        )
        .await,
        StatusCode::ACCEPTED
    );
    let srv = wait_server(&tc, &admin, &id, "VERIFY_RESIZE").await;
    assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "h1");
    assert_eq!(srv["flavor"]["original_name"], "m1.big");
    assert_eq!(
        migrations_of(&tc, &admin, &id).await[0]["migration_type"],
        "resize"
    );
    assert_eq!(
        action(&tc, &admin, &id, json!({"confirmResize": null}), V).await,
        StatusCode::NO_CONTENT
    );
    wait_server(&tc, &admin, &id, "ACTIVE").await;
    wait_instances(&tc, "h2", &[]).await;
    assert_eq!(
        allocations_of(&tc, &id).await,
        [(id.clone(), "h1".to_owned())]
    );

    let r = tc
        .compute(Method::DELETE, &format!("servers/{id}"), &admin, None, V)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    wait_server(&tc, &admin, &id, "DELETED").await;
    wait_instances(&tc, "h1", &[]).await;
    wait_count(&tc, "SELECT COUNT(*) FROM allocations", 0).await;
    assert!(
        !tc.cloud.compute.migration_copy(&id).exists(),
        "the controller's disk copies are gone"
    );
    h1.stop().await;
    h2.stop().await;
    tc.stop().await;
}

#[tokio::test]
async fn live_migration_moves_a_running_server_and_its_ports() {
    for backend in backends() {
        live_migration(backend).await;
    }
}

async fn live_migration(backend: Backend) {
    let tc = TestCloud::start_controller(backend).await;
    let admin = tc.admin_token().await;
    let h1 = run_host(&tc, agent_config("h1"), Some(token_for(&tc, "h1").await));
    let h2 = run_host(&tc, agent_config("h2"), Some(token_for(&tc, "h2").await));
    wait_hosts_up(&tc, &admin, 2).await;
    let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
    let f = tc
        .compute(
            Method::POST,
            "flavors",
            &admin,
            Some(json!({"flavor": {"name": "m1.small", "ram": 1024, "vcpus": 1, "disk": 5}})),
            "2.61",
        )
        .await;
    let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
    let net = tc
        .network(
            Method::POST,
            "networks",
            &admin,
            Some(json!({"network": {"name": "n"}})),
        )
        .await;
    let net_id = net.json["network"]["id"].as_str().unwrap().to_owned();
    let sub = tc
        .network(
            Method::POST,
            "subnets",
            &admin,
            Some(json!({"subnet": {"network_id": net_id, "cidr": "10.2.0.0/24", "ip_version": 4}})),
        )
        .await;
    assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.json);
    let r = tc
        .compute(
            Method::POST,
            "servers",
            &admin,
            Some(
                json!({"server": {"name": "runner", "imageRef": image, "flavorRef": flavor,
                "networks": [{"uuid": net_id}], "availability_zone": "nova:h1"}}),
            ),
            V,
        )
        .await;
    let id = r.json["server"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_server(&tc, &admin, &id, "ACTIVE").await["OS-EXT-SRV-ATTR:host"],
        "h1"
    );
    let live = |host: Value| json!({"os-migrateLive": {"host": host, "block_migration": "auto"}});
    for (body, v, want) in [
        (live(json!("h1")), V, StatusCode::BAD_REQUEST),
        (live(json!("h9")), V, StatusCode::BAD_REQUEST),
        (
            json!({"os-migrateLive": {"block_migration": "auto"}}),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"os-migrateLive": {"host": null, "block_migration": "yes"}}),
            V,
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"os-migrateLive": {"host": null, "block_migration": false, "disk_over_commit": false}}),
            V,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            action(&tc, &admin, &id, body.clone(), v).await,
            want,
            "{body}"
        );
    }
    assert!(migrations_of(&tc, &admin, &id).await.is_empty());

    assert_eq!(
        action(&tc, &admin, &id, live(json!("h2")), V).await,
        StatusCode::ACCEPTED
    );
    let start = Instant::now();
    loop {
        let s = wait_server(&tc, &admin, &id, "ACTIVE").await;
        if s["OS-EXT-SRV-ATTR:host"] == "h2" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = migrations_of(&tc, &admin, &id).await;
    assert_eq!(
        (
            &m[0]["migration_type"],
            &m[0]["status"],
            &m[0]["dest_compute"]
        ),
        (&json!("live-migration"), &json!("completed"), &json!("h2")),
        "{m:?}"
    );
    let port = tc
        .network(Method::GET, &format!("ports?device_id={id}"), &admin, None)
        .await;
    assert_eq!(
        port.json["ports"][0]["binding:host_id"], "h2",
        "{}",
        port.json
    );
    assert_eq!(
        port.json["ports"][0]["binding:profile"],
        json!({}),
        "{}",
        port.json
    );
    wait_instances(&tc, "h1", &[]).await;
    wait_instances(&tc, "h2", &[&id]).await;
    assert_eq!(
        allocations_of(&tc, &id).await,
        [(id.clone(), "h2".to_owned())]
    );
    let r = tc
        .compute(
            Method::GET,
            &format!("servers/{id}/migrations"),
            &admin,
            None,
            V,
        )
        .await;
    assert_eq!(
        r.json["migrations"],
        json!([]),
        "none in progress: {}",
        r.json
    );

    // A stopped server is not live-migrated (Nova's 409).
    let r = tc
        .compute(
            Method::POST,
            &format!("servers/{id}/action"),
            &admin,
            Some(json!({"os-stop": null})),
            V,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    wait_server(&tc, &admin, &id, "SHUTOFF").await;
    assert_eq!(
        action(&tc, &admin, &id, live(Value::Null), V).await,
        StatusCode::CONFLICT
    );
    let r = tc
        .compute(Method::DELETE, &format!("servers/{id}"), &admin, None, V)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    wait_server(&tc, &admin, &id, "DELETED").await;
    wait_count(&tc, "SELECT COUNT(*) FROM allocations", 0).await;
    h1.stop().await;
    h2.stop().await;
    tc.stop().await;
}
