//! What this machine offers as a compute host: its name, address, CPUs,
//! memory and the disk under the state directory.

use ferro_agent::HostInfo;

use crate::cloud::Config;

fn meminfo_mb() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:").map(str::to_owned))
        })
        .and_then(|v| {
            v.split_whitespace()
                .next()
                .and_then(|n| n.parse::<i64>().ok())
        })
        .map(|kib| kib / 1024)
        .unwrap_or(1024)
}

fn disk_gb(path: &std::path::Path) -> i64 {
    std::process::Command::new("df")
        .args(["-P", "-k"])
        .arg(path)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|n| n.parse::<i64>().ok())
                })
        })
        .map(|kib| kib / (1024 * 1024))
        .unwrap_or(100)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

pub fn info(cfg: &Config, hypervisor_type: String) -> HostInfo {
    HostInfo {
        name: cfg.host_name.clone().unwrap_or_else(hostname),
        hypervisor_type,
        hypervisor_version: 10_000_002,
        host_ip: if cfg.bind.is_unspecified() {
            "127.0.0.1".into()
        } else {
            cfg.bind.to_string()
        },
        vcpus: match cfg.fake_capacity {
            Some([vcpus, _, _]) => vcpus,
            None => std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
        },
        memory_mb: cfg
            .fake_capacity
            .map(|[_, ram, _]| ram)
            .unwrap_or_else(meminfo_mb),
        disk_gb: cfg
            .fake_capacity
            .map(|[_, _, disk]| disk)
            .unwrap_or_else(|| disk_gb(&cfg.state_dir)),
        agent_url: None,
        network_node: false,
        tunnel_ip: cfg.tunnel_ip.map(|ip| ip.to_string()),
    }
}
