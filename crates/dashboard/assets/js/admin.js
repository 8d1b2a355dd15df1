// Admin pages: hypervisors with the instances on each, compute services
// up/down, projects, users and their role assignments. The API refuses
// non-admins whatever the page shows; the navigation hides these pages
// from them as well.

import * as api from "./api.js";
import { h, pageHead, DataTable, badge, act, formDialog, confirmDialog, fmtMB, ago, valid } from "./ui.js";

export const hypervisors = {
  title: "Hypervisors",
  admin: true,
  async render(ctx) {
    const table = new DataTable({
      label: "Hypervisors",
      columns: [
        { label: "Hostname", render: (r) => r.hypervisor_hostname },
        { label: "Type", render: (r) => r.hypervisor_type },
        { label: "VCPUs (used)", render: (r) => `${r.vcpus_used} of ${r.vcpus}` },
        { label: "RAM (used)", render: (r) => `${fmtMB(r.memory_mb_used)} of ${fmtMB(r.memory_mb)}` },
        { label: "Local Storage (used)", render: (r) => `${r.local_gb_used} of ${r.local_gb} GB` },
        { label: "State", render: (r) => badge(r.state) },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "Instances", render: (r) => ((r.servers || []).length ? (r.servers || []).map((sv) => h("div", null, sv.name)) : "None") },
      ],
      empty: "No hypervisor has registered.",
    });
    ctx.root.append(pageHead("Hypervisors"), table.el);
    const load = async () => { table.set((await api.compute.get("/os-hypervisors/detail?with_servers=true")).hypervisors || []); };
    await load();
    ctx.every(5000, load);
  },
};

export const services = {
  title: "Compute Services",
  admin: true,
  async render(ctx) {
    const table = new DataTable({
      label: "Compute Services",
      columns: [
        { label: "Name", render: (r) => r.binary },
        { label: "Host", render: (r) => r.host },
        { label: "Zone", render: (r) => r.zone },
        { label: "Status", render: (r) => badge(r.status) },
        { label: "State", render: (r) => badge(r.state === "up" ? "UP" : "DOWN") },
        { label: "Last Updated", render: (r) => (r.updated_at ? `${ago(r.updated_at)} ago` : null) },
        { label: "Reason", render: (r) => r.disabled_reason },
      ],
      empty: "No compute service has registered.",
    });
    ctx.root.append(pageHead("Compute Services"), table.el);
    const load = async () => { table.set((await api.compute.get("/os-services")).services || []); };
    await load();
    ctx.every(5000, load);
  },
};

export const projects = {
  title: "Projects",
  admin: true,
  async render(ctx) {
    let reload = () => {};
    let domains = new Map();
    const table = new DataTable({
      label: "Projects",
      columns: [
        { label: "Name", render: (r) => r.name },
        { label: "Description", render: (r) => r.description },
        { label: "Domain", render: (r) => domains.get(r.domain_id) || r.domain_id },
        { label: "Enabled", render: (r) => (r.enabled ? "Yes" : "No") },
        { label: "ID", render: (r) => h("code", null, r.id) },
      ],
      empty: "No projects.",
      actions: (p) => [
        { label: p.enabled ? "Disable Project" : "Enable Project", run: () => act(`${p.enabled ? "Disabled" : "Enabled"} ${p.name}.`, async () => {
          await api.identity.patch(`/v3/projects/${p.id}`, { project: { enabled: !p.enabled } }); reload();
        }) },
        { label: "Delete Project", danger: true, show: p.id !== (ctx.session.project || {}).id, run: async () => {
          if (await confirmDialog(`Delete project ${p.name}? Its role assignments go with it.`)) {
            await act(`Deleted project ${p.name}.`, async () => { await api.identity.del(`/v3/projects/${p.id}`); reload(); });
          }
        } },
      ],
    });
    const create = () => formDialog({
      title: "Create Project",
      submit: "Create Project",
      fields: [
        { name: "name", label: "Name", required: true, validate: valid.name },
        { name: "description", label: "Description" },
        { name: "domain", label: "Domain", type: "select", value: ctx.session.user.domain.id,
          options: [...domains].map(([id, name]) => ({ value: id, label: name })) },
      ],
      onSubmit: async (v) => {
        await api.identity.post("/v3/projects", { project: { name: v.name, description: v.description, domain_id: v.domain, enabled: true } });
        return true;
      },
    }).then((ok) => { if (ok) reload(); });
    ctx.root.append(pageHead("Projects", [h("button", { type: "button", class: "primary", onClick: create }, "Create Project")]), table.el);
    const load = async () => {
      const [ps, ds] = await Promise.all([api.identity.get("/v3/projects"), api.identity.get("/v3/domains")]);
      domains = new Map((ds.domains || []).map((d) => [d.id, d.name]));
      table.set(ps.projects || []);
    };
    reload = () => { load().catch(() => {}); };
    await load();
  },
};

