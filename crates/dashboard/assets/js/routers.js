// Network > Routers: routers with their gateway; creating one; setting and
// clearing the external gateway; a router's page with its interfaces.

import * as api from "./api.js";
import { h, pageHead, DataTable, badge, act, formDialog, confirmDialog, valid, button } from "./ui.js";

async function externalNetworks() {
  return (await api.network.get("/v2.0/networks?router:external=true")).networks || [];
}

function gatewayText(r, nets) {
  const g = r.external_gateway_info;
  if (!g || !g.network_id) return null;
  const n = nets.get(g.network_id);
  const ips = (g.external_fixed_ips || []).map((f) => f.ip_address).join(", ");
  return `${n ? n.name : g.network_id}${ips ? ` (${ips})` : ""}`;
}

async function setGateway(r, reload) {
  const ext = await externalNetworks();
  await formDialog({
    title: `Set Gateway of ${r.name || r.id}`,
    submit: "Set Gateway",
    fields: [{ name: "net", label: "External Network", type: "select", required: true,
      options: [{ value: "", label: ext.length ? "Select a network" : "No external network exists" },
        ...ext.map((n) => ({ value: n.id, label: n.name || n.id }))] }],
    onSubmit: async (v) => {
      await api.network.put(`/v2.0/routers/${r.id}`, { router: { external_gateway_info: { network_id: v.net } } });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

function clearGateway(r, reload) {
  return async () => {
    if (await confirmDialog(`Clear the gateway of ${r.name || r.id}? Its floating IPs stop working.`, { action: "Clear Gateway" })) {
      await act(`Cleared the gateway of ${r.name || r.id}.`, async () => {
        await api.network.put(`/v2.0/routers/${r.id}`, { router: { external_gateway_info: {} } });
        reload();
      });
    }
  };
}

function deleteRouter(r, after) {
  return async () => {
    if (await confirmDialog(`Delete router ${r.name || r.id}?`)) {
      await act(`Deleted router ${r.name || r.id}.`, async () => { await api.network.del(`/v2.0/routers/${r.id}`); after(); });
    }
  };
}

async function addInterface(r, reload) {
  const [sns, nets] = await Promise.all([api.network.get("/v2.0/subnets"), api.network.get("/v2.0/networks")]);
  const netName = new Map((nets.networks || []).map((n) => [n.id, n]));
  const options = (sns.subnets || []).filter((sn) => !(netName.get(sn.network_id) || {})["router:external"]);
  await formDialog({
    title: `Add Interface to ${r.name || r.id}`,
    submit: "Add Interface",
    fields: [
      { name: "subnet", label: "Subnet", type: "select", required: true,
        options: [{ value: "", label: options.length ? "Select a subnet" : "No subnet to attach" },
          ...options.map((sn) => ({ value: sn.id, label: `${(netName.get(sn.network_id) || {}).name || sn.network_id}: ${sn.name || ""} ${sn.cidr}` }))] },
      { name: "ip", label: "IP Address (optional)", help: "Empty: the subnet's gateway address.", validate: valid.ipv4 },
    ],
    onSubmit: async (v) => {
      if (v.ip) {
        const sn = options.find((x) => x.id === v.subnet);
        const port = (await api.network.post("/v2.0/ports", { port: { network_id: sn.network_id, fixed_ips: [{ subnet_id: v.subnet, ip_address: v.ip }] } })).port;
        try {
          await api.network.put(`/v2.0/routers/${r.id}/add_router_interface`, { port_id: port.id });
        } catch (e) {
          await api.network.del(`/v2.0/ports/${port.id}`).catch(() => {});
          throw e;
        }
      } else {
        await api.network.put(`/v2.0/routers/${r.id}/add_router_interface`, { subnet_id: v.subnet });
      }
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function createRouter(reload) {
  const ext = await externalNetworks();
  await formDialog({
    title: "Create Router",
    submit: "Create Router",
    fields: [
      { name: "name", label: "Router Name", required: true, validate: valid.name },
      { name: "admin_state", label: "Enable Admin State", type: "checkbox", value: true },
      { name: "net", label: "External Network", type: "select",
        options: [{ value: "", label: "None (set the gateway later)" }, ...ext.map((n) => ({ value: n.id, label: n.name || n.id }))] },
    ],
    onSubmit: async (v) => {
      const router = { name: v.name, admin_state_up: v.admin_state };
      if (v.net) router.external_gateway_info = { network_id: v.net };
      await api.network.post("/v2.0/routers", { router });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

export const routersPage = {
  title: "Routers",
  async render(ctx) {
    let nets = new Map();
    let reload = () => {};
    const table = new DataTable({
      label: "Routers",
      columns: [
        { label: "Name", render: (r) => h("a", { href: `#/routers/${r.id}` }, r.name || r.id) },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "External Network", render: (r) => gatewayText(r, nets) },
        { label: "Admin State", render: (r) => (r.admin_state_up ? "UP" : "DOWN") },
      ],
      empty: "No routers yet.",
      actions: (r) => [
        { label: "Set Gateway", show: !(r.external_gateway_info && r.external_gateway_info.network_id), run: () => setGateway(r, reload) },
        { label: "Add Interface", run: () => addInterface(r, reload) },
        { label: "Clear Gateway", show: !!(r.external_gateway_info && r.external_gateway_info.network_id), run: clearGateway(r, reload) },
        { label: "Delete Router", danger: true, run: deleteRouter(r, () => reload()) },
      ],
    });
    ctx.root.append(pageHead("Routers", [h("button", { type: "button", class: "primary", onClick: () => createRouter(reload) }, "Create Router")]), table.el);
    const load = async () => {
      const [rs, ns] = await Promise.all([api.network.get("/v2.0/routers"), api.network.get("/v2.0/networks")]);
      nets = new Map((ns.networks || []).map((n) => [n.id, n]));
      table.set((rs.routers || []).map((r) => ({ ...r, _gw: gatewayText(r, nets) })));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(5000, load);
  },
};

export const routerPage = {
  title: "Router",
  async render(ctx) {
    const [id] = ctx.params;
    let reload = () => {};
    let router = null;
    const head = h("div");
    const facts = h("dl", { class: "facts" });
    const table = new DataTable({
      label: "Interfaces", filter: false,
      columns: [
        { label: "Name", render: (r) => r.name || h("code", null, r.id.slice(0, 8)) },
        { label: "Fixed IPs", render: (r) => (r.fixed_ips || []).map((f) => h("div", null, f.ip_address)) },
        { label: "Network", render: (r) => r._net },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "Type", render: (r) => (r.device_owner === "network:router_gateway" ? "External Gateway" : "Internal Interface") },
      ],
      empty: "No interfaces.",
      actions: (p) => (p.device_owner === "network:router_gateway" ? [] : [{ label: "Delete Interface", danger: true, run: async () => {
        if (await confirmDialog(`Remove the interface ${(p.fixed_ips[0] || {}).ip_address || p.id} from ${router.name}?`, { action: "Delete Interface" })) {
          await act("Removed the interface.", async () => {
            await api.network.put(`/v2.0/routers/${id}/remove_router_interface`, { port_id: p.id });
            reload();
          });
        }
      } }]),
    });
    ctx.root.append(head, h("section", { class: "panel" }, facts), h("section", { class: "panel" }, h("h2", null, "Interfaces"), table.el));
    const load = async () => {
      const [r, ports, ns] = await Promise.all([api.network.get(`/v2.0/routers/${id}`),
        api.network.get(`/v2.0/ports?device_id=${id}`), api.network.get("/v2.0/networks")]);
      router = r.router;
      const nets = new Map((ns.networks || []).map((n) => [n.id, n]));
      const hasGw = !!(router.external_gateway_info && router.external_gateway_info.network_id);
      head.replaceChildren(pageHead(router.name || router.id, [
        button("Add Interface", () => addInterface(router, reload), "primary"),
        hasGw ? button("Clear Gateway", clearGateway(router, reload)) : button("Set Gateway", () => setGateway(router, reload)),
        button("Delete Router", deleteRouter(router, () => ctx.go("#/routers")), "danger")], h("a", { href: "#/routers" }, "Routers ›")));
      const fact = (k, v) => [h("dt", null, k), h("dd", null, v || "—")];
      facts.replaceChildren(...[fact("ID", router.id), fact("Status", router.status),
        fact("External Gateway", gatewayText(router, nets)),
        fact("SNAT", hasGw ? (router.external_gateway_info.enable_snat === false ? "Disabled" : "Enabled") : null)].flat());
      table.set((ports.ports || []).map((p) => ({ ...p, _net: (nets.get(p.network_id) || {}).name || p.network_id })));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(5000, load);
  },
};
