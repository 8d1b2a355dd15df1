//! `ferro-bench compute`: the orchestration overhead of booting a server.
//!
//! Boots the tiny image three ways, each timed from its own start to the
//! guest's "ready" line on the serial console: a bare `qemu-system-x86_64`
//! (same accelerator, CPU, memory, disk overlay and config drive as the
//! driver uses), `POST /servers` through ferrostack (also timed to ACTIVE),
//! and ten servers created at once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "target/release/ferrostack")]
    bin: PathBuf,
    /// The tiny image (scripts/test builds it).
    #[arg(long, env = "FERRO_TINY_IMAGE")]
    image: PathBuf,
    #[arg(long, default_value = "/var/tmp/ferro-bench-compute")]
    work: PathBuf,
    /// Boots of each kind (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn sh(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let st = std::process::Command::new(cmd).args(args).status()?;
    anyhow::ensure!(st.success(), "{cmd} {args:?} failed");
    Ok(())
}

/// Seconds from qemu start to the ready line, for a bare qemu boot.
fn bare_boot(a: &Args, n: usize) -> anyhow::Result<f64> {
    let dir = a.work.join(format!("bare-{n}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cd/openstack/latest"))?;
    std::fs::write(
        dir.join("cd/openstack/latest/meta_data.json"),
        json!({"uuid": format!("bare-{n}"), "hostname": "bare", "public_keys": {}}).to_string(),
    )?;
    let p = |f: &str| dir.join(f).display().to_string();
    sh(
        "genisoimage",
        &[
            "-o",
            &p("config.iso"),
            "-quiet",
            "-J",
            "-r",
            "-V",
            "config-2",
            &p("cd"),
        ],
    )?;
    sh(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            &a.image.display().to_string(),
            &p("disk.qcow2"),
            "20G",
        ],
    )?;
    let t0 = Instant::now();
    let mut child = std::process::Command::new("qemu-system-x86_64")
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-m",
            "1024",
            "-smp",
            "1",
        ])
        .args([
            "-chardev",
            &format!("file,id=console,path={}", p("console.log")),
            "-serial",
            "chardev:console",
        ])
        .args([
            "-drive",
            &format!("file={},if=virtio,format=qcow2", p("disk.qcow2")),
        ])
        .args([
            "-drive",
            &format!(
                "file={},if=ide,media=cdrom,readonly=on,format=raw",
                p("config.iso")
            ),
        ])
        .args([
            "-object",
            "rng-random,filename=/dev/urandom,id=rng0",
            "-device",
            "virtio-rng-pci,rng=rng0",
        ])
        .spawn()?;
    let ready = wait_file(
        &dir.join("console.log"),
        "ferrostack-tiny: ",
        Duration::from_secs(120),
    );
    let secs = t0.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(ready, "bare qemu never printed the ready line");
    Ok(secs)
}

