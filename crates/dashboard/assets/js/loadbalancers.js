// Network > Load Balancers: the project's managed load balancers (Octavia)
// with their VIP, floating IP and statuses; create one on a subnet, delete
// one with everything under it. A load balancer's page shows its listeners,
// pools, members with their health (polled, so a member that fails its
// checks turns ERROR on screen) and health monitors, and adds and removes
// each of them. Octavia refuses a change while the last one is pending: the
// forms say so and ask to try again when the load balancer is ACTIVE.

import * as api from "./api.js";
import { h, pageHead, DataTable, badge, act, formDialog, confirmDialog, button } from "./ui.js";

async function createBalancer(reload) {
  const [nets, subs] = await Promise.all([api.network.get("/v2.0/networks"), api.network.get("/v2.0/subnets")]);
  const external = new Set((nets.networks || []).filter((n) => n["router:external"]).map((n) => n.id));
  const netName = new Map((nets.networks || []).map((n) => [n.id, n.name || n.id]));
  const subnets = (subs.subnets || []).filter((sn) => !external.has(sn.network_id) && sn.ip_version === 4);
  await formDialog({
    title: "Create Load Balancer",
    submit: "Create Load Balancer",
    fields: [
      { name: "name", label: "Name" },
      { name: "description", label: "Description" },
      { name: "subnet", label: "VIP Subnet", type: "select", required: true, value: subnets.length === 1 ? subnets[0].id : "",
        options: [{ value: "", label: subnets.length ? "Select a subnet" : "No project subnet exists" },
          ...subnets.map((sn) => ({ value: sn.id, label: `${netName.get(sn.network_id)}: ${sn.name || sn.id} (${sn.cidr})` }))] },
      { name: "address", label: "VIP Address (optional)" },
    ],
    onSubmit: async (v) => {
      const loadbalancer = { vip_subnet_id: v.subnet };
      if (v.name) loadbalancer.name = v.name;
      if (v.description) loadbalancer.description = v.description;
      if (v.address) loadbalancer.vip_address = v.address;
      await api.loadBalancer.post("/loadbalancers", { loadbalancer });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

function deleteBalancer(lb, after) {
  return async () => {
    if (await confirmDialog(`Delete ${lb.name || lb.id} with its listeners, pools, members and monitors?`, { action: "Delete Load Balancer" })) {
      await act(`Deleting ${lb.name || lb.id}.`, async () => { await api.loadBalancer.del(`/loadbalancers/${lb.id}?cascade=true`); after(); });
    }
  };
}

const port = (label) => (v) => (/^\d+$/.test(v) && +v >= 1 && +v <= 65535 ? null : `${label} must be a number from 1 to 65535.`);
const count = (label, lo, hi) => (v) => (/^\d+$/.test(v) && +v >= lo && +v <= hi ? null : `${label} must be a number from ${lo} to ${hi}.`);
const opt = (values) => values.map((v) => ({ value: v, label: v }));

/** Posts under the load balancer, explaining Octavia's "immutable" 409. */
async function post(path, body) {
  try {
    await api.loadBalancer.post(path, body);
  } catch (e) {
    if (/immutable/.test(e.message || "")) throw new Error("The load balancer is applying a previous change; try again when it is ACTIVE.");
    throw e;
  }
  return true;
}

function addListener(lb, pools, after) {
  return () => formDialog({
    title: "Add Listener",
    submit: "Add Listener",
    fields: [
      { name: "name", label: "Name" },
      { name: "protocol", label: "Protocol", type: "select", value: "HTTP", options: opt(["HTTP", "TCP", "HTTPS", "TERMINATED_HTTPS"]) },
      { name: "port", label: "Port", required: true, value: "80", validate: port("Port") },
      { name: "certificate", label: "Certificate (key-manager secret or container URL)", required: true,
        show: (v) => v.protocol === "TERMINATED_HTTPS", help: "Store it with `openstack secret store` / `openstack secret container create`." },
      { name: "pool", label: "Default Pool", type: "select", value: "",
        options: [{ value: "", label: "None" }, ...pools.filter((p) => !(p.listeners || []).length).map((p) => ({ value: p.id, label: p.name || p.id }))] },
    ],
    onSubmit: (v) => {
      const listener = { loadbalancer_id: lb.id, protocol: v.protocol, protocol_port: Number(v.port) };
      if (v.name) listener.name = v.name;
      if (v.protocol === "TERMINATED_HTTPS") listener.default_tls_container_ref = v.certificate;
      if (v.pool) listener.default_pool_id = v.pool;
      return post("/listeners", { listener });
    },
  }).then((ok) => { if (ok) after(); });
}

function addPool(lb, listeners, after) {
  return () => formDialog({
    title: "Add Pool",
    submit: "Add Pool",
    fields: [
      { name: "name", label: "Name" },
      { name: "listener", label: "Listener (its default pool)", type: "select", value: "",
        options: [{ value: "", label: "None (for L7 policies)" }, ...listeners.filter((l) => !l.default_pool_id)
          .map((l) => ({ value: l.id, label: `${l.name || l.id.slice(0, 8)} (${l.protocol}:${l.protocol_port})` }))] },
      { name: "protocol", label: "Protocol", type: "select", value: "HTTP", options: opt(["HTTP", "TCP", "HTTPS"]) },
      { name: "algorithm", label: "Algorithm", type: "select", value: "ROUND_ROBIN", options: opt(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"]) },
    ],
    onSubmit: (v) => {
      const pool = { protocol: v.protocol, lb_algorithm: v.algorithm };
      if (v.listener) pool.listener_id = v.listener; else pool.loadbalancer_id = lb.id;
      if (v.name) pool.name = v.name;
      return post("/pools", { pool });
    },
  }).then((ok) => { if (ok) after(); });
}

function addMember(pools, after) {
  return () => formDialog({
    title: "Add Member",
    submit: "Add Member",
    fields: [
      { name: "pool", label: "Pool", type: "select", required: true, value: pools.length === 1 ? pools[0].id : "",
        options: [{ value: "", label: pools.length ? "Select a pool" : "Add a pool first" }, ...pools.map((p) => ({ value: p.id, label: p.name || p.id }))] },
      { name: "name", label: "Name" },
      { name: "address", label: "Address", required: true, validate: (v) => (/^\d+\.\d+\.\d+\.\d+$/.test(v) ? null : "Address must be an IPv4 address.") },
      { name: "port", label: "Port", required: true, validate: port("Port") },
      { name: "weight", label: "Weight", value: "1", validate: count("Weight", 0, 256) },
    ],
    onSubmit: (v) => {
      const member = { address: v.address, protocol_port: Number(v.port), weight: Number(v.weight || 1) };
      if (v.name) member.name = v.name;
      return post(`/pools/${v.pool}/members`, { member });
    },
  }).then((ok) => { if (ok) after(); });
}

function addMonitor(pools, after) {
  const free = pools.filter((p) => !p.healthmonitor_id);
  return () => formDialog({
    title: "Add Health Monitor",
    submit: "Add Health Monitor",
    fields: [
      { name: "pool", label: "Pool", type: "select", required: true, value: free.length === 1 ? free[0].id : "",
        options: [{ value: "", label: free.length ? "Select a pool" : "Every pool has a monitor" }, ...free.map((p) => ({ value: p.id, label: p.name || p.id }))] },
      { name: "type", label: "Type", type: "select", value: "HTTP", options: opt(["HTTP", "TCP", "PING"]) },
      { name: "path", label: "URL Path", value: "/", show: (v) => v.type === "HTTP", validate: (v) => (v.startsWith("/") ? null : "URL Path must start with /.") },
      { name: "delay", label: "Delay (s)", value: "5", validate: count("Delay", 1, 3600) },
      { name: "timeout", label: "Timeout (s)", value: "3", validate: (v, all) => count("Timeout", 1, 3600)(v) || (+v > +all.delay ? "Timeout can't be longer than the delay." : null) },
      { name: "up", label: "Successes to come back", value: "2", validate: count("Successes", 1, 10) },
      { name: "down", label: "Failures to leave the rotation", value: "3", validate: count("Failures", 1, 10) },
    ],
    onSubmit: (v) => {
      const healthmonitor = { pool_id: v.pool, type: v.type, delay: Number(v.delay), timeout: Number(v.timeout),
        max_retries: Number(v.up), max_retries_down: Number(v.down) };
      if (v.type === "HTTP") healthmonitor.url_path = v.path;
      return post("/healthmonitors", { healthmonitor });
    },
  }).then((ok) => { if (ok) after(); });
}

function remove(what, name, path, after) {
  return async () => {
    if (await confirmDialog(`Delete ${what.toLowerCase()} ${name}?`, { action: `Delete ${what}` })) {
      await act(`Deleting ${name}.`, async () => { await api.loadBalancer.del(path); after(); });
    }
  };
}

/** The floating IP on each port, for VIPs. */
async function floatingByPort() {
  const f = await api.network.get("/v2.0/floatingips");
  return new Map((f.floatingips || []).filter((x) => x.port_id).map((x) => [x.port_id, x.floating_ip_address]));
}

export const balancersPage = {
  title: "Load Balancers",
  async render(ctx) {
    let reload = () => {};
    const table = new DataTable({
      label: "Load Balancers",
      columns: [
        { label: "Name", render: (r) => h("a", { href: `#/loadbalancers/${r.id}` }, r.name || r.id.slice(0, 8)) },
        { label: "VIP Address", render: (r) => r.vip_address },
        { label: "Floating IP", render: (r) => r._fip },
        { label: "Listeners", render: (r) => r._listeners },
        { label: "Provisioning Status", render: (r) => badge(r.provisioning_status) },
        { label: "Operating Status", render: (r) => badge(r.operating_status) },
      ],
      empty: "No load balancers in this project.",
      actions: (lb) => [{ label: "Delete Load Balancer", danger: true, run: deleteBalancer(lb, () => reload()) }],
    });
    ctx.root.append(pageHead("Load Balancers", [button("Create Load Balancer", () => createBalancer(reload), "primary")]), table.el);
    const load = async () => {
      const [lbs, listeners, fips] = await Promise.all([api.loadBalancer.get("/loadbalancers"),
        api.loadBalancer.get("/listeners"), floatingByPort()]);
      const byLb = new Map();
      for (const l of listeners.listeners || []) {
        for (const ref of l.loadbalancers || []) byLb.set(ref.id, [...(byLb.get(ref.id) || []), `${l.protocol}:${l.protocol_port}`]);
      }
      table.set((lbs.loadbalancers || []).map((lb) => ({ ...lb, _fip: fips.get(lb.vip_port_id),
        _listeners: (byLb.get(lb.id) || []).join(", ") || null })));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(3000, load);
  },
};

export const balancerPage = {
  title: "Load Balancer",
  async render(ctx) {
    const [id] = ctx.params;
    const head = h("div");
    const facts = h("dl", { class: "facts" });
    let reload = () => {};
    const label = (r) => r.name || r.id.slice(0, 8);
    const listeners = new DataTable({
      label: "Listeners", filter: false,
      columns: [
        { label: "Name", render: (r) => r.name || h("code", null, r.id.slice(0, 8)) },
        { label: "Protocol", render: (r) => r.protocol },
        { label: "Port", render: (r) => String(r.protocol_port) },
        { label: "Default Pool", render: (r) => r._pool },
        { label: "Operating Status", render: (r) => badge(r.operating_status) },
      ],
      empty: "No listeners.",
      actions: (l) => [{ label: "Delete Listener", danger: true, run: remove("Listener", label(l), `/listeners/${l.id}`, () => reload()) }],
    });
    const members = new DataTable({
      label: "Members", filter: false,
      columns: [
        { label: "Name", render: (r) => r.name || h("code", null, r.id.slice(0, 8)) },
        { label: "Pool", render: (r) => r._pool },
        { label: "Address", render: (r) => `${r.address}:${r.protocol_port}` },
        { label: "Weight", render: (r) => String(r.weight) },
        { label: "Health", render: (r) => badge(r.operating_status) },
      ],
      empty: "No members.",
      actions: (m) => [{ label: "Delete Member", danger: true, run: remove("Member", label(m), `/pools/${m.pool_id}/members/${m.id}`, () => reload()) }],
    });
    const pools = new DataTable({
      label: "Pools", filter: false,
      columns: [
        { label: "Name", render: (r) => r.name || h("code", null, r.id.slice(0, 8)) },
        { label: "Protocol", render: (r) => r.protocol },
        { label: "Algorithm", render: (r) => r.lb_algorithm },
        { label: "Health Monitor", render: (r) => r._monitor },
        { label: "Operating Status", render: (r) => badge(r.operating_status) },
      ],
      empty: "No pools.",
      actions: (p) => [
        ...(p.healthmonitor_id ? [{ label: "Delete Health Monitor", danger: true, run: remove("Health Monitor", `of ${label(p)}`, `/healthmonitors/${p.healthmonitor_id}`, () => reload()) }] : []),
        { label: "Delete Pool", danger: true, run: remove("Pool", label(p), `/pools/${p.id}`, () => reload()) },
      ],
    });
    ctx.root.append(head, h("section", { class: "panel" }, facts),
      h("section", { class: "panel" }, h("h2", null, "Listeners"), listeners.el),
      h("section", { class: "panel" }, h("h2", null, "Pools"), pools.el),
      h("section", { class: "panel" }, h("h2", null, "Members"), members.el));
    const load = async () => {
      const [one, ls, ps, ms, fips, subs] = await Promise.all([
        api.loadBalancer.get(`/loadbalancers/${id}`), api.loadBalancer.get("/listeners"),
        api.loadBalancer.get("/pools"), api.loadBalancer.get("/healthmonitors"),
        floatingByPort(), api.network.get("/v2.0/subnets")]);
      const lb = one.loadbalancer;
      // Listeners and pools name their load balancers in a list.
      const ours = (x) => (x.loadbalancers || []).some((ref) => ref.id === id);
      const poolList = (ps.pools || []).filter(ours);
      const poolName = new Map(poolList.map((p) => [p.id, p.name || p.id.slice(0, 8)]));
      const monitor = new Map((ms.healthmonitors || []).flatMap((m) => (m.pools || []).map((p) =>
        [p.id, `${m.type}${m.url_path && m.type.startsWith("HTTP") ? ` ${m.http_method || "GET"} ${m.url_path}` : ""} every ${m.delay} s, down after ${m.max_retries_down}`])));
      const memberLists = await Promise.all(poolList.map((p) => api.loadBalancer.get(`/pools/${p.id}/members`)));
      const subnet = (subs.subnets || []).find((sn) => sn.id === lb.vip_subnet_id);
      const ourListeners = (ls.listeners || []).filter(ours);
      head.replaceChildren(pageHead(lb.name || lb.id, [
        button("Add Listener", addListener(lb, poolList, () => reload())),
        button("Add Pool", addPool(lb, ourListeners, () => reload())),
        button("Add Member", addMember(poolList, () => reload())),
        button("Add Health Monitor", addMonitor(poolList, () => reload())),
        button("Delete Load Balancer", deleteBalancer(lb, () => ctx.go("#/loadbalancers")), "danger")],
        h("a", { href: "#/loadbalancers" }, "Load Balancers ›")));
      const fact = (k, v) => [h("dt", null, k), h("dd", null, v || "—")];
      facts.replaceChildren(...[fact("ID", lb.id), fact("VIP Address", lb.vip_address),
        fact("VIP Subnet", subnet ? `${subnet.name || subnet.id} (${subnet.cidr})` : lb.vip_subnet_id),
        fact("Floating IP", fips.get(lb.vip_port_id)),
        fact("Provisioning Status", badge(lb.provisioning_status)), fact("Operating Status", badge(lb.operating_status)),
        fact("Provider", lb.provider)].flat());
      listeners.set(ourListeners.map((l) => ({ ...l, _pool: poolName.get(l.default_pool_id) })));
      pools.set(poolList.map((p) => ({ ...p, _monitor: monitor.get(p.id) })));
      members.set(memberLists.flatMap((r, i) => (r.members || []).map((m) => ({ ...m, pool_id: poolList[i].id, _pool: poolName.get(poolList[i].id) }))));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(3000, load);
  },
};
