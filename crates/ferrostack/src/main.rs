//! The `ferrostack` binary: parses the command line and runs a role.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferrostack::{Cloud, Config, Hypervisor};

/// mimalloc instead of glibc's allocator: API answers build many small JSON
/// values, and a 1,000-server list page takes ~55 ms instead of ~90 ms
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ferrostack",
    version,
    about = "An OpenStack-compatible private cloud in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole cloud on this host, in the foreground, until SIGTERM or Ctrl-C.
    Up(Box<UpArgs>),
    /// Run every API, the scheduler and the reconcilers, but no VMs: hosts
    /// join with `ferrostack agent --join`. Takes `up`'s options (those of
    /// the local agent are ignored).
    Controller(Box<UpArgs>),
    /// Run a compute host joined to a controller: VMs and dataplane, no APIs.
    Agent(Box<AgentArgs>),
    /// Add or remove the hosts that may join this cloud.
    Host {
        #[command(subcommand)]
        action: HostAction,
    },
    /// Manage the token encryption keys.
    TokenKeys {
        #[command(subcommand)]
        action: KeyAction,
    },
}

#[derive(clap::Args)]
struct UpArgs {
    /// Where everything is kept: database, keys, TLS CA, openrc.
    #[arg(
        long,
        default_value = "/var/lib/ferrostack",
        env = "FERROSTACK_STATE_DIR"
    )]
    state_dir: PathBuf,
    /// PostgreSQL URL (postgres://user:pass@host/db); embedded SQLite when absent.
    #[arg(long, env = "FERROSTACK_DATABASE_URL")]
    database_url: Option<String>,
    /// Address the APIs listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Host name or address written into the catalog and openrc (default: the bind address).
    #[arg(long)]
    public_host: Option<String>,
    /// Port of the identity API (0 picks a free one).
    #[arg(long, default_value_t = 5000)]
    identity_port: u16,
    /// Port of the image API (0 picks a free one).
    #[arg(long, default_value_t = 9292)]
    image_port: u16,
    /// Port of the compute API (0 picks a free one).
    #[arg(long, default_value_t = 8774)]
    compute_port: u16,
    /// Port of the placement API (0 picks a free one).
    #[arg(long, default_value_t = 8778)]
    placement_port: u16,
    /// Port of the network API (0 picks a free one).
    #[arg(long, default_value_t = 9696)]
    network_port: u16,
    /// Port of the dashboard, the web console (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    dashboard_port: u16,
    /// Port of the block storage API (0 picks a free one).
    #[arg(long, default_value_t = 8776)]
    volume_port: u16,
    /// Give every instance a config drive (`false`: only those created
    /// with one; the others read the metadata service), as Nova's
    /// `force_config_drive`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    force_config_drive: bool,
    /// Port of the load-balancer API (Octavia's 9876; 0 picks a free one).
    #[arg(long, default_value_t = 9876)]
    loadbalancer_port: u16,
    /// Port of the key-manager API (Barbican's 9311; 0 picks a free one).
    #[arg(long, default_value_t = 9311)]
    keymanager_port: u16,
    /// Physical network to host bridge mappings, comma separated.
    #[arg(long, default_value = "physnet1:br-ex")]
    bridge_mappings: String,
    /// This host's address on the external network, e.g. 172.16.0.1/20:
    /// the first mapped bridge (br-ex) is created if missing and given it.
    #[arg(long)]
    external_cidr: Option<String>,
    /// Masquerade the external network out of the host's other interfaces.
    #[arg(long)]
    external_nat: bool,
    /// DNS servers instances' lookups are forwarded to, comma separated.
    #[arg(long, default_value = "")]
    dns_servers: String,
    /// Dataplane: linux (bridges, namespaces, nftables, dnsmasq) or fake
    /// (records only; the default with --hypervisor fake).
    #[arg(long, value_parser = ["linux", "fake"])]
    dataplane: Option<String>,
    /// Hypervisor driver of this host's agent: qemu (real VMs) or fake (tests).
    #[arg(long, default_value = "qemu", value_parser = ["qemu", "fake"])]
    hypervisor: String,
    /// With --hypervisor fake: the host reports VCPUS,RAM_MB,DISK_GB instead
    /// of this machine's (scale benchmarks), e.g. 100000,100000000,100000.
    #[arg(long, value_parser = parse_capacity)]
    fake_capacity: Option<[i64; 3]>,
    /// Name of this compute host (default: the system host name).
    #[arg(long)]
    host_name: Option<String>,
    /// The underlay address this host's VXLAN tunnels to joined hosts start
    /// and end at (default: --bind).
    #[arg(long, alias = "underlay-ip")]
    tunnel_ip: Option<IpAddr>,
    /// Let every API pick a free port (tests; the catalog and openrc say which).
    #[arg(long)]
    ephemeral_ports: bool,
    /// Serve HTTPS with a CA made on first start (plain HTTP stays open to loopback).
    #[arg(long)]
    tls: bool,
    /// Port joined hosts reach the controller on (mutual TLS; 0 picks a
    /// free one). Default: 8790, or a free one with --ephemeral-ports.
    #[arg(long)]
    contract_port: Option<u16>,
    /// bcrypt cost for passwords (4..=31).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    bcrypt_cost: u32,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl: i64,
    /// The most servers one compute list answers; longer lists are paged
    /// with `next` links that clients follow (Nova's max_limit).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_limit: u32,
}

