// Network > Load Balancers: the project's managed load balancers (Octavia)
// with their VIP, floating IP and statuses; create one on a subnet, delete
// one with everything under it. A load balancer's page shows its listeners,
// pools, members with their health (polled, so a member that fails its
// checks turns ERROR on screen) and health monitors.

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
      head.replaceChildren(pageHead(lb.name || lb.id, [button("Delete Load Balancer", deleteBalancer(lb, () => ctx.go("#/loadbalancers")), "danger")],
        h("a", { href: "#/loadbalancers" }, "Load Balancers ›")));
      const fact = (k, v) => [h("dt", null, k), h("dd", null, v || "—")];
      facts.replaceChildren(...[fact("ID", lb.id), fact("VIP Address", lb.vip_address),
        fact("VIP Subnet", subnet ? `${subnet.name || subnet.id} (${subnet.cidr})` : lb.vip_subnet_id),
        fact("Floating IP", fips.get(lb.vip_port_id)),
        fact("Provisioning Status", badge(lb.provisioning_status)), fact("Operating Status", badge(lb.operating_status)),
        fact("Provider", lb.provider)].flat());
      listeners.set((ls.listeners || []).filter(ours).map((l) => ({ ...l, _pool: poolName.get(l.default_pool_id) })));
      pools.set(poolList.map((p) => ({ ...p, _monitor: monitor.get(p.id) })));
      members.set(memberLists.flatMap((r, i) => (r.members || []).map((m) => ({ ...m, _pool: poolName.get(poolList[i].id) }))));
    };
    await load();
    ctx.every(3000, load);
  },
};
