// Small building blocks: elements, tables that update in place, dialogs
// with validated forms, confirmations, toasts, status badges, formats.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function setProps(el, props, isSvg) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "class") el.setAttribute("class", v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (!isSvg && (k === "value" || k === "checked" || k === "disabled" || k === "selected")) el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
}

/** h("div", {class: "x", onClick: f}, child, "text", [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props, false);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props, true);
  append(el, children);
  return el;
}

// ---- formats ----

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function fmtMB(mb) { return mb >= 1024 ? `${(mb / 1024).toFixed(mb % 1024 ? 1 : 0)} GB` : `${mb} MB`; }

export function ago(iso) {
  if (!iso) return "—";
  const t = Date.parse(iso.endsWith("Z") || iso.includes("+") ? iso : iso + "Z");
  if (Number.isNaN(t)) return iso;
  const sec = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (sec < 60) return "under a minute";
  if (sec < 3600) return `${Math.floor(sec / 60)} min`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`;
  return `${Math.floor(sec / 86400)} d`;
}

const STATUS_CLASS = {
  ACTIVE: "ok", UP: "ok", AVAILABLE: "ok", enabled: "ok", up: "ok",
  ERROR: "bad", DOWN: "bad", killed: "bad", down: "bad", disabled: "off",
  BUILD: "busy", REBOOT: "busy", HARD_REBOOT: "busy", RESIZE: "busy", VERIFY_RESIZE: "busy",
  REBUILD: "busy", saving: "busy", queued: "busy", importing: "busy", uploading: "busy", PENDING_CREATE: "busy",
  SHUTOFF: "off", PAUSED: "off", SUSPENDED: "off", deactivated: "off",
  active: "ok",
  // Load balancers (Octavia's provisioning and operating statuses).
  ONLINE: "ok", OFFLINE: "off", DEGRADED: "busy", NO_MONITOR: "", DRAINING: "off",
  PENDING_UPDATE: "busy", PENDING_DELETE: "busy",
  // Volumes and snapshots (Cinder's lower-case statuses).
  available: "ok", "in-use": "ok", error: "bad", error_extending: "bad", creating: "busy", attaching: "busy",
  detaching: "busy", extending: "busy", deleting: "busy", reserved: "busy", downloading: "busy",
};

export function badge(status, extra) {
  const cls = STATUS_CLASS[status] || (status === "DOWN" ? "bad" : "");
  return h("span", { class: `badge ${cls}`, "data-status": status }, status, extra ? h("span", { class: "task" }, extra) : null);
}

// ---- toasts ----

let toastBox;
export function toast(message, kind = "ok") {
  if (!toastBox) { toastBox = h("div", { class: "toasts", "aria-live": "polite" }); document.body.append(toastBox); }
  const t = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  toastBox.append(t);
  setTimeout(() => t.remove(), kind === "error" ? 10000 : 5000);
}

/** Runs an action, reporting success or the API's message as a toast. */
export async function act(what, f) {
  try {
    const r = await f();
    if (what) toast(what);
    return r;
  } catch (e) {
    toast(e.message || String(e), "error");
    return undefined;
  }
}

// ---- validation ----

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const valid = {
  ipv4: (v) => (IPV4.test(v) ? null : `${v} is not an IPv4 address.`),
  cidr: (v) => {
    const [ip, len, extra] = v.split("/");
    if (extra !== undefined || !IPV4.test(ip || "") || !/^\d{1,2}$/.test(len || "") || Number(len) > 32) {
      return `${v} is not a CIDR such as 192.168.0.0/24.`;
    }
    return null;
  },
  name: (v) => (v.length > 255 ? "At most 255 characters." : null),
};

export function ipv4ToInt(ip) { return ip.split(".").reduce((a, o) => a * 256 + Number(o), 0); }
export function inCidr(ip, cidr) {
  const [base, len] = cidr.split("/");
  const size = 2 ** (32 - Number(len));
  const start = Math.floor(ipv4ToInt(base) / size) * size;
  const n = ipv4ToInt(ip);
  return n >= start && n < start + size;
}

