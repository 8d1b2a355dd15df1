// Compute > Key Pairs: import a public key, or create a pair and download
// its private key once (it is kept nowhere else).

import * as api from "./api.js";
import { h, pageHead, DataTable, act, formDialog, confirmDialog, toast } from "./ui.js";

const KEY_NAME = (v) => (/^[A-Za-z0-9_\- .@]{1,255}$/.test(v) ? null : "Letters, digits, spaces and _ - . @ only.");

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/x-pem-file" }));
  const a = h("a", { href: url, download: `${name}.pem` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export default {
  title: "Key Pairs",
  async render(ctx) {
    let reload = () => {};
    const table = new DataTable({
      label: "Key Pairs",
      key: (r) => r.name,
      columns: [
        { label: "Name", render: (r) => r.name },
        { label: "Type", render: (r) => r.type || "ssh" },
        { label: "Fingerprint", render: (r) => h("code", null, r.fingerprint) },
      ],
      empty: "No key pairs yet. Import your public key to log in to instances.",
      actions: (k) => [{ label: "Delete Key Pair", danger: true, run: async () => {
        if (await confirmDialog(`Delete key pair ${k.name}? Instances already using it keep it.`)) {
          await act(`Deleted key pair ${k.name}.`, async () => { await api.compute.del(`/os-keypairs/${encodeURIComponent(k.name)}`); reload(); });
        }
      } }],
    });
    const importKey = () => formDialog({
      title: "Import Public Key",
      submit: "Import Public Key",
      fields: [
        { name: "name", label: "Key Pair Name", required: true, validate: KEY_NAME },
        { name: "public_key", label: "Public Key", type: "textarea", required: true, placeholder: "ssh-ed25519 AAAA… user@host",
          validate: (v) => (/^(ssh-|ecdsa-)/.test(v) ? null : "Paste an OpenSSH public key (it starts with ssh- or ecdsa-).") },
      ],
      onSubmit: async (v) => { await api.compute.post("/os-keypairs", { keypair: { name: v.name, public_key: v.public_key } }); return true; },
    }).then((ok) => { if (ok) reload(); });
    const createKey = () => formDialog({
      title: "Create Key Pair",
      submit: "Create Key Pair",
      fields: [{ name: "name", label: "Key Pair Name", required: true, validate: KEY_NAME,
        help: "The private key downloads once, now; it is not kept by the cloud." }],
      onSubmit: async (v) => {
        const r = await api.compute.post("/os-keypairs", { keypair: { name: v.name } });
        download(v.name, r.keypair.private_key);
        toast(`Downloaded the private key of ${v.name} as ${v.name}.pem.`, "info");
        return true;
      },
    }).then((ok) => { if (ok) reload(); });
    ctx.root.append(pageHead("Key Pairs", [
      h("button", { type: "button", onClick: createKey }, "Create Key Pair"),
      h("button", { type: "button", class: "primary", onClick: importKey }, "Import Public Key")]), table.el);
    const load = async () => { table.set(((await api.compute.get("/os-keypairs")).keypairs || []).map((k) => k.keypair)); };
    reload = () => { load().catch(() => {}); };
    await load();
  },
};
