// Network > Networks: networks with their subnets; creating a network
// (admins: external, shared, provider attributes) with an optional first
// subnet; a network's page with its subnets and ports.

import * as api from "./api.js";
import { h, pageHead, DataTable, badge, act, formDialog, confirmDialog, valid, inCidr, ipv4ToInt, button } from "./ui.js";

/** "start,end" lines → allocation pools, checked against the CIDR. */
function parsePools(text) {
  return text.split(/\n+/).map((l) => l.trim()).filter(Boolean).map((l) => {
    const [start, end] = l.split(/\s*,\s*/);
    return { start, end };
  });
}

function checkPools(text, values) {
  for (const { start, end } of parsePools(text)) {
    if (!start || !end) return "Write each pool as start,end on its own line.";
    for (const ip of [start, end]) { const e = valid.ipv4(ip); if (e) return e; }
    if (ipv4ToInt(start) > ipv4ToInt(end)) return `Pool ${start},${end} ends before it starts.`;
    if (values.cidr && !valid.cidr(values.cidr) && !(inCidr(start, values.cidr) && inCidr(end, values.cidr))) {
      return `Pool ${start},${end} is outside ${values.cidr}.`;
    }
  }
  return null;
}

function checkDns(text) {
  for (const d of text.split(/[\s,]+/).filter(Boolean)) { const e = valid.ipv4(d); if (e) return e; }
  return null;
}

const SUBNET_FIELDS = (cond) => [
  { name: "subnet_name", label: "Subnet Name", show: cond },
  { name: "cidr", label: "Network Address (CIDR)", placeholder: "192.168.0.0/24", required: true, validate: valid.cidr, show: cond },
  { name: "no_gateway", label: "Disable Gateway", type: "checkbox", show: cond },
  { name: "gateway", label: "Gateway IP", placeholder: "the first address of the CIDR", show: (v) => cond(v) && !v.no_gateway,
    validate: (g, v) => valid.ipv4(g) || (!valid.cidr(v.cidr) && !inCidr(g, v.cidr) ? `${g} is outside ${v.cidr}.` : null) },
  { name: "dhcp", label: "Enable DHCP", type: "checkbox", value: true, show: cond },
  { name: "pools", label: "Allocation Pools", type: "textarea", placeholder: "192.168.0.10,192.168.0.200",
    help: "One pool per line, start,end. Empty: every address but the gateway.", validate: checkPools, show: cond },
  { name: "dns", label: "DNS Name Servers", type: "textarea", placeholder: "8.8.8.8", help: "One address per line.",
    validate: checkDns, show: cond },
];

function subnetBody(networkId, v) {
  const subnet = { network_id: networkId, ip_version: 4, cidr: v.cidr, enable_dhcp: v.dhcp };
  if (v.subnet_name) subnet.name = v.subnet_name;
  if (v.no_gateway) subnet.gateway_ip = null;
  else if (v.gateway) subnet.gateway_ip = v.gateway;
  const pools = parsePools(v.pools || "");
  if (pools.length) subnet.allocation_pools = pools;
  const dns = (v.dns || "").split(/[\s,]+/).filter(Boolean);
  if (dns.length) subnet.dns_nameservers = dns;
  return { subnet };
}