#[derive(clap::Args)]
struct AgentArgs {
    /// The controller's contract URL (`ferrostack host add` prints it).
    #[arg(long)]
    join: String,
    /// The one-time join token from `ferrostack host add NAME` (only the
    /// first start needs it).
    #[arg(long, env = "FERROSTACK_JOIN_TOKEN")]
    token: Option<String>,
    /// Where this host keeps its certificate, instances and images.
    #[arg(
        long,
        default_value = "/var/lib/ferrostack",
        env = "FERROSTACK_STATE_DIR"
    )]
    state_dir: PathBuf,
    /// Name of this compute host (default: the system host name).
    #[arg(long)]
    host_name: Option<String>,
    /// The address the controller and other hosts reach this one at
    /// (default: the one this host reaches the controller from).
    #[arg(long)]
    advertise_ip: Option<IpAddr>,
    /// Port of this host's endpoint for the controller (0 picks a free one).
    #[arg(long, default_value_t = ferrostack::contract::DEFAULT_AGENT_PORT)]
    agent_port: u16,
    /// Run routers, DHCP and metadata for the cloud on this host.
    #[arg(long)]
    network_node: bool,
    /// The underlay address this host's VXLAN tunnels start and end at
    /// (default: the advertised address).
    #[arg(long, alias = "underlay-ip")]
    tunnel_ip: Option<IpAddr>,
    /// Hypervisor driver: qemu (real VMs) or fake (tests).
    #[arg(long, default_value = "qemu", value_parser = ["qemu", "fake"])]
    hypervisor: String,
    /// Dataplane: linux or fake (the default with --hypervisor fake).
    #[arg(long, value_parser = ["linux", "fake"])]
    dataplane: Option<String>,
    /// Physical network to host bridge mappings, comma separated.
    #[arg(long, default_value = "physnet1:br-ex")]
    bridge_mappings: String,
    /// DNS servers instances' lookups are forwarded to, comma separated.
    #[arg(long, default_value = "")]
    dns_servers: String,
    /// With --hypervisor fake: VCPUS,RAM_MB,DISK_GB this host reports.
    #[arg(long, value_parser = parse_capacity)]
    fake_capacity: Option<[i64; 3]>,
}

