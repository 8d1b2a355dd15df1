//! Composing the services into one running cloud.
//!
//! `ferrostack up` and the integration-test harness both call
//! [`Cloud::start`]: open the store, bootstrap identity, bind each API's
//! listener, register the catalog with the real URLs, write openrc, serve.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use ferro_agent::Agent;
use ferro_common::auth::SharedAuth;
use ferro_common::metrics::{self, Metrics, Tracker};
use ferro_common::request_id;
use ferro_compute::{ComputeService, LocalLink};
use ferro_identity::{Identity, IdentityConfig};
use ferro_image::{ImageService, LocalStore};
use ferro_keymanager::KeyManager;
use ferro_loadbalancer::LoadBalancerService;
use ferro_network::{NetworkConfig, NetworkService};
use ferro_placement::api::Placement;
use ferro_store::Db;
use ferro_volume::VolumeService;
use rand::distributions::{Alphanumeric, DistString};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{external, host, openrc, serve, tls};

/// Which hypervisor driver the local agent uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypervisor {
    /// Real VMs: one qemu-system process per instance (KVM, else TCG).
    Qemu,
    /// In-memory instances, for control-plane tests and benchmarks.
    Fake,
}

/// How to run the cloud.
#[derive(Clone, Debug)]
pub struct Config {
    pub state_dir: PathBuf,
    /// `postgres://…`; embedded SQLite in the state directory when absent.
    pub database_url: Option<String>,
    pub bind: IpAddr,
    /// Host name or address put in the catalog and openrc; defaults to the
    /// bind address (127.0.0.1 when binding to all addresses).
    pub public_host: Option<String>,
    /// Identity API port (Keystone's 5000); 0 picks a free one.
    pub identity_port: u16,
    /// Image API port (Glance's 9292); 0 picks a free one.
    pub image_port: u16,
    /// Compute API port (Nova's 8774); 0 picks a free one.
    pub compute_port: u16,
    /// Placement API port (8778); 0 picks a free one.
    pub placement_port: u16,
    /// Network API port (Neutron's 9696); 0 picks a free one.
    pub network_port: u16,
    /// Dashboard port (the web console); 0 picks a free one.
    pub dashboard_port: u16,
    /// Block storage API port (Cinder's 8776); 0 picks a free one.
    pub volume_port: u16,
    /// Load-balancer API port (Octavia's 9876); 0 picks a free one.
    pub loadbalancer_port: u16,
    /// Key-manager API port (Barbican's 9311); 0 picks a free one.
    pub keymanager_port: u16,
    /// Volumes in memory (a recording fake) instead of qcow2 files; the
    /// default with the fake hypervisor.
    pub fake_volumes: Option<bool>,
    /// Every instance gets a config drive; when false, only those created
    /// with one (`--config-drive True`), the others read the metadata
    /// service.
    pub force_config_drive: bool,
    /// Physical networks and the host bridges they are reached through
    /// (`physnet1:br-ex`, as in the seed).
    pub bridge_mappings: Vec<(String, String)>,
    /// Address (with prefix) `up` gives the first mapped bridge, creating
    /// it if needed: the host's leg on the external network.
    pub external_cidr: Option<String>,
    /// Masquerade traffic from the external network out of the host's
    /// other interfaces (instances reach beyond this host).
    pub external_nat: bool,
    /// DNS servers instances' lookups are forwarded to.
    pub dns_servers: Vec<String>,
    /// The dataplane: real Linux networking, or a recording fake (the
    /// default with the fake hypervisor).
    pub fake_dataplane: Option<bool>,
    /// The local agent's hypervisor driver.
    pub hypervisor: Hypervisor,
    /// This host's name as a compute host (default: the system host name).
    pub host_name: Option<String>,
    /// Where this host's VXLAN tunnels start (default: its address).
    pub tunnel_ip: Option<IpAddr>,
    /// Fake driver only: spawns of servers whose name contains this fail
    /// (tests of the reschedule path).
    pub fake_fail_spawn: Option<String>,
    /// Fake driver only: the vCPUs, MB of RAM and GB of disk the host
    /// reports instead of this machine's (scale benchmarks).
    pub fake_capacity: Option<[i64; 3]>,
    /// The most items a compute list answers at once; fuller lists are
    /// paged with `next` links (Nova's `[api] max_limit`, 1,000).
    pub max_limit: usize,
    pub tls: bool,
    /// Run this host's agent in process (`up`); a `controller` runs none.
    pub local_agent: bool,
    /// Port of the contract joined hosts speak (mutual TLS); 0 picks a free one.
    pub contract_port: u16,
    pub bcrypt_cost: u32,
    pub token_ttl_secs: i64,
}