async function createNetwork(admin, reload) {
  const physnet = (v) => v.provider === "flat" || v.provider === "vlan";
  await formDialog({
    title: "Create Network",
    submit: "Create",
    fields: [
      { name: "name", label: "Network Name", required: true, validate: valid.name },
      { name: "admin_state", label: "Enable Admin State", type: "checkbox", value: true },
      ...(admin ? [
        { name: "shared", label: "Shared (every project may use it)", type: "checkbox" },
        { name: "external", label: "External Network (floating IPs and router gateways)", type: "checkbox" },
        { name: "provider", label: "Provider Network Type", type: "select", value: "",
          options: [{ value: "", label: "Project network (default)" }, { value: "flat", label: "Flat" },
            { value: "vlan", label: "VLAN" }, { value: "vxlan", label: "VXLAN" }, { value: "local", label: "Local" }] },
        { name: "physnet", label: "Physical Network", placeholder: "physnet1", required: true, show: physnet },
        { name: "segment", label: "Segmentation ID", type: "number", show: (v) => v.provider === "vlan" || v.provider === "vxlan",
          validate: (x) => (Number.isInteger(x) && x >= 1 ? null : "A whole number, 1 or more.") },
      ] : []),
      { name: "with_subnet", label: "Create a subnet", type: "checkbox", value: true },
      ...SUBNET_FIELDS((v) => v.with_subnet),
    ],
    onSubmit: async (v) => {
      const network = { name: v.name, admin_state_up: v.admin_state };
      if (admin) {
        if (v.shared) network.shared = true;
        if (v.external) network["router:external"] = true;
        if (v.provider) {
          network["provider:network_type"] = v.provider;
          if (physnet(v)) network["provider:physical_network"] = v.physnet;
          if (v.segment) network["provider:segmentation_id"] = v.segment;
        }
      }
      const net = (await api.network.post("/v2.0/networks", { network })).network;
      if (v.with_subnet) {
        try {
          await api.network.post("/v2.0/subnets", subnetBody(net.id, v));
        } catch (e) {
          // The network goes too: nothing is left half made.
          await api.network.del(`/v2.0/networks/${net.id}`).catch(() => {});
          throw e;
        }
      }
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function createSubnet(net, reload) {
  const always = () => true;
  await formDialog({
    title: `Create Subnet on ${net.name || net.id}`,
    submit: "Create",
    fields: SUBNET_FIELDS(always),
    onSubmit: async (v) => { await api.network.post("/v2.0/subnets", subnetBody(net.id, v)); return true; },
  }).then((ok) => { if (ok) reload(); });
}

function deleteNetwork(n, after) {
  return async () => {
    if (await confirmDialog(`Delete network ${n.name || n.id} and its subnets?`)) {
      await act(`Deleted network ${n.name || n.id}.`, async () => { await api.network.del(`/v2.0/networks/${n.id}`); after(); });
    }
  };
}

export const networksPage = {
  title: "Networks",
  async render(ctx) {
    const admin = ctx.session.admin;
    let subnets = new Map();
    let reload = () => {};
    const table = new DataTable({
      label: "Networks",
      columns: [
        { label: "Name", render: (r) => h("a", { href: `#/networks/${r.id}` }, r.name || r.id) },
        { label: "Subnets Associated", render: (r) => (r.subnets || []).map((id) => {
          const sn = subnets.get(id);
          return h("div", null, sn ? `${sn.name || "(no name)"} ${sn.cidr}` : id);
        }) },
        { label: "Shared", render: (r) => (r.shared ? "Yes" : "No") },
        { label: "External", render: (r) => (r["router:external"] ? "Yes" : "No") },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "Admin State", render: (r) => (r.admin_state_up ? "UP" : "DOWN") },
      ],
      empty: "No networks yet.",
      actions: (n) => [
        { label: "Create Subnet", run: () => createSubnet(n, reload) },
        { label: "Delete Network", danger: true, run: deleteNetwork(n, () => reload()) },
      ],
    });
    ctx.root.append(pageHead("Networks", [h("button", { type: "button", class: "primary", onClick: () => createNetwork(admin, reload) }, "Create Network")]), table.el);
    const load = async () => {
      const [nets, sns] = await Promise.all([api.network.get("/v2.0/networks"), api.network.get("/v2.0/subnets")]);
      subnets = new Map((sns.subnets || []).map((x) => [x.id, x]));
      // Subnet names are part of what a row shows.
      table.set((nets.networks || []).map((n) => ({ ...n, _subnets: (n.subnets || []).map((id) => subnets.get(id) || id) })));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(5000, load);
  },
};

export const networkPage = {
  title: "Network",
  async render(ctx) {
    const [id] = ctx.params;
    let reload = () => {};
    const facts = h("dl", { class: "facts" });
    const head = h("div");
    const subnetTable = new DataTable({
      label: "Subnets", filter: false,
      columns: [
        { label: "Name", render: (r) => r.name },
        { label: "Network Address", render: (r) => r.cidr },
        { label: "Gateway IP", render: (r) => r.gateway_ip },
        { label: "DHCP", render: (r) => (r.enable_dhcp ? "Enabled" : "Disabled") },
        { label: "Allocation Pools", render: (r) => (r.allocation_pools || []).map((p) => h("div", null, `${p.start} – ${p.end}`)) },
        { label: "DNS", render: (r) => (r.dns_nameservers || []).join(", ") },
      ],
      empty: "No subnets.",
      actions: (sn) => [{ label: "Delete Subnet", danger: true, run: async () => {
        if (await confirmDialog(`Delete subnet ${sn.name || sn.cidr}?`)) {
          await act(`Deleted subnet ${sn.name || sn.cidr}.`, async () => { await api.network.del(`/v2.0/subnets/${sn.id}`); reload(); });
        }
      } }],
    });
    const portTable = new DataTable({
      label: "Ports", filter: false,
      columns: [
        { label: "Name", render: (r) => r.name || h("code", null, r.id.slice(0, 8)) },
        { label: "Fixed IPs", render: (r) => (r.fixed_ips || []).map((f) => h("div", null, f.ip_address)) },
        { label: "MAC Address", render: (r) => h("code", null, r.mac_address) },
        { label: "Attached Device", render: (r) => r.device_owner },
        { label: "Status", render: (r) => badge(r.status) },
      ],
      empty: "No ports.",
    });
    ctx.root.append(head, h("section", { class: "panel" }, facts),
      h("section", { class: "panel" }, h("h2", null, "Subnets"), subnetTable.el),
      h("section", { class: "panel" }, h("h2", null, "Ports"), portTable.el));
    const load = async () => {
      const [n, sns, ports] = await Promise.all([
        api.network.get(`/v2.0/networks/${id}`), api.network.get(`/v2.0/subnets?network_id=${id}`),
        api.network.get(`/v2.0/ports?network_id=${id}`)]);
      const net = n.network;
      head.replaceChildren(pageHead(net.name || net.id, [
        button("Create Subnet", () => createSubnet(net, reload)),
        button("Delete Network", deleteNetwork(net, () => ctx.go("#/networks")), "danger")], h("a", { href: "#/networks" }, "Networks ›")));
      const fact = (k, v) => [h("dt", null, k), h("dd", null, v === undefined || v === null || v === "" ? "—" : String(v))];
      facts.replaceChildren(...[fact("ID", net.id), fact("Status", net.status), fact("Shared", net.shared ? "Yes" : "No"),
        fact("External", net["router:external"] ? "Yes" : "No"), fact("MTU", net.mtu),
        fact("Provider", net["provider:network_type"] ? `${net["provider:network_type"]} ${net["provider:physical_network"] || ""} ${net["provider:segmentation_id"] || ""}`.trim() : undefined)].flat());
      subnetTable.set(sns.subnets || []);
      portTable.set(ports.ports || []);
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(5000, load);
  },
};
