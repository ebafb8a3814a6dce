// The console: sign-in, the webhooks page, and the create, edit and delete dialogs.
import { Api } from "./api.js";
import { el } from "./dom.js";
import { History } from "./history.js";
import { initI18n, setLanguage, t, translate } from "./i18n.js";
import { WebhooksTable } from "./table.js";
import { WebhookForm } from "./form.js";

const TOKEN_KEY = "hookstream.console.token";
const $ = (id) => document.getElementById(id);

class Console {
  constructor() {
    this.apiBase = document.body.dataset.api;
    this.api = null;
    this.eventTypes = null;
    this.table = new WebhooksTable(this);
    this.history = new History(this);
    this.editing = null;
  }

  async start() {
    const days = Number(document.body.dataset.retentionDays) || 7;
    const language = await initI18n({ days });
    $("language").value = language;
    $("language").addEventListener("change", (event) => setLanguage(event.target.value));
    document.addEventListener("languagechange", () => this.retranslate());
    translate(document);
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.signIn($("token-input").value.trim());
    });
    $("sign-out").addEventListener("click", () => this.signOut(null));
    $("create-webhook").addEventListener("click", () => this.openCreate());
    $("empty-create").addEventListener("click", () => this.openCreate());
    $("delete-selected").addEventListener("click", () =>
      this.confirmDelete(this.table.selectedWebhooks()),
    );
    for (const dialog of document.querySelectorAll("dialog")) {
      dialog.querySelector(".cancel").addEventListener("click", () => dialog.close());
    }
    $("create-form").addEventListener("submit", (event) => this.submitCreate(event));
    $("edit-form").addEventListener("submit", (event) => this.submitEdit(event));

    window.addEventListener("hashchange", () => {
      const token = this.linkToken();
      if (token) this.signIn(token);
    });
    const token = this.linkToken() || sessionStorage.getItem(TOKEN_KEY);
    if (token) await this.signIn(token);
    else this.showSignIn(null);
  }

  /** `make run` prints /console/#token=…: take the token, then drop it from the address bar. */
  linkToken() {
    const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
    if (token) history.replaceState(null, "", window.location.pathname);
    return token;
  }

  /** Check the token against the API before showing anything that needs it. */
  async signIn(token) {
    if (!token) {
      this.showSignIn("auth.missing");
      return;
    }
    this.api = new Api(this.apiBase, token, () => this.signOut("auth.expired"));
    try {
      this.eventTypes = (await this.api.get("/event-types")).data;
    } catch (error) {
      if (error.status !== 401) this.showSignIn(error.status === 0 ? "error.network" : null, error.message);
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token-input").value = "";
    this.createForm = new WebhookForm($("create-form"), "create", this.eventTypes);
    this.editForm = new WebhookForm($("edit-form"), "edit", this.eventTypes);
    const claims = decodeClaims(token);
    $("signed-in-as").textContent = claims.sub ? t("auth.signedInAs", { user: claims.sub }) : "";
    $("signed-in-as").hidden = !claims.sub;
    $("sign-out").hidden = false;
    $("sign-in-view").hidden = true;
    $("webhooks-view").hidden = false;
    this.table.sort = null;
    this.table.filters = {};
    await this.table.reload(true);
    $("main").focus();
  }

  /** Back to sign-in; `reason` says why when it was not the user's choice. */
  signOut(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    this.api = null;
    for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
    this.showSignIn(reason);
  }

  showSignIn(reasonKey, detail = null) {
    $("webhooks-view").hidden = true;
    $("sign-out").hidden = true;
    $("signed-in-as").hidden = true;
    $("sign-in-view").hidden = false;
    const message = $("sign-in-message");
    message.dataset.reason = reasonKey ?? "";
    message.textContent = reasonKey ? t(reasonKey) : detail ?? "";
    message.hidden = !reasonKey && !detail;
    $("token-input").focus();
  }

  /** Run an API call; an error goes to the page's alert (a 401 has signed out already). */
  async call(action) {
    $("page-error").hidden = true;
    try {
      return await action();
    } catch (error) {
      if (error.status === 401) return null;
      $("page-error").textContent = error.status === 0 ? t("error.network") : error.message;
      $("page-error").hidden = false;
      return null;
    }
  }

  announce(text) {
    $("announcer").textContent = text;
  }

  openCreate() {
    this.createForm.fill({ eventTypes: [], headers: {}, encryptedHeaders: [] });
    $("create-dialog").showModal();
    this.createForm.input("name").focus();
  }

  async submitCreate(event) {
    event.preventDefault();
    const { body } = this.createForm.values();
    try {
      const created = await this.api.request("POST", "", { ...body, origin: "management-console" });
      $("create-dialog").close();
      this.announce(t("webhooks.created", { name: created.name }));
      await this.table.reload(true);
    } catch (error) {
      if (error.status !== 401) this.createForm.showErrors(error);
    }
  }

  async openEdit(id) {
    const webhook = await this.call(() => this.api.get(`/${id}`));
    if (!webhook) return;
    this.editing = webhook;
    this.editForm.fill(webhook);
    $("edit-panel").showModal();
    this.editForm.input("name").focus();
  }

  /** Save the edit panel as a JSON Patch: the secret and encrypted values are sent only
   * when typed, so what is stored and never shown stays as it was. */
  async submitEdit(event) {
    event.preventDefault();
    const { body, keptEncrypted } = this.editForm.values();
    const ops = [
      ["name", body.name],
      ["description", body.description],
      ["url", body.url],
      ["eventTypes", body.eventTypes],
      ["headers", body.headers],
      ["filter", body.filter],
      ["enableCloudEventDelivery", body.enableCloudEventDelivery],
    ].map(([field, value]) => ({ op: "replace", path: `/${field}`, value }));
    if (body.secret) ops.push({ op: "replace", path: "/secret", value: body.secret });
    for (const name of this.editing.encryptedHeaders) {
      if (!keptEncrypted.includes(name) && !(name in body.encryptedHeaders)) {
        ops.push({ op: "remove", path: `/encryptedHeaders/${pointer(name)}` });
      }
    }
    for (const [name, value] of Object.entries(body.encryptedHeaders)) {
      ops.push({ op: "add", path: `/encryptedHeaders/${pointer(name)}`, value });
    }
    try {
      await this.api.request("PATCH", `/${this.editing.id}`, ops);
      $("edit-panel").close();
      this.announce(t("webhooks.saved", { name: body.name }));
      await this.table.reload();
    } catch (error) {
      if (error.status !== 401) this.editForm.showErrors(error);
    }
  }

  async setEnabled(webhook, enabled) {
    const done = await this.call(async () => {
      await this.api.request("PATCH", `/${webhook.id}`, [
        { op: "replace", path: "/enabled", value: enabled },
      ]);
      return true;
    });
    if (!done) return;
    this.announce(t(enabled ? "webhooks.enabledNow" : "webhooks.disabledNow", { name: webhook.name }));
    await this.table.reload();
    document.querySelector(`tr[data-id="${webhook.id}"] .row-menu-button`)?.focus();
  }

  /** Ask, then delete each webhook; the dialog stays open with the API's error if one fails. */
  confirmDelete(webhooks) {
    if (!webhooks.length) return;
    const dialog = $("confirm-dialog");
    const error = dialog.querySelector(".form-error");
    error.hidden = true;
    $("confirm-text").textContent = t("confirm.text", { count: webhooks.length });
    $("confirm-list").replaceChildren(...webhooks.map((w) => el("li", {}, w.name)));
    const form = dialog.querySelector("form");
    form.onsubmit = async (event) => {
      event.preventDefault();
      try {
        for (const webhook of webhooks) {
          await this.api.request("DELETE", `/${webhook.id}`);
          this.table.selected.delete(webhook.id);
          this.table.expanded.delete(webhook.id);
        }
      } catch (failure) {
        if (failure.status === 401) return;
        error.textContent = failure.message;
        error.hidden = false;
        await this.table.reload();
        return;
      }
      dialog.close();
      this.announce(t("webhooks.deleted", { count: webhooks.length }));
      await this.table.reload();
      $("create-webhook").focus();
    };
    dialog.showModal();
    dialog.querySelector(".cancel").focus();
  }

  retranslate() {
    if (this.api && !$("webhooks-view").hidden) this.table.render();
    const reason = $("sign-in-message").dataset.reason;
    if (reason) $("sign-in-message").textContent = t(reason);
    this.table.updateSelection();
    const claims = decodeClaims(sessionStorage.getItem(TOKEN_KEY) ?? "");
    if (claims.sub) $("signed-in-as").textContent = t("auth.signedInAs", { user: claims.sub });
  }
}

/** The token's claims, for showing who is signed in; the API is what checks them. */
function decodeClaims(token) {
  try {
    const payload = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/** A JSON Pointer segment (RFC 6901). */
function pointer(name) {
  return name.replaceAll("~", "~0").replaceAll("/", "~1");
}

new Console().start();
