// The public REST API, with the bearer token; a 401 anywhere signs the user out.
import { describeError } from "./errors.js";

export class ApiError extends Error {
  constructor(status, errors) {
    super();
    this.status = status;
    this.errors = errors;
  }

  /** The errors in the reader's current language (errors.js), never the API's English. */
  get message() {
    return this.errors.map(describeError).join(" ");
  }
}

export class Api {
  constructor(base, token, onUnauthorized) {
    this.base = base;
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  /** A request to `path` under the webhooks API, or to a same-origin link the API gave. */
  async request(method, path, body) {
    const url = path.startsWith("http") ? sameOrigin(path) : `${this.base}${path}`;
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, [{ code: "NETWORK", title: "", detail: "" }]);
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (response.ok) return data;
    const errors = data?.errors ?? [{ code: `HTTP-${response.status}`, title: "", detail: "" }];
    const error = new ApiError(response.status, errors);
    if (response.status === 401) this.onUnauthorized(error);
    throw error;
  }

  get(path) {
    return this.request("GET", path);
  }
}

/** Paging links are absolute; keep their path and query on this page's origin. */
function sameOrigin(href) {
  const link = new URL(href, window.location.href);
  return `${link.pathname}${link.search}`;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
