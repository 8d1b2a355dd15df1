//! Crash safety of compute's sagas, tested by killing the process.
//!
//! For every failpoint of `ferro_compute::saga::FAILPOINTS`, a real
//! `ferrostack up` process (fake hypervisor and dataplane, its own state
//! directory, ports picked free) is armed with that failpoint and driven
//! into it: it aborts there, as a power cut would. It is then started again
//! on the same state, unarmed, and must finish the operation on its own: a
//! create ends ACTIVE with its two ports, a resize in VERIFY_RESIZE with
//! its reservation, a delete with the server and its ports gone; no saga
//! stays open, and the leak checker (the garbage collector's own query)
//! finds no port, address or allocation that belongs to nothing. Runs on SQLite, and on PostgreSQL when the test
//! command provides a server.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferro_compute::saga::FAILPOINTS;
use ferro_test_support::{backends, fresh_database, tiny_qcow2, Backend};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// One `ferrostack up` process and what a client needs to talk to it.
struct Proc {
    child: Child,
    http: reqwest::Client,
    token: String,
    compute: String,
    network: String,
    image: String,
    volume: String,
}

/// A test that fails midway must not leave its `ferrostack up` running.
impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The port joined hosts reach this cloud's contract on: picked once per
/// state directory (below Linux's ephemeral range, where no port-0
/// listener lands), so a joined agent finds the restarted process again.
fn contract_port(dir: &Path) -> u16 {
    let file = dir.join("contract-port");
    if let Some(p) = std::fs::read_to_string(&file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
    {
        return p;
    }
    let p = 20000 + (rand_u16() % 12000);
    let _ = std::fs::write(&file, p.to_string());
    p
}

fn rand_u16() -> u16 {
    let b = uuid::Uuid::new_v4();
    u16::from_le_bytes([b.as_bytes()[0], b.as_bytes()[1]])
}

fn spawn(dir: &Path, database_url: Option<&str>, failpoint: Option<&str>) -> Child {
    let _ = std::fs::remove_file(dir.join("openrc"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferrostack"));
    cmd.arg("up")
        .arg("--state-dir")
        .arg(dir)
        .args(["--hypervisor", "fake", "--host-name", "fake-host"])
        .args(["--ephemeral-ports", "--bcrypt-cost", "4"])
        .args(["--contract-port", &contract_port(dir).to_string()])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        );
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    match failpoint {
        Some(f) => cmd.env("FERRO_FAILPOINTS", f),
        None => cmd.env_remove("FERRO_FAILPOINTS"),
    };
    cmd.spawn().expect("starting ferrostack up")
}

async fn start(dir: &Path, database_url: Option<&str>, failpoint: Option<&str>) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let mut child = spawn(dir, database_url, failpoint);
    let started = Instant::now();
    let auth_url = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("openrc")) {
            if let Some(l) = text.lines().find(|l| l.starts_with("export OS_AUTH_URL=")) {
                break l
                    .trim_start_matches("export OS_AUTH_URL=")
                    .trim_matches('\'')
                    .to_owned();
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ferrostack up exited at start: {status}; log: {}", log(dir));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no openrc; log: {}",
            log(dir)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let password = std::fs::read_to_string(dir.join("admin-password")).unwrap();
    let http = reqwest::Client::new();
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "admin_domain"}, "password": password.trim()}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "admin_domain"}}}}});
    let r = http
        .post(format!("{auth_url}/auth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = r.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let catalog: Value = r.json().await.unwrap();
    let url = |kind: &str| -> String {
        catalog["token"]["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == kind)
            .and_then(|s| {
                s["endpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["interface"] == "public")
            })
            .and_then(|e| e["url"].as_str())
            .unwrap_or_else(|| panic!("no {kind} endpoint"))
            .trim_end_matches('/')
            .to_owned()
    };
    Proc {
        compute: url("compute"),
        network: url("network"),
        image: url("image"),
        volume: url("block-storage"),
        child,
        http,
        token,
    }
}

fn log(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

impl Proc {
    async fn call(&self, method: Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, url)
            .header("x-auth-token", &self.token)
            .header("openstack-api-version", "compute 2.79")
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            // The process died while answering (the failpoint).
            Err(_) => (StatusCode::BAD_GATEWAY, Value::Null),
        }
    }

    /// A flavor, an image, and two networks with a subnet each.
    async fn setup(&self) -> (String, String, [String; 2]) {
        let (st, f) = self
            .call(
                Method::POST,
                &format!("{}/flavors", self.compute),
                Some(json!({"flavor": {"name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{f}");
        let (st, big) = self
            .call(
                Method::POST,
                &format!("{}/flavors", self.compute),
                Some(json!({"flavor": {"name": "m1.small", "ram": 1024, "vcpus": 1, "disk": 2, "id": "small"}})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{big}");
        let (st, img) = self
            .call(
                Method::POST,
                &format!("{}/v2/images", self.image),
                Some(json!({"name": "tiny", "disk_format": "qcow2", "container_format": "bare"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{img}");
        let image = img["id"].as_str().unwrap().to_owned();
        let r = self
            .http
            .put(format!("{}/v2/images/{image}/file", self.image))
            .header("x-auth-token", &self.token)
            .header("content-type", "application/octet-stream")
            .body(tiny_qcow2())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let mut nets = Vec::new();
        for (i, cidr) in ["10.10.0.0/24", "10.20.0.0/24"].iter().enumerate() {
            let (st, n) = self
                .call(
                    Method::POST,
                    &format!("{}/v2.0/networks", self.network),
                    Some(json!({"network": {"name": format!("net{i}")}})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{n}");
            let net = n["network"]["id"].as_str().unwrap().to_owned();
            let (st, s) = self
                .call(
                    Method::POST,
                    &format!("{}/v2.0/subnets", self.network),
                    Some(json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}})),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{s}");
            nets.push(net);
        }
        (
            f["flavor"]["id"].as_str().unwrap().to_owned(),
            image,
            [nets[0].clone(), nets[1].clone()],
        )
    }

    async fn server(&self, id: &str) -> (StatusCode, Value) {
        self.call(Method::GET, &format!("{}/servers/{id}", self.compute), None)
            .await
    }

    /// A 1 GiB volume, once it is available.
    async fn volume(&self, dir: &Path) -> String {
        let (st, v) = self
            .call(
                Method::POST,
                &format!("{}/volumes", self.volume),
                Some(json!({"volume": {"size": 1, "name": "v"}})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{v}");
        let id = v["volume"]["id"].as_str().unwrap().to_owned();
        self.wait_volume(&id, "available", dir).await;
        id
    }

    async fn wait_volume(&self, id: &str, want: &str, dir: &Path) {
        let start = Instant::now();
        loop {
            let (_, v) = self
                .call(Method::GET, &format!("{}/volumes/{id}", self.volume), None)
                .await;
            if v["volume"]["status"] == want {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "volume {id} never {want}: {v}; log: {}",
                log(dir)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn attachments(&self, server: &str) -> Vec<Value> {
        let (st, a) = self
            .call(
                Method::GET,
                &format!("{}/servers/{server}/os-volume_attachments", self.compute),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{a}");
        a["volumeAttachments"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn wait_for(&self, id: &str, want: &str, dir: &Path) {
        let start = Instant::now();
        loop {
            let (st, s) = self.server(id).await;
            let now = match st {
                StatusCode::NOT_FOUND => "GONE".to_owned(),
                _ => s["server"]["status"].as_str().unwrap_or("?").to_owned(),
            };
            if now == want {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "server {id} is {now}, never {want}: {s}; log: {}",
                log(dir)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for the armed process to die at its failpoint.
    async fn wait_aborted(&mut self, failpoint: &str, dir: &Path) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert_eq!(
                    status.signal(),
                    Some(6),
                    "ferrostack should have aborted at {failpoint}, it ended with {status}; log: {}",
                    log(dir)
                );
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "failpoint {failpoint} was never reached; log: {}",
                log(dir)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn open_db(dir: &Path, database_url: Option<&str>) -> ferro_store::Db {
    match database_url {
        Some(url) => ferro_store::Db::connect(url).await.unwrap(),
        None => ferro_store::Db::open_sqlite(&dir.join("ferrostack.db"))
            .await
            .unwrap(),
    }
}

async fn count(db: &ferro_store::Db, sql: &str, arg: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(arg)
        .fetch_one(db.pool())
        .await
        .unwrap();
    n
}

/// Waits until no saga is open (the restarted process finished them).
async fn wait_sagas_done(db: &ferro_store::Db, dir: &Path) {
    let start = Instant::now();
    loop {
        let open: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT kind, step, last_error FROM sagas")
                .fetch_all(db.pool())
                .await
                .unwrap();
        if open.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "sagas still open: {open:?}; log: {}",
            log(dir)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn crash_at(backend: Backend, failpoint: &str) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("ferro-saga-{}", uuid::Uuid::new_v4().simple()));
    let database_url = fresh_database(backend).await;
    let url = database_url.as_deref();
    let mut p = start(&dir, url, Some(failpoint)).await;
    let (flavor, image, [net_a, net_b]) = p.setup().await;
    let mut boot = json!({"server": {"name": "crash", "imageRef": image, "flavorRef": flavor,
        "networks": [{"uuid": net_a}, {"uuid": net_b}]}});
    // Booted from a volume made from the image.
    let from_volume = failpoint == "server-create.volume-attached";
    if from_volume {
        boot["server"]["imageRef"] = json!("");
        boot["server"]["block_device_mapping_v2"] = json!([{"boot_index": 0, "uuid": image,
            "source_type": "image", "destination_type": "volume", "volume_size": 1,
            "delete_on_termination": true}]);
    }
    let creating = failpoint.starts_with("server-create.");
    let (st, created) = p
        .call(Method::POST, &format!("{}/servers", p.compute), Some(boot))
        .await;
    let resizing = failpoint.starts_with("server-resize.");
    if failpoint.starts_with("server-snapshot.") || failpoint.starts_with("server-shelve.") {
        assert_eq!(st, StatusCode::ACCEPTED, "{created}");
        let id = created["server"]["id"].as_str().unwrap().to_owned();
        p.wait_for(&id, "ACTIVE", &dir).await;
        return crash_in_snapshot_saga(p, &dir, url, failpoint, &id).await;
    }
    if failpoint.starts_with("server-migrate.") || failpoint.starts_with("server-live-migrate.") {
        assert_eq!(st, StatusCode::ACCEPTED, "{created}");
        let id = created["server"]["id"].as_str().unwrap().to_owned();
        p.wait_for(&id, "ACTIVE", &dir).await;
        return crash_in_migrate_saga(p, &dir, url, failpoint, &id).await;
    }
    if failpoint.starts_with("volume-") {
        assert_eq!(st, StatusCode::ACCEPTED, "{created}");
        let id = created["server"]["id"].as_str().unwrap().to_owned();
        p.wait_for(&id, "ACTIVE", &dir).await;
        return crash_in_volume_saga(p, &dir, url, failpoint, &id).await;
    }
    let id = if creating {
        // Died during the request (no answer) or after it (202).
        assert!(
            st == StatusCode::ACCEPTED || st == StatusCode::BAD_GATEWAY,
            "{st} {created}"
        );
        p.wait_aborted(failpoint, &dir).await;
        None
    } else {
        assert_eq!(st, StatusCode::ACCEPTED, "{created}");
        let id = created["server"]["id"].as_str().unwrap().to_owned();
        p.wait_for(&id, "ACTIVE", &dir).await;
        let (st, _) = if resizing {
            p.call(
                Method::POST,
                &format!("{}/servers/{id}/action", p.compute),
                Some(json!({"resize": {"flavorRef": "small"}})),
            )
            .await
        } else {
            p.call(Method::DELETE, &format!("{}/servers/{id}", p.compute), None)
                .await
        };
        assert!(
            matches!(
                st,
                StatusCode::NO_CONTENT | StatusCode::ACCEPTED | StatusCode::BAD_GATEWAY
            ),
            "{st}"
        );
        p.wait_aborted(failpoint, &dir).await;
        Some(id)
    };

    // Start again, unarmed: it must finish what the dead process began.
    let p = start(&dir, url, None).await;
    let db = open_db(&dir, url).await;
    let id = match id {
        Some(id) => id,
        None => {
            let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM servers")
                .fetch_all(db.pool())
                .await
                .unwrap();
            assert_eq!(ids.len(), 1, "the accepted create has one server row");
            ids[0].0.clone()
        }
    };
    let want = match (creating, resizing) {
        (true, _) => "ACTIVE",
        (_, true) => "VERIFY_RESIZE",
        _ => "GONE",
    };
    p.wait_for(&id, want, &dir).await;
    wait_sagas_done(&db, &dir).await;
    let ports = count(&db, "SELECT COUNT(*) FROM ports WHERE device_id = $1", &id).await;
    assert_eq!(
        ports,
        if creating || resizing { 2 } else { 0 },
        "ports of server {id} after a crash at {failpoint}"
    );
    if resizing {
        let reserved = count(
            &db,
            "SELECT COUNT(*) FROM allocations WHERE consumer_id = $1",
            &format!("{id}-resize"),
        )
        .await;
        assert_eq!(reserved, 1, "one reservation for the new flavor");
    }
    if creating || resizing {
        let claims = count(
            &db,
            "SELECT COUNT(*) FROM allocations WHERE consumer_id = $1",
            &id,
        )
        .await;
        assert_eq!(claims, 1, "one claim for the server");
    }
    if from_volume {
        let attached = count(
            &db,
            "SELECT COUNT(*) FROM block_device_mappings WHERE server_id = $1 AND state = 'attached' AND device = '/dev/vda'",
            &id,
        )
        .await;
        assert_eq!(attached, 1, "the boot volume is attached");
        let in_use = count(
            &db,
            "SELECT COUNT(*) FROM volumes WHERE status = 'in-use' AND id IN (SELECT volume_id FROM block_device_mappings WHERE server_id = $1)",
            &id,
        )
        .await;
        assert_eq!(in_use, 1, "the boot volume is in use");
    }
    let leaks = ferro_compute::gc::leaks(db.pool()).await.unwrap();
    assert!(leaks.is_empty(), "after a crash at {failpoint}: {leaks:?}");
    db.close().await;
    p.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Attach (and, for a detach failpoint, detach) a volume with the process
/// armed; after the restart the saga has finished: attached, or detached.
async fn crash_in_volume_saga(
    mut p: Proc,
    dir: &Path,
    url: Option<&str>,
    failpoint: &str,
    server: &str,
) {
    let vol = p.volume(dir).await;
    let attach = json!({"volumeAttachment": {"volumeId": vol}});
    let path = format!("{}/servers/{server}/os-volume_attachments", p.compute);
    let (st, a) = p.call(Method::POST, &path, Some(attach)).await;
    let detaching = failpoint.starts_with("volume-detach.");
    if detaching {
        assert_eq!(st, StatusCode::OK, "{a}");
        assert_eq!(a["volumeAttachment"]["device"], "/dev/vdb", "{a}");
        p.wait_volume(&vol, "in-use", dir).await;
        let (st, _) = p.call(Method::DELETE, &format!("{path}/{vol}"), None).await;
        assert!(
            matches!(st, StatusCode::ACCEPTED | StatusCode::BAD_GATEWAY),
            "{st}"
        );
    } else {
        assert!(
            matches!(st, StatusCode::OK | StatusCode::BAD_GATEWAY),
            "{st} {a}"
        );
    }
    p.wait_aborted(failpoint, dir).await;

    let p = start(dir, url, None).await;
    let db = open_db(dir, url).await;
    wait_sagas_done(&db, dir).await;
    let listed = p.attachments(server).await;
    if detaching {
        p.wait_volume(&vol, "available", dir).await;
        assert!(
            listed.is_empty(),
            "after a crash at {failpoint}: {listed:?}"
        );
        let held = count(
            &db,
            "SELECT COUNT(*) FROM volume_attachments WHERE volume_id = $1",
            &vol,
        )
        .await;
        assert_eq!(held, 0, "attachments left after a crash at {failpoint}");
    } else {
        p.wait_volume(&vol, "in-use", dir).await;
        assert_eq!(listed.len(), 1, "after a crash at {failpoint}: {listed:?}");
        assert_eq!(listed[0]["volumeId"], vol.as_str());
        let held = count(
            &db,
            "SELECT COUNT(*) FROM volume_attachments WHERE volume_id = $1 AND status = 'attached'",
            &vol,
        )
        .await;
        assert_eq!(held, 1, "one attachment after a crash at {failpoint}");
    }
    let leaks = ferro_compute::gc::leaks(db.pool()).await.unwrap();
    assert!(leaks.is_empty(), "after a crash at {failpoint}: {leaks:?}");
    db.close().await;
    p.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Snapshot (or shelve) a server with the process armed; after the restart
/// the saga has gone forward: one active image, the server without a task
/// (shelved: offloaded, no allocation), no copy of the disk left behind.
async fn crash_in_snapshot_saga(
    mut p: Proc,
    dir: &Path,
    url: Option<&str>,
    failpoint: &str,
    server: &str,
) {
    let shelving = failpoint.starts_with("server-shelve.");
    let (action, image) = if shelving {
        (json!({"shelve": null}), "crash-shelved")
    } else {
        (json!({"createImage": {"name": "crash-snap"}}), "crash-snap")
    };
    let (st, r) = p
        .call(
            Method::POST,
            &format!("{}/servers/{server}/action", p.compute),
            Some(action),
        )
        .await;
    assert!(
        matches!(st, StatusCode::ACCEPTED | StatusCode::BAD_GATEWAY),
        "{st} {r}"
    );
    p.wait_aborted(failpoint, dir).await;

    let p = start(dir, url, None).await;
    let db = open_db(dir, url).await;
    wait_sagas_done(&db, dir).await;
    let (st, shown) = p.server(server).await;
    assert_eq!(st, StatusCode::OK, "{shown}");
    let want = if shelving {
        "SHELVED_OFFLOADED"
    } else {
        "ACTIVE"
    };
    assert_eq!(shown["server"]["status"], want, "{shown}");
    assert_eq!(
        shown["server"]["OS-EXT-STS:task_state"],
        Value::Null,
        "{shown}"
    );
    if shelving {
        let claims = count(
            &db,
            "SELECT COUNT(*) FROM allocations WHERE consumer_id = $1",
            server,
        )
        .await;
        assert_eq!(claims, 0, "an offloaded server holds no allocation");
    }
    let images: Vec<(String,)> = sqlx::query_as("SELECT status FROM images WHERE name = $1")
        .bind(image)
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(
        images,
        vec![("active".to_owned(),)],
        "after a crash at {failpoint}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.join("images"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".snapshot") || n.ends_with(".part"))
        .collect();
    assert!(
        left.is_empty(),
        "copies left after a crash at {failpoint}: {left:?}"
    );
    let leaks = ferro_compute::gc::leaks(db.pool()).await.unwrap();
    assert!(leaks.is_empty(), "after a crash at {failpoint}: {leaks:?}");
    db.close().await;
    p.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A second host, `h2`: a `ferrostack agent` process joined to the cloud
/// in `dir` (fake hypervisor). Killed when dropped.
struct Joined(Child, PathBuf);

impl Drop for Joined {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn join_h2(dir: &Path, database_url: Option<&str>) -> Joined {
    let bin = env!("CARGO_BIN_EXE_ferrostack");
    let mut add = Command::new(bin);
    add.args(["host", "add", "h2", "--state-dir"]).arg(dir);
    if let Some(u) = database_url {
        add.args(["--database-url", u]);
    }
    let out = add.output().expect("ferrostack host add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let url = std::fs::read_to_string(dir.join("contract/url")).expect("the contract's URL");
    let h2 = dir.with_extension("h2");
    std::fs::create_dir_all(&h2).unwrap();
    let child = Command::new(bin)
        .args([
            "agent",
            "--join",
            url.trim(),
            "--token",
            &token,
            "--state-dir",
        ])
        .arg(&h2)
        .args([
            "--host-name",
            "h2",
            "--hypervisor",
            "fake",
            "--agent-port",
            "0",
        ])
        .args(["--advertise-ip", "127.0.0.1"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(h2.join("log"))
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("starting ferrostack agent");
    Joined(child, h2)
}

/// Migrates the server to a second host with the process armed; after the
/// restart the move has finished (VERIFY_RESIZE on h2, the old host's claim
/// and the new one's reservation, no disk copy left, nothing leaked).
async fn crash_in_migrate_saga(
    mut p: Proc,
    dir: &Path,
    url: Option<&str>,
    failpoint: &str,
    id: &str,
) {
    let h2 = join_h2(dir, url);
    let start_wait = Instant::now();
    loop {
        let (_, hs) = p
            .call(
                Method::GET,
                &format!("{}/os-hypervisors/detail", p.compute),
                None,
            )
            .await;
        let up = hs["hypervisors"]
            .as_array()
            .map(|a| a.iter().filter(|h| h["state"] == "up").count())
            .unwrap_or(0);
        if up == 2 {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(60),
            "h2 never came up: {hs}; log: {}",
            log(&h2.1)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live = failpoint.starts_with("server-live-migrate.");
    let ask = if live {
        json!({"os-migrateLive": {"host": "h2", "block_migration": "auto"}})
    } else {
        json!({"migrate": {"host": "h2"}})
    };
    let (st, body) = p
        .call(
            Method::POST,
            &format!("{}/servers/{id}/action", p.compute),
            Some(ask),
        )
        .await;
    assert!(
        matches!(st, StatusCode::ACCEPTED | StatusCode::BAD_GATEWAY),
        "{st} {body}"
    );
    p.wait_aborted(failpoint, dir).await;

    let p = start(dir, url, None).await;
    let db = open_db(dir, url).await;
    p.wait_for(id, if live { "ACTIVE" } else { "VERIFY_RESIZE" }, dir)
        .await;
    wait_sagas_done(&db, dir).await;
    let (_, s) = p.server(id).await;
    assert_eq!(
        s["server"]["OS-EXT-SRV-ATTR:host"], "h2",
        "after a crash at {failpoint}"
    );
    let claims: Vec<(String, String)> = sqlx::query_as(
        "SELECT consumer_id, host FROM allocations WHERE consumer_id LIKE $1 ORDER BY consumer_id",
    )
    .bind(format!("{id}%"))
    .fetch_all(db.pool())
    .await
    .unwrap();
    let want = if live {
        vec![(id.to_owned(), "h2".to_owned())]
    } else {
        vec![
            (id.to_owned(), "fake-host".to_owned()),
            (format!("{id}-resize"), "h2".to_owned()),
        ]
    };
    assert_eq!(claims, want, "after a crash at {failpoint}");
    let (status,): (String,) = sqlx::query_as("SELECT status FROM migrations WHERE server_id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(
        status,
        if live { "completed" } else { "finished" },
        "after a crash at {failpoint}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.join("images"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".migration") || n.ends_with(".part"))
        .collect();
    assert!(
        left.is_empty(),
        "copies left after a crash at {failpoint}: {left:?}"
    );
    let leaks = ferro_compute::gc::leaks(db.pool()).await.unwrap();
    assert!(leaks.is_empty(), "after a crash at {failpoint}: {leaks:?}");
    db.close().await;
    drop(h2);
    p.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_crash_at_every_failpoint_is_finished_after_restart_with_nothing_leaked() {
    // FERRO_FAILPOINT_FILTER=server-migrate runs only the failpoints whose
    // names contain it (while working on one saga).
    let only = std::env::var("FERRO_FAILPOINT_FILTER").unwrap_or_default();
    for backend in backends() {
        for failpoint in FAILPOINTS.iter().filter(|f| f.contains(only.as_str())) {
            crash_at(backend, failpoint).await;
        }
    }
}

/// The leak checker finds what a bug would leave (here: a server row
/// removed behind compute's back, with its port, address and claim), and
/// the garbage collector removes exactly that.
#[tokio::test]
async fn the_garbage_collector_finds_and_removes_what_belongs_to_nothing() {
    use ferro_test_support::TestCloud;
    for backend in backends() {
        let tc = TestCloud::start(backend).await;
        let admin = tc.admin_token().await;
        let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
        let f = tc
            .compute(
                Method::POST,
                "flavors",
                &admin,
                Some(json!({"flavor": {"name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1}})),
                "2.79",
            )
            .await;
        let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
        let n = tc
            .network(
                Method::POST,
                "networks",
                &admin,
                Some(json!({"network": {"name": "n"}})),
            )
            .await;
        let net = n.json["network"]["id"].as_str().unwrap().to_owned();
        let sub = tc
            .network(
                Method::POST,
                "subnets",
                &admin,
                Some(
                    json!({"subnet": {"network_id": net, "cidr": "10.30.0.0/24", "ip_version": 4}}),
                ),
            )
            .await;
        assert_eq!(sub.status, StatusCode::CREATED, "{}", sub.json);
        let pool = tc.cloud.db.pool();
        let mut ids = Vec::new();
        for name in ["kept", "orphaned"] {
            let r = tc
                .compute(
                    Method::POST,
                    "servers",
                    &admin,
                    Some(
                        json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor,
                        "networks": [{"uuid": net}]}}),
                    ),
                    "2.79",
                )
                .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
            ids.push(r.json["server"]["id"].as_str().unwrap().to_owned());
        }
        let start = Instant::now();
        while count(
            &tc.cloud.db,
            "SELECT COUNT(*) FROM sagas WHERE kind <> $1",
            "",
        )
        .await
            > 0
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the creates never finished"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(ferro_compute::gc::leaks(pool).await.unwrap(), vec![]);
        let port: (String,) = sqlx::query_as("SELECT id FROM ports WHERE device_id = $1")
            .bind(&ids[1])
            .fetch_one(pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM servers WHERE id = $1")
            .bind(&ids[1])
            .execute(pool)
            .await
            .unwrap();
        let mut found: Vec<(&str, String)> = ferro_compute::gc::leaks(pool)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.kind, l.id))
            .collect();
        found.sort();
        assert_eq!(
            found,
            vec![("allocation", ids[1].clone()), ("port", port.0.clone()),]
        );
        let removed = tc.cloud.compute.collect_garbage().await.unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(ferro_compute::gc::leaks(pool).await.unwrap(), vec![]);
        assert_eq!(
            count(
                &tc.cloud.db,
                "SELECT COUNT(*) FROM ip_allocations WHERE port_id = $1",
                &port.0
            )
            .await,
            0,
            "the port's address went with it"
        );
        assert_eq!(
            count(
                &tc.cloud.db,
                "SELECT COUNT(*) FROM ports WHERE device_id = $1",
                &ids[0]
            )
            .await,
            1,
            "the live server keeps its port"
        );
        tc.stop().await;
    }
}

/// With several controllers, a saga another controller holds a live lease
/// on is left to it; once that lease runs out (the controller died), this
/// one takes the saga over and finishes it.
#[tokio::test]
async fn a_saga_of_another_controller_is_taken_over_only_when_its_lease_runs_out() {
    use ferro_test_support::TestCloud;
    for backend in backends() {
        let tc = TestCloud::start(backend).await;
        let admin = tc.admin_token().await;
        let image = tc.upload_image(&admin, "tiny", "qcow2", tiny_qcow2()).await;
        let f = tc
            .compute(
                Method::POST,
                "flavors",
                &admin,
                Some(json!({"flavor": {"name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1}})),
                "2.79",
            )
            .await;
        let flavor = f.json["flavor"]["id"].as_str().unwrap().to_owned();
        let r = tc
            .compute(
                Method::POST,
                "servers",
                &admin,
                Some(
                    json!({"server": {"name": "held", "imageRef": image, "flavorRef": flavor,
                    "networks": "none"}}),
                ),
                "2.79",
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.json);
        let id = r.json["server"]["id"].as_str().unwrap().to_owned();
        let start = Instant::now();
        loop {
            let s = tc
                .compute(Method::GET, &format!("servers/{id}"), &admin, None, "2.79")
                .await;
            if s.json["server"]["status"] == "ACTIVE" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{}", s.json);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Another controller began deleting it and holds the lease.
        let pool = tc.cloud.db.pool();
        let now = ferro_common::time::now_micros();
        sqlx::query("UPDATE servers SET task_state = 'deleting' WHERE id = $1")
            .bind(&id)
            .execute(pool)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO sagas (id, kind, resource_id, params, step, lease_holder, lease_expires, created_at, updated_at) \
             VALUES ('s-other', 'server-delete', $1, '{}', 'stop', 'controller-elsewhere', $2, $3, $3)",
        )
        .bind(&id)
        .bind(now + 600_000_000)
        .bind(now)
        .execute(pool)
        .await
        .unwrap();
        // Several scans (every 2 s) and a host report later, it is untouched.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (holder, step): (String, String) =
            sqlx::query_as("SELECT lease_holder, step FROM sagas WHERE id = 's-other'")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(
            (holder.as_str(), step.as_str()),
            ("controller-elsewhere", "stop")
        );
        let s = tc
            .compute(Method::GET, &format!("servers/{id}"), &admin, None, "2.79")
            .await;
        assert_eq!(s.status, StatusCode::OK);
        // The other controller is gone: its lease runs out.
        sqlx::query("UPDATE sagas SET lease_expires = $1 WHERE id = 's-other'")
            .bind(ferro_common::time::now_micros() - 1)
            .execute(pool)
            .await
            .unwrap();
        let start = Instant::now();
        loop {
            let s = tc
                .compute(Method::GET, &format!("servers/{id}"), &admin, None, "2.79")
                .await;
            if s.status == StatusCode::NOT_FOUND {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "never taken over: {}",
                s.json
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            count(
                &tc.cloud.db,
                "SELECT COUNT(*) FROM sagas WHERE id <> $1",
                ""
            )
            .await,
            0
        );
        assert_eq!(ferro_compute::gc::leaks(pool).await.unwrap(), vec![]);
        tc.stop().await;
    }
}
