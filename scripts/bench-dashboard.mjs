// Part of scripts/bench-dashboard: fills the cloud with SERVERS instances
// through the dashboard's own pass-through, then times the Instances page
// in Chromium from navigation to every row drawn.

const { chromium } = await import(process.env.PLAYWRIGHT_CORE);
const URL = process.env.DASH_URL;
const N = Number(process.env.SERVERS || 1000);
const RUNS = 7;
const H = { "X-Ferro-Dashboard": "1", "Content-Type": "application/json" };

const login = await fetch(`${URL}session`, { method: "POST", headers: H,
  body: JSON.stringify({ domain: "admin_domain", username: "admin", password: process.env.ADMIN_PASSWORD }) });
const session = (await login.json()).session;
const token = /ferro_token=([^;]+)/.exec(login.headers.get("set-cookie"))[1];
const api = async (method, path, body, headers = {}) => {
  const r = await fetch(`${URL}api/${path}`, { method, headers: { ...H, Cookie: `ferro_token=${token}`, "OpenStack-API-Version": "compute 2.79", ...headers },
    body: body === undefined ? undefined : typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
};

const pid = session.project.id;
await api("PUT", `compute/v2.1/os-quota-sets/${pid}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });
await api("PUT", `network/v2.0/quotas/${pid}`, { quota: { port: -1 } });
const img = await api("POST", "image/v2/images", { name: "bench", disk_format: "raw", container_format: "bare" });
await api("PUT", `image/v2/images/${img.id}/file`, new Uint8Array(1 << 20), { "Content-Type": "application/octet-stream" });
const flavor = (await api("POST", "compute/v2.1/flavors", { flavor: { name: "nano", ram: 64, vcpus: 1, disk: 1 } })).flavor;
const net = (await api("POST", "network/v2.0/networks", { network: { name: "bench_net" } })).network;
await api("POST", "network/v2.0/subnets", { subnet: { network_id: net.id, cidr: "10.0.0.0/16", ip_version: 4 } });
let t = Date.now();
for (let made = 0; made < N;) {
  const n = Math.min(100, N - made);
  await api("POST", "compute/v2.1/servers", { server: { name: `vm-${made}`, imageRef: img.id, flavorRef: flavor.id,
    networks: [{ uuid: net.id }], min_count: n, max_count: n } });
  made += n;
}
let active = 0;
for (let i = 0; i < 600 && active < N; i++) {
  active = (await api("GET", "compute/v2.1/servers/detail?status=ACTIVE")).servers.length;
  if (active < N) await new Promise((r) => setTimeout(r, 500));
}
if (active < N) throw new Error(`only ${active} of ${N} instances became ACTIVE`);
console.log(`made ${N} ACTIVE instances with a port each (fake driver) in ${((Date.now() - t) / 1000).toFixed(1)} s`);

const t0 = performance.now();
await api("GET", "compute/v2.1/servers/detail");
console.log(`GET /servers/detail alone (${N} servers, through the dashboard): ${(performance.now() - t0).toFixed(0)} ms`);

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
await context.addCookies([{ name: "ferro_token", value: token, url: URL }]);
const times = [];
for (let run = 0; run < RUNS; run++) {
  const page = await context.newPage();
  const start = Date.now();
  await page.goto(`${URL}#/instances`);
  await page.waitForFunction((n) => document.querySelectorAll("table.data tbody tr[data-key]").length >= n, N, { timeout: 120000, polling: 20 });
  times.push(Date.now() - start);
  if (run === RUNS - 1) {
    // Where the time went, on the last load: each call's start and end (ms after navigation).
    const calls = await page.evaluate(() => performance.getEntriesByType("resource")
      .filter((e) => e.name.includes("/api/") || e.name.includes("/session"))
      .map((e) => `${new URL(e.name).pathname.replace(/^\/api/, "")} ${Math.round(e.startTime)}–${Math.round(e.responseEnd)}`));
    const dom = await page.evaluate(() => Math.round(performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd));
    console.log(`  last load: DOMContentLoaded ${dom} ms; calls: ${calls.join("; ")}`);
  }
  await page.close();
}
await browser.close();
times.sort((a, b) => a - b);
console.log(`Instances page, ${N} instances, navigation → all rows drawn: p50 ${times[Math.floor(RUNS / 2)]} ms, min ${times[0]} ms, max ${times[RUNS - 1]} ms (${RUNS} cold loads)`);
