// A webhook's audit trail (a Hookstream extension) in a side panel: who did what, when and
// from where, newest first, paged by the API's links. Field names only; never a value.
import { query } from "./api.js";
import { el } from "./dom.js";
import { formatTime, has, t } from "./i18n.js";

const PAGE_SIZE = 20;
const $ = (id) => document.getElementById(id);

export class AuditPanel {
  constructor(app) {
    this.app = app;
    this.webhook = null;
    this.page = null;
    for (const direction of ["prev", "next"]) {
      $(`audit-${direction}`).addEventListener("click", () => {
        const link = this.page?.links?.[direction]?.href;
        if (link) this.load(link);
      });
    }
    document.addEventListener("languagechange", () => {
      if ($("audit-panel").open) this.render();
    });
  }

  /** Open the panel on `webhook`'s newest entries. */
  async open(webhook) {
    this.webhook = webhook;
    this.page = null;
    $("audit-error").hidden = true;
    $("audit-webhook").textContent = webhook.name;
    $("audit-list").replaceChildren();
    $("audit-panel").showModal();
    $("audit-panel").querySelector(".cancel").focus();
    await this.load(`/${webhook.id}/audit${query({ limit: PAGE_SIZE })}`);
  }

  async load(path) {
    try {
      this.page = await this.app.api.get(path);
    } catch (error) {
      if (error.status === 401) return;
      $("audit-error").textContent = error.status === 0 ? t("error.network") : error.message;
      $("audit-error").hidden = false;
      return;
    }
    this.render();
  }

  render() {
    if (!this.page) return;
    const rows = this.page.data.map((entry) =>
      el(
        "tr",
        { "data-audit": entry.id, "data-action": entry.action },
        el("td", {}, el("time", { datetime: entry.createdAt }, formatTime(entry.createdAt))),
        el("td", { class: "audit-action" }, actionLabel(entry.action)),
        el("td", { class: "audit-actor" }, entry.actor === "system" ? t("audit.system") : entry.actor),
        el("td", { class: "audit-changed" }, ...changedCell(entry)),
        el("td", { class: "audit-source" }, entry.sourceAddress ?? "—"),
      ),
    );
    const table = el(
      "table",
      { class: "audit-table" },
      el("caption", { class: "visually-hidden" }, t("audit.caption", { name: this.webhook.name })),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["time", "action", "actor", "changed", "source"].map((key) =>
            el("th", { scope: "col" }, t(`audit.${key}`)),
          ),
        ),
      ),
      el("tbody", {}, ...rows),
    );
    $("audit-list").replaceChildren(
      rows.length ? table : el("p", { class: "muted" }, t("audit.empty")),
    );
    $("audit-prev").disabled = !this.page.links?.prev;
    $("audit-next").disabled = !this.page.links?.next;
  }
}

function actionLabel(action) {
  return has(`audit.action.${action}`) ? t(`audit.action.${action}`) : action;
}

/** The fields an entry changed, and why the system disabled a webhook. */
function changedCell(entry) {
  const parts = entry.changedFields.map((name) => el("code", { class: "field-name" }, name));
  const code = entry.details?.reasonCode;
  if (code) {
    const known = ["DELIVERY_FAILURES", "ENDPOINT_GONE"].includes(code);
    parts.push(el("span", { class: "reason" }, known ? t(`reason.${code}`) : t("reason.other", { code })));
  }
  return parts.length ? parts : ["—"];
}
