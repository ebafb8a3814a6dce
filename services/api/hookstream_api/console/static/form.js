// The webhook form, shared by the create dialog and the edit panel.
import { describeError, errorField } from "./errors.js";
import { formatTime, t, translate } from "./i18n.js";

const GROUPS = ["apps", "users"];
const FIELD_NAMES = [
  "name",
  "description",
  "url",
  "secret",
  "headers",
  "encryptedHeaders",
  "eventTypes",
  "filter",
  "enableCloudEventDelivery",
  "rateLimit",
  "secretRotationGraceSeconds",
  "clientCertificate",
];

export class WebhookForm {
  /** Fill `form`'s body with the fields; ids start with `prefix` so two forms can coexist. */
  constructor(form, prefix, eventTypes) {
    this.form = form;
    this.prefix = prefix;
    const body = form.querySelector(".form-body");
    body.replaceChildren(document.getElementById("webhook-fields").content.cloneNode(true));
    for (const input of body.querySelectorAll("[data-id]")) {
      input.id = `${prefix}-${input.dataset.id}`;
    }
    for (const label of body.querySelectorAll("label[data-for]")) {
      label.htmlFor = `${prefix}-${label.dataset.for}`;
    }
    for (const error of body.querySelectorAll("[data-error]")) {
      error.id = `${prefix}-error-${error.dataset.error}`;
    }
    for (const hint of body.querySelectorAll("[data-hint]")) {
      hint.id = `${prefix}-hint-${hint.dataset.hint}`;
      this.input(hint.dataset.hint).setAttribute("aria-describedby", hint.id);
    }
    this.renderEventTypes(body.querySelector(".event-groups"), eventTypes);
    body.querySelector(".add-header").addEventListener("click", () => {
      this.addHeader().querySelector(".header-name").focus();
    });
    body.querySelector(".clear-rate").addEventListener("click", () => {
      this.input("ratePerSecond").value = "";
      this.input("rateBurst").value = "";
      this.input("ratePerSecond").focus();
    });
    translate(body);
  }

  input(id) {
    return this.form.querySelector(`#${this.prefix}-${id}`);
  }

  renderEventTypes(container, eventTypes) {
    const categories = [...GROUPS, ...new Set(eventTypes.map((type) => type.category))];
    for (const category of new Set(categories)) {
      const types = eventTypes.filter((type) => type.category === category);
      if (!types.length) continue;
      const group = document.createElement("fieldset");
      group.className = "event-group";
      const legend = document.createElement("legend");
      legend.dataset.i18n = `eventGroup.${category}`;
      group.append(legend);
      for (const type of types) {
        const id = `${this.prefix}-event-${type.name.replaceAll(".", "-")}`;
        const label = document.createElement("label");
        label.className = "check";
        label.htmlFor = id;
        const box = document.createElement("input");
        box.type = "checkbox";
        box.id = id;
        box.value = type.name;
        box.className = "event-type";
        const text = document.createElement("span");
        text.dataset.i18n = `event.${type.name}`;
        label.append(box, text);
        group.append(label);
      }
      container.append(group);
    }
  }

  addHeader(name = "", value = "", encrypted = false) {
    const row = document.getElementById("header-row").content.firstElementChild.cloneNode(true);
    const index = this.form.querySelectorAll(".header-row").length;
    const nameInput = row.querySelector(".header-name");
    const valueInput = row.querySelector(".header-value");
    nameInput.value = name;
    valueInput.value = value;
    nameInput.dataset.i18nAriaLabel = "field.headerName";
    valueInput.dataset.i18nAriaLabel = "field.headerValue";
    nameInput.dataset.i18nPlaceholder = "field.headerName";
    valueInput.dataset.i18nPlaceholder = "field.headerValue";
    const box = row.querySelector(".header-encrypted");
    box.checked = encrypted;
    if (encrypted && name) {
      // A stored encrypted value is never sent back: leave it empty to keep it.
      row.dataset.stored = name;
      box.disabled = true;
      valueInput.dataset.i18nPlaceholder = "field.encryptedKept";
    }
    row.dataset.index = String(index);
    row.querySelector(".remove-header").addEventListener("click", () => {
      row.remove();
      this.form.querySelector(".add-header").focus();
    });
    this.form.querySelector(".header-rows").append(translate(row));
    return row;
  }

  /** Show a webhook from the API; secrets are never in it, only whether one is set. */
  fill(webhook) {
    this.input("name").value = webhook.name ?? "";
    this.input("description").value = webhook.description ?? "";
    this.input("url").value = webhook.url ?? "";
    this.input("secret").value = "";
    this.form.querySelector(".secret-state").hidden = !webhook.secretKeyAdded;
    this.input("filter").value = webhook.filter ?? "";
    this.input("cloudEvents").checked = Boolean(webhook.enableCloudEventDelivery);
    this.form.querySelector(".header-rows").replaceChildren();
    for (const [name, value] of Object.entries(webhook.headers ?? {})) this.addHeader(name, value);
    for (const name of webhook.encryptedHeaders ?? []) this.addHeader(name, "", true);
    this.input("ratePerSecond").value = webhook.rateLimit ? String(webhook.rateLimit.perSecond) : "";
    this.input("rateBurst").value = webhook.rateLimit ? String(webhook.rateLimit.burst) : "";
    const grace = webhook.secretRotationGraceSeconds;
    this.input("grace").value = grace === undefined || grace === null ? "" : String(grace);
    this.showWindow(webhook.previousSecretExpiresAt);
    this.showClientCertificate(webhook.clientCertificate ?? null);
    const chosen = new Set(webhook.eventTypes ?? []);
    for (const box of this.form.querySelectorAll(".event-type")) box.checked = chosen.has(box.value);
    this.clearErrors();
  }

