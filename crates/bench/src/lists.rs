//! `ferro-bench lists`: list latency with many servers and ports. Starts
//! the real binary with the fake hypervisor and dataplane, boots N servers
//! on one network (so N ports), then times `GET /servers/detail` (one page,
//! and every page following `next` links as the CLI does),
//! `GET /v2.0/ports` and the CLI's `GET /v2.0/ports?device_id=…`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "target/release/ferrostack")]
    bin: PathBuf,
    #[arg(long, default_value = "/var/tmp/ferro-bench-lists")]
    work: PathBuf,
    /// Servers (and ports) to create.
    #[arg(long, default_value_t = 10_000)]
    servers: usize,
    /// Timed requests per list.
    #[arg(long, default_value_t = 20)]
    runs: usize,
}

struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut rb = self
            .http
            .request(method, url)
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", "compute 2.79");
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await?;
        let status = r.status();
        let text = r.text().await?;
        anyhow::ensure!(status.is_success(), "{url}: {status} {text}");
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(&a.work);
    let state = a.work.join("state");
    std::fs::create_dir_all(&state)?;
    let mut child = std::process::Command::new(&a.bin)
        .args([
            "up",
            "--state-dir",
            state.to_str().unwrap_or("."),
            "--ephemeral-ports",
            "--bcrypt-cost",
            "4",
            "--hypervisor",
            "fake",
            // One fake host big enough for every server.
            "--fake-capacity",
            "1000000,1000000000,1000000",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(a.work.join("ferrostack.log"))?)
        .spawn()?;
    let result = measure(&a, &state).await;
    let _ = child.kill();
    let _ = child.wait();
    match &result {
        // The server's warnings and errors say why.
        Err(_) => eprintln!("kept {} (ferrostack.log)", a.work.display()),
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&a.work);
        }
    }
    result
}

async fn measure(a: &Args, state: &std::path::Path) -> anyhow::Result<()> {
    let start = Instant::now();
    while !state.join("openrc").exists() {
        anyhow::ensure!(start.elapsed() < Duration::from_secs(30), "no openrc");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let catalog: Value = http
        .get(format!("{auth_url}/auth/catalog"))
        .header("X-Auth-Token", &token)
        .send()
        .await?
        .json()
        .await?;
    let url_of = |kind: &str| -> String {
        catalog["catalog"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["type"] == kind)
            .and_then(|s| s["endpoints"][0]["url"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    let (compute, network, image) = (url_of("compute"), url_of("network"), url_of("image"));
    let api = Api {
        http: http.clone(),
        token: token.clone(),
    };
    use reqwest::Method as M;
    // Lift the quotas of the admin project.
    let me: Value = http
        .get(format!("{auth_url}/auth/tokens"))
        .header("X-Auth-Token", &token)
        .header("X-Subject-Token", &token)
        .send()
        .await?
        .json()
        .await?;
    let pid = me["token"]["project"]["id"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    api.call(
        M::PUT,
        &format!("{compute}/os-quota-sets/{pid}"),
        Some(json!({"quota_set": {"instances": -1, "cores": -1, "ram": -1}})),
    )
    .await?;
    api.call(
        M::PUT,
        &format!("{network}/v2.0/quotas/{pid}"),
        Some(json!({"quota": {"port": -1}})),
    )
    .await?;
    let img = api
        .call(
            M::POST,
            &format!("{image}/v2/images"),
            Some(json!({"name": "img", "disk_format": "raw", "container_format": "bare"})),
        )
        .await?;
    let img = img["id"].as_str().unwrap_or("").to_owned();
    http.put(format!("{image}/v2/images/{img}/file"))
        .header("X-Auth-Token", &token)
        .header("Content-Type", "application/octet-stream")
        .body(vec![0u8; 1 << 20])
        .send()
        .await?;
    let f = api
        .call(
            M::POST,
            &format!("{compute}/flavors"),
            Some(json!({"flavor": {"name": "nano", "ram": 1, "vcpus": 1, "disk": 0}})),
        )
        .await?;
    let flavor = f["flavor"]["id"].as_str().unwrap_or("").to_owned();
    let net = api
        .call(
            M::POST,
            &format!("{network}/v2.0/networks"),
            Some(json!({"network": {"name": "big"}})),
        )
        .await?;
    let net = net["network"]["id"].as_str().unwrap_or("").to_owned();
    api.call(
        M::POST,
        &format!("{network}/v2.0/subnets"),
        Some(json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/16"}})),
    )
    .await?;
    let t = Instant::now();
    let batch = 100;
    let mut made = 0;
    while made < a.servers {
        let n = batch.min(a.servers - made);
        api.call(
            M::POST,
            &format!("{compute}/servers"),
            Some(
                json!({"server": {"name": format!("s{made}"), "imageRef": img,
            "flavorRef": flavor, "networks": [{"uuid": net}], "min_count": n, "max_count": n}}),
            ),
        )
        .await?;
        made += n;
    }
    println!(
        "created {} servers with a port each in {:.1} s",
        a.servers,
        t.elapsed().as_secs_f64()
    );
    let times = |label: &'static str, url: String| {
        let api = &api;
        async move {
            let mut v = Vec::new();
            let mut count = 0;
            for _ in 0..a.runs {
                let t = Instant::now();
                let body = api.call(M::GET, &url, None).await?;
                v.push(t.elapsed().as_secs_f64() * 1000.0);
                count = body
                    .as_object()
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_array)
                    .map(Vec::len)
                    .unwrap_or(0);
            }
            println!(
                "{label}: p50 {:.1} ms over {} requests ({count} items)",
                p50(v),
                a.runs
            );
            anyhow::Ok(())
        }
    };
    times(
        "GET /servers/detail (one page: max_limit servers)",
        format!("{compute}/servers/detail"),
    )
    .await?;
    // What `openstack server list` does: follow the `next` links to the end.
    let mut v = Vec::new();
    let (mut pages, mut count) = (0, 0);
    for _ in 0..a.runs {
        let t = Instant::now();
        let mut next = Some(format!("{compute}/servers/detail"));
        (pages, count) = (0, 0);
        while let Some(url) = next.take() {
            anyhow::ensure!(pages < 1_000, "paging never ends at {url}");
            let body = api.call(M::GET, &url, None).await?;
            pages += 1;
            count += body["servers"].as_array().map(Vec::len).unwrap_or(0);
            next = body["servers_links"]
                .as_array()
                .and_then(|l| l.iter().find(|l| l["rel"] == "next"))
                .and_then(|l| l["href"].as_str())
                .map(str::to_owned);
        }
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "GET /servers/detail, every page: p50 {:.1} ms over {} walks ({count} items in {pages} pages)",
        p50(v),
        a.runs
    );
    times("GET /v2.0/ports", format!("{network}/v2.0/ports")).await?;
    let one = api
        .call(M::GET, &format!("{compute}/servers?limit=1"), None)
        .await?;
    let sid = one["servers"][0]["id"].as_str().unwrap_or("").to_owned();
    times(
        "GET /v2.0/ports?device_id=<one server>",
        format!("{network}/v2.0/ports?device_id={sid}"),
    )
    .await?;
    times("GET /v2.0/networks", format!("{network}/v2.0/networks")).await?;
    Ok(())
}
