// Network > Security Groups: groups, and a group's rule editor with the
// usual templates (SSH, ALL ICMP, HTTP, …) as Horizon offers them.

import * as api from "./api.js";
import { h, pageHead, DataTable, act, formDialog, confirmDialog, valid, button } from "./ui.js";

// template → [protocol, port_min, port_max]; null ports: all.
const TEMPLATES = {
  "custom-tcp": ["Custom TCP Rule", "tcp"], "custom-udp": ["Custom UDP Rule", "udp"], "custom-icmp": ["Custom ICMP Rule", "icmp"],
  "all-icmp": ["ALL ICMP", "icmp", null, null], "all-tcp": ["ALL TCP", "tcp", 1, 65535], "all-udp": ["ALL UDP", "udp", 1, 65535],
  ssh: ["SSH", "tcp", 22, 22], http: ["HTTP", "tcp", 80, 80], https: ["HTTPS", "tcp", 443, 443],
  dns: ["DNS", "udp", 53, 53], postgresql: ["PostgreSQL", "tcp", 5432, 5432], "other": ["Other Protocol", null],
};

const port = (v) => (Number.isInteger(v) && v >= 1 && v <= 65535 ? null : "A port is a whole number from 1 to 65535.");

function portRange(r) {
  if (r.protocol === "icmp") {
    if (r.port_range_min === null || r.port_range_min === undefined) return "Any";
    return `type ${r.port_range_min}${r.port_range_max !== null && r.port_range_max !== undefined ? ` code ${r.port_range_max}` : ""}`;
  }
  if (r.port_range_min === null || r.port_range_min === undefined) return "Any";
  return r.port_range_min === r.port_range_max ? String(r.port_range_min) : `${r.port_range_min} - ${r.port_range_max}`;
}

