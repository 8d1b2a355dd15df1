// Network > Floating IPs: allocate from an external network, associate
// with an instance's port, disassociate, release.

import * as api from "./api.js";
import { h, pageHead, DataTable, badge, act, formDialog, confirmDialog } from "./ui.js";

async function allocate(reload) {
  const ext = (await api.network.get("/v2.0/networks?router:external=true")).networks || [];
  await formDialog({
    title: "Allocate Floating IP",
    submit: "Allocate IP",
    fields: [
      { name: "pool", label: "Pool", type: "select", required: true,
        options: [{ value: "", label: ext.length ? "Select an external network" : "No external network exists" },
          ...ext.map((n) => ({ value: n.id, label: n.name || n.id }))], value: ext.length === 1 ? ext[0].id : "" },
      { name: "description", label: "Description" },
    ],
    onSubmit: async (v) => {
      const floatingip = { floating_network_id: v.pool };
      if (v.description) floatingip.description = v.description;
      await api.network.post("/v2.0/floatingips", { floatingip });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function associate(fip, reload) {
  const [ports, servers] = await Promise.all([api.network.get("/v2.0/ports"), api.compute.get("/servers")]);
  const names = new Map((servers.servers || []).map((s) => [s.id, s.name]));
  const targets = (ports.ports || []).filter((p) => (p.device_owner || "").startsWith("compute:"))
    .flatMap((p) => (p.fixed_ips || []).map((ip) => ({ value: `${p.id}|${ip.ip_address}`, label: `${names.get(p.device_id) || p.device_id}: ${ip.ip_address}` })));
  await formDialog({
    title: `Associate ${fip.floating_ip_address}`,
    submit: "Associate",
    fields: [{ name: "target", label: "Port to be associated", type: "select", required: true,
      options: [{ value: "", label: targets.length ? "Select an instance's port" : "No instance port to associate" }, ...targets] }],
    onSubmit: async (v) => {
      const [port_id, fixed_ip_address] = v.target.split("|");
      await api.network.put(`/v2.0/floatingips/${fip.id}`, { floatingip: { port_id, fixed_ip_address } });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

export default {
  title: "Floating IPs",
  async render(ctx) {
    let reload = () => {};
    let nets = new Map();
    let owners = new Map();
    const table = new DataTable({
      label: "Floating IPs",
      columns: [
        { label: "IP Address", render: (r) => r.floating_ip_address },
        { label: "Mapped Fixed IP Address", render: (r) => (r.fixed_ip_address ? `${r._owner || ""} ${r.fixed_ip_address}`.trim() : null) },
        { label: "Pool", render: (r) => r._pool },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "Description", render: (r) => r.description },
      ],
      empty: "No floating IPs allocated to this project.",
      actions: (f) => [
        { label: "Associate", show: !f.port_id, run: () => associate(f, reload) },
        { label: "Disassociate", show: !!f.port_id, run: () => act(`Disassociated ${f.floating_ip_address}.`, async () => {
          await api.network.put(`/v2.0/floatingips/${f.id}`, { floatingip: { port_id: null } }); reload();
        }) },
        { label: "Release Floating IP", danger: true, run: async () => {
          if (await confirmDialog(`Release ${f.floating_ip_address}? It goes back to the pool.`, { action: "Release" })) {
            await act(`Released ${f.floating_ip_address}.`, async () => { await api.network.del(`/v2.0/floatingips/${f.id}`); reload(); });
          }
        } },
      ],
    });
    ctx.root.append(pageHead("Floating IPs", [h("button", { type: "button", class: "primary", onClick: () => allocate(reload) }, "Allocate IP to Project")]), table.el);
    const load = async () => {
      const [fips, ns, servers, ports] = await Promise.all([api.network.get("/v2.0/floatingips"), api.network.get("/v2.0/networks"),
        api.compute.get("/servers"), api.network.get("/v2.0/ports?device_owner=compute:nova")]);
      nets = new Map((ns.networks || []).map((n) => [n.id, n.name || n.id]));
      const names = new Map((servers.servers || []).map((s) => [s.id, s.name]));
      owners = new Map((ports.ports || []).map((p) => [p.id, names.get(p.device_id)]));
      table.set((fips.floatingips || []).map((f) => ({ ...f, _pool: nets.get(f.floating_network_id) || f.floating_network_id, _owner: owners.get(f.port_id) })));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(5000, load);
  },
};
