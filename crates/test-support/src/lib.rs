//! A whole ferrostack control plane in-process, for integration tests.
//!
//! [`TestCloud::start`] composes the services exactly as `ferrostack up`
//! does (through `ferrostack::Cloud`), on a fresh state directory, on
//! port 0, with either embedded SQLite or a fresh PostgreSQL database.
//! PostgreSQL is used when `FERRO_TEST_POSTGRES_URL` names a server (the
//! README's test command starts one); [`backends`] lists what to run on.

use std::net::IpAddr;
use std::path::PathBuf;

use ferro_store::sqlx::{self, Connection};
use ferrostack::{Cloud, Config};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when the test command provided a server.
/// With `FERRO_TEST_REQUIRE_POSTGRES=1` a missing server is an error, so
/// CI cannot silently skip it.
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if std::env::var("FERRO_TEST_POSTGRES_URL").is_ok() {
        v.push(Backend::Postgres);
    } else if std::env::var("FERRO_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!("FERRO_TEST_REQUIRE_POSTGRES=1 but FERRO_TEST_POSTGRES_URL is not set");
    }
    v
}

/// A running cloud and an HTTP client for it.
pub struct TestCloud {
    pub cloud: Cloud,
    pub http: reqwest::Client,
    pub backend: Backend,
    state_dir: PathBuf,
    database_url: Option<String>,
    tls: bool,
    max_limit: usize,
    local_agent: bool,
}

