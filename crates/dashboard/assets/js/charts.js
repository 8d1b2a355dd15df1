// Usage charts: a ring per resource, filled by the share of the quota in use.

import { h, s } from "./ui.js";

function color(ratio) {
  if (ratio >= 0.9) return "#c0262d";
  if (ratio >= 0.7) return "#d97706";
  return "#2f855a";
}

/** A ring for `used` of `limit` (a limit below 0 means none). */
export function usageRing({ label, used, limit, format = String }) {
  const unlimited = limit === null || limit === undefined || limit < 0;
  const ratio = unlimited ? 0 : limit === 0 ? 1 : Math.min(1, used / limit);
  const r = 44;
  const c = 2 * Math.PI * r;
  const ring = s("svg", { viewBox: "0 0 110 110", role: "img", "aria-label": `${label}: ${used} of ${unlimited ? "unlimited" : limit}` },
    s("circle", { cx: 55, cy: 55, r, fill: "none", stroke: "#e6e9ed", "stroke-width": 12 }),
    s("circle", {
      cx: 55, cy: 55, r, fill: "none", stroke: color(ratio), "stroke-width": 12,
      "stroke-dasharray": `${(ratio * c).toFixed(2)} ${c.toFixed(2)}`, transform: "rotate(-90 55 55)",
      "stroke-linecap": ratio > 0 && ratio < 1 ? "round" : "butt",
    }),
    s("text", { x: 55, y: 52, "text-anchor": "middle", "font-size": 19, "font-weight": 700, fill: "#1f2328" }, format(used)),
    s("text", { x: 55, y: 70, "text-anchor": "middle", "font-size": 11, fill: "#5b636d" },
      unlimited ? "no limit" : `of ${format(limit)}`));
  return h("div", { class: "chart", "data-chart": label, "data-used": used, "data-limit": unlimited ? -1 : limit },
    ring, h("div", { class: "label" }, label),
    h("div", { class: "value" }, unlimited ? `Used ${format(used)}` : `Used ${format(used)} of ${format(limit)}`));
}
