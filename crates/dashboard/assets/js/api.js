// Calls to the services through the dashboard's pass-through
// (/api/<service>/<path>), the session endpoints, and the services' error
// bodies turned into readable messages. The token never reaches this code:
// it rides in an HttpOnly cookie.

const BASE_HEADERS = { "X-Ferro-Dashboard": "1" };
// Volumes at 3.42: an attached volume can be extended.
const MICROVERSIONS = { compute: "compute 2.79", volume: "volume 3.42" };

export class ApiError extends Error {
  constructor(status, message, requestId) {
    super(message);
    this.status = status;
    this.requestId = requestId;
  }
}

let unauthorized = () => {};
/** What to do when the session is gone (the app shows the login form). */
export function onUnauthorized(f) { unauthorized = f; }

/** The message inside any of the services' error bodies. */
export function messageOf(text, status) {
  if (text) {
    try {
      const j = JSON.parse(text);
      // Neutron {"NeutronError": {message}}, Keystone {"error": {message}},
      // Nova {"badRequest": {message}}, Placement {"errors": [{detail}]}.
      if (j && typeof j === "object") {
        for (const v of Object.values(j)) {
          if (v && typeof v === "object" && !Array.isArray(v) && v.message) return String(v.message);
          if (Array.isArray(v) && v[0] && (v[0].detail || v[0].title)) return String(v[0].detail || v[0].title);
        }
        if (typeof j.message === "string") return j.message;
        // Octavia {"faultcode", "faultstring", "debuginfo"}.
        if (typeof j.faultstring === "string") return j.faultstring;
      }
    } catch (_) {
      // Glance answers with an HTML page: the message follows the heading.
      const doc = new DOMParser().parseFromString(text, "text/html");
      doc.querySelectorAll("h1, title").forEach((e) => e.remove());
      const msg = (doc.body && doc.body.textContent || "").replace(/\s+/g, " ").trim();
      if (msg) return msg;
    }
  }
  return {
    400: "The request was not valid.",
    401: "Your session has ended. Please log in again.",
    403: "You are not allowed to do that.",
    404: "It no longer exists.",
    409: "That conflicts with the current state.",
    413: "That is over a limit.",
  }[status] || `The request failed (HTTP ${status}).`;
}

async function send(url, method, body, headers) {
  const h = { ...BASE_HEADERS, ...headers };
  let payload;
  if (body !== undefined) {
    if (!h["Content-Type"]) h["Content-Type"] = "application/json";
    payload = typeof body === "string" || body instanceof Blob ? body : JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(url, { method, headers: h, body: payload, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, "The dashboard can't reach the cloud. Is ferrostack running?");
  }
  const text = await resp.text();
  if (!resp.ok) {
    if (resp.status === 401) unauthorized();
    throw new ApiError(resp.status, messageOf(text, resp.status), resp.headers.get("x-openstack-request-id"));
  }
  if (!text) return null;
  try { return JSON.parse(text); } catch (_) { return text; }
}

/** A service's API: get/post/put/patch/del of paths under its root. */
export function request(service, method, path, body, headers = {}) {
  const h = { ...headers };
  if (MICROVERSIONS[service]) h["OpenStack-API-Version"] = MICROVERSIONS[service];
  return send(`/api/${service}${path}`, method, body, h);
}

function client(service, root = "") {
  return {
    get: (p) => request(service, "GET", root + p),
    post: (p, b = {}) => request(service, "POST", root + p, b),
    put: (p, b = {}) => request(service, "PUT", root + p, b),
    patch: (p, b, h) => request(service, "PATCH", root + p, b, h),
    del: (p) => request(service, "DELETE", root + p),
  };
}

/** Nova's paths are under /v2.1; the others' carry their version. */
export const compute = client("compute", "/v2.1");
export const network = client("network");
export const image = client("image");
export const volume = client("volume", "/v3");
export const identity = client("identity");
export const loadBalancer = client("load-balancer", "/v2/lbaas");

export const session = {
  get: () => send("/session", "GET"),
  login: (domain, username, password) => send("/session", "POST", { domain, username, password }),
  logout: () => send("/session", "DELETE"),
  switchProject: (project_id) => send("/session/project", "PUT", { project_id }),
};

/** Every image the caller sees (Glance pages its lists). */
export async function listImages() {
  let out = [];
  let next = "/v2/images?limit=500";
  for (let pages = 0; next && pages < 50; pages++) {
    const r = await image.get(next);
    out = out.concat(r.images || []);
    next = r.next || null;
  }
  return out;
}

/** Every server the caller sees, following Nova's `next` links (compute
 *  pages its lists at the cloud's max_limit). */
export async function listServers() {
  let out = [];
  let next = "/servers/detail";
  for (let pages = 0; next && pages < 100; pages++) {
    const r = await compute.get(next);
    out = out.concat(r.servers || []);
    const link = (r.servers_links || []).find((l) => l.rel === "next");
    // The link is absolute (…/v2.1/servers/detail?marker=…); keep what
    // follows the version, since the pass-through adds it back.
    next = null;
    if (link) {
      const u = new URL(link.href);
      next = u.pathname.replace(/^.*?\/v2\.1/, "") + u.search;
    }
  }
  return { servers: out };
}

/** Uploads a file as an image's data, reporting progress (0..1). */
export function uploadImageData(id, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `/api/image/v2/images/${encodeURIComponent(id)}/file`);
    xhr.setRequestHeader("X-Ferro-Dashboard", "1");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) { onProgress(1); resolve(); return; }
      if (xhr.status === 401) unauthorized();
      reject(new ApiError(xhr.status, messageOf(xhr.responseText, xhr.status)));
    };
    xhr.onerror = () => reject(new ApiError(0, "The upload was interrupted."));
    xhr.send(file);
  });
}

/** A server's ports (Neutron), for floating IP association. */
export async function portsOf(serverId) {
  const r = await network.get(`/v2.0/ports?device_id=${encodeURIComponent(serverId)}`);
  return r.ports || [];
}
