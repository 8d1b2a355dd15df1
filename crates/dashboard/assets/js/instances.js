// Compute > Instances: the project's servers with status, addresses,
// flavor, image, key pair and (for admins) host; launching; start, stop,
// reboot, delete; floating IP association; the console log. The table
// polls, faster while something is changing, so status changes appear
// without a reload.

import * as api from "./api.js";
import { h, pageHead, DataTable, badge, act, formDialog, confirmDialog, infoDialog, button, ago, fmtMB, valid, toast } from "./ui.js";

const POWER = { 0: "No State", 1: "Running", 3: "Paused", 4: "Shut Down", 6: "Crashed", 7: "Suspended" };
/** What Nova snapshots and shelves. */
const SNAPSHOTTABLE = new Set(["ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED"]);

/** Asks for a name and snapshots the instance's disk (createImage). */
function snapshot(sv) {
  return formDialog({
    title: `Create Snapshot of ${sv.name}`,
    submit: "Create Snapshot",
    fields: [{ name: "name", label: "Snapshot Name", required: true,
      validate: (v) => (v.trim() === v && v.length <= 255 ? null : "1 to 255 characters, without blanks around them."),
      help: "A running instance is paused while its disk is copied, then resumes." }],
    onSubmit: async (v) => {
      await api.compute.post(`/servers/${sv.id}/action`, { createImage: { name: v.name } });
      toast(`Snapshot ${v.name} of ${sv.name} is being made; it appears under Images.`, "info");
      return true;
    },
  });
}

const CHANGING = new Set(["BUILD", "REBOOT", "HARD_REBOOT", "REBUILD", "RESIZE", "MIGRATING", "DELETED"]);

function addresses(sv) {
  const out = [];
  for (const [net, addrs] of Object.entries(sv.addresses || {})) {
    for (const a of addrs) {
      const floating = a["OS-EXT-IPS:type"] === "floating";
      out.push(h("span", { class: "addr" }, h("span", { class: "net" }, `${net}: `),
        h("span", { class: floating ? "fip" : "" }, a.addr), floating ? h("span", { class: "note" }, " (floating)") : null));
    }
  }
  return out.length ? out : null;
}