impl Config {
    pub fn new(state_dir: PathBuf) -> Self {
        Config {
            state_dir,
            database_url: None,
            bind: IpAddr::from([127, 0, 0, 1]),
            public_host: None,
            identity_port: 5000,
            image_port: 9292,
            compute_port: 8774,
            placement_port: 8778,
            network_port: 9696,
            dashboard_port: 8080,
            volume_port: 8776,
            loadbalancer_port: 9876,
            keymanager_port: 9311,
            fake_volumes: None,
            force_config_drive: true,
            bridge_mappings: vec![("physnet1".into(), "br-ex".into())],
            external_cidr: None,
            external_nat: false,
            dns_servers: Vec::new(),
            fake_dataplane: None,
            hypervisor: Hypervisor::Qemu,
            host_name: None,
            tunnel_ip: None,
            fake_fail_spawn: None,
            fake_capacity: None,
            max_limit: 1000,
            tls: false,
            local_agent: true,
            contract_port: crate::contract::DEFAULT_PORT,
            bcrypt_cost: 10,
            token_ttl_secs: 3600,
        }
    }
}

/// A running cloud.
pub struct Cloud {
    pub identity: Arc<Identity>,
    pub db: Db,
    pub identity_url: String,
    pub image_url: String,
    pub compute_url: String,
    pub placement_url: String,
    pub network_url: String,
    /// `http(s)://host:port/v3`
    pub volume_url: String,
    /// `http(s)://host:port` (Octavia's API root).
    pub loadbalancer_url: String,
    /// `http(s)://host:port` (Barbican's API root).
    pub keymanager_url: String,
    /// Where the web console is (`http(s)://host:port/`).
    pub dashboard_url: String,
    /// Where joined hosts reach the contract (`https://host:port`).
    pub contract_url: String,
    pub compute: Arc<ComputeService>,
    pub network: Arc<NetworkService>,
    pub volumes: Arc<VolumeService>,
    pub balancers: Arc<LoadBalancerService>,
    pub keys: Arc<KeyManager>,
    pub openrc: PathBuf,
    pub ca_cert: Option<PathBuf>,
    pub admin_password: String,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

/// This controller's name on the saga leases it takes: made on first start
/// and kept in the state directory, so a restarted controller goes on at
/// once with the sagas it held when it stopped (one process per state
/// directory), while another controller waits for their leases to expire.
fn controller_id(state_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = state_dir.join("controller-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
    }
    let id = format!("controller-{}", &ferro_common::ids::hex_id()[..12]);
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

fn admin_password(state_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = state_dir.join("admin-password");
    if let Ok(p) = std::fs::read_to_string(&path) {
        if !p.trim().is_empty() {
            return Ok(p.trim().to_owned());
        }
    }
    let p = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
    crate::files::write_private(&path, p.as_bytes())?;
    Ok(p)
}

impl Cloud {
    pub async fn start(cfg: Config) -> anyhow::Result<Cloud> {
        std::fs::create_dir_all(&cfg.state_dir)
            .with_context(|| format!("creating the state directory {}", cfg.state_dir.display()))?;
        // openrc appears only once the APIs answer, so a stale one from the
        // previous run must not be mistaken for readiness.
        let _ = std::fs::remove_file(cfg.state_dir.join("openrc"));
        let db = match &cfg.database_url {
            Some(url) => Db::connect(url)
                .await
                .context("connecting to the database")?,
            None => Db::open_sqlite(&cfg.state_dir.join("ferrostack.db"))
                .await
                .context("opening the SQLite database")?,
        };
        let identity = Arc::new(
            Identity::with_key_dir(
                db.clone(),
                &cfg.state_dir.join("token-keys"),
                IdentityConfig {
                    token_ttl_secs: cfg.token_ttl_secs,
                    bcrypt_cost: cfg.bcrypt_cost,
                    ..Default::default()
                },
            )
            .map_err(|e| anyhow::anyhow!("token keys: {e}"))?,
        );
        identity
            .load_revocations()
            .await
            .map_err(|e| anyhow::anyhow!("loading revocations: {e}"))?;
        let password = admin_password(&cfg.state_dir)?;
        ferro_identity::bootstrap::bootstrap(&identity, &password)
            .await
            .map_err(|e| anyhow::anyhow!("bootstrap: {e}"))?;

        let host = cfg.public_host.clone().unwrap_or_else(|| {
            if cfg.bind.is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                cfg.bind.to_string()
            }
        });
        let identity_listener = bind(&cfg, cfg.identity_port, "identity").await?;
        let image_listener = bind(&cfg, cfg.image_port, "image").await?;
        let compute_listener = bind(&cfg, cfg.compute_port, "compute").await?;
        let placement_listener = bind(&cfg, cfg.placement_port, "placement").await?;
        let network_listener = bind(&cfg, cfg.network_port, "network").await?;
        let dashboard_listener = bind(&cfg, cfg.dashboard_port, "dashboard").await?;
        let volume_listener = bind(&cfg, cfg.volume_port, "block storage").await?;
        let lb_listener = bind(&cfg, cfg.loadbalancer_port, "load balancer").await?;
        let km_listener = bind(&cfg, cfg.keymanager_port, "key manager").await?;
        let contract_listener = bind(&cfg, cfg.contract_port, "host contract").await?;
        let tls = if cfg.tls {
            let mut names = vec![host.clone(), "localhost".to_owned(), "127.0.0.1".to_owned()];
            names.dedup();
            Some(tls::prepare(&cfg.state_dir.join("tls"), &names)?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host_in_url = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let url_of = |l: &TcpListener| -> anyhow::Result<String> {
            Ok(format!(
                "{scheme}://{host_in_url}:{}",
                l.local_addr()?.port()
            ))
        };
        let identity_url = format!("{}/v3", url_of(&identity_listener)?);
        let image_url = url_of(&image_listener)?;
        let compute_url = format!("{}/v2.1", url_of(&compute_listener)?);
        let placement_url = url_of(&placement_listener)?;
        let network_url = url_of(&network_listener)?;
        let dashboard_url = format!("{}/", url_of(&dashboard_listener)?);
        let volume_base = url_of(&volume_listener)?;
        let volume_url = format!("{volume_base}/v3");
        let loadbalancer_url = url_of(&lb_listener)?;
        let keymanager_url = url_of(&km_listener)?;
        let contract_url = format!(
            "https://{host_in_url}:{}",
            contract_listener.local_addr()?.port()
        );
        identity.set_base_url(&identity_url);
        let region = ferro_identity::bootstrap::REGION;
        for (kind, name, url) in [
            ("identity", "keystone", &identity_url),
            ("image", "glance", &image_url),
            ("compute", "nova", &compute_url),
            ("placement", "placement", &placement_url),
            ("network", "neutron", &network_url),
            ("block-storage", "cinder", &volume_url),
            ("volumev3", "cinderv3", &volume_url),
            ("load-balancer", "octavia", &loadbalancer_url),
            ("key-manager", "barbican", &keymanager_url),
        ] {
            identity
                .register_service(kind, name, url, region)
                .await
                .map_err(|e| anyhow::anyhow!("registering the catalog: {e}"))?;
        }
        let auth: SharedAuth = identity.clone();

        let images: Arc<ImageService> = Arc::new(ImageService {
            db: db.clone(),
            store: Arc::new(
                LocalStore::new(&cfg.state_dir.join("images"))
                    .context("creating the image store")?,
            ),
            auth: auth.clone(),
            max_image_size: 64 << 30,
            base_url: image_url.clone(),
        });

        let fake_volumes = cfg
            .fake_volumes
            .unwrap_or(cfg.hypervisor == Hypervisor::Fake);
        let volume_backend: Arc<dyn ferro_volume::Backend> = if fake_volumes {
            Arc::new(ferro_volume::FakeBackend::default())
        } else {
            Arc::new(
                ferro_volume::LocalBackend::new(&cfg.state_dir.join("volumes"))
                    .context("creating the volume directory")?,
            )
        };
        let volumes = VolumeService::new(
            db.clone(),
            auth.clone(),
            volume_base.clone(),
            images.clone(),
            volume_backend,
            &cfg.host_name.clone().unwrap_or_else(host::hostname),
        );
        volumes
            .ensure_default_type()
            .await
            .map_err(|e| anyhow::anyhow!("making the default volume type: {e}"))?;

        let network = Arc::new(NetworkService::new(
            db.clone(),
            auth.clone(),
            network_url.clone(),
            NetworkConfig {
                physical_networks: cfg.bridge_mappings.iter().map(|(p, _)| p.clone()).collect(),
                ..Default::default()
            },
        ));
        let compute = ComputeService::new(
            db.clone(),
            images.clone(),
            network.clone(),
            auth.clone(),
            compute_url.clone(),
            cfg.max_limit,
            controller_id(&cfg.state_dir)?,
        );
        compute.set_volumes(Arc::new(crate::volume_link::VolumeLink(volumes.clone())));
        let balancers = Arc::new(LoadBalancerService::new(
            db.clone(),
            auth.clone(),
            network.clone(),
            loadbalancer_url.clone(),
        ));
        let keys = Arc::new(KeyManager::new(
            db.clone(),
            auth.clone(),
            keymanager_url.clone(),
        ));
        balancers.set_certificates(Arc::new(crate::balancer_link::CertificateLink(
            keys.clone(),
        )));
        compute.set_balancers(Arc::new(crate::balancer_link::BalancerLink(
            balancers.clone(),
        )));
        compute.set_image_url(&image_url);
        compute.set_force_config_drive(cfg.force_config_drive);
        let placement = Arc::new(Placement {
            db: db.clone(),
            auth: auth.clone(),
            base_url: placement_url.clone(),
        });

        let metrics = Metrics::new();
        let m = metrics.clone();
        let identity_app = with_common_layers(
            ferro_identity::router(identity.clone()),
            &metrics,
            "identity",
        )
        .merge(Router::new().route("/metrics", get(move || async move { m.render() })));
        let image_app = with_common_layers(ferro_image::router(images), &metrics, "image");
        let compute_app =
            with_common_layers(ferro_compute::router(compute.clone()), &metrics, "compute");
        let network_app =
            with_common_layers(ferro_network::router(network.clone()), &metrics, "network");
        let volume_app =
            with_common_layers(ferro_volume::router(volumes.clone()), &metrics, "volume");
        let lb_app = with_common_layers(
            ferro_loadbalancer::router(balancers.clone()),
            &metrics,
            "load-balancer",
        );
        let km_app = with_common_layers(
            ferro_keymanager::router(keys.clone()),
            &metrics,
            "key-manager",
        );
        let placement_app = with_common_layers(
            ferro_placement::api::router(placement),
            &metrics,
            "placement",
        );

        // The dashboard calls the same routers in-process, with the user's token.
        let dashboard_app = ferro_dashboard::router(ferro_dashboard::Dashboard {
            services: [
                ("identity", identity_app.clone()),
                ("image", image_app.clone()),
                ("compute", compute_app.clone()),
                ("network", network_app.clone()),
                ("placement", placement_app.clone()),
                ("volume", volume_app.clone()),
                ("load-balancer", lb_app.clone()),
            ]
            .into_iter()
            .collect(),
            secure_cookie: tls.is_some(),
        })
        .layer(axum::middleware::from_fn(request_id::assign));

        let (shutdown, rx) = watch::channel(false);
        let server_tls = tls.as_ref().map(|t| t.server_config.clone());
        let mut servers = vec![
            tokio::spawn(serve::serve(
                identity_listener,
                identity_app,
                server_tls.clone(),
                rx.clone(),
            )),
            tokio::spawn(serve::serve(
                image_listener,
                image_app,
                server_tls.clone(),
                rx.clone(),
            )),
            tokio::spawn(serve::serve(
                compute_listener,
                compute_app,
                server_tls.clone(),
                rx.clone(),
            )),
            tokio::spawn(serve::serve(
                placement_listener,
                placement_app,
                server_tls.clone(),
                rx.clone(),
            )),
            tokio::spawn(serve::serve(
                network_listener,
                network_app,
                server_tls.clone(),
                rx.clone(),
            )),
            tokio::spawn(serve::serve(
                dashboard_listener,
                dashboard_app,
                server_tls.clone(),
                rx.clone(),
            )),
            tokio::spawn(serve::serve(
                volume_listener,
                volume_app,
                server_tls.clone(),
                rx.clone(),
            )),
            tokio::spawn(serve::serve(
                lb_listener,
                lb_app,
                server_tls.clone(),
                rx.clone(),
            )),
            tokio::spawn(serve::serve(km_listener, km_app, server_tls, rx.clone())),
            tokio::spawn(volumes.clone().run_worker(rx.clone())),
            tokio::spawn(wake_on_network_changes(compute.clone(), rx.clone())),
        ];
        let contract = crate::contract::start(
            &cfg,
            &host,
            &contract_url,
            contract_listener,
            compute.clone(),
            db.clone(),
            rx.clone(),
        )
        .await?;
        servers.push(contract);
        if cfg.local_agent {
            // The agent starts beside the APIs: probing KVM takes a moment
            // and must not delay the first token.
            servers.push(tokio::spawn(start_agent(cfg.clone(), compute.clone(), rx)));
        }
        if db.backend() == ferro_store::Backend::Postgres {
            // Other controllers may share this database: pick up the
            // revocations they record.
            let (id, mut stop) = (identity.clone(), shutdown.subscribe());
            servers.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tick.tick() => {
                            if let Err(e) = id.pull_revocations().await {
                                tracing::warn!(error = %e, "pulling revocations failed");
                            }
                        }
                    }
                }
            }));
        }
        compute
            .resume_sagas()
            .await
            .map_err(|e| anyhow::anyhow!("resuming builds: {e}"))?;
        servers.push(tokio::spawn(
            compute.clone().run_sagas(shutdown.subscribe()),
        ));
        servers.push(tokio::spawn(compute.clone().run_gc(shutdown.subscribe())));

        let ca_cert = tls.map(|t| t.ca_cert_path);
        let openrc = openrc::write(
            &cfg.state_dir,
            &openrc::Credentials {
                auth_url: &identity_url,
                password: &password,
                cacert: ca_cert.as_deref(),
                dashboard_url: &dashboard_url,
            },
        )
        .context("writing openrc")?;
        tracing::info!(url = %identity_url, openrc = %openrc.display(), "identity API ready");
        Ok(Cloud {
            identity,
            db,
            identity_url,
            image_url,
            compute_url,
            placement_url,
            network_url,
            volume_url,
            loadbalancer_url,
            keymanager_url,
            dashboard_url,
            contract_url,
            compute,
            network,
            volumes,
            balancers,
            keys,
            openrc,
            ca_cert,
            admin_password: password,
            shutdown,
            servers,
        })
    }

    /// Stops serving and closes the database.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for s in self.servers {
            let _ = s.await;
        }
        self.db.close().await;
    }
}

