// A webhook's delivery history: newest first, paged by the API's links, filtered by status,
// with a resend button and a request/response expander per delivery.
import { query } from "./api.js";
import { formatTime, t } from "./i18n.js";
import { el, eventTypeLabel } from "./dom.js";

const PAGE_SIZE = 10;

export class History {
  constructor(app) {
    this.app = app;
    this.state = new Map();
  }

  /** The table row under a webhook's row that holds its history; it loads itself. */
  panel(webhook) {
    const state = this.stateOf(webhook.id);
    const section = el("section", {
      class: "history",
      id: `history-${webhook.id}`,
      "aria-label": t("history.title", { name: webhook.name }),
    });
    const row = el("tr", { class: "history-row" }, el("td", { colspan: "9" }, section));
    this.show(webhook, section, state.path ?? this.firstPath(state));
    return row;
  }

  stateOf(id) {
    if (!this.state.has(id)) this.state.set(id, { status: "", path: null, open: new Set() });
    return this.state.get(id);
  }

  firstPath(state) {
    return query({ limit: PAGE_SIZE, status: state.status });
  }

  async show(webhook, section, path, fresh = null) {
    const state = this.stateOf(webhook.id);
    const url = path.startsWith("http") ? path : `/${webhook.id}/deliveries${path}`;
    const page = await this.app.call(() => this.app.api.get(url));
    if (!page) return;
    state.path = page.links?.self?.href ?? path;

    const statusId = `history-status-${webhook.id}`;
    const status = el(
      "select",
      { id: statusId },
      el("option", { value: "" }, t("filter.any")),
      el("option", { value: "success" }, t("status.success")),
      el("option", { value: "fail" }, t("status.fail")),
    );
    status.value = state.status;
    status.addEventListener("change", () => {
      state.status = status.value;
      this.show(webhook, section, this.firstPath(state)).then(() =>
        section.querySelector(`#${statusId}`)?.focus(),
      );
    });

    const body = el("tbody");
    for (const delivery of page.data) {
      body.append(...this.deliveryRows(webhook, section, delivery, state, delivery.id === fresh));
    }
    const table = el(
      "table",
      { class: "deliveries" },
      el("caption", { class: "visually-hidden" }, t("history.caption", { name: webhook.name })),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col", class: "narrow" }, el("span", { class: "visually-hidden" }, t("history.details"))),
          el("th", { scope: "col" }, t("history.time")),
          el("th", { scope: "col" }, t("history.eventType")),
          el("th", { scope: "col" }, t("history.status")),
          el("th", { scope: "col" }, t("history.statusMessage")),
          el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, t("webhooks.actions"))),
        ),
      ),
      body,
    );
    const pager = el("nav", { class: "pager", "aria-label": t("history.pager", { name: webhook.name }) });
    for (const direction of ["prev", "next"]) {
      const button = el(
        "button",
        { type: "button", "data-page": direction, disabled: !page.links?.[direction] },
        t(direction === "prev" ? "pager.previous" : "pager.next"),
      );
      button.addEventListener("click", () => this.show(webhook, section, page.links[direction].href));
      pager.append(button);
    }
    section.replaceChildren(
      el("h2", { class: "history-title" }, t("history.heading")),
      el(
        "div",
        { class: "history-tools" },
        el("label", { for: statusId }, t("history.filterStatus")),
        status,
      ),
      page.data.length ? table : el("p", { class: "muted empty-history" }, t("history.empty")),
      pager,
      el("p", { class: "muted retention" }, t("history.retention")),
    );
  }

  deliveryRows(webhook, section, delivery, state, fresh) {
    const open = state.open.has(delivery.id);
    const detailsId = `delivery-${delivery.id}`;
    const expander = el(
      "button",
      {
        type: "button",
        class: "delivery-expander icon",
        "aria-expanded": String(open),
        "aria-controls": detailsId,
        "aria-label": t("history.showDetails", { time: formatTime(delivery.triggeredAt) }),
      },
      el("span", { "aria-hidden": "true" }, open ? "▾" : "▸"),
    );
    expander.addEventListener("click", () => {
      if (open) state.open.delete(delivery.id);
      else state.open.add(delivery.id);
      this.show(webhook, section, state.path).then(() =>
        section.querySelector(`[aria-controls="${detailsId}"]`)?.focus(),
      );
    });
    const resend = el("button", { type: "button", class: "resend" }, t("history.resend"));
    resend.addEventListener("click", async () => {
      resend.disabled = true;
      const sent = await this.app.call(() =>
        this.app.api.request("POST", `/${webhook.id}/deliveries/${delivery.id}/actions/resend`),
      );
      resend.disabled = false;
      if (!sent) return;
      this.app.announce(t("history.resent", { status: t(`status.${sent.status}`) }));
      state.status = "";
      await this.show(webhook, section, this.firstPath(state), sent.id);
      section.querySelector(`tr[data-delivery="${sent.id}"] .resend`)?.focus();
    });
    const row = el(
      "tr",
      { "data-delivery": delivery.id, class: fresh ? "fresh" : null },
      el("td", {}, expander),
      el("td", {}, el("time", { datetime: delivery.triggeredAt }, formatTime(delivery.triggeredAt))),
      el("td", { class: "event-type" }, eventTypeLabel(delivery.eventType)),
      el("td", {}, el("span", { class: `badge ${delivery.status === "success" ? "on" : "off"}` }, t(`status.${delivery.status}`))),
      el("td", { class: "status-message" }, delivery.statusMessage ?? ""),
      el("td", {}, resend),
    );
    if (!open) return [row];
    const details = el(
      "tr",
      { class: "delivery-details" },
      el(
        "td",
        { colspan: "6" },
        el(
          "div",
          { id: detailsId, class: "exchange" },
          exchange(t("history.request"), [[t("history.url"), delivery.request?.url]], delivery.request),
          exchange(
            t("history.response"),
            [[t("history.statusCode"), delivery.response?.statusCode ?? t("history.noResponse")]],
            delivery.response,
          ),
        ),
      ),
    );
    return [row, details];
  }
}

/** One side of a delivery: summary fields, headers (encrypted values arrive masked), body. */
function exchange(title, fields, part) {
  const headers = Object.entries(part?.headers ?? {});
  return el(
    "section",
    { class: "exchange-part", "aria-label": title },
    el("h3", {}, title),
    el("dl", {}, ...fields.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, value ?? "")])),
    el("h4", {}, t("history.headers")),
    headers.length
      ? el("table", { class: "headers-table" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("history.headerName")), el("th", { scope: "col" }, t("history.headerValue")))),
          el("tbody", {}, ...headers.map(([name, value]) => el("tr", {}, el("td", {}, name), el("td", {}, value)))))
      : el("p", { class: "muted" }, t("history.none")),
    el("h4", {}, t("history.body")),
    el("pre", { class: "payload", tabindex: "0", "aria-label": `${title}: ${t("history.body")}` }, pretty(part?.body)),
  );
}

/** JSON bodies indented; anything else as it came. */
function pretty(body) {
  if (body === null || body === undefined || body === "") return "";
  if (typeof body !== "string") return JSON.stringify(body, null, 2);
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}
