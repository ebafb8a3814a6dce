// The webhooks table: server-side sort and filters per column, paging by the API's links,
// selection, a row menu and an expander per row.
import { query } from "./api.js";
import { formatPercent, formatTime, t } from "./i18n.js";
import { el, eventTypeLabel } from "./dom.js";

const PAGE_SIZE = 20;

/** Each column: what it sorts by and which API parameters its filter sets. */
export const COLUMNS = [
  { key: "name", sort: "name", filter: "text", params: ["name"] },
  { key: "url", sort: "url", filter: "text", params: ["url"] },
  { key: "eventTypes", sort: "eventTypes", filter: "text", params: ["eventTypesContains"] },
  { key: "enabled", sort: "enabled", filter: "enabled", params: ["enabled"] },
  // The API does not sort on health; the column filters on the latest attempt's outcome.
  { key: "health", sort: null, filter: "lastStatus", params: ["lastStatus"] },
  { key: "owner", sort: "level", filter: "owner", params: ["level", "ownerIdContains"] },
  { key: "updatedAt", sort: "updatedAt", filter: "date", params: ["updatedSince", "updatedUntil"] },
];

export class WebhooksTable {
  constructor(app) {
    this.app = app;
    this.sort = null;
    this.filters = {};
    this.filterInputs = {};
    this.pagePath = null;
    this.page = { data: [], links: {} };
    this.selected = new Set();
    this.expanded = new Set();
    this.head = document.getElementById("webhooks-head");
    this.body = document.getElementById("webhooks-body");
    document.getElementById("prev-page").addEventListener("click", () => this.go("prev"));
    document.getElementById("next-page").addEventListener("click", () => this.go("next"));
    document.getElementById("refresh").addEventListener("click", () => this.reload());
    document.getElementById("clear-filters").addEventListener("click", () => {
      this.filters = {};
      this.reload(true);
    });
    document.addEventListener("click", (event) => {
      if (!event.target.closest(".menu-wrap, .filter-wrap")) this.closePopups();
    });
  }

  /** The first page's request: sort and filters go to the API, never sorted here. */
  firstPagePath() {
    return query({ limit: PAGE_SIZE, sort: this.sort, ...this.filters });
  }

  async reload(fromStart = false) {
    if (fromStart) this.pagePath = null;
    await this.load(this.pagePath ?? this.firstPagePath());
  }

  async go(direction) {
    const link = this.page.links?.[direction]?.href;
    if (link) await this.load(link);
  }

  async load(path) {
    const page = await this.app.call(() => this.app.api.get(path));
    if (!page) return;
    this.pagePath = page.links?.self?.href ?? path;
    this.page = page;
    const visible = new Set(page.data.map((webhook) => webhook.id));
    for (const id of this.selected) if (!visible.has(id)) this.selected.delete(id);
    this.render();
  }

  render() {
    this.renderHead();
    this.body.replaceChildren();
    for (const webhook of this.page.data) {
      this.body.append(this.row(webhook));
      if (this.expanded.has(webhook.id)) this.body.append(this.app.history.panel(webhook));
    }
    const filtered = Object.keys(this.filters).length > 0;
    const empty = this.page.data.length === 0;
    const firstPage = !this.page.links?.prev;
    document.getElementById("empty-state").hidden = !(empty && !filtered && firstPage);
    document.getElementById("no-matches").hidden = !(empty && filtered);
    document.getElementById("webhooks-table").hidden = empty && !filtered && firstPage;
    document.getElementById("prev-page").disabled = !this.page.links?.prev;
    document.getElementById("next-page").disabled = !this.page.links?.next;
    document.getElementById("clear-filters").hidden = !filtered;
    this.updateSelection();
  }

  renderHead() {
    const selectAll = el("input", {
      type: "checkbox",
      id: "select-all",
      "aria-label": t("webhooks.selectAll"),
    });
    selectAll.addEventListener("change", () => {
      for (const webhook of this.page.data) {
        if (selectAll.checked) this.selected.add(webhook.id);
        else this.selected.delete(webhook.id);
      }
      for (const box of this.body.querySelectorAll(".row-select")) box.checked = selectAll.checked;
      this.updateSelection();
    });
    const cells = [
      el("th", { scope: "col", class: "narrow" }, selectAll),
      el("th", { scope: "col", class: "narrow" }, el("span", { class: "visually-hidden" }, t("webhooks.expand"))),
      ...COLUMNS.map((column) => this.headerCell(column)),
      el("th", { scope: "col", class: "narrow" }, el("span", { class: "visually-hidden" }, t("webhooks.actions"))),
    ];
    this.head.replaceChildren(...cells);
  }

