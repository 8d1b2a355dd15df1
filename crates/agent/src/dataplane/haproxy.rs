//! HAProxy for one load balancer: its configuration, written from the
//! [`BalancerSpec`] (a pure function, tested by text), and its runtime
//! state read back from the stats socket (`show stat`).
//!
//! A listener is a `frontend` on the VIP, a pool a `backend`, a member a
//! `server` named by its id, so the stats name every member. Health
//! checks are HAProxy's own (`check inter/rise/fall`; HTTP monitors with
//! `option httpchk`; PING monitors run `ping` as an external check).

use std::fmt::Write;
use std::path::Path;

use crate::balancer::{
    BalancerCounters, BalancerSpec, L7PolicySpec, L7RuleSpec, ListenerSpec, MemberHealth, PoolSpec,
};

/// HAProxy's `http-check expect` for Octavia's expected codes.
fn expect(codes: &str) -> String {
    match codes.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u16, u16) = (a.parse().unwrap_or(200), b.parse().unwrap_or(200));
            let all: Vec<String> = (a..=b).map(|c| c.to_string()).collect();
            format!("rstatus ^({})$", all.join("|"))
        }
        None if codes.contains(',') => format!("rstatus ^({})$", codes.replace(',', "|")),
        None => format!("status {codes}"),
    }
}

/// Whether HAProxy sees HTTP on a listener (TERMINATED_HTTPS once TLS is
/// off) rather than a stream.
fn is_http(protocol: &str) -> bool {
    protocol == "HTTP" || protocol == "TERMINATED_HTTPS"
}

fn mode(protocol: &str) -> &'static str {
    if is_http(protocol) {
        "http"
    } else {
        "tcp"
    }
}

/// Where each TERMINATED_HTTPS listener's certificates go (the agent
/// writes them, mode 0600, before checking the configuration), with
/// their PEM text.
pub fn certificate_files<'a>(
    b: &'a BalancerSpec,
    dir: &Path,
) -> Vec<(std::path::PathBuf, &'a str)> {
    b.listeners
        .iter()
        .flat_map(|l| {
            l.certificates
                .iter()
                .enumerate()
                .map(move |(i, pem)| (dir.join(format!("{}-{i}.pem", l.id)), pem.as_str()))
        })
        .collect()
}

fn frontend(out: &mut String, l: &ListenerSpec, vip: &str, dir: &Path) {
    let _ = writeln!(out, "\nfrontend {}", l.id);
    let _ = writeln!(out, "    mode {}", mode(&l.protocol));
    if l.certificates.is_empty() {
        let _ = writeln!(out, "    bind {vip}:{}", l.port);
    } else {
        let crts: Vec<String> = (0..l.certificates.len())
            .map(|i| format!("crt {}", dir.join(format!("{}-{i}.pem", l.id)).display()))
            .collect();
        let _ = writeln!(out, "    bind {vip}:{} ssl {}", l.port, crts.join(" "));
    }
    if let Some(c) = l.connection_limit {
        let _ = writeln!(out, "    maxconn {c}");
    }
    let _ = writeln!(out, "    timeout client {}", l.timeout_client_ms);
    if !l.allowed_cidrs.is_empty() {
        let _ = writeln!(
            out,
            "    tcp-request connection reject unless {{ src {} }}",
            l.allowed_cidrs.join(" ")
        );
    }
    if is_http(&l.protocol) {
        let _ = writeln!(out, "    option httplog");
        if l.forwarded_for {
            let _ = writeln!(out, "    option forwardfor");
        }
    }
    if is_http(&l.protocol) {
        l7(out, &l.l7policies);
    }
    if let Some(p) = &l.default_pool {
        let _ = writeln!(out, "    default_backend {p}");
    }
}

/// An L7 rule as an ACL's fetch, flags and value (values were checked
/// by the control plane to carry no whitespace or quotes).
fn acl(r: &L7RuleSpec) -> String {
    let how = match r.compare.as_str() {
        "STARTS_WITH" => "beg",
        "ENDS_WITH" => "end",
        "CONTAINS" => "sub",
        "REGEX" => "reg",
        _ => "str",
    };
    let key = r.key.as_deref().unwrap_or_default();
    match r.kind.as_str() {
        "HOST_NAME" => format!("req.hdr(host),field(1,:) -i -m {how} '{}'", r.value),
        "HEADER" => format!("req.hdr({key}) -m {how} '{}'", r.value),
        "COOKIE" => format!("req.cook({key}) -m {how} '{}'", r.value),
        "FILE_TYPE" if r.compare == "REGEX" => format!("path -i -m reg '{}'", r.value),
        "FILE_TYPE" => format!("path -i -m end '.{}'", r.value.trim_start_matches('.')),
        _ => format!("path -m {how} '{}'", r.value),
    }
}

