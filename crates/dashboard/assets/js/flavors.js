// Admin > Flavors: sizes instances are launched with.

import * as api from "./api.js";
import { h, pageHead, DataTable, act, formDialog, confirmDialog, fmtMB, valid } from "./ui.js";

const whole = (min, what) => (v) => (Number.isInteger(v) && v >= min ? null : `${what} is a whole number, ${min} or more.`);

export default {
  title: "Flavors",
  admin: true,
  async render(ctx) {
    let reload = () => {};
    const table = new DataTable({
      label: "Flavors",
      columns: [
        { label: "Flavor Name", render: (r) => r.name },
        { label: "VCPUs", render: (r) => String(r.vcpus) },
        { label: "RAM", render: (r) => fmtMB(r.ram) },
        { label: "Root Disk", render: (r) => `${r.disk} GB` },
        { label: "Ephemeral Disk", render: (r) => `${r["OS-FLV-EXT-DATA:ephemeral"] || 0} GB` },
        { label: "Public", render: (r) => (r["os-flavor-access:is_public"] === false ? "No" : "Yes") },
        { label: "ID", render: (r) => h("code", null, r.id) },
      ],
      empty: "No flavors yet. Create one before launching instances.",
      actions: (f) => [{ label: "Delete Flavor", danger: true, run: async () => {
        if (await confirmDialog(`Delete flavor ${f.name}? Running instances keep their size.`)) {
          await act(`Deleted flavor ${f.name}.`, async () => { await api.compute.del(`/flavors/${f.id}`); reload(); });
        }
      } }],
    });
    const create = () => formDialog({
      title: "Create Flavor",
      submit: "Create Flavor",
      fields: [
        { name: "name", label: "Name", required: true, validate: valid.name },
        { name: "vcpus", label: "VCPUs", type: "number", value: 1, required: true, validate: whole(1, "VCPUs") },
        { name: "ram", label: "RAM (MB)", type: "number", value: 1024, required: true, validate: whole(1, "RAM") },
        { name: "disk", label: "Root Disk (GB)", type: "number", value: 20, required: true, validate: whole(0, "Root disk") },
        { name: "public", label: "Public (every project may use it)", type: "checkbox", value: true },
      ],
      onSubmit: async (v) => {
        await api.compute.post("/flavors", { flavor: { name: v.name, vcpus: v.vcpus, ram: v.ram, disk: v.disk, "os-flavor-access:is_public": v.public } });
        return true;
      },
    }).then((ok) => { if (ok) reload(); });
    ctx.root.append(pageHead("Flavors", [h("button", { type: "button", class: "primary", onClick: create }, "Create Flavor")]), table.el);
    const load = async () => { table.set(((await api.compute.get("/flavors/detail?is_public=None")).flavors || [])); };
    reload = () => { load().catch(() => {}); };
    await load();
  },
};