  headerCell(column) {
    const field = this.sort?.replace(/^-/, "");
    const descending = this.sort?.startsWith("-");
    const active = field === column.sort;
    const ariaSort = active ? (descending ? "descending" : "ascending") : "none";
    const label = t(`column.${column.key}`);
    const sortButton = column.sort ? el(
      "button",
      { type: "button", class: "sort-button", "data-sort": column.sort },
      label,
      el("span", { class: "sort-icon", "aria-hidden": "true" }, active ? (descending ? "↓" : "↑") : "↕"),
    ) : el("span", { class: "column-label" }, label);
    sortButton.addEventListener("click", () => {
      if (!column.sort) return;
      this.sort = active && !descending ? `-${column.sort}` : column.sort;
      this.reload(true).then(() => {
        this.head.querySelector(`[data-sort="${column.sort}"]`)?.focus();
      });
    });
    const filtering = column.params.some((param) => param in this.filters);
    const popoverId = `filter-${column.key}`;
    const filterButton = el(
      "button",
      {
        type: "button",
        class: `filter-button icon${filtering ? " active" : ""}`,
        "aria-label": t("filter.button", { column: label }),
        "aria-expanded": "false",
        "aria-controls": popoverId,
        "aria-pressed": filtering ? "true" : "false",
      },
      funnel(),
    );
    const popover = this.filterPopover(column, popoverId, label, filterButton);
    filterButton.addEventListener("click", () => {
      const open = popover.hidden;
      this.closePopups();
      if (open) {
        popover.hidden = false;
        filterButton.setAttribute("aria-expanded", "true");
        popover.querySelector("input, select").focus();
      }
    });
    return el(
      "th",
      { scope: "col", "aria-sort": column.sort ? ariaSort : null, "data-column": column.key },
      el("div", { class: "th filter-wrap" }, sortButton, filterButton, popover),
    );
  }