/// Builds this host's agent: its hypervisor driver, its dataplane, and the
/// link to the control plane (in process, or a joined host's contract).
/// None when the driver can't start (the host then runs no instances).
pub(crate) async fn make_agent(
    cfg: &Config,
    link: Arc<dyn ferro_agent::ControlPlane>,
    agent_url: Option<String>,
    network_node: bool,
) -> Option<Arc<Agent>> {
    let driver: Arc<dyn ferro_agent::driver::Hypervisor> = match cfg.hypervisor {
        Hypervisor::Qemu => match ferro_agent::qemu::QemuDriver::new(&cfg.state_dir).await {
            Ok(d) => Arc::new(d),
            Err(e) => {
                tracing::error!(error = %e, "the QEMU driver could not start; this host runs no instances");
                return None;
            }
        },
        Hypervisor::Fake => Arc::new(ferro_agent::fake::FakeDriver::failing(
            cfg.fake_fail_spawn.clone(),
        )),
    };
    let mut host_info = host::info(cfg, driver.hypervisor_type());
    host_info.agent_url = agent_url;
    host_info.network_node = network_node;
    let fake = cfg
        .fake_dataplane
        .unwrap_or(cfg.hypervisor == Hypervisor::Fake);
    let dataplane: Arc<dyn ferro_agent::dataplane::Dataplane> = if fake {
        Arc::new(ferro_agent::dataplane::FakeDataplane::default())
    } else {
        if let Err(e) = external::prepare(cfg).await {
            tracing::error!(error = %e, "preparing the external network bridge failed");
        }
        Arc::new(ferro_agent::dataplane::linux::LinuxDataplane::new(
            ferro_agent::dataplane::linux::LinuxConfig {
                state_dir: cfg.state_dir.clone(),
                bridge_mappings: cfg.bridge_mappings.clone(),
                dns_servers: cfg.dns_servers.clone(),
            },
            Arc::new(ferro_agent::metadata::MetadataService::new(link.clone())),
        ))
    };
    Some(Agent::new(
        host_info,
        link,
        driver,
        dataplane,
        cfg.state_dir.clone(),
    ))
}

