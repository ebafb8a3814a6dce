// Small DOM helpers: elements are built with textContent, never from HTML strings.
import { t } from "./i18n.js";

/** `el("td", {class: "x"}, child, "text")`: an element with attributes and children. */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "value") element.value = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** An event type's label in the current language; unknown types show their name. */
export function eventTypeLabel(name) {
  const key = `event.${name}`;
  const label = t(key);
  return label === key ? name : label;
}