export const users = {
  title: "Users",
  admin: true,
  async render(ctx) {
    let reload = () => {};
    let domains = new Map();
    let projectList = [];
    let roleList = [];
    const userTable = new DataTable({
      label: "Users",
      columns: [
        { label: "User Name", render: (r) => r.name },
        { label: "Domain", render: (r) => domains.get(r.domain_id) || r.domain_id },
        { label: "Email", render: (r) => r.email },
        { label: "Enabled", render: (r) => (r.enabled ? "Yes" : "No") },
        { label: "ID", render: (r) => h("code", null, r.id) },
      ],
      empty: "No users.",
      actions: (u) => [
        { label: "Add Role", run: () => addRole(u) },
        { label: "Delete User", danger: true, show: u.id !== ctx.session.user.id, run: async () => {
          if (await confirmDialog(`Delete user ${u.name}?`)) {
            await act(`Deleted user ${u.name}.`, async () => { await api.identity.del(`/v3/users/${u.id}`); reload(); });
          }
        } },
      ],
    });
    const assignTable = new DataTable({
      label: "Role Assignments",
      key: (a) => `${a.user && a.user.id}|${a.role.id}|${a.scope.project ? a.scope.project.id : a.scope.domain ? a.scope.domain.id : "system"}`,
      columns: [
        { label: "User", render: (a) => (a.user ? a.user.name : a.group ? `group ${a.group.name}` : null) },
        { label: "Role", render: (a) => a.role.name },
        { label: "Scope", render: (a) => (a.scope.project ? `project ${a.scope.project.name}` : a.scope.domain ? `domain ${a.scope.domain.name}` : "system") },
      ],
      empty: "No role assignments.",
      actions: (a) => [{ label: "Remove Role", danger: true, show: !!(a.user && a.scope.project) && a.user.id !== ctx.session.user.id, run: async () => {
        if (await confirmDialog(`Remove role ${a.role.name} of ${a.user.name} on ${a.scope.project.name}?`, { action: "Remove Role" })) {
          await act("Removed the role.", async () => {
            await api.identity.del(`/v3/projects/${a.scope.project.id}/users/${a.user.id}/roles/${a.role.id}`); reload();
          });
        }
      } }],
    });
    const addRole = (u) => formDialog({
      title: `Add a Role for ${u.name}`,
      submit: "Add Role",
      fields: [
        { name: "project", label: "Project", type: "select", required: true,
          options: [{ value: "", label: "Select a project" }, ...projectList.map((p) => ({ value: p.id, label: p.name }))] },
        { name: "role", label: "Role", type: "select", required: true, value: (roleList.find((r) => r.name === "member") || {}).id,
          options: roleList.map((r) => ({ value: r.id, label: r.name })) },
      ],
      onSubmit: async (v) => { await api.identity.put(`/v3/projects/${v.project}/users/${u.id}/roles/${v.role}`, undefined); return true; },
    }).then((ok) => { if (ok) reload(); });
    const create = () => formDialog({
      title: "Create User",
      submit: "Create User",
      fields: [
        { name: "name", label: "User Name", required: true, validate: valid.name },
        { name: "email", label: "Email" },
        { name: "password", label: "Password", type: "password", required: true,
          validate: (v) => (v.length >= 8 ? null : "Use at least 8 characters.") },
        { name: "confirm", label: "Confirm Password", type: "password", required: true,
          validate: (v, all) => (v === all.password ? null : "The passwords don't match.") },
        { name: "domain", label: "Domain", type: "select", value: ctx.session.user.domain.id,
          options: [...domains].map(([id, name]) => ({ value: id, label: name })) },
        { name: "project", label: "Primary Project", type: "select",
          options: [{ value: "", label: "None" }, ...projectList.map((p) => ({ value: p.id, label: p.name }))] },
        { name: "role", label: "Role", type: "select", value: (roleList.find((r) => r.name === "member") || {}).id,
          options: roleList.map((r) => ({ value: r.id, label: r.name })), show: (v) => !!v.project },
      ],
      onSubmit: async (v) => {
        const user = { name: v.name, password: v.password, domain_id: v.domain, enabled: true };
        if (v.email) user.email = v.email;
        if (v.project) user.default_project_id = v.project;
        const made = (await api.identity.post("/v3/users", { user })).user;
        if (v.project && v.role) {
          try {
            await api.identity.put(`/v3/projects/${v.project}/users/${made.id}/roles/${v.role}`, undefined);
          } catch (e) {
            await api.identity.del(`/v3/users/${made.id}`).catch(() => {});
            throw e;
          }
        }
        return true;
      },
    }).then((ok) => { if (ok) reload(); });
    ctx.root.append(pageHead("Users", [h("button", { type: "button", class: "primary", onClick: create }, "Create User")]),
      h("section", { class: "panel" }, userTable.el),
      h("section", { class: "panel" }, h("h2", null, "Role Assignments"), assignTable.el));
    const load = async () => {
      const [us, ds, ps, rs, as] = await Promise.all([api.identity.get("/v3/users"), api.identity.get("/v3/domains"),
        api.identity.get("/v3/projects"), api.identity.get("/v3/roles"), api.identity.get("/v3/role_assignments?include_names=true")]);
      domains = new Map((ds.domains || []).map((d) => [d.id, d.name]));
      projectList = ps.projects || [];
      roleList = rs.roles || [];
      userTable.set(us.users || []);
      assignTable.set(as.role_assignments || []);
    };
    reload = () => { load().catch(() => {}); };
    await load();
  },
};