#[derive(Subcommand)]
enum HostAction {
    /// Print a one-time token with which host NAME joins this cloud.
    Add {
        name: String,
        /// How long the token stays valid, in seconds.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..=7 * 86400))]
        ttl: i64,
        #[arg(
            long,
            default_value = "/var/lib/ferrostack",
            env = "FERROSTACK_STATE_DIR"
        )]
        state_dir: PathBuf,
        #[arg(long, env = "FERROSTACK_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// List the cloud's hosts: joined, up or down, in sync or not.
    List {
        #[arg(
            long,
            default_value = "/var/lib/ferrostack",
            env = "FERROSTACK_STATE_DIR"
        )]
        state_dir: PathBuf,
        #[arg(long, env = "FERROSTACK_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Take the database as the truth for host NAME again, after it was
    /// found out of sync (its agent had applied newer state than the
    /// database holds, as after restoring an older backup). The host's
    /// agent then removes the instances the database doesn't know.
    Resync {
        name: String,
        #[arg(
            long,
            default_value = "/var/lib/ferrostack",
            env = "FERROSTACK_STATE_DIR"
        )]
        state_dir: PathBuf,
        #[arg(long, env = "FERROSTACK_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// Forget host NAME: its certificate is refused from now on.
    Remove {
        name: String,
        /// Remove it even though servers are still recorded on it.
        #[arg(long)]
        force: bool,
        #[arg(
            long,
            default_value = "/var/lib/ferrostack",
            env = "FERROSTACK_STATE_DIR"
        )]
        state_dir: PathBuf,
        #[arg(long, env = "FERROSTACK_DATABASE_URL")]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyAction {
    /// Promote the staged key, stage a new one, drop the oldest.
    Rotate {
        #[arg(
            long,
            default_value = "/var/lib/ferrostack",
            env = "FERROSTACK_STATE_DIR"
        )]
        state_dir: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")
    };
    match cli.command {
        Command::Up(args) => runtime()?.block_on(up(*args, true)),
        Command::Controller(args) => runtime()?.block_on(up(*args, false)),
        Command::Agent(args) => runtime()?.block_on(agent(*args)),
        Command::Host { action } => runtime()?.block_on(host(action)),
        Command::TokenKeys {
            action: KeyAction::Rotate { state_dir },
        } => {
            let primary = ferro_identity::TokenKeys::rotate(&state_dir.join("token-keys"))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("new primary token key: {primary}; restart ferrostack to use it");
            Ok(())
        }
    }
}

async fn open_db(
    state_dir: &std::path::Path,
    url: Option<&str>,
) -> anyhow::Result<ferro_store::Db> {
    Ok(match url {
        Some(u) => ferro_store::Db::connect(u)
            .await
            .context("connecting to the database")?,
        None => ferro_store::Db::open_sqlite(&state_dir.join("ferrostack.db"))
            .await
            .with_context(|| format!("opening the database in {}", state_dir.display()))?,
    })
}

async fn host(action: HostAction) -> anyhow::Result<()> {
    use ferrostack::contract::{pki, store};
    match action {
        HostAction::Add {
            name,
            ttl,
            state_dir,
            database_url,
        } => {
            let db = open_db(&state_dir, database_url.as_deref()).await?;
            let ca = pki::Ca::load_or_create(&state_dir)?;
            let (secret, expires) = store::create_token(&db, &name, ttl)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            db.close().await;
            let token = ferrostack::contract::format_token(&secret, &ca.fingerprint());
            let url =
                std::fs::read_to_string(pki::dir(&state_dir).join("url")).unwrap_or_else(|_| {
                    format!("https://CONTROLLER:{}", ferrostack::contract::DEFAULT_PORT)
                });
            println!("{token}");
            eprintln!(
                "join token for host {name}, valid until {} (used once); on that host run:\n  ferrostack agent --join {url} --host-name {name} --token {token}",
                ferro_common::time::iso_seconds(expires)
            );
            Ok(())
        }
        HostAction::List {
            state_dir,
            database_url,
        } => {
            let db = open_db(&state_dir, database_url.as_deref()).await?;
            let hosts = store::host_list(&db).await;
            db.close().await;
            let hosts = hosts?;
            println!(
                "{:<20} {:<6} {:<9} {:<8} {:>10} {:>10}  AGENT",
                "HOST", "STATE", "STATUS", "SYNC", "GENERATION", "APPLIED"
            );
            for h in hosts {
                println!(
                    "{:<20} {:<6} {:<9} {:<8} {:>10} {:>10}  {}",
                    h.name,
                    if h.up { "up" } else { "down" },
                    if h.disabled { "disabled" } else { "enabled" },
                    if h.out_of_sync.is_some() { "OUT" } else { "ok" },
                    h.generation,
                    h.applied,
                    h.agent_url.as_deref().unwrap_or("(in process)"),
                );
                if let Some(why) = h.out_of_sync {
                    println!("  out of sync: {why}");
                }
            }
            Ok(())
        }
        HostAction::Resync {
            name,
            state_dir,
            database_url,
        } => {
            let db = open_db(&state_dir, database_url.as_deref()).await?;
            let r = ferro_compute::service::resync(db.pool(), &name).await;
            db.close().await;
            match r? {
                ferro_compute::service::Resync::Done { from, to } => {
                    println!("host {name}: desired-state generation {from} -> {to}; its agent now converges to this database");
                    Ok(())
                }
                ferro_compute::service::Resync::InSync => {
                    println!("host {name} is in sync; nothing to do");
                    Ok(())
                }
                ferro_compute::service::Resync::NotFound => anyhow::bail!("no host named {name:?}"),
            }
        }
        HostAction::Remove {
            name,
            force,
            state_dir,
            database_url,
        } => {
            let db = open_db(&state_dir, database_url.as_deref()).await?;
            let r = store::remove_host(&db, &name, force).await;
            db.close().await;
            match r? {
                store::Removed::Done => {
                    println!("host {name} removed; its certificate is refused from now on");
                    Ok(())
                }
                store::Removed::NotFound => anyhow::bail!("no host named {name:?}"),
                store::Removed::Busy(servers) => anyhow::bail!(
                    "host {name} still holds {} server(s) ({}); delete or evacuate them, or pass --force",
                    servers.len(),
                    servers.join(", ")
                ),
            }
        }
    }
}

