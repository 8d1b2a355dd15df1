// Compute > Images: the images the project sees; upload with a progress
// bar (the record is made first, then the file streams to it); edit;
// delete.

import * as api from "./api.js";
import { h, pageHead, DataTable, badge, act, formDialog, confirmDialog, fmtBytes, valid } from "./ui.js";

const FORMATS = ["qcow2", "raw", "iso", "vmdk", "vdi", "vhd", "vhdx", "ami", "ari", "aki"];

function guessFormat(name) {
  const ext = (name.split(".").pop() || "").toLowerCase();
  return FORMATS.includes(ext) ? ext : ext === "img" ? "qcow2" : "raw";
}

async function create(reload, admin) {
  await formDialog({
    title: "Create Image",
    submit: "Create Image",
    fields: [
      { name: "name", label: "Image Name", required: true, validate: valid.name },
      { name: "file", label: "Image File", type: "file", required: true, help: "Uploaded from this browser; the progress shows below." },
      { name: "disk_format", label: "Format", type: "select", value: "qcow2",
        options: FORMATS.map((f) => ({ value: f, label: f.toUpperCase() })) },
      { name: "visibility", label: "Visibility", type: "select", value: "private",
        options: [{ value: "private", label: "Private" }, { value: "shared", label: "Shared" }, { value: "community", label: "Community" },
          ...(admin ? [{ value: "public", label: "Public" }] : [])] },
      { name: "min_disk", label: "Minimum Disk (GB)", type: "number", value: 0, min: 0,
        validate: (v) => (Number.isInteger(v) && v >= 0 ? null : "A whole number of GB, 0 or more.") },
      { name: "min_ram", label: "Minimum RAM (MB)", type: "number", value: 0, min: 0,
        validate: (v) => (Number.isInteger(v) && v >= 0 ? null : "A whole number of MB, 0 or more.") },
      { name: "protected", label: "Protected (can't be deleted)", type: "checkbox" },
    ],
    onSubmit: async (v, { extra }) => {
      const bar = h("progress", { max: 100, value: 0, "aria-label": "Upload progress", id: "upload-progress" });
      const label = h("div", { class: "progress-label", "aria-live": "polite" }, "Creating the image record…");
      extra.replaceChildren(h("div", { class: "field" }, h("label", null, "Upload"), bar, label));
      const img = await api.image.post("/v2/images", {
        name: v.name, disk_format: v.disk_format, container_format: "bare", visibility: v.visibility,
        min_disk: v.min_disk || 0, min_ram: v.min_ram || 0, protected: v.protected,
      });
      try {
        await api.uploadImageData(img.id, v.file, (f) => {
          const pct = Math.floor(f * 100);
          bar.value = pct;
          bar.setAttribute("data-value", String(pct));
          label.textContent = `${pct}% · ${fmtBytes(v.file.size * f)} of ${fmtBytes(v.file.size)}`;
        });
      } catch (e) {
        // A record without data is of no use: take it back (unprotect first).
        if (v.protected) await api.image.patch(`/v2/images/${img.id}`, [{ op: "replace", path: "/protected", value: false }],
          { "Content-Type": "application/openstack-images-v2.1-json-patch" }).catch(() => {});
        await api.image.del(`/v2/images/${img.id}`).catch(() => {});
        throw e;
      }
      label.textContent = "Uploaded. Checking the image…";
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function edit(img, reload, admin) {
  await formDialog({
    title: `Edit Image ${img.name || img.id}`,
    submit: "Update Image",
    fields: [
      { name: "name", label: "Image Name", required: true, value: img.name || "", validate: valid.name },
      { name: "visibility", label: "Visibility", type: "select", value: img.visibility,
        options: ["private", "shared", "community", ...(admin || img.visibility === "public" ? ["public"] : [])]
          .map((x) => ({ value: x, label: x[0].toUpperCase() + x.slice(1) })) },
      { name: "min_disk", label: "Minimum Disk (GB)", type: "number", value: img.min_disk || 0,
        validate: (v) => (Number.isInteger(v) && v >= 0 ? null : "A whole number of GB, 0 or more.") },
      { name: "min_ram", label: "Minimum RAM (MB)", type: "number", value: img.min_ram || 0,
        validate: (v) => (Number.isInteger(v) && v >= 0 ? null : "A whole number of MB, 0 or more.") },
      { name: "protected", label: "Protected (can't be deleted)", type: "checkbox", value: img.protected },
    ],
    onSubmit: async (v) => {
      const ops = [];
      const set = (k, val) => { if (img[k] !== val) ops.push({ op: img[k] === undefined ? "add" : "replace", path: `/${k}`, value: val }); };
      set("name", v.name); set("visibility", v.visibility); set("min_disk", v.min_disk || 0);
      set("min_ram", v.min_ram || 0); set("protected", v.protected);
      if (ops.length) {
        await api.image.patch(`/v2/images/${img.id}`, ops, { "Content-Type": "application/openstack-images-v2.1-json-patch" });
      }
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

export default {
  title: "Images",
  async render(ctx) {
    const admin = ctx.session.admin;
    const me = ctx.session.project && ctx.session.project.id;
    let reload = () => {};
    const table = new DataTable({
      label: "Images",
      columns: [
        { label: "Name", render: (r) => r.name || r.id },
        { label: "Type", render: (r) => (r.owner === me ? "Image" : "Shared with project") },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "Visibility", render: (r) => r.visibility },
        { label: "Protected", render: (r) => (r.protected ? "Yes" : "No") },
        { label: "Disk Format", render: (r) => (r.disk_format || "").toUpperCase() },
        { label: "Size", render: (r) => fmtBytes(r.size) },
      ],
      empty: "No images yet.",
      actions: (img) => [
        { label: "Edit Image", show: admin || img.owner === me, run: () => edit(img, reload, admin) },
        { label: "Delete Image", danger: true, show: admin || img.owner === me, run: async () => {
          if (await confirmDialog(`Delete image ${img.name || img.id}?`)) {
            await act(`Deleted ${img.name || img.id}.`, async () => { await api.image.del(`/v2/images/${img.id}`); reload(); });
          }
        } },
      ],
    });
    ctx.root.append(pageHead("Images", [h("button", { type: "button", class: "primary", onClick: () => create(reload, admin) }, "Create Image")]), table.el);
    const load = async () => { table.set(await api.listImages()); };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(5000, load);
  },
};