fn wait_file(path: &Path, needle: &str, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if std::fs::read_to_string(path)
            .map(|s| s.contains(needle))
            .unwrap_or(false)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

struct Api {
    http: reqwest::Client,
    compute: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut rb = self
            .http
            .request(method, format!("{}/{path}", self.compute))
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", "compute 2.79");
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await?;
        let status = r.status();
        let text = r.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status} {text}");
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    async fn status(&self, id: &str) -> String {
        self.call(reqwest::Method::GET, &format!("servers/{id}"), None)
            .await
            .map(|v| v["server"]["status"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    }

    async fn console_has(&self, id: &str, needle: &str) -> bool {
        self.call(
            reqwest::Method::POST,
            &format!("servers/{id}/action"),
            Some(json!({"os-getConsoleOutput": {"length": 50}})),
        )
        .await
        .map(|v| v["output"].as_str().unwrap_or("").contains(needle))
        .unwrap_or(false)
    }
}

/// Creates `n` servers at once; returns (to ACTIVE, to ready) in seconds
/// for the last of them.
async fn boot(
    api: &Api,
    image: &str,
    flavor: &str,
    n: usize,
    tag: &str,
) -> anyhow::Result<(f64, f64)> {
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let body = json!({"server": {"name": format!("{tag}-{i}"), "imageRef": image, "flavorRef": flavor, "networks": "none"}});
        let v = api
            .call(reqwest::Method::POST, "servers", Some(body))
            .await?;
        ids.push(v["server"]["id"].as_str().unwrap_or("").to_owned());
    }
    let mut active = None;
    let mut ready = vec![false; n];
    let limit = Duration::from_secs(60 + 30 * n as u64);
    while t0.elapsed() < limit {
        if active.is_none() {
            let mut all = true;
            for id in &ids {
                let st = api.status(id).await;
                anyhow::ensure!(st != "ERROR", "server {id} went ERROR");
                all &= st == "ACTIVE";
            }
            if all {
                active = Some(t0.elapsed().as_secs_f64());
            }
        }
        for (i, id) in ids.iter().enumerate() {
            if !ready[i] {
                ready[i] = api.console_has(id, "ferrostack-tiny: ").await;
            }
        }
        if active.is_some() && ready.iter().all(|r| *r) {
            let done = t0.elapsed().as_secs_f64();
            for id in &ids {
                let _ = api
                    .call(reqwest::Method::DELETE, &format!("servers/{id}"), None)
                    .await;
            }
            // Let the deletes finish before the next run.
            for id in &ids {
                while !api.status(id).await.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            return Ok((active.unwrap_or(done), done));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("servers did not boot within {limit:?}")
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(&a.work);
    std::fs::create_dir_all(&a.work)?;
    let mut bare = Vec::new();
    for i in 0..a.runs {
        bare.push(bare_boot(&a, i)?);
    }
    println!("bare qemu-system-x86_64 (TCG, -cpu max, 1024 MiB) → ready line: median {:.2} s over {} runs", median(bare.clone()), a.runs);

    let state = a.work.join("state");
    std::fs::create_dir_all(&state)?;
    let _ = std::fs::remove_file(state.join("openrc"));
    let mut child = std::process::Command::new(&a.bin)
        .args([
            "up",
            "--state-dir",
            state.to_str().unwrap_or("."),
            "--ephemeral-ports",
            "--bcrypt-cost",
            "4",
        ])
        .env("RUST_LOG", "warn")
        .env("FERROSTACK_ACCEL", "tcg")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let result = async {
        anyhow::ensure!(wait_file(&state.join("openrc"), "OS_AUTH_URL", Duration::from_secs(30)), "no openrc");
        let text = std::fs::read_to_string(state.join("openrc"))?;
        let var = |k: &str| text.lines().find_map(|l| l.strip_prefix(&format!("export {k}="))).unwrap_or("").to_owned();
        let auth_url = var("OS_AUTH_URL");
        let http = reqwest::Client::new();
        let token = crate::issue_at(&http, &auth_url, &var("OS_PASSWORD")).await?;
        let catalog: Value = http
            .get(format!("{auth_url}/auth/catalog"))
            .header("X-Auth-Token", &token)
            .send()
            .await?
            .json()
            .await?;
        let url_of = |kind: &str| -> String {
            catalog["catalog"].as_array().into_iter().flatten().find(|s| s["type"] == kind)
                .and_then(|s| s["endpoints"][0]["url"].as_str()).unwrap_or("").to_owned()
        };
        let api = Api { http: http.clone(), compute: url_of("compute"), token: token.clone() };
        let image_url = url_of("image");
        let img: Value = http.post(format!("{image_url}/v2/images")).header("X-Auth-Token", &token)
            .json(&json!({"name": "tiny", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}))
            .send().await?.json().await?;
        let image = img["id"].as_str().unwrap_or("").to_owned();
        let data = tokio::fs::read(&a.image).await?;
        let put = http.put(format!("{image_url}/v2/images/{image}/file")).header("X-Auth-Token", &token)
            .header("Content-Type", "application/octet-stream").body(data).send().await?;
        anyhow::ensure!(put.status().is_success(), "upload: {}", put.status());
        let f = api.call(reqwest::Method::POST, "flavors", Some(json!({"flavor": {"name": "m1.tiny", "ram": 1024, "vcpus": 1, "disk": 20}}))).await?;
        let flavor = f["flavor"]["id"].as_str().unwrap_or("").to_owned();
        // The first boot also converts the image into the host cache.
        let (a0, r0) = boot(&api, &image, &flavor, 1, "warm").await?;
        println!("first server (cold image cache): create → ACTIVE {a0:.2} s, → ready line {r0:.2} s");
        let mut to_active = Vec::new();
        let mut to_ready = Vec::new();
        for i in 0..a.runs {
            let (x, y) = boot(&api, &image, &flavor, 1, &format!("one{i}")).await?;
            to_active.push(x);
            to_ready.push(y);
        }
        let (ma, mr, mb) = (median(to_active), median(to_ready), median(bare));
        println!("ferrostack server create → ACTIVE: median {ma:.2} s; → ready line: median {mr:.2} s ({} runs)", a.runs);
        println!("orchestration ratio (create → ready) / (bare qemu → ready): {:.2}", mr / mb);
        let (ta, tr) = boot(&api, &image, &flavor, 10, "ten").await?;
        println!("10 servers created at once: all ACTIVE after {ta:.2} s, all ready after {tr:.2} s");
        Ok(())
    }
    .await;
    // Whatever happened, leave no VM behind: kill them by their pid files.
    if let Ok(rd) = std::fs::read_dir(state.join("instances")) {
        for e in rd.flatten() {
            if let Ok(pid) = std::fs::read_to_string(e.path().join("qemu.pid")) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", pid.trim()])
                    .status();
            }
        }
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&a.work);
    result
}