  filterPopover(column, id, label, button) {
    const inputs = filterInputs(column, this.filters, label);
    const apply = el("button", { type: "submit", class: "primary" }, t("filter.apply"));
    const clear = el("button", { type: "button" }, t("filter.clear"));
    const form = el(
      "form",
      { id, class: "filter-popover", role: "group", "aria-label": t("filter.button", { column: label }), hidden: "" },
      ...inputs.elements,
      el("div", { class: "dialog-actions" }, clear, apply),
    );
    const close = () => {
      form.hidden = true;
      button.setAttribute("aria-expanded", "false");
      button.focus();
    };
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      for (const param of column.params) delete this.filters[param];
      Object.assign(this.filters, inputs.read());
      this.reload(true).then(() => this.head.querySelector(`[data-column="${column.key}"] .filter-button`)?.focus());
    });
    clear.addEventListener("click", () => {
      for (const param of column.params) delete this.filters[param];
      this.reload(true).then(() => this.head.querySelector(`[data-column="${column.key}"] .filter-button`)?.focus());
    });
    return form;
  }

  closePopups() {
    for (const popup of document.querySelectorAll(".filter-popover, .row-menu")) {
      if (popup.hidden) continue;
      popup.hidden = true;
      document.querySelector(`[aria-controls="${popup.id}"]`)?.setAttribute("aria-expanded", "false");
    }
  }

  row(webhook) {
    const select = el("input", {
      type: "checkbox",
      class: "row-select",
      "aria-label": t("webhooks.select", { name: webhook.name }),
    });
    select.checked = this.selected.has(webhook.id);
    select.addEventListener("change", () => {
      if (select.checked) this.selected.add(webhook.id);
      else this.selected.delete(webhook.id);
      this.updateSelection();
    });
    const open = this.expanded.has(webhook.id);
    const expander = el(
      "button",
      {
        type: "button",
        class: "expander icon",
        "aria-expanded": String(open),
        "aria-controls": `history-${webhook.id}`,
        "aria-label": t("webhooks.history", { name: webhook.name }),
      },
      el("span", { "aria-hidden": "true" }, open ? "▾" : "▸"),
    );
    expander.addEventListener("click", () => {
      if (this.expanded.has(webhook.id)) this.expanded.delete(webhook.id);
      else this.expanded.add(webhook.id);
      this.render();
      this.body.querySelector(`tr[data-id="${webhook.id}"] .expander`)?.focus();
    });
    return el(
      "tr",
      { "data-id": webhook.id },
      el("td", {}, select),
      el("td", {}, expander),
      el("td", { class: "name" }, el("span", { class: "strong" }, webhook.name)),
      el("td", { class: "url" }, webhook.url),
      el("td", { class: "event-types" }, ...webhook.eventTypes.map((name) => el("span", { class: "tag" }, eventTypeLabel(name)))),
      el("td", { class: "state" }, ...stateCell(webhook)),
      el("td", { class: "health" }, ...healthCell(webhook)),
      el("td", { class: "owner" }, ...ownerCell(webhook)),
      el("td", { class: "updated" }, el("time", { datetime: webhook.updatedAt }, formatTime(webhook.updatedAt))),
      el("td", {}, this.rowMenu(webhook)),
    );
  }

  rowMenu(webhook) {
    const menuId = `menu-${webhook.id}`;
    const button = el(
      "button",
      {
        type: "button",
        class: "row-menu-button icon",
        "aria-haspopup": "menu",
        "aria-expanded": "false",
        "aria-controls": menuId,
        "aria-label": t("menu.label", { name: webhook.name }),
      },
      el("span", { "aria-hidden": "true" }, "⋮"),
    );
    const items = [
      ["edit", t("menu.edit"), () => this.app.openEdit(webhook.id)],
      ["rotate", t("menu.rotate"), () => this.app.openRotate(webhook)],
      ["test", t("menu.test"), () => this.app.testFromMenu(webhook)],
      webhook.enabled
        ? ["disable", t("menu.disable"), () => this.app.setEnabled(webhook, false)]
        : ["enable", t("menu.enable"), () => this.app.setEnabled(webhook, true)],
      ["audit", t("menu.audit"), () => this.app.audit.open(webhook)],
      ["delete", t("menu.delete"), () => this.app.confirmDelete([webhook])],
    ].map(([action, label, run]) => {
      const item = el("button", { type: "button", role: "menuitem", tabindex: "-1", "data-action": action }, label);
      item.addEventListener("click", () => {
        this.closePopups();
        run();
      });
      return item;
    });
    const menu = el("div", { id: menuId, class: "row-menu", role: "menu", "aria-label": t("menu.label", { name: webhook.name }), hidden: "" }, ...items);
    const focusItem = (index) => items[(index + items.length) % items.length].focus();
    button.addEventListener("click", () => {
      const opening = menu.hidden;
      this.closePopups();
      if (opening) {
        menu.hidden = false;
        button.setAttribute("aria-expanded", "true");
        focusItem(0);
      }
    });
    button.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" && menu.hidden) {
        event.preventDefault();
        button.click();
      }
    });
    menu.addEventListener("keydown", (event) => {
      const index = items.indexOf(document.activeElement);
      if (event.key === "ArrowDown") focusItem(index + 1);
      else if (event.key === "ArrowUp") focusItem(index - 1);
      else if (event.key === "Home") focusItem(0);
      else if (event.key === "End") focusItem(items.length - 1);
      else if (event.key === "Escape" || event.key === "Tab") {
        this.closePopups();
        if (event.key === "Escape") button.focus();
        return;
      } else return;
      event.preventDefault();
    });
    return el("div", { class: "menu-wrap" }, button, menu);
  }

  updateSelection() {
    const count = this.selected.size;
    const button = document.getElementById("delete-selected");
    button.disabled = count === 0;
    button.textContent = count ? t("webhooks.deleteCount", { count }) : t("webhooks.deleteSelected");
    const selectAll = document.getElementById("select-all");
    if (selectAll) {
      const all = this.page.data.length > 0 && this.page.data.every((w) => this.selected.has(w.id));
      selectAll.checked = all;
      selectAll.indeterminate = count > 0 && !all;
    }
  }

  selectedWebhooks() {
    return this.page.data.filter((webhook) => this.selected.has(webhook.id));
  }
}

function stateCell(webhook) {
  if (webhook.enabled) return [el("span", { class: "badge on" }, t("state.enabled"))];
  const parts = [el("span", { class: "badge off" }, t("state.disabled"))];
  const code = webhook.disabledReasonCode;
  if (code) {
    const known = ["DELIVERY_FAILURES", "ENDPOINT_GONE"].includes(code);
    parts.push(el("span", { class: "reason" }, known ? t(`reason.${code}`) : t("reason.other", { code })));
  }
  return parts;
}

