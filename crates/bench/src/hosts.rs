//! `ferro-bench hosts`: many simulated hosts joined to one `ferrostack
//! controller` over the real contract — each enrolled with its own join
//! token and certificate, each with its own mutual-TLS client, all in this
//! one process — registering and heartbeating every 10 s as agents do
//! (with `--poll-desired`, also fetching their desired state every 2 s).
//! Prints the controller's CPU per heartbeat, its share of a core, and its
//! RSS, next to the same controller idle with no host. Asserts nothing.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferro_agent_api::HostInfo;
use ferrostack::contract::{self, join, pki, store};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "target/release/ferrostack")]
    bin: PathBuf,
    /// Simulated hosts.
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    /// Seconds of the measured window (several heartbeat periods).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Also poll desired state every 2 s per host, as a real agent does.
    #[arg(long)]
    poll_desired: bool,
    /// Once the hosts are registered, time this many `GET
    /// /allocation_candidates` over all of them (0: none).
    #[arg(long, default_value_t = 0)]
    candidates: usize,
    #[arg(long, default_value = "/var/tmp/ferro-bench-hosts")]
    work: PathBuf,
}

const HEARTBEAT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_secs(2);

struct Controller(std::process::Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn ticks_per_second() -> f64 {
    100.0
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(&a.work);
    std::fs::create_dir_all(&a.work)?;
    let state = a.work.join("controller");
    let child = Command::new(&a.bin)
        .args([
            "controller",
            "--state-dir",
            state.to_str().unwrap_or_default(),
        ])
        .args(["--ephemeral-ports", "--bcrypt-cost", "4"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let ctl = Controller(child);
    let t0 = Instant::now();
    while !state.join("openrc").exists() {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(30),
            "no openrc after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let url = std::fs::read_to_string(state.join("contract/url"))?;

    // The same controller idle, with no host, is the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_window = Duration::from_secs(10);
    let c0 = super::cpu_ticks(pid);
    tokio::time::sleep(idle_window).await;
    let idle_cpu = (super::cpu_ticks(pid) - c0) as f64 / ticks_per_second();
    let idle_rss = super::rss_kib(pid);

    // Tokens, written to the controller's database as `host add` does.
    let db = ferro_store::Db::open_sqlite(&state.join("ferrostack.db")).await?;
    let fp = pki::Ca::load_or_create(&state)?.fingerprint();
    let mut tokens = Vec::with_capacity(a.hosts);
    for i in 0..a.hosts {
        let name = format!("sim-{i:05}");
        let (secret, _) = store::create_token(&db, &name, 3600)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tokens.push((name, contract::format_token(&secret, &fp)));
    }
    db.close().await;

    // Enrol and register every host, 16 at a time.
    let t_enrol = Instant::now();
    let mut clients = Vec::with_capacity(a.hosts);
    for chunk in tokens.chunks(16) {
        let joins = chunk.iter().map(|(name, token)| {
            let url = url.clone();
            async move {
                let ip = std::net::IpAddr::from([127, 0, 0, 1]);
                let (id, ca) = join::enrol(&url, token, name, ip).await?;
                let client = contract::client(&ca, Some(&id))?;
                let info = HostInfo {
                    name: name.clone(),
                    hypervisor_type: "fake".into(),
                    hypervisor_version: 1,
                    host_ip: "127.0.0.1".into(),
                    vcpus: 32,
                    memory_mb: 131072,
                    disk_gb: 2000,
                    agent_url: None,
                    network_node: false,
                    tunnel_ip: None,
                };
                let r = client
                    .post(format!("{url}/contract/v1/register"))
                    .json(&info)
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "register {name}: {}", r.status());
                anyhow::Ok(client)
            }
        });
        for c in futures::future::join_all(joins).await {
            clients.push(c?);
        }
    }
    let enrol_s = t_enrol.elapsed().as_secs_f64();
    if a.candidates > 0 {
        candidates(&state, pid, a.candidates, a.hosts).await?;
    }

    // Heartbeats (and polls), each host at its own phase of the period.
    let beats = Arc::new(AtomicU64::new(0));
    let polls = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let window = Duration::from_secs(a.seconds);
    let settle = HEARTBEAT;
    let end = Instant::now() + settle + window;
    let n = clients.len().max(1);
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (beats, polls, errors, url) =
            (beats.clone(), polls.clone(), errors.clone(), url.clone());
        let poll = a.poll_desired;
        tasks.push(tokio::spawn(async move {
            let phase = HEARTBEAT.mul_f64(i as f64 / n as f64);
            tokio::time::sleep(phase).await;
            let mut next_beat = Instant::now();
            let mut next_poll = Instant::now();
            while Instant::now() < end {
                if Instant::now() >= next_beat {
                    let ok = client
                        .post(format!("{url}/contract/v1/heartbeat"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok { &beats } else { &errors }.fetch_add(1, Ordering::Relaxed);
                    next_beat += HEARTBEAT;
                }
                if poll && Instant::now() >= next_poll {
                    let ok = client
                        .get(format!("{url}/contract/v1/desired?applied=0"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok { &polls } else { &errors }.fetch_add(1, Ordering::Relaxed);
                    next_poll += POLL;
                }
                let wake = if poll {
                    next_beat.min(next_poll)
                } else {
                    next_beat
                };
                tokio::time::sleep(
                    wake.saturating_duration_since(Instant::now())
                        .min(end.saturating_duration_since(Instant::now())),
                )
                .await;
            }
        }));
    }
    // Measure after one full period, when every host is in its rhythm.
    tokio::time::sleep(settle).await;
    let (b0, p0, c0) = (
        beats.load(Ordering::Relaxed),
        polls.load(Ordering::Relaxed),
        super::cpu_ticks(pid),
    );
    tokio::time::sleep(window).await;
    let (b1, p1, c1) = (
        beats.load(Ordering::Relaxed),
        polls.load(Ordering::Relaxed),
        super::cpu_ticks(pid),
    );
    let rss = super::rss_kib(pid);
    for t in tasks {
        let _ = t.await;
    }
    drop(ctl);

    let cpu = (c1 - c0) as f64 / ticks_per_second();
    let secs = window.as_secs_f64();
    let idle_share = idle_cpu / idle_window.as_secs_f64();
    let requests = (b1 - b0) + (p1 - p0);
    println!(
        "hosts: {} simulated, enrolled and registered in {enrol_s:.1} s",
        a.hosts
    );
    println!(
        "window: {secs:.0} s, {} heartbeats ({:.1}/s){}, {} errors",
        b1 - b0,
        (b1 - b0) as f64 / secs,
        if a.poll_desired {
            format!(
                ", {} desired-state polls ({:.1}/s)",
                p1 - p0,
                (p1 - p0) as f64 / secs
            )
        } else {
            String::new()
        },
        errors.load(Ordering::Relaxed)
    );
    println!(
        "controller CPU: {:.2} % of a core with the hosts, {:.2} % idle with none (baseline, same run)",
        100.0 * cpu / secs,
        100.0 * idle_share
    );
    if requests > 0 {
        println!(
            "controller CPU per request above idle: {:.3} ms",
            1000.0 * (cpu - idle_share * secs).max(0.0) / requests as f64
        );
    }
    println!(
        "controller RSS: {:.1} MiB with the hosts, {:.1} MiB idle",
        rss as f64 / 1024.0,
        idle_rss as f64 / 1024.0
    );
    Ok(())
}

/// Controller CPU and latency per `GET /allocation_candidates` over every
/// registered host, next to the same decision over as many hosts made in
/// memory in this process (the scheduler alone: the floor).
async fn candidates(
    state: &std::path::Path,
    pid: u32,
    n: usize,
    hosts: usize,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(state.join("openrc"))?;
    let var = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {k}=")))
            .unwrap_or("")
            .to_owned()
    };
    let auth_url = var("OS_AUTH_URL");
    let http = reqwest::Client::new();
    let token = crate::issue_at(&http, &auth_url, &var("OS_PASSWORD")).await?;
    let catalog: serde_json::Value = http
        .get(format!("{auth_url}/auth/catalog"))
        .header("X-Auth-Token", &token)
        .send()
        .await?
        .json()
        .await?;
    let placement = catalog["catalog"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["type"] == "placement")
        .and_then(|s| s["endpoints"][0]["url"].as_str())
        .unwrap_or("")
        .to_owned();
    let url = format!("{placement}/allocation_candidates?resources=VCPU:1,MEMORY_MB:512,DISK_GB:1");
    let get = || {
        http.get(&url)
            .header("X-Auth-Token", &token)
            .header("OpenStack-API-Version", "placement 1.10")
            .send()
    };
    let first: serde_json::Value = get().await?.json().await?;
    let answered = first["allocation_requests"].as_array().map_or(0, Vec::len);
    let c0 = super::cpu_ticks(pid);
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = get().await?;
        anyhow::ensure!(
            r.status().is_success(),
            "allocation_candidates: {}",
            r.status()
        );
        r.bytes().await?;
        lat.push(t.elapsed());
    }
    let cpu_ms = (super::cpu_ticks(pid) - c0) as f64 * 1000.0 / ticks_per_second() / n as f64;
    lat.sort();
    let (floor, _, _) = crate::scheduler_ms(hosts);
    println!(
        "allocation candidates over {hosts} hosts: {cpu_ms:.2} ms controller CPU per request, p50 {:.1} ms, {answered} candidates per answer ({n} requests)",
        super::pct(&lat, 0.5)
    );
    println!(
        "the same decision in memory (scheduler alone, this process): {floor:.3} ms — the API costs {:.0}x that",
        cpu_ms / floor.max(1e-9)
    );
    Ok(())
}
