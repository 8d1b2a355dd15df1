//! `ferro-bench identity`: starts the release binary on a fresh state
//! directory and measures exec → first token, idle memory, and token
//! issue/validate throughput, latency and server CPU per request. Prints
//! numbers; asserts nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

mod compute;
mod hosts;
mod lists;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// exec → first token, idle RSS, token issue/validate throughput.
    Identity(Args),
    /// server create → ACTIVE → guest ready, next to a bare qemu boot; 10 at once.
    Compute(compute::Args),
    /// List latency with 10k servers and ports (fake hypervisor).
    Lists(lists::Args),
    /// Many simulated hosts joined and heartbeating to one controller.
    Hosts(hosts::Args),
    /// The scheduler over many hosts.
    Scheduler {
        #[arg(long, default_value_t = 1000)]
        hosts: usize,
    },
}

#[derive(Parser)]
pub struct Args {
    /// Path of the ferrostack binary.
    #[arg(long, default_value = "target/release/ferrostack")]
    bin: PathBuf,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds per load phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// bcrypt cost of the server.
    #[arg(long, default_value_t = 4)]
    bcrypt_cost: u32,
    /// Scratch directory.
    #[arg(long, default_value = "/var/tmp/ferro-bench")]
    work: PathBuf,
}

struct Server {
    child: Child,
    url: String,
    password: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn start(args: &Args, state: &Path) -> anyhow::Result<(Server, Instant)> {
    let _ = std::fs::remove_file(state.join("openrc"));
    let t0 = Instant::now();
    let child = Command::new(&args.bin)
        .args([
            "up",
            "--state-dir",
            state.to_str().unwrap(),
            "--ephemeral-ports",
        ])
        .args(["--bcrypt-cost", &args.bcrypt_cost.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let openrc = state.join("openrc");
    while !openrc.exists() {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(30),
            "no openrc after 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let text = std::fs::read_to_string(&openrc)?;
    let var = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {k}=")))
            .unwrap_or("")
            .to_owned()
    };
    Ok((
        Server {
            child,
            url: var("OS_AUTH_URL"),
            password: var("OS_PASSWORD"),
        },
        t0,
    ))
}

fn auth_body(password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
        "domain": {"name": "admin_domain"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "admin_domain"}}}}})
}

async fn issue(http: &reqwest::Client, s: &Server) -> anyhow::Result<String> {
    issue_at(http, &s.url, &s.password).await
}

pub async fn issue_at(http: &reqwest::Client, url: &str, password: &str) -> anyhow::Result<String> {
    let r = http
        .post(format!("{url}/auth/tokens"))
        .json(&auth_body(password))
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 201, "auth: {}", r.status());
    Ok(r.headers()["x-subject-token"].to_str()?.to_owned())
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Runs `make` requests from `concurrency` clients for `seconds`.
async fn load<F, Fut>(args: &Args, pid: u32, name: &str, make: F)
where
    F: Fn(reqwest::Client) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let ticks0 = cpu_ticks(pid);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let stop = stop.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut lat = Vec::new();
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if make(http.clone()).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let wall = t0.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid) - ticks0;
    lat.sort();
    let n = lat.len() as f64;
    let cpu_ms = ticks as f64 * 10.0 / n.max(1.0);
    println!(
        "{name}: {:.0} req/s over {wall:.1} s at concurrency {}, p50 {:.3} ms, p99 {:.3} ms, server CPU {:.4} ms/request, errors {errors}",
        n / wall,
        args.concurrency,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        cpu_ms
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Identity(a) => identity(a).await,
        Cmd::Compute(a) => compute::run(a).await,
        Cmd::Lists(a) => lists::run(a).await,
        Cmd::Hosts(a) => hosts::run(a).await,
        Cmd::Scheduler { hosts } => {
            scheduler(hosts);
            Ok(())
        }
    }
}

fn scheduler(n: usize) {
    let (per, fit, iterations) = scheduler_ms(n);
    println!(
        "scheduler: {n} hosts, {per:.3} ms per decision ({fit} hosts fit), {iterations} decisions"
    );
}

/// The scheduler's decision over `n` varied hosts, in memory: (ms per
/// decision, hosts that fit, decisions made).
pub fn scheduler_ms(n: usize) -> (f64, usize, usize) {
    use ferro_placement::{schedule, HostState, Request};
    let hosts: Vec<HostState> = (0..n)
        .map(|i| HostState {
            name: format!("host-{i:05}"),
            availability_zone: if i % 10 == 0 {
                "az2".into()
            } else {
                "nova".into()
            },
            enabled: i % 50 != 0,
            up: i % 70 != 0,
            hypervisor_type: "QEMU".into(),
            vcpus: 32,
            vcpus_used: (i as i64 * 7) % 128,
            memory_mb: 131072,
            memory_used_mb: (i as i64 * 7919) % 131072,
            disk_gb: 2000,
            disk_used_gb: (i as i64 * 13) % 2000,
            cpu_ratio_milli: 4000,
            ram_ratio_milli: 1000,
            disk_ratio_milli: 1000,
            ..Default::default()
        })
        .collect();
    let req = Request {
        vcpus: 2,
        memory_mb: 4096,
        disk_gb: 20,
        ..Default::default()
    };
    let iterations = 2000;
    let t = Instant::now();
    let mut picked = 0usize;
    for _ in 0..iterations {
        picked += schedule(&hosts, &req).map(|r| r.len()).unwrap_or(0);
    }
    let per = t.elapsed().as_secs_f64() * 1000.0 / iterations as f64;
    (per, picked / iterations, iterations)
}

async fn identity(args: Args) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let http = reqwest::Client::new();

    // Cold start on an empty state directory, then a restart on it.
    for label in ["first start (bootstrap)", "restart"] {
        let (server, t0) = start(&args, &args.work.join("state"))?;
        let mut tries = 0;
        loop {
            tries += 1;
            match issue(&http, &server).await {
                Ok(_) => break,
                Err(e) if tries > 1000 => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
        println!(
            "{label}: exec to first token {:.0} ms",
            t0.elapsed().as_secs_f64() * 1000.0
        );
        if label == "restart" {
            tokio::time::sleep(Duration::from_secs(3)).await;
            println!(
                "idle RSS after 3 s: {:.1} MiB",
                rss_kib(server.child.id()) as f64 / 1024.0
            );
            let pid = server.child.id();
            let server = Arc::new(server);
            let s = server.clone();
            load(
                &args,
                pid,
                &format!("token issue (bcrypt cost {})", args.bcrypt_cost),
                move |http| {
                    let s = s.clone();
                    async move { issue(&http, &s).await.is_ok() }
                },
            )
            .await;
            let admin = issue(&http, &server).await?;
            let subject = issue(&http, &server).await?;
            let url = format!("{}/auth/tokens", server.url);
            load(
                &args,
                pid,
                "token validate (GET /v3/auth/tokens)",
                move |http| {
                    let (url, admin, subject) = (url.clone(), admin.clone(), subject.clone());
                    async move {
                        match http
                            .get(&url)
                            .header("X-Auth-Token", &admin)
                            .header("X-Subject-Token", &subject)
                            .send()
                            .await
                        {
                            Ok(r) => r.status().as_u16() == 200 && r.bytes().await.is_ok(),
                            Err(_) => false,
                        }
                    }
                },
            )
            .await;
            println!("RSS after load: {:.1} MiB", rss_kib(pid) as f64 / 1024.0);
        }
    }
    let _ = std::fs::remove_dir_all(&args.work);
    Ok(())
}
