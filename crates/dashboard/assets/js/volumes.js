// Volumes > Volumes: create (empty or from an image), extend, attach to an
// instance, detach, snapshot, delete; and Volumes > Volume Snapshots.
// Everything goes through the block storage and compute APIs with the
// user's own token.

import * as api from "./api.js";
import { h, pageHead, DataTable, badge, act, formDialog, confirmDialog } from "./ui.js";

const SIZE = (v) => (/^[1-9][0-9]*$/.test(v) ? null : "A whole number of GiB, 1 or more.");

async function createVolume(reload) {
  const images = (await api.listImages()).filter((i) => i.status === "active");
  await formDialog({
    title: "Create Volume",
    submit: "Create Volume",
    fields: [
      { name: "name", label: "Volume Name" },
      { name: "description", label: "Description" },
      { name: "source", label: "Volume Source", type: "select", value: "",
        options: [{ value: "", label: "No source, empty volume" }, ...images.map((i) => ({ value: i.id, label: `Image: ${i.name || i.id}` }))] },
      { name: "size", label: "Size (GiB)", required: true, value: "1", validate: SIZE },
    ],
    onSubmit: async (v) => {
      const volume = { size: Number(v.size) };
      if (v.name) volume.name = v.name;
      if (v.description) volume.description = v.description;
      if (v.source) volume.imageRef = v.source;
      await api.volume.post("/volumes", { volume });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function attach(vol, reload) {
  const servers = (await api.listServers()).servers.filter((s) => ["ACTIVE", "SHUTOFF", "PAUSED"].includes(s.status));
  await formDialog({
    title: `Attach ${vol.name || vol.id}`,
    submit: "Attach Volume",
    fields: [{ name: "server", label: "Attach to Instance", type: "select", required: true,
      options: [{ value: "", label: servers.length ? "Select an instance" : "No instance to attach to" },
        ...servers.map((s) => ({ value: s.id, label: s.name }))] }],
    onSubmit: async (v) => {
      await api.compute.post(`/servers/${v.server}/os-volume_attachments`, { volumeAttachment: { volumeId: vol.id } });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function extend(vol, reload) {
  await formDialog({
    title: `Extend ${vol.name || vol.id}`,
    submit: "Extend Volume",
    fields: [{ name: "size", label: "New Size (GiB)", required: true, value: String(vol.size + 1),
      validate: (v) => SIZE(v) || (Number(v) > vol.size ? null : `More than the current ${vol.size} GiB.`) }],
    onSubmit: async (v) => {
      await api.volume.post(`/volumes/${vol.id}/action`, { "os-extend": { new_size: Number(v.size) } });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function snapshot(vol, reload) {
  await formDialog({
    title: `Create Snapshot of ${vol.name || vol.id}`,
    submit: "Create Volume Snapshot",
    fields: [{ name: "name", label: "Snapshot Name", required: true }],
    onSubmit: async (v) => {
      await api.volume.post("/snapshots", { snapshot: { volume_id: vol.id, name: v.name, force: vol.status === "in-use" } });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

export const volumesPage = {
  title: "Volumes",
  async render(ctx) {
    let reload = () => {};
    const table = new DataTable({
      label: "Volumes",
      columns: [
        { label: "Name", render: (r) => r.name || r.id },
        { label: "Size", render: (r) => `${r.size} GiB` },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "Type", render: (r) => r.volume_type },
        { label: "Attached To", render: (r) => (r.attachments || []).map((a) => `${r._servers.get(a.server_id) || a.server_id} on ${a.device}`).join(", ") || null },
        { label: "Bootable", render: (r) => (r.bootable === "true" ? "Yes" : "No") },
      ],
      empty: "No volumes yet. A volume is a disk that outlives the instances it is attached to.",
      actions: (v) => {
        const attached = (v.attachments || []).length > 0;
        return [
          { label: "Attach", show: v.status === "available", run: () => attach(v, reload) },
          { label: "Detach", show: attached && v.attachments.every((a) => a.device !== "/dev/vda"), run: () => act(`Detaching ${v.name || v.id}.`, async () => {
            for (const a of v.attachments) await api.compute.del(`/servers/${a.server_id}/os-volume_attachments/${v.id}`);
            reload();
          }) },
          { label: "Extend Volume", show: ["available", "in-use"].includes(v.status), run: () => extend(v, reload) },
          { label: "Create Snapshot", show: ["available", "in-use"].includes(v.status), run: () => snapshot(v, reload) },
          { label: "Delete Volume", danger: true, show: !attached, run: async () => {
            if (await confirmDialog(`Delete volume ${v.name || v.id}? Its data is lost.`)) {
              await act(`Deleting volume ${v.name || v.id}.`, async () => { await api.volume.del(`/volumes/${v.id}`); reload(); });
            }
          } },
        ];
      },
    });
    ctx.root.append(pageHead("Volumes", [h("button", { type: "button", class: "primary", onClick: () => createVolume(reload) }, "Create Volume")]), table.el);
    const load = async () => {
      const [vols, servers] = await Promise.all([api.volume.get("/volumes/detail"), api.compute.get("/servers")]);
      const names = new Map((servers.servers || []).map((s) => [s.id, s.name]));
      table.set((vols.volumes || []).map((v) => ({ ...v, _servers: names })));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(3000, load);
  },
};

export const snapshotsPage = {
  title: "Volume Snapshots",
  async render(ctx) {
    let reload = () => {};
    const table = new DataTable({
      label: "Volume Snapshots",
      columns: [
        { label: "Name", render: (r) => r.name || r.id },
        { label: "Size", render: (r) => `${r.size} GiB` },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "Volume", render: (r) => r._volume },
      ],
      empty: "No volume snapshots.",
      actions: (s) => [
        { label: "Create Volume", show: s.status === "available", run: () => act(`Creating a volume from ${s.name || s.id}.`, async () => {
          await api.volume.post("/volumes", { volume: { snapshot_id: s.id, name: `${s.name || "snapshot"}-volume` } });
        }) },
        { label: "Delete Volume Snapshot", danger: true, run: async () => {
          if (await confirmDialog(`Delete snapshot ${s.name || s.id}?`)) {
            await act(`Deleting snapshot ${s.name || s.id}.`, async () => { await api.volume.del(`/snapshots/${s.id}`); reload(); });
          }
        } },
      ],
    });
    ctx.root.append(pageHead("Volume Snapshots"), table.el);
    const load = async () => {
      const [snaps, vols] = await Promise.all([api.volume.get("/snapshots/detail"), api.volume.get("/volumes")]);
      const names = new Map((vols.volumes || []).map((v) => [v.id, v.name || v.id]));
      table.set((snaps.snapshots || []).map((s) => ({ ...s, _volume: names.get(s.volume_id) || s.volume_id })));
    };
    reload = () => { load().catch(() => {}); };
    await load();
    ctx.every(3000, load);
  },
};
