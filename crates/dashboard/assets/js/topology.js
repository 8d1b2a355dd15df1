// Network > Network Topology: the project's networks as coloured columns
// (external first), and to their right one row per router, load balancer
// and instance,
// with a line to each network it has an address on and that address
// written where the line meets the column — the picture Horizon draws.
// Redrawn when what it shows changes.

import * as api from "./api.js";
import { h, s, pageHead } from "./ui.js";

const COLORS = ["#d97706", "#2f855a", "#7c3aed", "#0e7490", "#be185d", "#4d7c0f", "#9a3412"];
const EXTERNAL = "#1f6feb";
const COL = 150;
const BAR = 30;
const ROW = 70;
const BAR_TOP = 40;
const TOP = 62;
const BOX_W = 210;
const BOX_H = 48;

/** What the drawing shows, from the APIs' answers. */
export function model({ networks, subnets, routers, ports, servers, floatingips, loadbalancers = [] }, projectId) {
  const nets = networks.filter((n) => n.project_id === projectId || n.shared || n["router:external"])
    .sort((a, b) => (b["router:external"] ? 1 : 0) - (a["router:external"] ? 1 : 0) || (a.name || "").localeCompare(b.name || ""));
  const netIds = new Set(nets.map((n) => n.id));
  const cidrs = new Map();
  for (const sn of subnets) if (netIds.has(sn.network_id)) cidrs.set(sn.network_id, [...(cidrs.get(sn.network_id) || []), sn.cidr]);
  let projectColor = 0;
  const fipOf = new Map(floatingips.filter((f) => f.port_id).map((f) => [f.port_id, f.floating_ip_address]));
  const devices = [];
  for (const r of routers.filter((x) => x.project_id === projectId)) {
    const links = [];
    const gw = r.external_gateway_info;
    if (gw && gw.network_id && netIds.has(gw.network_id)) {
      links.push({ net: gw.network_id, ips: (gw.external_fixed_ips || []).map((f) => f.ip_address) });
    }
    for (const p of ports.filter((x) => x.device_id === r.id && x.device_owner === "network:router_interface")) {
      if (netIds.has(p.network_id)) links.push({ net: p.network_id, ips: (p.fixed_ips || []).map((f) => f.ip_address) });
    }
    devices.push({ kind: "router", id: r.id, name: r.name || r.id.slice(0, 8), status: r.status, links, sub: "router" });
  }
  for (const lb of loadbalancers.filter((x) => x.project_id === projectId)) {
    const links = netIds.has(lb.vip_network_id) ? [{ net: lb.vip_network_id, ips: [lb.vip_address] }] : [];
    const fip = fipOf.get(lb.vip_port_id);
    devices.push({ kind: "loadbalancer", id: lb.id, name: lb.name || lb.id.slice(0, 8), status: lb.operating_status, links,
      fips: fip ? [fip] : [], sub: `${lb.provisioning_status} · ${lb.operating_status}${fip ? ` · floating ${fip}` : ""}` });
  }
  for (const sv of [...servers].sort((a, b) => a.name.localeCompare(b.name))) {
    const mine = ports.filter((x) => x.device_id === sv.id && netIds.has(x.network_id));
    const links = mine.map((p) => ({ net: p.network_id, ips: (p.fixed_ips || []).map((f) => f.ip_address) }));
    const fips = mine.map((p) => fipOf.get(p.id)).filter(Boolean);
    devices.push({ kind: "instance", id: sv.id, name: sv.name, status: sv.status, links, fips,
      sub: `${sv.status}${fips.length ? ` · floating ${fips.join(", ")}` : ""}` });
  }
  return {
    networks: nets.map((n) => ({ id: n.id, name: n.name || n.id.slice(0, 8), external: !!n["router:external"],
      cidrs: cidrs.get(n.id) || [], color: n["router:external"] ? EXTERNAL : COLORS[(projectColor++) % COLORS.length] })),
    devices,
  };
}

