// The console: sign-in, the webhooks page, the create, edit and delete dialogs, and the audit panel.
import { Api } from "./api.js";
import { AuditPanel } from "./audit.js";
import { el } from "./dom.js";
import { describeError, errorField } from "./errors.js";
import { History } from "./history.js";
import { formatDuration, formatPercent, formatTime, initI18n, setLanguage, t, translate } from "./i18n.js";
import { lastStatusBadge, WebhooksTable } from "./table.js";
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
    this.audit = new AuditPanel(this);
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
    $("create-test").addEventListener("click", () => this.testFromCreate());
    $("edit-form").addEventListener("submit", (event) => this.submitEdit(event));
    $("rotate-form").addEventListener("submit", (event) => this.submitRotate(event));
    $("rotate-end-window").addEventListener("click", () => this.endWindow("rotate"));

    $("link-form").addEventListener("submit", (event) => {
      event.preventDefault();
      $("link-dialog").close();
      this.signIn(this.offeredToken);
    });
    window.addEventListener("hashchange", () => this.offerLink());
    const linked = this.linkToken();
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) await this.signIn(token);
    else this.showSignIn(null);
    if (linked) this.offerLink(linked);
  }

  /**
   * A `#token=` link never signs in by itself: anyone can send one, and a link that silently
   * signed the reader into the sender's tenant (login CSRF) would collect what they type there.
   * Ask first, naming the user and tenant it signs in as, and the session it would replace.
   */
  offerLink(token = this.linkToken()) {
    if (!token) return;
    this.offeredToken = token;
    const claims = decodeClaims(token);
    $("link-text").textContent = t("link.text", {
      user: claims.sub ?? "?",
      tenant: claims.tenantId ?? "?",
    });
    const current = this.api ? this.claims?.sub : null;
    $("link-replaces").hidden = !current;
    $("link-replaces").textContent = current ? t("link.replaces", { user: current }) : "";
    $("link-dialog").showModal();
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
    $("edit-form").querySelector(".end-window").addEventListener("click", () => this.endWindow("edit"));
    const claims = decodeClaims(token);
    this.claims = claims;
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
    $("page-notice").hidden = true;
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
    this.showCreated(null);
    $("create-dialog").showModal();
    this.createForm.input("name").focus();
  }

  async submitCreate(event) {
    event.preventDefault();
    const { body } = this.createForm.values();
    try {
      const created = await this.api.request("POST", "", { ...body, origin: "management-console" });
      this.showCreated(created);
      this.announce(t("webhooks.created", { name: created.name }));
      await this.table.reload(true);
      $("create-test").focus();
    } catch (error) {
      if (error.status !== 401) this.createForm.showErrors(error);
    }
  }

  /** The create dialog as a form (`webhook` null), or as the result of creating `webhook`:
   * what was created and a button to send it a test event. */
  showCreated(webhook) {
    const dialog = $("create-dialog");
    this.created = webhook;
    dialog.querySelector(".form-body").hidden = Boolean(webhook);
    dialog.querySelector(".create-done").hidden = !webhook;
    dialog.querySelector("button[type=submit]").hidden = Boolean(webhook);
    dialog.querySelector(".form-error").hidden = true;
    $("create-test").hidden = !webhook;
    $("create-test-result").hidden = true;
    dialog.querySelector(".cancel").textContent = t(webhook ? "common.close" : "common.cancel");
    $("create-result").textContent = webhook ? t("test.created", { name: webhook.name }) : "";
  }

  /** Send a test event to `webhook` now; the delivery, or null after showing the error
   * in `errorBox` (a 401 has signed out already). */
  async sendTest(webhook, errorBox) {
    try {
      return await this.api.request("POST", `/${webhook.id}/actions/test`, {});
    } catch (error) {
      if (error.status === 401) return null;
      errorBox.textContent = error.status === 0 ? t("error.network") : error.message;
      errorBox.hidden = false;
      return null;
    }
  }

  /** How a test delivery went, in words, into `box`. */
  showTestOutcome(box, webhook, delivery) {
    const code = delivery.response?.statusCode;
    box.dataset.status = delivery.status;
    box.textContent =
      delivery.status === "success"
        ? t("test.success", { name: webhook.name, code })
        : t("test.fail", {
            name: webhook.name,
            message: code ? t("test.answered", { code }) : t("test.noAnswer"),
          });
    box.hidden = false;
  }

  async testFromMenu(webhook) {
    $("page-error").hidden = $("page-notice").hidden = true;
    const sent = await this.sendTest(webhook, $("page-error"));
    if (!sent) return;
    this.showTestOutcome($("page-notice"), webhook, sent);
    await this.table.reload();
    document.querySelector(`tr[data-id="${webhook.id}"] .row-menu-button`)?.focus();
  }

  async testFromCreate() {
    const dialog = $("create-dialog");
    const button = $("create-test");
    dialog.querySelector(".form-error").hidden = $("create-test-result").hidden = true;
    button.disabled = true;
    const sent = await this.sendTest(this.created, dialog.querySelector(".form-error"));
    button.disabled = false;
    if (!sent) return;
    this.showTestOutcome($("create-test-result"), this.created, sent);
    await this.table.reload();
  }

  async openEdit(id) {
    const webhook = await this.call(() => this.api.get(`/${id}`));
    if (!webhook) return;
    this.editing = webhook;
    this.editForm.fill(webhook);
    this.showHealth(webhook);
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
      ["rateLimit", body.rateLimit],
      ...("secretRotationGraceSeconds" in body
        ? [["secretRotationGraceSeconds", body.secretRotationGraceSeconds]]
        : []),
    ].map(([field, value]) => ({ op: "replace", path: `/${field}`, value }));
    if (body.secret) ops.push({ op: "replace", path: "/secret", value: body.secret });
    if (body.clientCertificate) {
      ops.push({ op: "replace", path: "/clientCertificate", value: body.clientCertificate });
    } else if (body.clientCertificate === null && this.editing.clientCertificate) {
      ops.push({ op: "remove", path: "/clientCertificate" });
    }
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

  /** The read-only health fields in the edit panel. */
  showHealth(webhook) {
    const none = t("health.none");
    const rows = [
      ["health.lastStatus", lastStatusBadge(webhook.lastStatus)],
      [
        "health.lastDeliveryAt",
        webhook.lastDeliveryAt
          ? el("time", { datetime: webhook.lastDeliveryAt }, formatTime(webhook.lastDeliveryAt))
          : none,
      ],
      ["health.consecutiveFailures", String(webhook.consecutiveFailures ?? 0)],
      ["health.successRate1h", formatPercent(webhook.successRate1h)],
      ["health.successRate24h", formatPercent(webhook.successRate24h)],
      ["health.pendingRetries", String(webhook.pendingRetries ?? 0)],
    ];
    $("edit-health")
      .querySelector(".health-list")
      .replaceChildren(
        ...rows.flatMap(([key, value]) => [
          el("dt", { "data-field": key.split(".")[1] }, t(key)),
          el("dd", { "data-field": key.split(".")[1] }, value),
        ]),
      );
  }

  /** The Rotate dialog: a new secret, then when the previous one stops being accepted. */
  openRotate(webhook) {
    this.rotating = webhook;
    const dialog = $("rotate-dialog");
    $("rotate-webhook").textContent = webhook.name;
    const grace = webhook.secretRotationGraceSeconds;
    $("rotate-text").textContent =
      grace > 0 ? t("rotate.text", { grace: formatDuration(grace) }) : t("rotate.textNoGrace");
    $("rotate-secret").value = "";
    this.rotateErrors(null);
    dialog.querySelector(".rotate-step").hidden = false;
    dialog.querySelector(".rotate-done").hidden = true;
    $("rotate-submit").hidden = false;
    dialog.querySelector(".cancel").textContent = t("common.cancel");
    dialog.showModal();
    $("rotate-secret").focus();
  }

  async submitRotate(event) {
    event.preventDefault();
    const secret = $("rotate-secret").value;
    try {
      await this.api.request("PATCH", `/${this.rotating.id}`, [
        { op: "replace", path: "/secret", value: secret },
      ]);
    } catch (error) {
      if (error.status !== 401) this.rotateErrors(error);
      return;
    }
    $("rotate-secret").value = "";
    this.rotateErrors(null);
    const dialog = $("rotate-dialog");
    dialog.querySelector(".rotate-step").hidden = true;
    dialog.querySelector(".rotate-done").hidden = false;
    $("rotate-submit").hidden = true;
    dialog.querySelector(".cancel").textContent = t("common.close");
    $("rotate-result").textContent = t("rotate.done");
    const webhook = await this.call(() => this.api.get(`/${this.rotating.id}`));
    if (webhook) {
      this.rotating = webhook;
      this.showRotated(webhook);
    }
    this.announce(t("rotate.announce", { name: this.rotating.name }));
    await this.table.reload();
    dialog.querySelector(".cancel").focus();
  }

  showRotated(webhook) {
    const expires = webhook.previousSecretExpiresAt;
    $("rotate-result").textContent = expires
      ? `${t("rotate.done")} ${t("rotate.stillAccepted", { time: formatTime(expires) })}`
      : `${t("rotate.done")} ${t("rotate.onlyNew")}`;
    $("rotate-end-window").hidden = !expires;
  }

  /** Put the API's errors of a rotation under the secret, or above the buttons. */
  rotateErrors(error) {
    const slot = $("rotate-error-secret");
    const general = $("rotate-dialog").querySelector(".form-error");
    const input = $("rotate-secret");
    slot.hidden = general.hidden = true;
    slot.textContent = general.textContent = "";
    input.removeAttribute("aria-invalid");
    input.setAttribute("aria-describedby", "rotate-hint");
    if (!error) return;
    const mine = error.errors.filter((item) => errorField(item.detail) === "secret");
    const rest = error.errors.filter((item) => !mine.includes(item));
    if (mine.length) {
      slot.textContent = mine.map(describeError).join(" ");
      slot.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "rotate-hint rotate-error-secret");
      input.focus();
    }
    if (rest.length || error.status === 0) {
      general.textContent = error.status === 0 ? t("error.network") : rest.map(describeError).join(" ");
      general.hidden = false;
      if (!mine.length) general.focus();
    }
  }

  /** End a rotation's window now. The API's way is a grace of 0, which it also keeps for the
   * next rotation; so the grace the webhook had is put back at once (with no window left,
   * restoring it revives nothing). */
  async endWindow(from) {
    const webhook = from === "rotate" ? this.rotating : this.editing;
    const grace = webhook.secretRotationGraceSeconds;
    const set = (value) =>
      this.api.request("PATCH", `/${webhook.id}`, [
        { op: "replace", path: "/secretRotationGraceSeconds", value },
      ]);
    const errorBox =
      from === "rotate" ? $("rotate-dialog").querySelector(".form-error") : $("edit-form").querySelector(".form-error");
    errorBox.hidden = true;
    try {
      await set(0);
      if (grace > 0) await set(grace);
    } catch (error) {
      if (error.status === 401) return;
      errorBox.textContent = error.status === 0 ? t("error.network") : error.message;
      errorBox.hidden = false;
      return;
    }
    const fresh = await this.call(() => this.api.get(`/${webhook.id}`));
    const ended = t("rotate.ended");
    if (from === "rotate") {
      if (fresh) this.rotating = fresh;
      $("rotate-result").textContent = ended;
      $("rotate-end-window").hidden = true;
      $("rotate-dialog").querySelector(".cancel").focus();
    } else {
      if (fresh) this.editing = fresh;
      this.editForm.showWindow(fresh?.previousSecretExpiresAt ?? null, ended);
      this.editForm.input("secret").focus();
    }
    this.announce(ended);
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