// ---- dialogs ----

function fieldValue(f, input) {
  switch (f.type) {
    case "checkbox": return input.checked;
    case "checkboxes": return [...input.querySelectorAll("input:checked")].map((c) => c.value);
    case "number": return input.value === "" ? null : Number(input.value);
    case "file": return input.files && input.files[0] ? input.files[0] : null;
    default: return input.value.trim();
  }
}

function buildInput(f) {
  const id = `f-${f.name}-${Math.random().toString(36).slice(2, 8)}`;
  let input;
  const opts = f.options || [];
  switch (f.type) {
    case "select":
      input = h("select", { id, name: f.name },
        opts.map((o) => h("option", { value: o.value, selected: o.value === f.value }, o.label)));
      break;
    case "checkboxes":
      input = h("div", { class: "checks", id, role: "group", "aria-label": f.label },
        opts.length ? opts.map((o) => h("label", { class: "check" },
          h("input", { type: "checkbox", value: o.value, checked: (f.value || []).includes(o.value) }), o.label))
          : h("span", { class: "note" }, f.emptyText || "None available."));
      break;
    case "checkbox":
      input = h("input", { type: "checkbox", id, name: f.name, checked: !!f.value });
      break;
    case "textarea":
      input = h("textarea", { id, name: f.name, placeholder: f.placeholder || "", value: f.value || "" });
      break;
    case "file":
      input = h("input", { type: "file", id, name: f.name, accept: f.accept || null });
      break;
    default:
      input = h("input", {
        type: f.type || "text", id, name: f.name, placeholder: f.placeholder || "",
        value: f.value === undefined || f.value === null ? "" : String(f.value),
        min: f.min, max: f.max, autocomplete: f.autocomplete || "off",
      });
  }
  const label = f.type === "checkbox"
    ? h("label", { class: "check", for: id }, input, f.label)
    : h("div", { class: "label-row" }, h("label", { for: id }, f.label),
      f.required ? h("span", { class: "req", title: "required" }, "*") : null);
  const wrap = h("div", { class: "field", "data-field": f.name },
    label, f.type === "checkbox" ? null : input,
    f.help ? h("div", { class: "help" }, f.help) : null,
    h("div", { class: "error", hidden: true }));
  return { wrap, input };
}

/**
 * A dialog with a form. `fields`: [{name, label, type, required, options,
 * value, help, validate(v, values), show(values)}]. `onSubmit(values, ui)`
 * may throw: its message shows in the form, which stays open. Resolves
 * with onSubmit's result, or undefined when cancelled.
 */
