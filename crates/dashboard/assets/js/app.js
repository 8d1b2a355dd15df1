// The dashboard's shell: login, the top bar (project switcher, sign out),
// the navigation, and a hash router that mounts one page at a time. A page
// is {title, admin?, render(ctx)}; ctx.every() polls while the page is
// shown (and the tab visible), and stops when the user navigates away.

import * as api from "./api.js";
import { h, toast, denied } from "./ui.js";
import overview from "./overview.js";
import instances from "./instances.js";
import images from "./images.js";
import flavors from "./flavors.js";
import keypairs from "./keypairs.js";
import { volumesPage, snapshotsPage } from "./volumes.js";
import { networksPage, networkPage } from "./networks.js";
import { routersPage, routerPage } from "./routers.js";
import floatingips from "./floatingips.js";
import { balancersPage, balancerPage } from "./loadbalancers.js";
import { groupsPage, groupPage } from "./secgroups.js";
import topology from "./topology.js";
import { hypervisors, services, projects, users } from "./admin.js";

const NAV = [
  ["Compute", [["overview", "Overview", overview], ["instances", "Instances", instances],
    ["images", "Images", images], ["keypairs", "Key Pairs", keypairs]]],
  ["Volumes", [["volumes", "Volumes", volumesPage], ["volume-snapshots", "Volume Snapshots", snapshotsPage]]],
  ["Network", [["topology", "Network Topology", topology], ["networks", "Networks", networksPage],
    ["routers", "Routers", routersPage], ["floating-ips", "Floating IPs", floatingips],
    ["loadbalancers", "Load Balancers", balancersPage],
    ["security-groups", "Security Groups", groupsPage]]],
  ["Admin", [["admin/hypervisors", "Hypervisors", hypervisors], ["admin/services", "Compute Services", services],
    ["admin/flavors", "Flavors", flavors], ["admin/projects", "Projects", projects], ["admin/users", "Users", users]]],
];
// Pages reached from others, by pattern.
const DETAIL = [
  [/^networks\/([^/]+)$/, networkPage],
  [/^routers\/([^/]+)$/, routerPage],
  [/^loadbalancers\/([^/]+)$/, balancerPage],
  [/^security-groups\/([^/]+)$/, groupPage],
];

const root = document.getElementById("app");
let session = null;
let current = null; // {stop()} of the mounted page

function findPage(path) {
  for (const [, items] of NAV) for (const [p, , page] of items) if (p === path) return { page, params: [] };
  for (const [re, page] of DETAIL) {
    const m = path.match(re);
    if (m) return { page, params: m.slice(1).map(decodeURIComponent) };
  }
  return null;
}

function showLogin(message) {
  if (current) { current.stop(); current = null; }
  session = null;
  const err = h("div", { class: "form-error", role: "alert", hidden: !message }, message || "");
  const domain = h("input", { type: "text", id: "login-domain", value: localStorage.getItem("ferro.domain") || "Default", autocomplete: "off" });
  const user = h("input", { type: "text", id: "login-user", value: localStorage.getItem("ferro.user") || "", autocomplete: "username" });
  const pass = h("input", { type: "password", id: "login-password", autocomplete: "current-password" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign In");
  const form = h("form", { class: "login", "aria-label": "Log in" },
    h("h1", null, "ferrostack"),
    h("p", { class: "sub" }, "Log in to your cloud"),
    err,
    h("div", { class: "field" }, h("label", { for: "login-domain" }, "Domain"), domain),
    h("div", { class: "field" }, h("label", { for: "login-user" }, "User Name"), user),
    h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), pass),
    submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!user.value.trim() || !pass.value) {
      err.textContent = "Enter a user name and a password.";
      err.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      const r = await api.session.login(domain.value.trim(), user.value.trim(), pass.value);
      localStorage.setItem("ferro.domain", domain.value.trim());
      localStorage.setItem("ferro.user", user.value.trim());
      session = r.session;
      showShell();
    } catch (ex) {
      err.textContent = ex.message;
      err.hidden = false;
      submit.disabled = false;
      pass.select();
    }
  });
  root.replaceChildren(form);
  (user.value ? pass : user).focus();
}

function navLinks() {
  return NAV.filter(([group]) => group !== "Admin" || session.admin).map(([group, items]) =>
    [h("h2", null, group), items.map(([path, label]) => h("a", { href: `#/${path}`, "data-path": path }, label))]);
}

function showShell() {
  const projectSelect = h("select", { "aria-label": "Project", id: "project-switcher" },
    session.projects.map((p) => h("option", { value: p.id, selected: session.project && p.id === session.project.id }, p.name)));
  projectSelect.addEventListener("change", async () => {
    try {
      const r = await api.session.switchProject(projectSelect.value);
      session = r.session;
      toast(`Now working in project ${session.project.name}.`);
      showShell();
    } catch (e) {
      toast(e.message, "error");
    }
  });
  const signOut = h("button", { type: "button", onClick: async () => {
    try { await api.session.logout(); } catch (_) { /* gone already */ }
    location.hash = "";
    showLogin();
  } }, "Sign Out");
  const shell = h("div", { class: "shell" },
    h("header", { class: "topbar" },
      h("a", { class: "brand", href: "#/overview" }, "ferro", h("span", null, "stack")),
      h("label", null, "Project", projectSelect),
      h("span", { class: "spacer" }),
      h("span", { class: "who", id: "who" }, `${session.user.name} @ ${session.user.domain ? session.user.domain.name : ""}`),
      signOut),
    h("nav", { class: "side", "aria-label": "Main" }, navLinks()),
    h("main", { id: "main" }));
  root.replaceChildren(shell);
  route();
}

function route() {
  if (!session) return;
  const main = document.getElementById("main");
  if (!main) return;
  const path = (location.hash.replace(/^#\/?/, "") || "overview").replace(/\/$/, "");
  for (const a of document.querySelectorAll("nav.side a")) {
    const p = a.dataset.path;
    a.classList.toggle("active", path === p || path.startsWith(p + "/"));
  }
  if (current) { current.stop(); current = null; }
  const found = findPage(path);
  main.replaceChildren();
  if (!found) {
    main.append(denied(`There is no page "${path}".`));
    return;
  }
  const { page, params } = found;
  document.title = `${page.title} · ferrostack`;
  if (page.admin && !session.admin) {
    main.append(h("div", { class: "page-head" }, h("h1", null, page.title)),
      denied("This page is for administrators. Your role in this project doesn't allow it."));
    return;
  }
  const timers = [];
  const leave = [];
  let live = true;
  const ctx = {
    root: main, params, session,
    every(ms, f) {
      let busy = false;
      const tick = async () => {
        if (!live || busy || document.hidden) return;
        busy = true;
        try { await f(); } catch (_) { /* shown by the page */ } finally { busy = false; }
      };
      timers.push(setInterval(tick, ms));
      return tick;
    },
    onLeave(f) { leave.push(f); },
    get alive() { return live; },
    go(hash) { location.hash = hash; },
  };
  current = { stop() { live = false; timers.forEach(clearInterval); leave.forEach((f) => f()); } };
  Promise.resolve(page.render(ctx)).catch((e) => {
    if (!live) return;
    main.append(denied(e.message || String(e)));
  });
}

async function start() {
  api.onUnauthorized(() => {
    if (session) showLogin("Your session has ended. Please log in again.");
  });
  window.addEventListener("hashchange", route);
  try {
    const r = await api.session.get();
    session = r.session;
    showShell();
  } catch (_) {
    showLogin();
  }
}

start();