/** The latest attempt's outcome as a badge, when it started, the 1 h / 24 h success rates,
 * and, only when there are any, the failures in a row and the retries waiting. */
export function healthCell(webhook) {
  const parts = [lastStatusBadge(webhook.lastStatus)];
  if (webhook.lastDeliveryAt) {
    parts.push(el("time", { class: "last-delivery", datetime: webhook.lastDeliveryAt }, formatTime(webhook.lastDeliveryAt)));
  }
  parts.push(
    el(
      "span",
      { class: "rates" },
      el("span", { class: "visually-hidden" }, `${t("health.successRate")}: `),
      t("health.rates", { hour: formatPercent(webhook.successRate1h), day: formatPercent(webhook.successRate24h) }),
    ),
  );
  if (webhook.consecutiveFailures > 0) {
    parts.push(el("span", { class: "failures" }, t("health.failuresInARow", { count: webhook.consecutiveFailures })));
  }
  if (webhook.pendingRetries > 0) {
    parts.push(el("span", { class: "retries" }, t("health.retriesPending", { count: webhook.pendingRetries })));
  }
  return parts;
}

export function lastStatusBadge(status) {
  if (status === "success") return el("span", { class: "badge on last-status", "data-status": status }, t("status.success"));
  if (status === "fail") return el("span", { class: "badge off last-status", "data-status": status }, t("status.fail"));
  return el("span", { class: "badge none last-status", "data-status": "" }, t("health.never"));
}

function ownerCell(webhook) {
  const level = el("span", { class: "level" }, t(`level.${webhook.level}`));
  return [level, el("span", { class: "muted owner-id" }, webhook.ownerId)];
}

/** The inputs of one column's filter, and how to read them into API parameters. */
function filterInputs(column, current, label) {
  const id = (suffix) => `filter-${column.key}-${suffix}`;
  const field = (labelText, input) => el("div", { class: "field" }, el("label", { for: input.id }, labelText), input);
  if (column.filter === "text") {
    const param = column.params[0];
    const input = el("input", { type: "search", id: id("text"), value: current[param] ?? "", autocomplete: "off" });
    return {
      elements: [field(t("filter.contains", { column: label }), input)],
      read: () => (input.value.trim() ? { [param]: input.value.trim() } : {}),
    };
  }
  if (column.filter === "enabled") {
    const select = choice(id("state"), current.enabled ?? "", [
      ["", t("filter.any")],
      ["true", t("state.enabled")],
      ["false", t("state.disabled")],
    ]);
    return {
      elements: [field(t("column.enabled"), select)],
      read: () => (select.value ? { enabled: select.value } : {}),
    };
  }
  if (column.filter === "lastStatus") {
    const select = choice(id("last-status"), current.lastStatus ?? "", [
      ["", t("filter.any")],
      ["success", t("status.success")],
      ["fail", t("status.fail")],
    ]);
    return {
      elements: [field(t("filter.lastStatus"), select)],
      read: () => (select.value ? { lastStatus: select.value } : {}),
    };
  }
  if (column.filter === "owner") {
    const select = choice(id("level"), current.level ?? "", [
      ["", t("filter.any")],
      ["tenant", t("level.tenant")],
      ["user", t("level.user")],
    ]);
    const owner = el("input", { type: "search", id: id("owner"), value: current.ownerIdContains ?? "", autocomplete: "off" });
    return {
      elements: [field(t("filter.level"), select), field(t("filter.owner"), owner)],
      read: () => ({
        ...(select.value ? { level: select.value } : {}),
        ...(owner.value.trim() ? { ownerIdContains: owner.value.trim() } : {}),
      }),
    };
  }
  const day = el("input", { type: "date", id: id("day"), value: current.updatedSince ? localDay(current.updatedSince) : "" });
  return {
    elements: [field(t("filter.updatedOn"), day)],
    read: () => {
      if (!day.value) return {};
      const start = new Date(`${day.value}T00:00:00`);
      const end = new Date(start);
      end.setDate(end.getDate() + 1);
      return { updatedSince: start.toISOString(), updatedUntil: end.toISOString() };
    },
  };
}

function choice(id, value, options) {
  const select = el("select", { id }, ...options.map(([v, text]) => el("option", { value: v }, text)));
  select.value = value;
  return select;
}

function localDay(iso) {
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function funnel() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", "M1 2h14l-5.5 6.5V14l-3-1.5V8.5z");
  svg.append(path);
  return svg;
}