export function formDialog({ title, fields, submit = "Create", onSubmit, wide }) {
  return new Promise((resolve) => {
    const built = fields.map((f) => ({ f, ...buildInput(f) }));
    const errorBox = h("div", { class: "form-error", role: "alert", hidden: true });
    const extra = h("div");
    const submitBtn = h("button", { type: "submit", class: "primary" }, submit);
    const cancelBtn = h("button", { type: "button" }, "Cancel");
    const form = h("form", { novalidate: true, "aria-label": title },
      h("h2", null, title), errorBox, built.map((b) => b.wrap), extra,
      h("div", { class: "buttons" }, cancelBtn, submitBtn));
    const dialog = h("dialog", { class: wide ? "wide" : null }, form);
    document.body.append(dialog);
    const values = () => Object.fromEntries(built.map(({ f, input }) => [f.name, fieldValue(f, input)]));
    const refreshVisibility = () => {
      const v = values();
      for (const { f, wrap } of built) wrap.hidden = f.show ? !f.show(v) : false;
    };
    form.addEventListener("change", refreshVisibility);
    form.addEventListener("input", refreshVisibility);
    refreshVisibility();
    let done = false;
    const close = (result) => { if (done) return; done = true; dialog.close(); dialog.remove(); resolve(result); };
    cancelBtn.addEventListener("click", () => close(undefined));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); if (!submitBtn.disabled) close(undefined); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const v = values();
      let ok = true;
      for (const { f, wrap } of built) {
        if (wrap.hidden) continue;
        const val = v[f.name];
        let err = null;
        const blank = val === null || val === "" || (Array.isArray(val) && !val.length);
        if (f.required && blank) err = `${f.label} is required.`;
        else if (!blank && f.validate) err = f.validate(val, v);
        const box = wrap.querySelector(".error");
        box.hidden = !err;
        box.textContent = err || "";
        wrap.classList.toggle("invalid", !!err);
        if (err) ok = false;
      }
      if (!ok) return;
      errorBox.hidden = true;
      submitBtn.disabled = true;
      cancelBtn.disabled = true;
      try {
        const r = await onSubmit(v, { extra, form });
        close(r === undefined ? true : r);
      } catch (err) {
        errorBox.textContent = err.message || String(err);
        errorBox.hidden = false;
        submitBtn.disabled = false;
        cancelBtn.disabled = false;
      }
    });
    dialog.showModal();
    const first = form.querySelector("input:not([type=checkbox]), select, textarea");
    if (first) first.focus();
  });
}

/** A yes/no question; resolves true when confirmed. */
export function confirmDialog(message, { action = "Delete", danger = true } = {}) {
  return new Promise((resolve) => {
    const yes = h("button", { type: "button", class: danger ? "primary" : "primary" }, action);
    const no = h("button", { type: "button" }, "Cancel");
    const dialog = h("dialog", { role: "alertdialog" },
      h("div", { class: "body" }, h("h2", null, "Are you sure?"), h("p", null, message),
        h("div", { class: "buttons" }, no, yes)));
    document.body.append(dialog);
    const close = (v) => { dialog.close(); dialog.remove(); resolve(v); };
    yes.addEventListener("click", () => close(true));
    no.addEventListener("click", () => close(false));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); close(false); });
    dialog.showModal();
    yes.focus();
  });
}

/** A read-only dialog (console log, details). */
export function infoDialog(title, body, { wide = true, buttons = [] } = {}) {
  const closeBtn = h("button", { type: "button" }, "Close");
  const dialog = h("dialog", { class: wide ? "wide" : null, "aria-label": title },
    h("div", { class: "body" }, h("h2", null, title), body,
      h("div", { class: "buttons" }, buttons, closeBtn)));
  document.body.append(dialog);
  const close = () => { dialog.close(); dialog.remove(); };
  closeBtn.addEventListener("click", close);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
  return { dialog, close };
}

// ---- tables ----

/** A row menu: a primary button and a "More" list of the rest. */
export function rowActions(actions) {
  const shown = actions.filter((a) => a && a.show !== false);
  if (!shown.length) return [];
  const [first, ...rest] = shown;
  const btn = (a, cls) => h("button", { type: "button", class: `${cls} ${a.danger ? "danger" : ""}`, onClick: (e) => {
    const menu = e.target.closest("details");
    if (menu) menu.open = false;
    a.run();
  } }, a.label);
  return [btn(first, "small"),
    rest.length ? h("details", { class: "menu" }, h("summary", { "aria-label": "More actions" }, "More ▾"),
      h("div", { class: "items" }, rest.map((a) => btn(a, "")))) : null];
}

/**
 * A table that updates in place: rows are keyed, and a row is redrawn only
 * when its data changed, so polling doesn't disturb open menus or focus.
 * columns: [{label, render(row) -> node|string, key?}]; actions(row) -> [...]
 */