/// A listener's L7 policies, Octavia's way: REJECT first, then the
/// redirects, then REDIRECT_TO_POOL, in position order within each (the
/// order HAProxy runs `http-request` and `use_backend` rules in anyway).
fn l7(out: &mut String, policies: &[L7PolicySpec]) {
    for p in policies {
        for r in &p.rules {
            let _ = writeln!(out, "    acl {} {}", r.id, acl(r));
        }
    }
    let cond = |p: &L7PolicySpec| {
        p.rules
            .iter()
            .map(|r| format!("{}{}", if r.invert { "!" } else { "" }, r.id))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let code = |p: &L7PolicySpec| p.redirect_code.unwrap_or(302);
    for p in policies.iter().filter(|p| p.action == "REJECT") {
        let _ = writeln!(out, "    http-request deny if {}", cond(p));
    }
    for p in policies {
        match (p.action.as_str(), &p.redirect_url, &p.redirect_prefix) {
            // Locations are log-format strings: a literal % is %%.
            ("REDIRECT_TO_URL", Some(u), _) => {
                let u = u.replace('%', "%%");
                let _ = writeln!(
                    out,
                    "    http-request redirect code {} location '{u}' if {}",
                    code(p),
                    cond(p)
                );
            }
            ("REDIRECT_PREFIX", _, Some(x)) => {
                let x = x.replace('%', "%%");
                let _ = writeln!(
                    out,
                    "    http-request redirect code {} prefix '{x}' if {}",
                    code(p),
                    cond(p)
                );
            }
            _ => {}
        }
    }
    for p in policies.iter().filter(|p| p.action == "REDIRECT_TO_POOL") {
        if let Some(pool) = &p.redirect_pool {
            let _ = writeln!(out, "    use_backend {pool} if {}", cond(p));
        }
    }
}

fn backend(out: &mut String, p: &PoolSpec, dir: &Path, listeners: &[&ListenerSpec]) {
    let _ = writeln!(out, "\nbackend {}", p.id);
    let _ = writeln!(out, "    mode {}", mode(&p.protocol));
    let balance = match p.algorithm.as_str() {
        "LEAST_CONNECTIONS" => "leastconn",
        "SOURCE_IP" => "source",
        _ => "roundrobin",
    };
    let _ = writeln!(out, "    balance {balance}");
    // The timeouts of the listener that sends here (HAProxy's defaults else).
    if let Some(l) = listeners.first() {
        let _ = writeln!(out, "    timeout connect {}", l.timeout_member_connect_ms);
        let _ = writeln!(out, "    timeout server {}", l.timeout_member_data_ms);
    }
    let mut cookie = false;
    match &p.persistence {
        Some((kind, _)) if kind == "SOURCE_IP" => {
            let _ = writeln!(out, "    stick-table type ip size 10k expire 30m");
            let _ = writeln!(out, "    stick on src");
        }
        Some((kind, _)) if kind == "HTTP_COOKIE" && p.protocol == "HTTP" => {
            let _ = writeln!(out, "    cookie SRV insert indirect nocache");
            cookie = true;
        }
        Some((kind, Some(name))) if kind == "APP_COOKIE" && p.protocol == "HTTP" => {
            let _ = writeln!(
                out,
                "    stick-table type string len 64 size 10k expire 30m"
            );
            let _ = writeln!(out, "    stick store-response res.cook({name})");
            let _ = writeln!(out, "    stick match req.cook({name})");
        }
        _ => {}
    }
    if let Some(m) = &p.monitor {
        match m.kind.as_str() {
            "HTTP" => {
                let _ = writeln!(out, "    option httpchk");
                let _ = writeln!(
                    out,
                    "    http-check send meth {} uri {}",
                    m.http_method, m.url_path
                );
                let _ = writeln!(out, "    http-check expect {}", expect(&m.expected_codes));
            }
            "PING" => {
                let _ = writeln!(out, "    option external-check");
                let _ = writeln!(
                    out,
                    "    external-check command {}",
                    dir.join("ping-check").display()
                );
            }
            _ => {}
        }
        let _ = writeln!(out, "    timeout check {}s", m.timeout_s);
        let _ = writeln!(
            out,
            "    default-server inter {}s fall {} rise {}",
            m.delay_s, m.fall, m.rise
        );
    }
    for s in &p.members {
        let mut line = format!(
            "    server {} {}:{} weight {}",
            s.id, s.address, s.port, s.weight
        );
        if p.monitor.is_some() {
            line.push_str(" check");
            if let Some(a) = &s.monitor_address {
                let _ = write!(line, " addr {a}");
            }
            if let Some(port) = s.monitor_port {
                let _ = write!(line, " port {port}");
            }
        }
        if s.backup {
            line.push_str(" backup");
        }
        if cookie {
            let _ = write!(line, " cookie {}", s.id);
        }
        if s.disabled {
            line.push_str(" disabled");
        }
        let _ = writeln!(out, "{line}");
    }
}

/// The whole configuration of `b`, its runtime files under `dir`. A load
/// balancer with nothing under it yet runs with its stats socket alone.
pub fn config(b: &BalancerSpec, dir: &Path, user: Option<&str>) -> String {
    let vip = b.vip_cidr.split('/').next().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "# load balancer {} revision {}", b.id, b.revision);
    // No global maxconn: HAProxy sizes it from the file limit it has.
    let _ = writeln!(out, "global");
    let _ = writeln!(
        out,
        "    stats socket {} mode 600 level admin",
        dir.join("stats.sock").display()
    );
    if let Some(u) = user {
        let _ = writeln!(out, "    user {u}");
        let _ = writeln!(out, "    group {u}");
    }
    if b.pools
        .iter()
        .any(|p| p.monitor.as_ref().is_some_and(|m| m.kind == "PING"))
    {
        let _ = writeln!(out, "    external-check");
        let _ = writeln!(out, "    insecure-fork-wanted");
    }
    let _ = writeln!(out, "\ndefaults");
    // A member that stopped answering before its checks noticed: every
    // retry goes to another member, so the request costs one connect
    // timeout rather than failing.
    let _ = writeln!(out, "    retries 3");
    let _ = writeln!(out, "    option redispatch 1");
    let _ = writeln!(out, "    timeout connect 5000");
    let _ = writeln!(out, "    timeout client 50000");
    let _ = writeln!(out, "    timeout server 50000");
    for l in &b.listeners {
        frontend(&mut out, l, vip, dir);
    }
    for p in &b.pools {
        let from: Vec<&ListenerSpec> = b
            .listeners
            .iter()
            .filter(|l| l.default_pool.as_deref() == Some(p.id.as_str()))
            .collect();
        backend(&mut out, p, dir, &from);
    }
    out
}

