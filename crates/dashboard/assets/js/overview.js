// Compute > Overview: what the project uses against its quotas, as rings
// (compute: instances, vCPUs, RAM; network: floating IPs, security groups
// and rules, networks, ports, routers), and a usage summary per instance.

import * as api from "./api.js";
import { h, pageHead, DataTable, fmtMB, ago } from "./ui.js";
import { usageRing } from "./charts.js";

const NETWORK_CHARTS = [
  ["floatingip", "Floating IPs"], ["security_group", "Security Groups"],
  ["security_group_rule", "Security Group Rules"], ["network", "Networks"],
  ["port", "Ports"], ["router", "Routers"],
];

export default {
  title: "Overview",
  async render(ctx) {
    const project = ctx.session.project;
    if (!project) {
      ctx.root.append(pageHead("Overview"), h("p", { class: "note" }, "You have no project to work in."));
      return;
    }
    const computeBox = h("div", { class: "charts", id: "compute-usage" });
    const networkBox = h("div", { class: "charts", id: "network-usage" });
    const table = new DataTable({
      label: "Usage summary",
      columns: [
        { label: "Instance", render: (r) => r.name },
        { label: "vCPUs", render: (r) => String(r.vcpus) },
        { label: "RAM", render: (r) => fmtMB(r.ram) },
        { label: "Disk", render: (r) => `${r.disk} GB` },
        { label: "Status", render: (r) => r.status },
        { label: "Age", render: (r) => ago(r.created) },
      ],
      empty: "No instances in this project.",
    });
    ctx.root.append(pageHead("Overview", [], `Project ${project.name}`),
      h("section", { class: "panel" }, h("h2", null, "Compute"), computeBox),
      h("section", { class: "panel" }, h("h2", null, "Network"), networkBox),
      h("section", { class: "panel" }, h("h2", null, "Usage summary"), table.el));
    const load = async () => {
      const [limits, quota, servers] = await Promise.all([
        api.compute.get("/limits"),
        api.network.get(`/v2.0/quotas/${project.id}/details`).catch(() => null),
        api.listServers(),
      ]);
      const a = limits.limits.absolute;
      computeBox.replaceChildren(
        usageRing({ label: "Instances", used: a.totalInstancesUsed, limit: a.maxTotalInstances }),
        usageRing({ label: "VCPUs", used: a.totalCoresUsed, limit: a.maxTotalCores }),
        usageRing({ label: "RAM", used: a.totalRAMUsed, limit: a.maxTotalRAMSize, format: fmtMB }));
      if (quota) {
        const q = quota.quota;
        networkBox.replaceChildren(...NETWORK_CHARTS.filter(([k]) => q[k]).map(([k, label]) =>
          usageRing({ label, used: q[k].used, limit: q[k].limit })));
      } else {
        networkBox.replaceChildren(h("p", { class: "note" }, "Network usage is not available."));
      }
      table.set((servers.servers || []).map((sv) => ({
        id: sv.id, name: sv.name, status: sv.status, created: sv.created,
        vcpus: sv.flavor ? sv.flavor.vcpus : 0, ram: sv.flavor ? sv.flavor.ram : 0, disk: sv.flavor ? sv.flavor.disk : 0,
      })));
    };
    await load();
    ctx.every(5000, load);
  },
};