/// The contract port kept for the cloud in `state_dir`, if it started
/// before: joined hosts must find a restarted controller again.
fn kept_contract_port(state_dir: &std::path::Path) -> Option<u16> {
    std::fs::read_to_string(state_dir.join("test-contract-port"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
}

/// A contract port for a fresh cloud: random, below Linux's ephemeral range
/// (32768–60999), so no port-0 listener of a parallel test can take it
/// while this cloud is stopped for a restart.
fn fresh_contract_port() -> u16 {
    20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16
}

fn address_in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

fn keep_contract_port(state_dir: &std::path::Path, contract_url: &str) {
    let f = state_dir.join("test-contract-port");
    if f.exists() {
        return;
    }
    let port = contract_url
        .rsplit(':')
        .next()
        .map(|p| p.trim_end_matches('/'))
        .unwrap_or_default();
    std::fs::write(&f, port).expect("writing the contract port");
}

/// A copy of a stopped cloud's database.
pub enum Backup {
    Sqlite(PathBuf),
    Postgres(String),
}

fn admin_postgres_url() -> String {
    std::env::var("FERRO_TEST_POSTGRES_URL").expect("FERRO_TEST_POSTGRES_URL")
}

fn database_name(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_owned()
}

async fn postgres_admin(sql: &str) {
    let mut conn = sqlx::PgConnection::connect(&admin_postgres_url())
        .await
        .expect("connecting to PostgreSQL");
    sqlx::query(sql).execute(&mut conn).await.expect(sql);
    conn.close().await.expect("closing");
}

async fn fresh_postgres_db() -> anyhow::Result<String> {
    let admin = std::env::var("FERRO_TEST_POSTGRES_URL")?;
    let name = format!("ferro_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}

/// A database URL for a cloud on `backend`: `None` (SQLite in the state
/// directory) or a fresh PostgreSQL database.
pub async fn fresh_database(backend: Backend) -> Option<String> {
    match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(
            fresh_postgres_db()
                .await
                .expect("creating a PostgreSQL test database"),
        ),
    }
}

impl TestCloud {
    pub async fn start(backend: Backend) -> TestCloud {
        Self::start_with(backend, false).await
    }

    /// A cloud whose compute lists page at `max_limit` servers.
    pub async fn start_with_max_limit(backend: Backend, max_limit: usize) -> TestCloud {
        Self::fresh(backend, false, max_limit).await
    }

    pub async fn start_with(backend: Backend, tls: bool) -> TestCloud {
        Self::fresh(backend, tls, 1000).await
    }

    /// A controller without a host of its own (`ferrostack controller`):
    /// servers run only on hosts that join it.
    pub async fn start_controller(backend: Backend) -> TestCloud {
        let (state_dir, database_url) = Self::fresh_state(backend).await;
        Self::boot(backend, state_dir, database_url, false, 1000, false).await
    }

    /// The cloud's state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    async fn fresh_state(backend: Backend) -> (PathBuf, Option<String>) {
        let state_dir =
            std::env::temp_dir().join(format!("ferro-test-{}", uuid::Uuid::new_v4().simple()));
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                fresh_postgres_db()
                    .await
                    .expect("creating a PostgreSQL test database"),
            ),
        };
        (state_dir, database_url)
    }

    async fn fresh(backend: Backend, tls: bool, max_limit: usize) -> TestCloud {
        let (state_dir, database_url) = Self::fresh_state(backend).await;
        Self::boot(backend, state_dir, database_url, tls, max_limit, true).await
    }

    async fn boot(
        backend: Backend,
        state_dir: PathBuf,
        database_url: Option<String>,
        tls: bool,
        max_limit: usize,
        local_agent: bool,
    ) -> TestCloud {
        // FERRO_TEST_LOG=ferro_compute=debug shows a test's cloud logs.
        if let Ok(filter) = std::env::var("FERRO_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let mut cfg = Config::new(state_dir.clone());
        cfg.database_url = database_url.clone();
        cfg.bind = IpAddr::from([127, 0, 0, 1]);
        cfg.identity_port = 0;
        cfg.image_port = 0;
        cfg.compute_port = 0;
        cfg.placement_port = 0;
        cfg.network_port = 0;
        cfg.dashboard_port = 0;
        cfg.volume_port = 0;
        cfg.loadbalancer_port = 0;
        cfg.keymanager_port = 0;
        cfg.hypervisor = ferrostack::Hypervisor::Fake;
        cfg.host_name = Some("fake-host".into());
        cfg.fake_fail_spawn = Some("doomed".into());
        cfg.bcrypt_cost = 4;
        cfg.tls = tls;
        cfg.max_limit = max_limit;
        cfg.local_agent = local_agent;
        let kept = kept_contract_port(&state_dir);
        // A random fresh port may be another test's: try another. A kept
        // one is retried (a parallel fresh cloud may hold it briefly).
        let mut attempts = 0;
        let cloud = loop {
            cfg.contract_port = kept.unwrap_or_else(fresh_contract_port);
            match Cloud::start(cfg.clone()).await {
                Ok(cloud) => break cloud,
                Err(e) if address_in_use(&e) && attempts < 40 => {
                    attempts += 1;
                    if kept.is_some() {
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                }
                Err(e) => panic!("starting the cloud: {e:?}"),
            }
        };
        keep_contract_port(&state_dir, &cloud.contract_url);
        let mut http = reqwest::Client::builder();
        if let Some(ca) = &cloud.ca_cert {
            let pem = std::fs::read(ca).expect("reading the CA");
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA pem"));
        }
        TestCloud {
            cloud,
            http: http.build().expect("client"),
            backend,
            state_dir,
            database_url,
            tls,
            max_limit,
            local_agent,
        }
    }

    /// Stops the cloud and starts it again on the same state and database.
    pub async fn restart(self) -> TestCloud {
        let TestCloud {
            cloud,
            backend,
            state_dir,
            database_url,
            tls,
            max_limit,
            local_agent,
            ..
        } = self;
        cloud.stop().await;
        Self::boot(
            backend,
            state_dir,
            database_url,
            tls,
            max_limit,
            local_agent,
        )
        .await
    }

    /// Stops the cloud, copies its database aside (a backup taken while it
    /// is down) and starts it again.
    pub async fn restart_with_backup(self) -> (TestCloud, Backup) {
        let TestCloud {
            cloud,
            backend,
            state_dir,
            database_url,
            tls,
            max_limit,
            local_agent,
            ..
        } = self;
        cloud.stop().await;
        let backup = match &database_url {
            None => {
                let to = state_dir.join("backup.db");
                std::fs::copy(state_dir.join("ferrostack.db"), &to).expect("copying the database");
                Backup::Sqlite(to)
            }
            Some(url) => {
                let name = format!("{}_backup", database_name(url));
                postgres_admin(&format!(
                    "CREATE DATABASE {name} TEMPLATE {}",
                    database_name(url)
                ))
                .await;
                Backup::Postgres(name)
            }
        };
        let tc = Self::boot(
            backend,
            state_dir,
            database_url,
            tls,
            max_limit,
            local_agent,
        )
        .await;
        (tc, backup)
    }

    /// Stops the cloud, puts `backup` back in place of its database and
    /// starts it again: a controller restored from an older backup.
    pub async fn restart_from(self, backup: &Backup) -> TestCloud {
        let TestCloud {
            cloud,
            backend,
            state_dir,
            database_url,
            tls,
            max_limit,
            local_agent,
            ..
        } = self;
        cloud.stop().await;
        match (backup, &database_url) {
            (Backup::Sqlite(from), None) => {
                let db = state_dir.join("ferrostack.db");
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(state_dir.join(format!("ferrostack.db{suffix}")));
                }
                std::fs::copy(from, db).expect("restoring the database");
            }
            (Backup::Postgres(name), Some(url)) => {
                let db = database_name(url);
                postgres_admin(&format!("DROP DATABASE {db}")).await;
                postgres_admin(&format!("CREATE DATABASE {db} TEMPLATE {name}")).await;
            }
            _ => panic!("a backup of another kind of database"),
        }
        Self::boot(
            backend,
            state_dir,
            database_url,
            tls,
            max_limit,
            local_agent,
        )
        .await
    }

    /// A second controller on the same PostgreSQL database, sharing the
    /// token keys (as a real deployment distributes them).
    pub async fn second_controller(&self) -> TestCloud {
        assert_eq!(
            self.backend,
            Backend::Postgres,
            "several controllers need PostgreSQL"
        );
        let dir =
            std::env::temp_dir().join(format!("ferro-test-{}", uuid::Uuid::new_v4().simple()));
        let keys = dir.join("token-keys");
        std::fs::create_dir_all(&keys).expect("state dir");
        for e in std::fs::read_dir(self.state_dir.join("token-keys"))
            .expect("keys")
            .flatten()
        {
            std::fs::copy(e.path(), keys.join(e.file_name())).expect("copying a key");
        }
        std::fs::copy(
            self.state_dir.join("admin-password"),
            dir.join("admin-password"),
        )
        .expect("password");
        Self::boot(
            self.backend,
            dir,
            self.database_url.clone(),
            false,
            self.max_limit,
            self.local_agent,
        )
        .await
    }

    pub async fn stop(self) {
        let dir = self.state_dir.clone();
        self.cloud.stop().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `http(s)://127.0.0.1:PORT/v3`
    pub fn identity(&self) -> &str {
        &self.cloud.identity_url
    }

    /// Sends a request; returns the status, the headers and the body as
    /// JSON (`null` when empty, `{"raw": text}` when not JSON).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<RawBody>,
    ) -> Reply {
        let mut rb = self.http.request(method, url);
        if let Some(t) = token {
            rb = rb.header("X-Auth-Token", t);
        }
        match body {
            Some(RawBody::Json(v)) => rb = rb.json(&v),
            Some(RawBody::Bytes(b, ct)) => rb = rb.header("Content-Type", ct).body(b),
            None => {}
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }))
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    /// `path` is relative to `/v3` (e.g. `users`).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let url = format!("{}/{}", self.identity(), path.trim_start_matches('/'));
        self.send(method, &url, Some(token), body.map(RawBody::Json))
            .await
    }

    /// A compute API call at microversion `version` (e.g. "2.79").
    pub async fn compute(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        version: &str,
    ) -> Reply {
        let url = format!(
            "{}/{}",
            self.cloud.compute_url,
            path.trim_start_matches('/')
        );
        let mut rb = self
            .http
            .request(method, &url)
            .header("X-Auth-Token", token);
        if !version.is_empty() {
            rb = rb.header("OpenStack-API-Version", format!("compute {version}"));
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }))
        };
        Reply {
            status,
            headers,
            json,
        }
    }

    /// A network API call (`path` under `/v2.0/`).
    pub async fn network(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Reply {
        let url = format!(
            "{}/v2.0/{}",
            self.cloud.network_url,
            path.trim_start_matches('/')
        );
        self.send(method, &url, Some(token), body.map(RawBody::Json))
            .await
    }

    /// A new project in the `Default` domain with a user holding `role` on
    /// it; returns (project id, that user's project-scoped token).
    pub async fn project_user(&self, admin: &str, name: &str, role: &str) -> (String, String) {
        let project = self
            .call(
                Method::POST,
                "projects",
                admin,
                Some(json!({"project": {"name": name, "domain_id": "default"}})),
            )
            .await
            .id("project");
        let user = self
            .call(
                Method::POST,
                "users",
                admin,
                Some(json!({"user": {"name": format!("{name}-user"), "domain_id": "default", "password": "pw"}})),
            )
            .await
            .id("user");
        let role_id = self
            .call(Method::GET, &format!("roles?name={role}"), admin, None)
            .await
            .json["roles"][0]["id"]
            .as_str()
            .expect("role exists")
            .to_owned();
        self.call(
            Method::PUT,
            &format!("projects/{project}/users/{user}/roles/{role_id}"),
            admin,
            None,
        )
        .await;
        let token = self
            .token(&format!("{name}-user"), "Default", "pw", name, "Default")
            .await;
        (project, token)
    }

    /// A second user `user` holding `role` on the existing project
    /// `project` (by name); returns that user's project-scoped token.
    pub async fn another_user(&self, admin: &str, project: &str, user: &str, role: &str) -> String {
        let project_id = self
            .call(
                Method::GET,
                &format!("projects?name={project}"),
                admin,
                None,
            )
            .await
            .json["projects"][0]["id"]
            .as_str()
            .expect("project exists")
            .to_owned();
        let user_id = self
            .call(
                Method::POST,
                "users",
                admin,
                Some(json!({"user": {"name": user, "domain_id": "default", "password": "pw"}})),
            )
            .await
            .id("user");
        let role_id = self
            .call(Method::GET, &format!("roles?name={role}"), admin, None)
            .await
            .json["roles"][0]["id"]
            .as_str()
            .expect("role exists")
            .to_owned();
        self.call(
            Method::PUT,
            &format!("projects/{project_id}/users/{user_id}/roles/{role_id}"),
            admin,
            None,
        )
        .await;
        self.token(user, "Default", "pw", project, "Default").await
    }

    /// Uploads `data` as a public image named `name`; returns its id.
    pub async fn upload_image(
        &self,
        token: &str,
        name: &str,
        disk_format: &str,
        data: Vec<u8>,
    ) -> String {
        let url = format!("{}/v2/images", self.cloud.image_url);
        let body = json!({"name": name, "disk_format": disk_format, "container_format": "bare", "visibility": "public"});
        let r = self
            .send(Method::POST, &url, Some(token), Some(RawBody::Json(body)))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        let id = r.json["id"].as_str().expect("image id").to_owned();
        let put = format!("{url}/{id}/file");
        let r = self
            .send(
                Method::PUT,
                &put,
                Some(token),
                Some(RawBody::Bytes(data, "application/octet-stream")),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.json);
        id
    }

    /// Password authentication; `scope` is the JSON scope or `None`.
    pub async fn auth(
        &self,
        user: &str,
        domain: &str,
        password: &str,
        scope: Option<Value>,
    ) -> Reply {
        let mut body = json!({"auth": {"identity": {"methods": ["password"],
            "password": {"user": {"name": user, "domain": {"name": domain}, "password": password}}}}});
        if let Some(s) = scope {
            body["auth"]["scope"] = s;
        }
        let url = format!("{}/auth/tokens", self.identity());
        self.send(Method::POST, &url, None, Some(RawBody::Json(body)))
            .await
    }

    /// A project-scoped token; panics unless the authentication succeeds.
    pub async fn token(
        &self,
        user: &str,
        domain: &str,
        password: &str,
        project: &str,
        project_domain: &str,
    ) -> String {
        let r = self
            .auth(
                user,
                domain,
                password,
                Some(json!({"project": {"name": project, "domain": {"name": project_domain}}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "auth of {user}: {}", r.json);
        r.subject_token()
    }

    /// The cloud administrator's token (project `admin` in `admin_domain`).
    pub async fn admin_token(&self) -> String {
        let pw = self.cloud.admin_password.clone();
        self.token("admin", "admin_domain", &pw, "admin", "admin_domain")
            .await
    }
}

/// The header of an empty 1 GiB qcow2 (version 3, no backing file): enough
/// for the image service's inspection and the fake hypervisor.
pub fn tiny_qcow2() -> Vec<u8> {
    let mut h = vec![0u8; 64 * 1024];
    h[..4].copy_from_slice(b"QFI\xfb");
    h[4..8].copy_from_slice(&3u32.to_be_bytes());
    h[24..32].copy_from_slice(&(1u64 << 30).to_be_bytes());
    h[100..104].copy_from_slice(&104u32.to_be_bytes());
    h
}

pub enum RawBody {
    Json(Value),
    Bytes(Vec<u8>, &'static str),
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl Reply {
    pub fn subject_token(&self) -> String {
        self.headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .expect("X-Subject-Token")
            .to_owned()
    }

    /// The Keystone fault message, if this is an error body.
    pub fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }

    pub fn id(&self, kind: &str) -> String {
        self.json[kind]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no {kind}.id in {}", self.json))
            .to_owned()
    }
}

/// Every row of every table, as text, to compare the database before and
/// after a sequence of rejected requests. Left out: what hosts keep
/// writing on their own (heartbeats, the generation their agent applied)
/// and the desired-state generations, which only count writes (an undone
/// step counts too) and say nothing about what exists.
pub async fn snapshot(cloud: &Cloud) -> Vec<String> {
    use sqlx::{Column, Row};
    let pool = cloud.db.pool();
    let tables: Vec<(String,)> = match cloud.db.backend() {
        ferro_store::Backend::Sqlite => {
            sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetch_all(pool).await
        }
        ferro_store::Backend::Postgres => {
            sqlx::query_as("SELECT CAST(tablename AS TEXT) FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
                .fetch_all(pool)
                .await
        }
    }
    .expect("listing tables");
    let mut out = Vec::new();
    for (t,) in tables {
        // Generations and sequence counters move on refused requests too,
        // as a database sequence does (a create takes its server's number
        // before its ports are made).
        if t == "host_generations" || t == "counters" {
            continue;
        }
        let rows = sqlx::query(&format!("SELECT * FROM {t}"))
            .fetch_all(pool)
            .await
            .expect("dumping a table");
        let mut lines = Vec::new();
        for row in rows {
            let mut cells = Vec::new();
            for (i, col) in row.columns().iter().enumerate() {
                if t == "hosts" && ["heartbeat_at", "agent_generation"].contains(&col.name()) {
                    continue;
                }
                let v = row
                    .try_get::<Option<String>, _>(i)
                    .map(|v| format!("{v:?}"))
                    .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                    .unwrap_or_else(|_| "?".into());
                cells.push(format!("{}={v}", col.name()));
            }
            lines.push(format!("{t}: {}", cells.join(", ")));
        }
        lines.sort();
        out.extend(lines);
    }
    out
}