fn parse_dns(s: &str) -> anyhow::Result<Vec<String>> {
    s.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse::<std::net::Ipv4Addr>()
                .map(|ip| ip.to_string())
                .map_err(|_| anyhow::anyhow!("--dns-servers: {d:?} is not an IPv4 address"))
        })
        .collect()
}

async fn agent(a: AgentArgs) -> anyhow::Result<()> {
    let mut cfg = Config::new(a.state_dir);
    cfg.host_name = a.host_name;
    cfg.tunnel_ip = a.tunnel_ip;
    cfg.bridge_mappings = parse_mappings(&a.bridge_mappings)?;
    cfg.dns_servers = parse_dns(&a.dns_servers)?;
    cfg.fake_dataplane = a.dataplane.map(|d| d == "fake");
    cfg.hypervisor = if a.hypervisor == "fake" {
        Hypervisor::Fake
    } else {
        Hypervisor::Qemu
    };
    cfg.fake_capacity = match (a.fake_capacity, a.hypervisor.as_str()) {
        (Some(_), h) if h != "fake" => anyhow::bail!("--fake-capacity needs --hypervisor fake"),
        (c, _) => c,
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(ferrostack::contract::join::run(
        ferrostack::contract::join::JoinConfig {
            controller_url: a.join,
            token: a.token,
            cfg,
            agent_port: a.agent_port,
            advertise_ip: a.advertise_ip,
            network_node: a.network_node,
        },
        shutdown,
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = run => return r?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping the agent; its VMs keep running");
    let _ = stop.send(true);
    Ok(())
}

async fn up(a: UpArgs, local_agent: bool) -> anyhow::Result<()> {
    let cfg = Config {
        state_dir: a.state_dir,
        database_url: a.database_url,
        bind: a.bind,
        public_host: a.public_host,
        identity_port: if a.ephemeral_ports {
            0
        } else {
            a.identity_port
        },
        image_port: if a.ephemeral_ports { 0 } else { a.image_port },
        compute_port: if a.ephemeral_ports { 0 } else { a.compute_port },
        placement_port: if a.ephemeral_ports {
            0
        } else {
            a.placement_port
        },
        network_port: if a.ephemeral_ports { 0 } else { a.network_port },
        volume_port: if a.ephemeral_ports { 0 } else { a.volume_port },
        loadbalancer_port: if a.ephemeral_ports {
            0
        } else {
            a.loadbalancer_port
        },
        keymanager_port: if a.ephemeral_ports {
            0
        } else {
            a.keymanager_port
        },
        fake_volumes: None,
        force_config_drive: a.force_config_drive,
        dashboard_port: if a.ephemeral_ports {
            0
        } else {
            a.dashboard_port
        },
        bridge_mappings: parse_mappings(&a.bridge_mappings)?,
        external_cidr: a.external_cidr,
        external_nat: a.external_nat,
        dns_servers: parse_dns(&a.dns_servers)?,
        fake_dataplane: a.dataplane.map(|d| d == "fake"),
        hypervisor: if a.hypervisor == "fake" {
            Hypervisor::Fake
        } else {
            Hypervisor::Qemu
        },
        host_name: a.host_name,
        tunnel_ip: a.tunnel_ip,
        fake_fail_spawn: None,
        fake_capacity: match (a.fake_capacity, a.hypervisor.as_str()) {
            (Some(_), h) if h != "fake" => {
                anyhow::bail!("--fake-capacity needs --hypervisor fake")
            }
            (c, _) => c,
        },
        max_limit: a.max_limit as usize,
        tls: a.tls,
        local_agent,
        // Joined hosts need the same port after a restart: one given
        // explicitly is kept even with --ephemeral-ports.
        contract_port: a.contract_port.unwrap_or(if a.ephemeral_ports {
            0
        } else {
            ferrostack::contract::DEFAULT_PORT
        }),
        bcrypt_cost: a.bcrypt_cost,
        token_ttl_secs: a.token_ttl,
    };
    let cloud = Cloud::start(cfg).await?;
    println!("ferrostack is up");
    println!("  identity: {}", cloud.identity_url);
    println!("  image:    {}", cloud.image_url);
    println!("  compute:  {}", cloud.compute_url);
    println!("  network:  {}", cloud.network_url);
    println!("  placement: {}", cloud.placement_url);
    println!("  block storage: {}", cloud.volume_url);
    println!("  load balancer: {}", cloud.loadbalancer_url);
    println!("  key manager: {}", cloud.keymanager_url);
    println!("  dashboard: {}", cloud.dashboard_url);
    println!(
        "  hosts join at: {} (ferrostack host add NAME)",
        cloud.contract_url
    );
    println!("  credentials: source {}", cloud.openrc.display());
    // (the client reads clouds.yaml from the working directory or from
    // OS_CLIENT_CONFIG_FILE: the second works from anywhere)
    let clouds = cloud.openrc.with_file_name("clouds.yaml");
    println!(
        "  or, from any directory: export OS_CLIENT_CONFIG_FILE={}; openstack --os-cloud ferrostack …",
        clouds.display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    // Work in flight gets a moment to finish; a stop never hangs on it
    // (say, on a database that is gone).
    if tokio::time::timeout(std::time::Duration::from_secs(15), cloud.stop())
        .await
        .is_err()
    {
        tracing::warn!("some work did not finish within 15 s of the stop; exiting anyway");
    }
    Ok(())
}

/// `VCPUS,RAM_MB,DISK_GB` → three positive numbers.
fn parse_capacity(s: &str) -> Result<[i64; 3], String> {
    let bad = || format!("expected VCPUS,RAM_MB,DISK_GB (positive whole numbers), got {s:?}");
    let n: Vec<i64> = s
        .split(',')
        .map(|x| x.trim().parse::<i64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    match n[..] {
        [v, r, d] if v > 0 && r > 0 && d > 0 => Ok([v, r, d]),
        _ => Err(bad()),
    }
}

/// `physnet1:br-ex,physnet2:br-two` → pairs.
fn parse_mappings(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    s.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| match m.split_once(':') {
            Some((p, b)) if !p.is_empty() && !b.is_empty() && b.len() <= 15 => {
                Ok((p.to_owned(), b.to_owned()))
            }
            _ => anyhow::bail!(
                "bad bridge mapping {m:?}: expected PHYSNET:BRIDGE (bridge names are at most 15 characters)"
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_capacity_takes_three_positive_numbers() {
        assert_eq!(parse_capacity("8, 16384,100"), Ok([8, 16384, 100]));
        for bad in ["8,16384", "8,16384,0", "a,b,c", "1,2,3,4", ""] {
            assert!(parse_capacity(bad).is_err(), "{bad:?}");
        }
    }
}