function b64(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

async function launch(reload) {
  const [images, flavors, nets, groups, keys] = await Promise.all([
    api.listImages(), api.compute.get("/flavors/detail"), api.network.get("/v2.0/networks"),
    api.network.get("/v2.0/security-groups"), api.compute.get("/os-keypairs"),
  ]);
  const active = images.filter((i) => i.status === "active");
  const networks = nets.networks || [];
  await formDialog({
    title: "Launch Instance",
    submit: "Launch Instance",
    fields: [
      { name: "name", label: "Instance Name", required: true, validate: valid.name },
      { name: "count", label: "Count", type: "number", value: 1, min: 1, max: 100, required: true,
        validate: (v) => (Number.isInteger(v) && v >= 1 && v <= 100 ? null : "Count is a whole number from 1 to 100.") },
      { name: "image", label: "Image", type: "select", required: true,
        options: [{ value: "", label: active.length ? "Select an image" : "No image is available" },
          ...active.map((i) => ({ value: i.id, label: `${i.name || i.id} (${i.disk_format || "?"})` }))] },
      { name: "flavor", label: "Flavor", type: "select", required: true,
        options: [{ value: "", label: "Select a flavor" }, ...(flavors.flavors || []).map((f) =>
          ({ value: f.id, label: `${f.name} — ${f.vcpus} vCPU, ${fmtMB(f.ram)} RAM, ${f.disk} GB disk` }))] },
      { name: "networks", label: "Networks", type: "checkboxes",
        options: networks.map((n) => ({ value: n.id, label: `${n.name || n.id}${n["router:external"] ? " (external)" : ""}` })),
        value: networks.filter((n) => !n["router:external"]).slice(0, 1).map((n) => n.id),
        emptyText: "No networks: the instance will have no network interface.",
        help: "The instance gets a port on each network chosen." },
      { name: "groups", label: "Security Groups", type: "checkboxes",
        options: (groups.security_groups || []).map((g) => ({ value: g.name, label: g.name })),
        value: ["default"] },
      { name: "key", label: "Key Pair", type: "select",
        options: [{ value: "", label: "No key pair" }, ...(keys.keypairs || []).map((k) => ({ value: k.keypair.name, label: k.keypair.name }))],
        value: (keys.keypairs || []).length === 1 ? keys.keypairs[0].keypair.name : "" },
      { name: "user_data", label: "User Data", type: "textarea", placeholder: "#cloud-config or a script",
        help: "Given to the instance through the metadata service and config drive." },
    ],
    onSubmit: async (v) => {
      const server = {
        name: v.name, imageRef: v.image, flavorRef: v.flavor,
        networks: v.networks.length ? v.networks.map((uuid) => ({ uuid })) : "none",
        min_count: v.count, max_count: v.count,
      };
      if (v.networks.length && v.groups.length) server.security_groups = v.groups.map((name) => ({ name }));
      if (v.key) server.key_name = v.key;
      if (v.user_data) server.user_data = b64(v.user_data);
      await api.compute.post("/servers", { server });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function consoleLog(sv) {
  const pre = h("pre", { class: "console", "aria-label": "Console log" }, "Loading…");
  const load = async () => {
    try {
      const r = await api.compute.post(`/servers/${sv.id}/action`, { "os-getConsoleOutput": { length: 500 } });
      pre.textContent = r.output || "(the console is empty)";
      pre.scrollTop = pre.scrollHeight;
    } catch (e) {
      pre.textContent = e.message;
    }
  };
  infoDialog(`Console log: ${sv.name}`, pre, { buttons: [button("Refresh", load)] });
  await load();
}

async function associate(sv, reload) {
  const [ports, fips, nets] = await Promise.all([
    api.portsOf(sv.id), api.network.get("/v2.0/floatingips"), api.network.get("/v2.0/networks?router:external=true"),
  ]);
  const free = (fips.floatingips || []).filter((f) => !f.port_id);
  const targets = ports.flatMap((p) => (p.fixed_ips || []).map((ip) => ({ value: `${p.id}|${ip.ip_address}`, label: `${ip.ip_address} (port ${p.name || p.id.slice(0, 8)})` })));
  if (!targets.length) throw new Error(`${sv.name} has no port to give a floating IP to.`);
  const pools = nets.networks || [];
  await formDialog({
    title: `Associate Floating IP with ${sv.name}`,
    submit: "Associate",
    fields: [
      { name: "fip", label: "Floating IP", type: "select", required: true,
        options: [...free.map((f) => ({ value: f.id, label: f.floating_ip_address })),
          ...pools.map((n) => ({ value: `new:${n.id}`, label: `Allocate a new one from ${n.name}` }))] },
      { name: "target", label: "Port to be associated", type: "select", required: true, options: targets },
    ],
    onSubmit: async (v) => {
      const [port_id, fixed] = v.target.split("|");
      let id = v.fip;
      if (id.startsWith("new:")) {
        const r = await api.network.post("/v2.0/floatingips", { floatingip: { floating_network_id: id.slice(4) } });
        id = r.floatingip.id;
        try {
          await api.network.put(`/v2.0/floatingips/${id}`, { floatingip: { port_id, fixed_ip_address: fixed } });
        } catch (e) {
          // Don't keep an address allocated for nothing.
          await api.network.del(`/v2.0/floatingips/${id}`).catch(() => {});
          throw e;
        }
      } else {
        await api.network.put(`/v2.0/floatingips/${id}`, { floatingip: { port_id, fixed_ip_address: fixed } });
      }
      return true;
    },
  }).then((ok) => { if (ok) { reload(); } });
}

async function disassociate(sv, reload) {
  const ports = await api.portsOf(sv.id);
  const ids = new Set(ports.map((p) => p.id));
  const fips = ((await api.network.get("/v2.0/floatingips")).floatingips || []).filter((f) => ids.has(f.port_id));
  for (const f of fips) await api.network.put(`/v2.0/floatingips/${f.id}`, { floatingip: { port_id: null } });
  reload();
}

export default {
  title: "Instances",
  async render(ctx) {
    const admin = ctx.session.admin;
    let images = new Map();
    const columns = [
      { label: "Instance Name", render: (r) => h("span", { class: "name" }, r.name) },
      { label: "Image Name", render: (r) => r.image },
      { label: "IP Address", render: (r) => addresses(r.raw) },
      { label: "Flavor", render: (r) => r.flavor },
      { label: "Key Pair", render: (r) => r.key },
      { label: "Status", render: (r) => badge(r.status, r.task) },
      { label: "Power State", render: (r) => r.power },
    ];
    if (admin) columns.push({ label: "Host", render: (r) => r.host });
    columns.push({ label: "Age", render: (r) => r.age });
    let reload = () => {};
    const action = (sv, label, body, done) => ({
      label, run: () => act(done, async () => { await api.compute.post(`/servers/${sv.id}/action`, body); reload(); }),
    });
    const table = new DataTable({
      label: "Instances",
      columns,
      empty: "No instances yet. Launch one to get started.",
      actions: (r) => {
        const sv = r.raw;
        const on = r.status === "ACTIVE";
        const idle = !r.task;
        const hasFip = r.hasFip;
        return [
          { label: "Associate Floating IP", show: on && !hasFip, run: () => associate(sv, reload).catch((e) => act(null, () => { throw e; })) },
          { label: "Start Instance", show: r.status === "SHUTOFF", ...action(sv, "Start Instance", { "os-start": null }, `Starting ${sv.name}.`) },
          { label: "Console Log", run: () => consoleLog(sv) },
          { label: "Disassociate Floating IP", show: hasFip, run: () => act(`Floating IP removed from ${sv.name}.`, () => disassociate(sv, reload)) },
          { ...action(sv, "Soft Reboot Instance", { reboot: { type: "SOFT" } }, `Rebooting ${sv.name}.`), show: on },
          { ...action(sv, "Hard Reboot Instance", { reboot: { type: "HARD" } }, `Rebooting ${sv.name}.`), show: on || r.status === "ERROR" },
          { ...action(sv, "Shut Off Instance", { "os-stop": null }, `Shutting off ${sv.name}.`), show: on },
          { label: "Create Snapshot", show: idle && SNAPSHOTTABLE.has(r.status), run: () => snapshot(sv).catch((e) => act(null, () => { throw e; })) },
          { ...action(sv, "Pause Instance", { pause: null }, `Pausing ${sv.name}.`), show: on && idle },
          { ...action(sv, "Resume Instance", { unpause: null }, `Resuming ${sv.name}.`), show: r.status === "PAUSED" && idle },
          { ...action(sv, "Shelve Instance", { shelve: null }, `Shelving ${sv.name}: its disk is kept as an image and the host is freed.`), show: idle && SNAPSHOTTABLE.has(r.status) },
          { ...action(sv, "Unshelve Instance", { unshelve: null }, `Unshelving ${sv.name}.`), show: idle && r.status === "SHELVED_OFFLOADED" },
          { label: "Delete Instance", danger: true, run: async () => {
            if (await confirmDialog(`Delete instance ${sv.name}? Its disk is deleted with it.`)) {
              await act(`Deleting ${sv.name}.`, async () => { await api.compute.del(`/servers/${sv.id}`); reload(); });
            }
          } },
        ];
      },
    });
    ctx.root.append(pageHead("Instances", [h("button", { type: "button", class: "primary", onClick: () => launch(reload).catch((e) => act(null, () => { throw e; })) }, "Launch Instance")]), table.el);
    let changing = false;
    const load = async () => {
      const [servers, fips] = await Promise.all([api.listServers(), api.network.get("/v2.0/floatingips").catch(() => ({ floatingips: [] }))]);
      const list = servers.servers || [];
      const fipByAddr = new Set((fips.floatingips || []).filter((f) => f.port_id).map((f) => f.floating_ip_address));
      const wanted = list.map((sv) => (sv.image && sv.image.id) || "").filter((id) => id && !images.has(id));
      if (wanted.length) {
        images = new Map((await api.listImages()).map((i) => [i.id, i.name || i.id]));
      }
      changing = list.some((sv) => CHANGING.has(sv.status) || sv["OS-EXT-STS:task_state"]);
      table.set(list.map((sv) => {
        const imageId = (sv.image && sv.image.id) || "";
        const flat = Object.values(sv.addresses || {}).flat();
        return {
          id: sv.id, name: sv.name, status: sv.status, task: sv["OS-EXT-STS:task_state"] || null,
          power: POWER[sv["OS-EXT-STS:power_state"]] || "—",
          image: imageId ? images.get(imageId) || imageId : "(booted from volume)",
          flavor: sv.flavor ? sv.flavor.original_name : "—",
          key: sv.key_name, host: sv["OS-EXT-SRV-ATTR:host"] || null, created: sv.created, age: ago(sv.created),
          hasFip: flat.some((a) => a["OS-EXT-IPS:type"] === "floating" || fipByAddr.has(a.addr)),
          raw: sv,
        };
      }));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    // Quick while something changes, relaxed otherwise.
    let last = 0;
    ctx.every(1000, async () => {
      const now = Date.now();
      if (changing || now - last >= 5000) { last = now; await load(); }
    });
  },
};