/// Runs this host's agent, in process, until shutdown.
async fn start_agent(cfg: Config, compute: Arc<ComputeService>, shutdown: watch::Receiver<bool>) {
    let link: Arc<dyn ferro_agent::ControlPlane> = Arc::new(LocalLink {
        compute: compute.clone(),
        network_node: true,
    });
    let Some(agent) = make_agent(&cfg, link, None, true).await else {
        return;
    };
    compute.attach_agent(&agent.host.name, agent.clone());
    agent.run(shutdown).await;
}

/// A change of network state reaches every host's dataplane now, not at
/// its next tick.
async fn wake_on_network_changes(compute: Arc<ComputeService>, mut stop: watch::Receiver<bool>) {
    let mut changes = compute.network.watch();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            r = changes.changed() => match r {
                Ok(()) => compute.wake_all(),
                Err(_) => break,
            },
        }
    }
}

async fn bind(cfg: &Config, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(SocketAddr::new(cfg.bind, port))
        .await
        .with_context(|| format!("binding the {what} API to {}:{port}", cfg.bind))
}

/// Request ids and metrics on every route of a service.
pub fn with_common_layers(router: Router, metrics: &Arc<Metrics>, service: &'static str) -> Router {
    let tracker = Tracker {
        metrics: metrics.clone(),
        service,
    };
    router
        .route_layer(axum::middleware::from_fn_with_state(
            tracker,
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(request_id::assign))
}