async function addRule(group, groups, reload) {
  const custom = (v) => v.rule === "custom-tcp" || v.rule === "custom-udp";
  await formDialog({
    title: `Add Rule to ${group.name}`,
    submit: "Add",
    fields: [
      { name: "rule", label: "Rule", type: "select", value: "custom-tcp",
        options: Object.entries(TEMPLATES).map(([value, [label]]) => ({ value, label })) },
      { name: "protocol", label: "IP Protocol", placeholder: "a name such as gre, or a number 0-255", required: true,
        show: (v) => v.rule === "other",
        validate: (x) => (/^([a-z]+|\d{1,3})$/.test(x) && !(/^\d+$/.test(x) && Number(x) > 255) ? null : "A protocol name or a number from 0 to 255.") },
      { name: "direction", label: "Direction", type: "select", value: "ingress",
        options: [{ value: "ingress", label: "Ingress" }, { value: "egress", label: "Egress" }] },
      { name: "port_mode", label: "Open Port", type: "select", value: "port", show: custom,
        options: [{ value: "port", label: "Port" }, { value: "range", label: "Port Range" }, { value: "all", label: "All ports" }] },
      { name: "port", label: "Port", type: "number", required: true, validate: port, show: (v) => custom(v) && v.port_mode === "port" },
      { name: "from", label: "From Port", type: "number", required: true, validate: port, show: (v) => custom(v) && v.port_mode === "range" },
      { name: "to", label: "To Port", type: "number", required: true, show: (v) => custom(v) && v.port_mode === "range",
        validate: (x, v) => port(x) || (v.from && x < v.from ? "To Port can't be below From Port." : null) },
      { name: "icmp_type", label: "ICMP Type", type: "number", show: (v) => v.rule === "custom-icmp",
        validate: (x) => (Number.isInteger(x) && x >= 0 && x <= 255 ? null : "0 to 255.") },
      { name: "icmp_code", label: "ICMP Code", type: "number", show: (v) => v.rule === "custom-icmp",
        validate: (x) => (Number.isInteger(x) && x >= 0 && x <= 255 ? null : "0 to 255.") },
      { name: "remote", label: "Remote", type: "select", value: "cidr",
        options: [{ value: "cidr", label: "CIDR" }, { value: "group", label: "Security Group" }] },
      { name: "cidr", label: "CIDR", value: "0.0.0.0/0", required: true, validate: valid.cidr, show: (v) => v.remote === "cidr" },
      { name: "remote_group", label: "Security Group", type: "select", show: (v) => v.remote === "group",
        options: groups.map((g) => ({ value: g.id, label: g.id === group.id ? `${g.name} (this group)` : g.name })), value: group.id },
      { name: "description", label: "Description" },
    ],
    onSubmit: async (v) => {
      const [, proto, min, max] = TEMPLATES[v.rule];
      const rule = { security_group_id: group.id, direction: v.direction, ethertype: "IPv4", protocol: proto || v.protocol };
      if (min !== undefined) { rule.port_range_min = min; rule.port_range_max = max; }
      if (custom(v)) {
        if (v.port_mode === "port") { rule.port_range_min = v.port; rule.port_range_max = v.port; }
        if (v.port_mode === "range") { rule.port_range_min = v.from; rule.port_range_max = v.to; }
      }
      if (v.rule === "custom-icmp") {
        if (v.icmp_type !== null) rule.port_range_min = v.icmp_type;
        if (v.icmp_code !== null) rule.port_range_max = v.icmp_code;
      }
      if (v.remote === "cidr") rule.remote_ip_prefix = v.cidr;
      else rule.remote_group_id = v.remote_group;
      if (v.description) rule.description = v.description;
      await api.network.post("/v2.0/security-group-rules", { security_group_rule: rule });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

async function createGroup(reload) {
  await formDialog({
    title: "Create Security Group",
    submit: "Create Security Group",
    fields: [
      { name: "name", label: "Name", required: true, validate: (v) => valid.name(v) || (v === "default" ? "default is the project's own group; choose another name." : null) },
      { name: "description", label: "Description" },
    ],
    onSubmit: async (v) => {
      await api.network.post("/v2.0/security-groups", { security_group: { name: v.name, description: v.description } });
      return true;
    },
  }).then((ok) => { if (ok) reload(); });
}

function deleteGroup(g, after) {
  return async () => {
    if (await confirmDialog(`Delete security group ${g.name}?`)) {
      await act(`Deleted security group ${g.name}.`, async () => { await api.network.del(`/v2.0/security-groups/${g.id}`); after(); });
    }
  };
}

export const groupsPage = {
  title: "Security Groups",
  async render(ctx) {
    let reload = () => {};
    const table = new DataTable({
      label: "Security Groups",
      columns: [
        { label: "Name", render: (r) => h("a", { href: `#/security-groups/${r.id}` }, r.name) },
        { label: "Description", render: (r) => r.description },
        { label: "Rules", render: (r) => String((r.security_group_rules || []).length) },
      ],
      empty: "No security groups.",
      actions: (g) => [
        { label: "Manage Rules", run: () => ctx.go(`#/security-groups/${g.id}`) },
        { label: "Delete Security Group", danger: true, show: g.name !== "default", run: deleteGroup(g, () => reload()) },
      ],
    });
    ctx.root.append(pageHead("Security Groups", [h("button", { type: "button", class: "primary", onClick: () => createGroup(reload) }, "Create Security Group")]), table.el);
    const load = async () => {
      const p = ctx.session.project ? `?project_id=${ctx.session.project.id}` : "";
      table.set((await api.network.get(`/v2.0/security-groups${p}`)).security_groups || []);
    };
    reload = () => { load().catch(() => {}); };
    await load();
  },
};

export const groupPage = {
  title: "Security Group Rules",
  async render(ctx) {
    const [id] = ctx.params;
    let reload = () => {};
    let group = null;
    let groups = [];
    const head = h("div");
    const table = new DataTable({
      label: "Rules", filter: false,
      columns: [
        { label: "Direction", render: (r) => (r.direction === "ingress" ? "Ingress" : "Egress") },
        { label: "Ether Type", render: (r) => r.ethertype },
        { label: "IP Protocol", render: (r) => (r.protocol ? r.protocol.toUpperCase() : "Any") },
        { label: "Port Range", render: (r) => portRange(r) },
        { label: "Remote IP Prefix", render: (r) => r.remote_ip_prefix || (r.remote_group_id ? null : r.ethertype === "IPv6" ? "::/0" : "0.0.0.0/0") },
        { label: "Remote Security Group", render: (r) => (r.remote_group_id ? (groups.find((g) => g.id === r.remote_group_id) || {}).name || r.remote_group_id : null) },
        { label: "Description", render: (r) => r.description },
      ],
      empty: "No rules: nothing may reach the instances of this group, and they may send nothing.",
      actions: (r) => [{ label: "Delete Rule", danger: true, run: async () => {
        if (await confirmDialog("Delete this rule? Connections it allowed are refused from now on.", { action: "Delete Rule" })) {
          await act("Deleted the rule.", async () => { await api.network.del(`/v2.0/security-group-rules/${r.id}`); reload(); });
        }
      } }],
    });
    ctx.root.append(head, table.el);
    const load = async () => {
      const [g, all] = await Promise.all([api.network.get(`/v2.0/security-groups/${id}`),
        api.network.get(`/v2.0/security-groups${ctx.session.project ? `?project_id=${ctx.session.project.id}` : ""}`)]);
      group = g.security_group;
      groups = all.security_groups || [];
      head.replaceChildren(pageHead(`Manage Security Group Rules: ${group.name}`, [
        button("Add Rule", () => addRule(group, groups, reload), "primary"),
        group.name !== "default" ? button("Delete Security Group", deleteGroup(group, () => ctx.go("#/security-groups")), "danger") : null,
      ], h("a", { href: "#/security-groups" }, "Security Groups ›")));
      table.set(group.security_group_rules || []);
    };
    reload = () => { load().catch(() => {}); };
    await load();
  },
};
