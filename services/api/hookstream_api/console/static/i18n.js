// Translations: English and Polish catalogues, chosen from a saved choice, then the browser.
const LANGUAGES = ["en", "pl"];
const STORAGE_KEY = "hookstream.console.language";
const catalogues = {};
let language = "en";
const globals = {};

/** Load both catalogues and pick the language: the saved choice, else the browser's. */
export async function initI18n(vars) {
  Object.assign(globals, vars);
  await Promise.all(
    LANGUAGES.map(async (lang) => {
      const response = await fetch(`static/locales/${lang}.json`);
      catalogues[lang] = await response.json();
    }),
  );
  const saved = localStorage.getItem(STORAGE_KEY);
  const preferred = (navigator.languages || [navigator.language])
    .map((tag) => tag.toLowerCase().split("-")[0])
    .find((tag) => LANGUAGES.includes(tag));
  language = LANGUAGES.includes(saved) ? saved : preferred || "en";
  document.documentElement.lang = language;
  return language;
}

/** Switch language, remember it, and re-translate the whole page. */
export function setLanguage(lang) {
  language = LANGUAGES.includes(lang) ? lang : "en";
  localStorage.setItem(STORAGE_KEY, language);
  document.documentElement.lang = language;
  translate(document);
  document.dispatchEvent(new CustomEvent("languagechange"));
}

/** The message `key` in the current language, `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = catalogues[language]?.[key] ?? catalogues.en?.[key] ?? key;
  const all = { ...globals, ...vars };
  return text.replace(/\{(\w+)\}/g, (match, name) => (name in all ? String(all[name]) : match));
}

/** Whether the catalogues have a message `key`. */
export function has(key) {
  return key in (catalogues[language] ?? {}) || key in (catalogues.en ?? {});
}

/** Fill every element of `root` marked with data-i18n (text) or data-i18n-<attribute>. */
export function translate(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const attribute of ["aria-label", "placeholder", "title"]) {
    const data = `data-i18n-${attribute}`;
    for (const element of root.querySelectorAll(`[${data}]`)) {
      element.setAttribute(attribute, t(element.getAttribute(data)));
    }
  }
  return root;
}

/** Dates and times in the reader's language. */
export function formatTime(iso) {
  return new Intl.DateTimeFormat(language, { dateStyle: "medium", timeStyle: "medium" }).format(
    new Date(iso),
  );
}

/** A share from 0 to 1 as a percentage in the reader's language; "—" when there is none. */
export function formatPercent(share) {
  if (share === null || share === undefined) return "—";
  return new Intl.NumberFormat(language, { style: "percent", maximumFractionDigits: 1 }).format(share);
}

/** Seconds in the largest whole unit (days, hours, minutes or seconds), spelled out. */
export function formatDuration(seconds) {
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  const [unit, size] = units.find(([, size]) => seconds >= size && seconds % size === 0) ?? ["second", 1];
  return new Intl.NumberFormat(language, { style: "unit", unit, unitDisplay: "long" }).format(seconds / size);
}