function draw(m, go) {
  const nCols = Math.max(1, m.networks.length);
  const boxX = 20 + nCols * COL + 60;
  const width = boxX + BOX_W + 40;
  const height = Math.max(260, TOP + m.devices.length * ROW + 40);
  const col = new Map(m.networks.map((n, i) => [n.id, i]));
  const barX = (i) => 20 + i * COL;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Network topology", id: "topology-svg" });
  m.networks.forEach((n, i) => {
    const x = barX(i);
    svg.append(s("g", { class: "node network", "data-kind": "network", "data-name": n.name, "data-external": n.external ? "true" : "false",
      onClick: () => go(`#/networks/${n.id}`) },
      s("title", null, `${n.name}${n.external ? " (external)" : ""}\n${n.cidrs.join("\n")}`),
      s("text", { x, y: 16, "font-size": 13, "font-weight": 700, fill: n.color }, n.name),
      s("text", { x, y: 31, "font-size": 11.5, fill: "#5b636d" }, n.cidrs.join(", ") || "no subnet"),
      s("rect", { x, y: BAR_TOP, width: BAR, height: height - BAR_TOP - 10, rx: 5, fill: n.color, opacity: 0.92 })));
  });
  m.devices.forEach((d, row) => {
    const y = TOP + row * ROW + BOX_H / 2;
    const cols = d.links.map((l) => col.get(l.net)).filter((c) => c !== undefined);
    const g = s("g", { class: `node ${d.kind}`, "data-kind": d.kind, "data-name": d.name,
      "data-links": d.links.map((l) => m.networks[col.get(l.net)].name).join(","),
      onClick: () => go(d.kind === "router" ? `#/routers/${d.id}` : d.kind === "loadbalancer" ? `#/loadbalancers/${d.id}` : "#/instances") });
    if (cols.length) {
      const minCol = Math.min(...cols);
      g.append(s("line", { x1: barX(minCol) + BAR, y1: y, x2: boxX, y2: y, stroke: "#57606a", "stroke-width": 2 }));
    }
    for (const l of d.links) {
      const i = col.get(l.net);
      const cx = barX(i) + BAR;
      g.append(s("circle", { cx, cy: y, r: 5, fill: "#fff", stroke: m.networks[i].color, "stroke-width": 3 }),
        s("text", { x: cx + 9, y: y - 8, "font-size": 12, fill: "#1f2328", class: "ip" }, l.ips.join(", ")));
    }
    const LOOK = { router: ["#fff7ed", "#c2410c", 24, "⇄ "], loadbalancer: ["#f0fdf4", "#15803d", 14, "⚖ "], instance: ["#eff6ff", "#1d4ed8", 6, "▣ "] };
    const [fill, normal, radius, icon] = LOOK[d.kind];
    const stroke = d.status === "ERROR" ? "#c0262d" : normal;
    g.append(s("title", null, `${d.kind} ${d.name}\n${d.sub}`),
      s("rect", { class: "box", x: boxX, y: y - BOX_H / 2, width: BOX_W, height: BOX_H, rx: radius, fill, stroke, "stroke-width": 1.5 }),
      s("text", { x: boxX + 14, y: y - 3, "font-size": 14, "font-weight": 600, fill: "#1f2328" }, `${icon}${d.name}`),
      s("text", { x: boxX + 14, y: y + 14, "font-size": 11.5, fill: "#5b636d" }, d.sub));
    svg.append(g);
  });
  if (!m.devices.length && !m.networks.length) {
    svg.append(s("text", { x: 20, y: 40, fill: "#5b636d" }, "No networks yet."));
  }
  return svg;
}

export default {
  title: "Network Topology",
  async render(ctx) {
    const project = ctx.session.project ? ctx.session.project.id : "";
    const box = h("div", { class: "topology" });
    const legend = h("div", { class: "legend" },
      h("span", null, h("i", { style: { background: EXTERNAL } }), "external network"),
      h("span", null, h("i", { style: { background: COLORS[0] } }), "project networks"),
      h("span", null, "⇄ router"), h("span", null, "⚖ load balancer"), h("span", null, "▣ instance"),
      h("span", null, "Click a network, router or load balancer to open it."));
    ctx.root.append(pageHead("Network Topology"), legend, box);
    let last = "";
    const load = async () => {
      const [n, sn, r, p, sv, f, lbs] = await Promise.all([
        api.network.get("/v2.0/networks"), api.network.get("/v2.0/subnets"), api.network.get("/v2.0/routers"),
        api.network.get("/v2.0/ports"), api.listServers(), api.network.get("/v2.0/floatingips"),
        // A cloud may run without load balancers; the picture doesn't need them.
        api.loadBalancer.get("/loadbalancers").catch(() => ({ loadbalancers: [] }))]);
      const m = model({ networks: n.networks || [], subnets: sn.subnets || [], routers: r.routers || [], ports: p.ports || [],
        servers: sv.servers || [], floatingips: f.floatingips || [], loadbalancers: lbs.loadbalancers || [] }, project);
      const sig = JSON.stringify(m);
      if (sig === last) return;
      last = sig;
      box.replaceChildren(draw(m, ctx.go));
    };
    await load();
    ctx.every(4000, load);
  },
};