/// The external check PING monitors run: HAProxy passes the server's
/// address as the third argument.
pub const PING_CHECK: &str = "#!/bin/sh\nexec ping -c 1 -W 2 \"$3\" >/dev/null 2>&1\n";

/// Member health and load-balancer counters from `show stat` CSV.
pub fn parse_stats(csv: &str, b: &BalancerSpec) -> (Vec<(String, MemberHealth)>, BalancerCounters) {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, status, bin, bout, scur, stot, ereq) = (
        col("pxname"),
        col("svname"),
        col("status"),
        col("bin"),
        col("bout"),
        col("scur"),
        col("stot"),
        col("ereq"),
    );
    let members: std::collections::HashSet<&str> = b
        .pools
        .iter()
        .flat_map(|p| p.members.iter().map(|m| m.id.as_str()))
        .collect();
    let listeners: std::collections::HashSet<&str> =
        b.listeners.iter().map(|l| l.id.as_str()).collect();
    let mut health = Vec::new();
    let mut c = BalancerCounters::default();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: Option<usize>| i.and_then(|i| f.get(i)).copied().unwrap_or("");
        let num = |i: Option<usize>| get(i).parse::<i64>().unwrap_or(0);
        let (proxy, server) = (get(px), get(sv));
        if server == "FRONTEND" && listeners.contains(proxy) {
            c.bytes_in += num(bin);
            c.bytes_out += num(bout);
            c.active_connections += num(scur);
            c.total_connections += num(stot);
            c.request_errors += num(ereq);
        } else if members.contains(server) {
            let s = get(status);
            let h = if s.starts_with("UP") {
                MemberHealth::Up
            } else if s.starts_with("DOWN") {
                MemberHealth::Down
            } else if s.starts_with("MAINT") || s.starts_with("DRAIN") {
                MemberHealth::Disabled
            } else {
                // "no check"
                MemberHealth::Unchecked
            };
            health.push((server.to_owned(), h));
        }
    }
    health.sort();
    (health, c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balancer::{MemberSpec, MonitorSpec};

    fn spec() -> BalancerSpec {
        BalancerSpec {
            id: "lb1".into(),
            revision: 4,
            vip_port_id: "p1".into(),
            vip_network_id: "n1".into(),
            vip_mac: "fa:16:3e:00:00:01".into(),
            vip_cidr: "10.0.0.10/24".into(),
            gateway: Some("10.0.0.1".into()),
            listeners: vec![ListenerSpec {
                id: "l1".into(),
                protocol: "HTTP".into(),
                port: 80,
                connection_limit: None,
                default_pool: Some("pool1".into()),
                timeout_client_ms: 50000,
                timeout_member_connect_ms: 5000,
                timeout_member_data_ms: 50000,
                forwarded_for: true,
                allowed_cidrs: vec![],
                l7policies: vec![],
                certificates: vec![],
            }],
            pools: vec![PoolSpec {
                id: "pool1".into(),
                protocol: "HTTP".into(),
                algorithm: "ROUND_ROBIN".into(),
                persistence: None,
                members: vec![
                    MemberSpec {
                        id: "m1".into(),
                        address: "10.0.0.21".into(),
                        port: 8080,
                        weight: 1,
                        backup: false,
                        disabled: false,
                        monitor_address: None,
                        monitor_port: None,
                    },
                    MemberSpec {
                        id: "m2".into(),
                        address: "10.0.0.22".into(),
                        port: 8080,
                        weight: 2,
                        backup: false,
                        disabled: true,
                        monitor_address: None,
                        monitor_port: Some(9000),
                    },
                ],
                monitor: Some(MonitorSpec {
                    kind: "HTTP".into(),
                    delay_s: 2,
                    timeout_s: 1,
                    rise: 2,
                    fall: 3,
                    http_method: "GET".into(),
                    url_path: "/health".into(),
                    expected_codes: "200-202".into(),
                }),
            }],
        }
    }

    #[test]
    fn a_listener_and_a_monitored_pool_become_a_frontend_and_a_backend() {
        let cfg = config(&spec(), Path::new("/s/lb1"), Some("haproxy"));
        let want = "\
# load balancer lb1 revision 4
global
    stats socket /s/lb1/stats.sock mode 600 level admin
    user haproxy
    group haproxy

defaults
    retries 3
    option redispatch 1
    timeout connect 5000
    timeout client 50000
    timeout server 50000

frontend l1
    mode http
    bind 10.0.0.10:80
    timeout client 50000
    option httplog
    option forwardfor
    default_backend pool1

backend pool1
    mode http
    balance roundrobin
    timeout connect 5000
    timeout server 50000
    option httpchk
    http-check send meth GET uri /health
    http-check expect rstatus ^(200|201|202)$
    timeout check 1s
    default-server inter 2s fall 3 rise 2
    server m1 10.0.0.21:8080 weight 1 check
    server m2 10.0.0.22:8080 weight 2 check port 9000 disabled
";
        assert_eq!(cfg, want);
    }

    fn rule(
        id: &str,
        kind: &str,
        compare: &str,
        key: Option<&str>,
        value: &str,
        invert: bool,
    ) -> L7RuleSpec {
        L7RuleSpec {
            id: id.into(),
            kind: kind.into(),
            compare: compare.into(),
            key: key.map(Into::into),
            value: value.into(),
            invert,
        }
    }

    fn policy(id: &str, action: &str, rules: Vec<L7RuleSpec>) -> L7PolicySpec {
        L7PolicySpec {
            id: id.into(),
            action: action.into(),
            redirect_pool: (action == "REDIRECT_TO_POOL").then(|| "pool2".into()),
            redirect_url: (action == "REDIRECT_TO_URL").then(|| "https://new.example/a%20b".into()),
            redirect_prefix: (action == "REDIRECT_PREFIX").then(|| "https://www.example".into()),
            redirect_code: (action.starts_with("REDIRECT_TO_U") || action == "REDIRECT_PREFIX")
                .then_some(301),
            rules,
        }
    }

    #[test]
    fn l7_policies_become_acls_rejects_first_then_redirects_then_pools() {
        let mut b = spec();
        b.listeners[0].l7policies = vec![
            policy(
                "p1",
                "REDIRECT_TO_POOL",
                vec![rule("r1", "PATH", "STARTS_WITH", None, "/v2", false)],
            ),
            policy(
                "p2",
                "REDIRECT_TO_URL",
                vec![rule(
                    "r2",
                    "HOST_NAME",
                    "EQUAL_TO",
                    None,
                    "old.example",
                    false,
                )],
            ),
            policy(
                "p3",
                "REJECT",
                vec![
                    rule("r3", "HEADER", "CONTAINS", Some("User-Agent"), "bot", false),
                    rule("r4", "COOKIE", "EQUAL_TO", Some("trusted"), "yes", true),
                ],
            ),
            policy(
                "p4",
                "REDIRECT_PREFIX",
                vec![rule("r5", "FILE_TYPE", "EQUAL_TO", None, "jpg", false)],
            ),
        ];
        let cfg = config(&b, Path::new("/s/lb1"), None);
        let want = "\
    option forwardfor
    acl r1 path -m beg '/v2'
    acl r2 req.hdr(host),field(1,:) -i -m str 'old.example'
    acl r3 req.hdr(User-Agent) -m sub 'bot'
    acl r4 req.cook(trusted) -m str 'yes'
    acl r5 path -i -m end '.jpg'
    http-request deny if r3 !r4
    http-request redirect code 301 location 'https://new.example/a%%20b' if r2
    http-request redirect code 301 prefix 'https://www.example' if r5
    use_backend pool2 if r1
    default_backend pool1
";
        assert!(cfg.contains(want), "{cfg}");
    }

    #[test]
    fn terminated_https_binds_with_its_certificates() {
        let mut b = spec();
        b.listeners[0].protocol = "TERMINATED_HTTPS".into();
        b.listeners[0].port = 443;
        b.listeners[0].certificates = vec!["DEFAULT PEM".into(), "SNI PEM".into()];
        let dir = Path::new("/s/lb1");
        let cfg = config(&b, dir, None);
        assert!(
            cfg.contains("    mode http\n    bind 10.0.0.10:443 ssl crt /s/lb1/l1-0.pem crt /s/lb1/l1-1.pem\n"),
            "{cfg}"
        );
        assert!(cfg.contains("    option forwardfor\n"));
        let files = certificate_files(&b, dir);
        assert_eq!(
            files,
            vec![
                (dir.join("l1-0.pem"), "DEFAULT PEM"),
                (dir.join("l1-1.pem"), "SNI PEM")
            ]
        );
    }

    #[test]
    fn ping_monitors_run_an_external_check() {
        let mut b = spec();
        b.pools[0].monitor.as_mut().unwrap().kind = "PING".into();
        let cfg = config(&b, Path::new("/s/lb1"), None);
        assert!(cfg.contains("    external-check\n    insecure-fork-wanted\n"));
        assert!(cfg.contains("    external-check command /s/lb1/ping-check\n"));
        assert!(!cfg.contains("httpchk"));
    }

    #[test]
    fn stats_give_member_health_and_frontend_counters() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\n\
                   l1,FRONTEND,,,3,5,50000,40,1000,2000,0,0,2,,,,,OPEN\n\
                   pool1,m1,0,0,1,2,,20,500,1000,,0,,0,0,0,0,UP\n\
                   pool1,m2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN 1/3\n\
                   pool1,BACKEND,0,0,1,2,,20,500,1000,0,0,,0,0,0,0,UP\n";
        let (health, c) = parse_stats(csv, &spec());
        assert_eq!(
            health,
            vec![
                ("m1".to_owned(), MemberHealth::Up),
                ("m2".to_owned(), MemberHealth::Down)
            ]
        );
        assert_eq!(
            c,
            BalancerCounters {
                bytes_in: 1000,
                bytes_out: 2000,
                active_connections: 3,
                total_connections: 40,
                request_errors: 2,
            }
        );
    }
}
