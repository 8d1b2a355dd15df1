// The dashboard in a real browser: Debian's chromium, headless, driven by
// playwright-core. Runs the seed's setup through the dashboard as the seed
// did through Horizon (Parts 3-7), watches an instance turn ACTIVE without
// a reload, gives it a floating IP, finds it in the topology, saves
// screenshots, and checks that a member of another project sees neither
// the admin pages nor the first project's resources.
//
// Environment: PLAYWRIGHT_CORE (the module's path), DASH_URL, ADMIN_PASSWORD,
// IMAGE_FILE, PUBLIC_KEY_FILE, SHOTS (screenshot folder), CHROMIUM.

import { readFileSync, mkdirSync } from "node:fs";

const { chromium } = await import(process.env.PLAYWRIGHT_CORE);
const URL = process.env.DASH_URL;
const SHOTS = process.env.SHOTS;
const publicKey = readFileSync(process.env.PUBLIC_KEY_FILE, "utf8").trim();
mkdirSync(SHOTS, { recursive: true });

const pageErrors = [];
let checks = 0;
let fails = 0;
const log = (s) => process.stderr.write(`  ${s}\n`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("pageerror", (e) => { pageErrors.push(e.message); log(`page error: ${e.message}`); });
  // Refused requests are part of the test; other console errors are worth seeing.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) log(`console: ${m.text()}`); });
  page.on("requestfailed", (r) => log(`request failed: ${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
  return page;
}

/** A step: must not throw. The first failure ends the run (later steps need it). */
async function step(what, f, page) {
  checks++;
  try {
    await f();
    log(`ok   ${what}`);
  } catch (e) {
    fails++;
    log(`FAIL ${what}`);
    log(`       ${String(e.message || e).split("\n").slice(0, 6).join("\n       ")}`);
    if (page) await page.screenshot({ path: `${SHOTS}/failure.png`, fullPage: true }).catch(() => {});
    await browser.close();
    log(`dashboard.mjs: ${checks - fails} passed, ${fails} failed`);
    process.exit(1);
  }
}

function ensure(cond, message) { if (!cond) throw new Error(message); }

async function waitUntil(what, seconds, f) {
  const end = Date.now() + seconds * 1000;
  let last;
  while (Date.now() < end) {
    try { if (await f()) return; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${seconds} s${last ? ` (${last.message})` : ""}`);
}

const dialog = (page) => page.locator("dialog[open]");

/** Fills a form dialog: {label: value}; booleans tick checkboxes, {select} picks an option by label. */
async function fill(page, values) {
  const d = dialog(page);
  for (const [label, v] of Object.entries(values)) {
    const field = d.getByLabel(label, { exact: true });
    if (typeof v === "boolean") await field.setChecked(v);
    else if (v && v.select) await field.selectOption({ label: v.select });
    else if (v && v.file) await field.setInputFiles(v.file);
    else await field.fill(String(v));
  }
}

async function submit(page, button) {
  await dialog(page).getByRole("button", { name: button, exact: true }).click();
}

/** Submits and waits for the dialog to close; a refusal shown in the form fails the step. */
async function submitAndClose(page, button, seconds = 30) {
  await submit(page, button);
  const d = dialog(page);
  await waitUntil(`the "${button}" dialog to close`, seconds, async () => {
    if (!(await d.count())) return true;
    const err = d.locator(".form-error:not([hidden])");
    if (await err.count()) throw new Error(`the form says: ${await err.innerText()}`);
    const invalid = d.locator(".field .error:not([hidden])");
    if (await invalid.count()) throw new Error(`a field says: ${await invalid.first().innerText()}`);
    return false;
  });
}

function row(page, column, name) {
  return page.locator("table.data tbody tr").filter({ has: page.locator(`td[data-col="${column}"]`, { hasText: new RegExp(`^\\s*${name}\\s*$`) }) });
}

/** Clicks a row's action, opening its "More" menu when needed. */
async function rowAction(r, name) {
  const direct = r.locator("td.actions > button", { hasText: name });
  if (await direct.count()) { await direct.click(); return; }
  await r.locator("summary").click();
  await r.locator(".items button", { hasText: name }).click();
}

async function nav(page, label) {
  await page.locator("nav.side a", { hasText: label }).first().click();
  await page.locator("main .page-head h1").first().waitFor();
}

async function login(page, domain, user, password) {
  // The browser's first start in a fresh profile can take a while. The
  // browser runs in the cloud's sandbox namespace, where the dataplane
  // makes and changes links: Chromium aborts requests in flight when it
  // sees the network change (ERR_NETWORK_CHANGED), and a page whose
  // modules were aborted never renders. Load it again then (bounded).
  for (let attempt = 1; ; attempt++) {
    await page.goto(URL);
    try {
      await page.locator("#login-domain").waitFor({ timeout: 30000 });
      break;
    } catch (e) {
      if (attempt >= 3) throw e;
      log(`the login page did not render (attempt ${attempt}); loading it again`);
    }
  }
  await page.locator("#login-domain").fill(domain);
  await page.locator("#login-user").fill(user);
  await page.locator("#login-password").fill(password);
  await page.getByRole("button", { name: "Sign In" }).click();
}

// ---------------------------------------------------------------- admin

const admin = await newPage();

await step("a wrong password is refused with a readable message", async () => {
  await login(admin, "admin_domain", "admin", "not-the-password");
  const err = admin.locator("form.login .form-error");
  await err.waitFor({ state: "visible" });
  ensure((await err.innerText()).includes("Invalid domain, user name or password"), `got: ${await err.innerText()}`);
}, admin);

await step("log in as admin (domain admin_domain, as in the seed)", async () => {
  await admin.locator("#login-password").fill(process.env.ADMIN_PASSWORD);
  await admin.getByRole("button", { name: "Sign In" }).click();
  await admin.locator("nav.side").waitFor();
  ensure(await admin.locator("nav.side h2", { hasText: "Admin" }).count() === 1, "no Admin section for the admin");
  ensure((await admin.locator("#project-switcher option:checked").innerText()) === "admin", "not in project admin");
}, admin);

await step("the dashboard's API refuses calls without its header (no cross-site requests)", async () => {
  const status = await admin.evaluate(async () => (await fetch("/api/compute/v2.1/servers")).status);
  ensure(status === 403, `status ${status}`);
}, admin);

await step("a form validates before it submits (empty name, nothing created)", async () => {
  await nav(admin, "Flavors");
  await admin.getByRole("button", { name: "Create Flavor" }).click();
  await fill(admin, { "RAM (MB)": "0" });
  await submit(admin, "Create Flavor");
  const errors = dialog(admin).locator(".field .error:not([hidden])");
  await errors.first().waitFor();
  const text = await errors.allInnerTexts();
  ensure(text.some((t) => t.includes("Name is required")), `errors: ${text}`);
  ensure(text.some((t) => t.includes("RAM is a whole number, 1 or more")), `errors: ${text}`);
  await dialog(admin).getByRole("button", { name: "Cancel" }).click();
  ensure(await admin.locator("table.data tbody tr.empty-row").count() === 1, "a flavor was created");
}, admin);

for (const [name, vcpus, ram] of [["m1.tiny", 1, 1024], ["m1.small", 1, 2048], ["m1.medium", 2, 4096], ["m1.large", 4, 8192]]) {
  await step(`create flavor ${name}`, async () => {
    await admin.getByRole("button", { name: "Create Flavor" }).click();
    await fill(admin, { Name: name, VCPUs: vcpus, "RAM (MB)": ram, "Root Disk (GB)": 20 });
    await submitAndClose(admin, "Create Flavor");
    await row(admin, "Flavor Name", name.replace(".", "\\.")).waitFor();
  }, admin);
}

await step("upload an image and watch its progress bar to 100%", async () => {
  await nav(admin, "Images");
  await admin.getByRole("button", { name: "Create Image" }).click();
  await admin.evaluate(() => {
    window.__progress = [];
    new MutationObserver(() => {
      const p = document.getElementById("upload-progress");
      const v = p && p.getAttribute("data-value");
      if (v !== null && v !== undefined && window.__progress[window.__progress.length - 1] !== v) window.__progress.push(v);
    }).observe(document.body, { subtree: true, attributes: true, childList: true });
  });
  await fill(admin, { "Image Name": "jammy-amd64", "Image File": { file: process.env.IMAGE_FILE }, Format: { select: "QCOW2" }, Visibility: { select: "Public" } });
  await submitAndClose(admin, "Create Image", 120);
  const seen = await admin.evaluate(() => window.__progress);
  log(`       progress seen: ${seen.join("% ")}%`);
  ensure(seen.length >= 1 && seen[seen.length - 1] === "100", `progress: ${seen}`);
  await row(admin, "Name", "jammy-amd64").locator('[data-status="active"]').waitFor({ timeout: 30000 });
}, admin);

await step("create ext_net: external, shared, flat on physnet1, with ext_subnet (Part 4)", async () => {
  await nav(admin, "Networks");
  await admin.getByRole("button", { name: "Create Network" }).click();
  await fill(admin, {
    "Network Name": "ext_net", "Shared (every project may use it)": true, "External Network (floating IPs and router gateways)": true,
    "Provider Network Type": { select: "Flat" }, "Physical Network": "physnet1",
    "Subnet Name": "ext_subnet", "Network Address (CIDR)": "172.16.7.0/20", "Gateway IP": "172.16.0.1", "Enable DHCP": false,
    "Allocation Pools": "172.16.7.0,172.16.8.255",
  });
  await submitAndClose(admin, "Create");
  await row(admin, "Name", "ext_net").filter({ hasText: "172.16.0.0/20" }).waitFor();
}, admin);

await step("a refusal from the API shows Neutron's message and leaves nothing behind", async () => {
  await admin.getByRole("button", { name: "Create Network" }).click();
  await fill(admin, { "Network Name": "second_flat", "Provider Network Type": { select: "Flat" }, "Physical Network": "physnet1", "Create a subnet": false });
  await submit(admin, "Create");
  const err = dialog(admin).locator(".form-error:not([hidden])");
  await err.waitFor();
  const text = await err.innerText();
  ensure(/physnet1/.test(text) && /in use/i.test(text), `message: ${text}`);
  await dialog(admin).getByRole("button", { name: "Cancel" }).click();
  await admin.waitForTimeout(300);
  ensure(await row(admin, "Name", "second_flat").count() === 0, "second_flat exists");
}, admin);

await step("the form checks an allocation pool against its CIDR", async () => {
  await admin.getByRole("button", { name: "Create Network" }).click();
  await fill(admin, { "Network Name": "bad_pool", "Network Address (CIDR)": "10.9.0.0/24", "Allocation Pools": "10.9.0.10,10.9.1.1" });
  await submit(admin, "Create");
  const e = dialog(admin).locator(".field .error:not([hidden])");
  await e.first().waitFor();
  ensure((await e.first().innerText()).includes("outside 10.9.0.0/24"), await e.first().innerText());
  await dialog(admin).getByRole("button", { name: "Cancel" }).click();
}, admin);

await step("create user1_net with user1_subnet 192.169.0.0/24 (Part 5)", async () => {
  await admin.getByRole("button", { name: "Create Network" }).click();
  await fill(admin, { "Network Name": "user1_net", "Subnet Name": "user1_subnet", "Network Address (CIDR)": "192.169.0.0/24",
    "Allocation Pools": "192.169.0.2,192.169.0.254" });
  await submitAndClose(admin, "Create");
  await row(admin, "Name", "user1_net").filter({ hasText: "192.169.0.0/24" }).waitFor();
}, admin);

await step("create user1_router, add user1_subnet, set the gateway to ext_net", async () => {
  await nav(admin, "Routers");
  await admin.getByRole("button", { name: "Create Router" }).click();
  await fill(admin, { "Router Name": "user1_router" });
  await submitAndClose(admin, "Create Router");
  await row(admin, "Name", "user1_router").locator("a").click();
  await admin.getByRole("button", { name: "Add Interface" }).click();
  await fill(admin, { Subnet: { select: "user1_net: user1_subnet 192.169.0.0/24" } });
  await submitAndClose(admin, "Add Interface");
  await admin.locator("table.data tbody tr", { hasText: "192.169.0.1" }).waitFor();
  await admin.getByRole("button", { name: "Set Gateway" }).click();
  await fill(admin, { "External Network": { select: "ext_net" } });
  await submitAndClose(admin, "Set Gateway");
  await admin.locator("dl.facts dd", { hasText: /ext_net \(172\.16\./ }).waitFor();
}, admin);

await step("open SSH and ALL ICMP in the default security group (Part 6, as the seed did in Horizon)", async () => {
  await nav(admin, "Security Groups");
  await row(admin, "Name", "default").locator("a").click();
  await admin.getByRole("button", { name: "Add Rule" }).click();
  await fill(admin, { Rule: { select: "SSH" } });
  await submitAndClose(admin, "Add");
  await admin.getByRole("button", { name: "Add Rule" }).click();
  await fill(admin, { Rule: { select: "ALL ICMP" } });
  await submitAndClose(admin, "Add");
  const rule = (proto, ports) => admin.locator("table.data tbody tr")
    .filter({ has: admin.locator('td[data-col="Direction"]', { hasText: /^Ingress$/ }) })
    .filter({ has: admin.locator('td[data-col="IP Protocol"]', { hasText: new RegExp(`^${proto}$`) }) })
    .filter({ has: admin.locator('td[data-col="Port Range"]', { hasText: new RegExp(`^${ports}$`) }) })
    .filter({ has: admin.locator('td[data-col="Remote IP Prefix"]', { hasText: /^0\.0\.0\.0\/0$/ }) });
  await rule("TCP", "22").waitFor();
  await rule("ICMP", "Any").waitFor();
}, admin);

await step("import the key pair user1", async () => {
  await nav(admin, "Key Pairs");
  await admin.getByRole("button", { name: "Import Public Key" }).click();
  await fill(admin, { "Key Pair Name": "user1", "Public Key": publicKey });
  await submitAndClose(admin, "Import Public Key");
  await row(admin, "Name", "user1").waitFor();
}, admin);

await step("launch client and see it turn ACTIVE in the table without a reload (Part 7)", async () => {
  await nav(admin, "Instances");
  await admin.evaluate(() => { window.__sameDocument = true; });
  await admin.getByRole("button", { name: "Launch Instance" }).click();
  const d = dialog(admin);
  await fill(admin, { "Instance Name": "client", Image: { select: "jammy-amd64 (qcow2)" }, Flavor: { select: "m1.tiny — 1 vCPU, 1 GB RAM, 20 GB disk" }, "Key Pair": { select: "user1" } });
  const nets = d.getByRole("group", { name: "Networks" });
  await nets.getByLabel("ext_net (external)").setChecked(false);
  await nets.getByLabel("user1_net").setChecked(true);
  await d.getByRole("group", { name: "Security Groups" }).getByLabel("default").setChecked(true);
  await submitAndClose(admin, "Launch Instance");
  const r = row(admin, "Instance Name", "client");
  await r.waitFor();
  await r.locator('[data-status="ACTIVE"]').waitFor({ timeout: 120000 });
  ensure(await admin.evaluate(() => window.__sameDocument === true), "the page was reloaded");
  ensure((await r.locator('td[data-col="IP Address"]').innerText()).includes("192.169.0."), "no fixed address shown");
}, admin);

await step("launch two at once with a count, then delete them", async () => {
  await admin.getByRole("button", { name: "Launch Instance" }).click();
  const d = dialog(admin);
  await fill(admin, { "Instance Name": "scratch", Count: 2, Image: { select: "jammy-amd64 (qcow2)" }, Flavor: { select: "m1.tiny — 1 vCPU, 1 GB RAM, 20 GB disk" } });
  await d.getByRole("group", { name: "Networks" }).getByLabel("ext_net (external)").setChecked(false);
  await d.getByRole("group", { name: "Networks" }).getByLabel("user1_net").setChecked(true);
  await submitAndClose(admin, "Launch Instance");
  for (const name of ["scratch-1", "scratch-2"]) {
    const r = row(admin, "Instance Name", name);
    await r.waitFor({ timeout: 30000 });
    await rowAction(r, "Delete Instance");
    await admin.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
  }
  for (const name of ["scratch-1", "scratch-2"]) await row(admin, "Instance Name", name).waitFor({ state: "detached", timeout: 60000 });
}, admin);

await step("associate a floating IP from ext_net", async () => {
  const r = row(admin, "Instance Name", "client");
  await rowAction(r, "Associate Floating IP");
  await fill(admin, { "Floating IP": { select: "Allocate a new one from ext_net" } });
  await submitAndClose(admin, "Associate");
  await r.locator(".fip").waitFor({ timeout: 20000 });
  log(`       client: ${(await r.locator('td[data-col="IP Address"]').innerText()).replace(/\n/g, "; ")}`);
}, admin);

await step("the console log shows the guest booting to its ready line", async () => {
  const r = row(admin, "Instance Name", "client");
  await rowAction(r, "Console Log");
  const pre = dialog(admin).locator("pre.console");
  await waitUntil("the guest's ready line on the console", 150, async () => {
    const text = await pre.innerText();
    if (text.includes("Linux version") && / ready\b/.test(text)) return true;
    await dialog(admin).getByRole("button", { name: "Refresh" }).click();
    return false;
  });
  await dialog(admin).getByRole("button", { name: "Close" }).click();
}, admin);

await step("shut off client and start it again from the table", async () => {
  const r = row(admin, "Instance Name", "client");
  await rowAction(r, "Shut Off Instance");
  await r.locator('[data-status="SHUTOFF"]').waitFor({ timeout: 120000 });
  await rowAction(r, "Start Instance");
  await r.locator('[data-status="ACTIVE"]').waitFor({ timeout: 120000 });
}, admin);

await step("snapshot client from its row; the snapshot becomes an active image", async () => {
  const r = row(admin, "Instance Name", "client");
  await r.locator('[data-status="ACTIVE"]').waitFor({ timeout: 120000 });
  await rowAction(r, "Create Snapshot");
  await fill(admin, { "Snapshot Name": "client-snap" });
  await submitAndClose(admin, "Create Snapshot");
  await nav(admin, "Images");
  await row(admin, "Name", "client-snap").locator('[data-status="active"]').waitFor({ timeout: 120000 });
  await nav(admin, "Instances");
  await row(admin, "Instance Name", "client").locator('[data-status="ACTIVE"]').waitFor({ timeout: 120000 });
}, admin);

await step("the topology shows instance → user1_net → router → ext_net (external)", async () => {
  await nav(admin, "Network Topology");
  const inst = admin.locator('#topology-svg g[data-kind="instance"][data-name="client"]');
  await inst.waitFor();
  ensure((await inst.getAttribute("data-links")).split(",").includes("user1_net"), "client is not on user1_net");
  const router = admin.locator('#topology-svg g[data-kind="router"][data-name="user1_router"]');
  const links = (await router.getAttribute("data-links")).split(",");
  ensure(links.includes("user1_net") && links.includes("ext_net"), `router links: ${links}`);
  ensure(await admin.locator('#topology-svg g[data-kind="network"][data-name="ext_net"][data-external="true"]').count() === 1, "ext_net is not drawn as external");
  const ips = await router.locator("text.ip").allTextContents();
  ensure(ips.includes("192.169.0.1") && ips.some((ip) => ip.startsWith("172.16.")), `the router's addresses: ${ips}`);
}, admin);

await step("screenshots of Overview, Instances and Network Topology", async () => {
  await nav(admin, "Overview");
  await admin.locator('.chart[data-chart="Instances"][data-used="1"]').waitFor();
  await admin.locator('.chart[data-chart="Floating IPs"][data-used="1"]').waitFor();
  await admin.locator('.chart[data-chart="Routers"][data-used="1"]').waitFor();
  await admin.screenshot({ path: `${SHOTS}/overview.png`, fullPage: true });
  await nav(admin, "Instances");
  await row(admin, "Instance Name", "client").locator(".fip").waitFor();
  await admin.screenshot({ path: `${SHOTS}/instances.png`, fullPage: true });
  await nav(admin, "Network Topology");
  await admin.locator('#topology-svg g[data-name="client"]').waitFor();
  await admin.screenshot({ path: `${SHOTS}/topology.png`, fullPage: true });
}, admin);

await step("the floating IP page shows the address mapped to client", async () => {
  await nav(admin, "Floating IPs");
  await admin.locator('table.data td[data-col="Mapped Fixed IP Address"]', { hasText: /^client 192\.169\.0\.\d+$/ }).waitFor();
}, admin);

await step("volumes: create one, attach it to client, extend it while attached, detach and delete it", async () => {
  await nav(admin, "Volumes");
  await admin.getByRole("button", { name: "Create Volume" }).click();
  await fill(admin, { "Volume Name": "data", "Size (GiB)": 1 });
  await submitAndClose(admin, "Create Volume");
  const r = row(admin, "Name", "data");
  await r.locator('[data-status="available"]').waitFor({ timeout: 30000 });
  await rowAction(r, "Attach");
  await fill(admin, { "Attach to Instance": { select: "client" } });
  await submitAndClose(admin, "Attach Volume");
  await r.locator('[data-status="in-use"]').waitFor({ timeout: 60000 });
  await r.locator('td[data-col="Attached To"]', { hasText: "client on /dev/vdb" }).waitFor();
  await rowAction(r, "Extend Volume");
  await fill(admin, { "New Size (GiB)": 2 });
  await submitAndClose(admin, "Extend Volume");
  await r.locator('td[data-col="Size"]', { hasText: "2 GiB" }).waitFor({ timeout: 30000 });
  await r.locator('[data-status="in-use"]').waitFor({ timeout: 30000 });
  await admin.screenshot({ path: `${SHOTS}/volumes.png`, fullPage: true });
  await rowAction(r, "Detach");
  await r.locator('[data-status="available"]').waitFor({ timeout: 90000 });
  await rowAction(r, "Delete Volume");
  await admin.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
  await r.waitFor({ state: "detached", timeout: 30000 });
}, admin);

await step("load balancers: create one on user1_subnet; add its listener, pool, member and monitor through the page's forms; the member's health shows; delete the member; the topology draws it; delete it", async () => {
  await nav(admin, "Load Balancers");
  await admin.getByRole("button", { name: "Create Load Balancer" }).click();
  await fill(admin, { "Name": "web-lb", "VIP Subnet": { select: "user1_net: user1_subnet (192.169.0.0/24)" } });
  await submitAndClose(admin, "Create Load Balancer");
  const r = row(admin, "Name", "web-lb");
  await r.locator('[data-status="ACTIVE"]').waitFor({ timeout: 60000 });
  const vip = (await r.locator('td[data-col="VIP Address"]').innerText()).trim();
  ensure(/^192\.169\.0\.\d+$/.test(vip), `the VIP: ${vip}`);
  // The API through the dashboard's pass-through, to wait for the load balancer.
  const lbApi = (method, path, body) => admin.evaluate(async ([method, path, body]) => {
    const resp = await fetch(`/api/load-balancer/v2/lbaas${path}`, { method, credentials: "same-origin",
      headers: { "X-Ferro-Dashboard": "1", "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    return { status: resp.status, body: await resp.json().catch(() => null) };
  }, [method, path, body]);
  const lbId = (await lbApi("GET", "/loadbalancers?name=web-lb")).body.loadbalancers[0].id;
  const settled = () => waitUntil("web-lb to settle", 60, async () => (await lbApi("GET", `/loadbalancers/${lbId}`)).body.loadbalancer.provisioning_status === "ACTIVE");
  // Its listener, pool, member and monitor through the page's forms; each
  // waits for the load balancer to apply the last (Octavia refuses changes
  // while one is pending) and for the page to show it.
  await r.locator('td[data-col="Name"] a').click();
  await admin.locator("main .page-head h1", { hasText: "web-lb" }).waitFor();
  await admin.getByRole("button", { name: "Add Listener" }).click();
  await fill(admin, { "Name": "web-http", "Port": "80" });
  await submitAndClose(admin, "Add Listener");
  await settled();
  await row(admin, "Name", "web-http").waitFor();
  await admin.getByRole("button", { name: "Add Pool" }).click();
  await fill(admin, { "Name": "web-pool", "Listener (its default pool)": { select: "web-http (HTTP:80)" } });
  await submitAndClose(admin, "Add Pool");
  await settled();
  await row(admin, "Name", "web-http").locator('td[data-col="Default Pool"]', { hasText: "web-pool" }).waitFor();
  // Nothing listens at .250: its health checks fail and it turns ERROR on screen.
  await admin.getByRole("button", { name: "Add Member" }).click();
  await fill(admin, { "Name": "nobody", "Address": "192.169.0.250", "Port": "80" });
  await submitAndClose(admin, "Add Member");
  await settled();
  const m = row(admin, "Name", "nobody");
  await m.locator('td[data-col="Address"]', { hasText: "192.169.0.250:80" }).waitFor();
  await admin.getByRole("button", { name: "Add Health Monitor" }).click();
  await fill(admin, { "Delay (s)": "2", "Timeout (s)": "1", "Successes to come back": "1", "Failures to leave the rotation": "1" });
  await submitAndClose(admin, "Add Health Monitor");
  await settled();
  await row(admin, "Name", "web-pool").locator('td[data-col="Health Monitor"]', { hasText: "HTTP GET / every 2 s" }).waitFor();
  await m.locator('[data-status="ERROR"]').waitFor({ timeout: 60000 });
  await admin.screenshot({ path: `${SHOTS}/loadbalancer.png`, fullPage: true });
  await rowAction(m, "Delete Member");
  await admin.getByRole("alertdialog").getByRole("button", { name: "Delete Member" }).click();
  await waitUntil("the member to be gone", 30, async () => !(await m.count()));
  await settled();
  await nav(admin, "Load Balancers");
  await row(admin, "Name", "web-lb").locator('td[data-col="Listeners"]', { hasText: "HTTP:80" }).waitFor({ timeout: 15000 });
  await nav(admin, "Network Topology");
  const node = admin.locator('#topology-svg g[data-kind="loadbalancer"][data-name="web-lb"]');
  await node.waitFor();
  ensure((await node.getAttribute("data-links")).split(",").includes("user1_net"), "web-lb is not on user1_net");
  ensure((await node.locator("text.ip").allTextContents()).includes(vip), "the topology doesn't show the VIP");
  await node.click();
  await admin.locator("main .page-head h1", { hasText: "web-lb" }).waitFor();
  await admin.getByRole("button", { name: "Delete Load Balancer" }).click();
  await admin.getByRole("alertdialog").getByRole("button", { name: "Delete Load Balancer" }).click();
  await admin.locator("main .page-head h1", { hasText: "Load Balancers" }).waitFor();
  await waitUntil("web-lb to be gone", 60, async () => (await lbApi("GET", "/loadbalancers?name=web-lb")).body.loadbalancers.length === 0);
}, admin);

await step("create a key pair: its private key downloads once; delete it", async () => {
  await nav(admin, "Key Pairs");
  await admin.getByRole("button", { name: "Create Key Pair" }).click();
  await fill(admin, { "Key Pair Name": "downloaded" });
  const [download] = await Promise.all([admin.waitForEvent("download"), submit(admin, "Create Key Pair")]);
  ensure(download.suggestedFilename() === "downloaded.pem", download.suggestedFilename());
  const pem = readFileSync(await download.path(), "utf8");
  ensure(pem.includes("PRIVATE KEY"), "no private key in the download");
  const r = row(admin, "Name", "downloaded");
  await r.waitFor();
  await rowAction(r, "Delete Key Pair");
  await admin.getByRole("alertdialog").getByRole("button", { name: "Delete" }).click();
  await r.waitFor({ state: "detached" });
  await row(admin, "Name", "user1").waitFor();
}, admin);

await step("every page draws without an error", async () => {
  const labels = await admin.locator("nav.side a").allInnerTexts();
  ensure(labels.length >= 14, `only ${labels.length} pages`);
  for (const label of labels) {
    await nav(admin, label);
    await admin.waitForTimeout(200);
    ensure(await admin.locator("main .denied").count() === 0, `${label}: ${await admin.locator("main .denied").allInnerTexts()}`);
  }
  await nav(admin, "Networks");
  await row(admin, "Name", "user1_net").locator("a").click();
  await admin.locator("table.data tbody tr", { hasText: "compute:nova" }).waitFor();
  ensure(await admin.locator("main .denied").count() === 0, "the network's page failed");
  ensure(pageErrors.length === 0, `script errors: ${pageErrors.join("; ")}`);
}, admin);

await step("admin pages: the hypervisor lists client; nova-compute is up", async () => {
  await nav(admin, "Hypervisors");
  await admin.locator('table.data td[data-col="Instances"]', { hasText: "client" }).waitFor();
  await nav(admin, "Compute Services");
  await admin.locator("table.data tbody tr", { hasText: "nova-compute" }).locator('[data-status="UP"]').waitFor();
}, admin);

await step("create project p2 and its member u2", async () => {
  await nav(admin, "Projects");
  await admin.getByRole("button", { name: "Create Project" }).click();
  await fill(admin, { Name: "p2", Domain: { select: "Default" } });
  await submitAndClose(admin, "Create Project");
  await row(admin, "Name", "p2").waitFor();
  await nav(admin, "Users");
  await admin.getByRole("button", { name: "Create User" }).click();
  await fill(admin, { "User Name": "u2", Password: "password-of-u2", "Confirm Password": "password-of-u2", Domain: { select: "Default" },
    "Primary Project": { select: "p2" }, Role: { select: "member" } });
  await submitAndClose(admin, "Create User");
  await admin.locator("table.data tbody tr", { hasText: "u2" }).filter({ hasText: "project p2" }).waitFor();
}, admin);

await step("the admin takes a role on p2 and switches project in the top bar", async () => {
  const adminRow = row(admin, "User Name", "admin");
  await rowAction(adminRow, "Add Role");
  await fill(admin, { Project: { select: "p2" }, Role: { select: "member" } });
  await submitAndClose(admin, "Add Role");
  await admin.locator("table.data tbody tr", { hasText: "admin" }).filter({ hasText: "project p2" }).first().waitFor();
  await admin.reload();
  await admin.locator("#project-switcher").selectOption({ label: "p2" });
  await admin.locator(".toast", { hasText: "Now working in project p2" }).waitFor();
  await nav(admin, "Instances");
  await admin.locator("table.data tbody tr.empty-row").waitFor();
  ensure(await admin.locator("nav.side h2", { hasText: "Admin" }).count() === 0, "a member of p2 sees the Admin section");
  await admin.locator("#project-switcher").selectOption({ label: "admin" });
  await admin.locator("nav.side h2", { hasText: "Admin" }).waitFor();
  await nav(admin, "Instances");
  await row(admin, "Instance Name", "client").waitFor();
}, admin);

// ---------------------------------------------------------------- member

const member = await newPage();

await step("u2 logs in to p2 and has no admin pages", async () => {
  await login(member, "Default", "u2", "password-of-u2");
  await member.locator("nav.side").waitFor();
  ensure((await member.locator("#project-switcher option:checked").innerText()) === "p2", "not in p2");
  ensure(await member.locator("nav.side h2", { hasText: "Admin" }).count() === 0, "the member sees the Admin section");
  await member.goto(`${URL}#/admin/hypervisors`);
  await member.locator(".denied", { hasText: "for administrators" }).waitFor();
  const status = await member.evaluate(async () => (await fetch("/api/compute/v2.1/os-hypervisors", { headers: { "X-Ferro-Dashboard": "1" } })).status);
  ensure(status === 403, `the API let a member list hypervisors (${status})`);
}, member);

await step("u2 sees none of the first project's instances, networks, routers or key pairs", async () => {
  await member.goto(`${URL}#/instances`);
  await member.locator("table.data tbody tr.empty-row").waitFor();
  await member.goto(`${URL}#/networks`);
  await row(member, "Name", "ext_net").waitFor(); // shared and external: everyone sees it
  ensure(await row(member, "Name", "user1_net").count() === 0, "user1_net is visible to u2");
  await member.goto(`${URL}#/routers`);
  await member.locator("table.data tbody tr.empty-row").waitFor();
  await member.goto(`${URL}#/keypairs`);
  await member.locator("table.data tbody tr.empty-row").waitFor();
  await member.goto(`${URL}#/topology`);
  await member.locator("#topology-svg").waitFor();
  ensure(await member.locator('#topology-svg g[data-name="client"], #topology-svg g[data-name="user1_router"]').count() === 0, "the topology shows the admin's resources");
}, member);

await step("sign out ends the session", async () => {
  await admin.getByRole("button", { name: "Sign Out" }).click();
  await admin.locator("form.login").waitFor();
  const status = await admin.evaluate(async () => (await fetch("/session", { headers: { "X-Ferro-Dashboard": "1" } })).status);
  ensure(status === 401, `session still answers ${status}`);
}, admin);

await browser.close();
log(`dashboard.mjs: ${checks - fails} passed, ${fails} failed`);
process.exit(fails ? 1 : 0);