export class DataTable {
  constructor({ columns, key = (r) => r.id, actions, empty = "Nothing here yet.", filter = true, label }) {
    this.columns = columns;
    this.key = key;
    this.actions = actions;
    this.emptyText = empty;
    this.rows = [];
    this.trs = new Map();
    this.query = "";
    this.tbody = h("tbody");
    this.count = h("span", { class: "count" });
    const head = h("tr", null, columns.map((c) => h("th", { scope: "col" }, c.label)), actions ? h("th", { scope: "col" }, h("span", { class: "sr" }, "")) : null);
    this.table = h("table", { class: "data", "aria-label": label || null }, h("thead", null, head), this.tbody);
    const search = filter ? h("input", { type: "text", placeholder: "Filter", "aria-label": "Filter", onInput: (e) => {
      this.query = e.target.value.trim().toLowerCase();
      this.applyFilter();
    } }) : null;
    this.el = h("div", { class: "data-table" }, h("div", { class: "table-tools" }, search, this.count), this.table);
  }

  renderRow(r) {
    const cells = this.columns.map((c) => {
      const v = c.render ? c.render(r) : r[c.key];
      return h("td", { "data-col": c.label }, v === null || v === undefined || v === "" ? "—" : v);
    });
    if (this.actions) cells.push(h("td", { class: "actions" }, rowActions(this.actions(r))));
    return h("tr", { "data-key": this.key(r) }, cells);
  }

  set(rows) {
    this.rows = rows;
    const seen = new Set();
    if (!this.trs.size && rows.length) {
      // First fill: build every row off the page and insert them at once.
      const frag = document.createDocumentFragment();
      for (const r of rows) {
        const k = this.key(r);
        seen.add(k);
        const tr = this.renderRow(r);
        this.trs.set(k, { tr, sig: JSON.stringify(r) });
        frag.append(tr);
      }
      this.tbody.replaceChildren(frag);
      this.applyFilter();
      return;
    }
    let prev = null;
    for (const r of rows) {
      const k = this.key(r);
      seen.add(k);
      const sig = JSON.stringify(r);
      let entry = this.trs.get(k);
      // A row whose menu is open is left as it is until the menu closes.
      const busy = entry && entry.tr.querySelector("details[open]");
      if (!entry || (entry.sig !== sig && !busy)) {
        const tr = this.renderRow(r);
        if (entry) entry.tr.replaceWith(tr);
        entry = { tr, sig };
        this.trs.set(k, entry);
      }
      const want = prev ? prev.nextSibling : this.tbody.firstChild;
      if (want !== entry.tr) this.tbody.insertBefore(entry.tr, want);
      prev = entry.tr;
    }
    for (const [k, entry] of this.trs) {
      if (!seen.has(k)) { entry.tr.remove(); this.trs.delete(k); }
    }
    if (!rows.length) {
      this.tbody.replaceChildren(h("tr", { class: "empty-row" }, h("td", { class: "empty", colspan: this.columns.length + 1 }, this.emptyText)));
    } else {
      const e = this.tbody.querySelector("tr.empty-row");
      if (e) e.remove();
    }
    this.applyFilter();
  }

  applyFilter() {
    let shown = 0;
    for (const { tr } of this.trs.values()) {
      const hit = !this.query || tr.textContent.toLowerCase().includes(this.query);
      if (tr.hidden === hit) tr.hidden = !hit;
      if (hit) shown++;
    }
    const n = this.rows.length;
    this.count.textContent = this.query ? `${shown} of ${n} shown` : `${n} item${n === 1 ? "" : "s"}`;
  }
}

/** The top of a page: title, crumb, buttons. */
export function pageHead(title, buttons = [], crumb) {
  return h("div", { class: "page-head" },
    crumb ? h("span", { class: "crumb" }, crumb) : null,
    h("h1", null, title),
    h("div", { class: "actions" }, buttons));
}

export function button(label, run, cls = "") {
  return h("button", { type: "button", class: cls, onClick: run }, label);
}

/** A message in place of a page the caller may not see. */
export function denied(message) {
  return h("div", { class: "denied", role: "alert" }, message);
}

export function links(items) { return items.filter(Boolean).flatMap((x, i) => (i ? [", ", x] : [x])); }