  /** The fields as the API's create body. */
  values() {
    const headers = {};
    const encryptedHeaders = {};
    const keptEncrypted = [];
    for (const row of this.form.querySelectorAll(".header-row")) {
      const name = row.querySelector(".header-name").value.trim();
      const value = row.querySelector(".header-value").value;
      if (!name && !value) continue;
      if (row.dataset.stored && row.dataset.stored === name && value === "") {
        keptEncrypted.push(name);
      } else if (row.querySelector(".header-encrypted").checked) {
        encryptedHeaders[name] = value;
      } else {
        headers[name] = value;
      }
    }
    const filter = this.input("filter").value.trim();
    const body = {
      name: this.input("name").value,
      description: this.input("description").value,
      url: this.input("url").value.trim(),
      eventTypes: [...this.form.querySelectorAll(".event-type:checked")].map((box) => box.value),
      headers,
      encryptedHeaders,
      filter: filter || null,
      enableCloudEventDelivery: this.input("cloudEvents").checked,
    };
    const secret = this.input("secret").value;
    if (secret) body.secret = secret;
    body.rateLimit = this.rateLimit();
    const grace = this.input("grace").value.trim();
    if (grace) body.secretRotationGraceSeconds = number(grace);
    const certificate = this.input("clientCertificate").value.trim();
    const key = this.input("clientKey").value.trim();
    if (certificate || key) body.clientCertificate = { certificate, key };
    else if (this.input("removeClientCertificate").checked) body.clientCertificate = null;
    return { body, keptEncrypted };
  }

  /** The stored client certificate's subject and expiry; its key is never shown. Typing a new
   * pair replaces it; the box removes it. */
  showClientCertificate(info) {
    this.input("clientCertificate").value = "";
    this.input("clientKey").value = "";
    this.input("removeClientCertificate").checked = false;
    this.form.querySelector(".remove-client-certificate").hidden = !info;
    const state = this.form.querySelector(".client-certificate-state");
    state.hidden = !info;
    state.textContent = info
      ? t("field.clientCertificateSet", { subject: info.subject, time: formatTime(info.notAfter) })
      : "";
  }

  /** The rate limit as typed: null when both are empty, the API checks the rest. */
  rateLimit() {
    const perSecond = this.input("ratePerSecond").value.trim();
    const burst = this.input("rateBurst").value.trim();
    if (!perSecond && !burst) return null;
    const limit = {};
    if (perSecond) limit.perSecond = number(perSecond);
    if (burst) limit.burst = number(burst);
    return limit;
  }

  /** While a rotation's window runs: until when the previous secret still signs. */
  showWindow(expiresAt, note = null) {
    const box = this.form.querySelector(".rotation-window");
    box.hidden = !expiresAt && !note;
    box.querySelector(".end-window").hidden = !expiresAt;
    box.querySelector(".rotation-window-text").textContent = expiresAt
      ? t("rotate.stillAccepted", { time: formatTime(expiresAt) })
      : (note ?? "");
  }

  clearErrors() {
    for (const error of this.form.querySelectorAll(".field-error, .form-error")) {
      error.hidden = true;
      error.textContent = "";
    }
    for (const input of this.form.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
      const hint = input.getAttribute("aria-describedby")?.split(" ")[0];
      if (hint) input.setAttribute("aria-describedby", hint);
      else input.removeAttribute("aria-describedby");
    }
  }

  /** Put each API error next to the field its detail names; the rest above the buttons. */
  showErrors(error) {
    this.clearErrors();
    let first = null;
    const general = [];
    for (const item of error.errors) {
      const named = errorField(item.detail);
      const field = FIELD_NAMES.find((name) => named?.split(/[.[]/)[0] === name);
      const slot = field && this.form.querySelector(`#${this.prefix}-error-${field}`);
      if (!slot) {
        general.push(describeError(item));
        continue;
      }
      slot.textContent = describeError(item);
      slot.hidden = false;
      const target = this.fieldInput(field, named);
      if (target) {
        target.setAttribute("aria-invalid", "true");
        const hint = target.getAttribute("aria-describedby");
        target.setAttribute("aria-describedby", hint ? `${hint} ${slot.id}` : slot.id);
      }
      first ??= target ?? slot;
    }
    if (general.length || error.status === 0) {
      const box = this.form.querySelector(".form-error");
      box.textContent = error.status === 0 ? t("error.network") : general.join(" ");
      box.hidden = false;
      first ??= box;
    }
    if (first?.focus) first.focus();
  }

  fieldInput(field, named = "") {
    if (field === "rateLimit") {
      return this.input(/^rateLimit\.burst/.test(named) ? "rateBurst" : "ratePerSecond");
    }
    if (field === "clientCertificate") {
      return this.input(/^clientCertificate\.key/.test(named) ? "clientKey" : "clientCertificate");
    }
    const ids = {
      secretRotationGraceSeconds: "grace",
      name: "name",
      description: "description",
      url: "url",
      secret: "secret",
      filter: "filter",
      enableCloudEventDelivery: "cloudEvents",
    };
    if (ids[field]) return this.input(ids[field]);
    if (field === "eventTypes") return this.form.querySelector(".event-type");
    return this.form.querySelector(".header-name");
  }
}

/** A number typed as text; what is not one goes to the API as typed, for its message. */
function number(text) {
  const value = Number(text.replace(",", "."));
  return text !== "" && Number.isFinite(value) ? value : text;
}
