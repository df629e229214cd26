// DOM helpers: elements are built with createElement and textContent only, never HTML strings.

const FORBIDDEN = new Set(["innerHTML", "outerHTML", "srcdoc", "style"]);
const SVG_NS = "http://www.w3.org/2000/svg";
const disposers = new WeakMap();

function setAttributes(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (FORBIDDEN.has(key)) throw new TypeError(`h(): "${key}" is not allowed`);
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`h(): ${key} must be a function`);
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "href" && !/^(blob:|#|\/)/.test(String(value))) {
      throw new TypeError("h(): only blob:, # and same-site hrefs");
    } else if (key.includes("-") || key === "role" || key === "for" || !(key in el)) {
      el.setAttribute(key, value === true ? "" : String(value));
    } else {
      el[key] = value;
    }
  }
}

function appendChildren(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("button", {class: "x", onClick: fn, "aria-label": "Send"}, "text", otherNode) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attrs);
  appendChildren(el, children);
  return el;
}

/** SVG element (attributes only, set with setAttribute). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on") || FORBIDDEN.has(key)) throw new TypeError(`svg(): "${key}" is not allowed`);
    el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

/** Replace every child of `el` (running disposers of the removed ones). */
export function replace(el, ...children) {
  disposeChildren(el);
  el.replaceChildren();
  appendChildren(el, children);
  return el;
}

/** Register cleanup (revoking object URLs, unsubscribing) for when `el` is removed by us. */
export function onDispose(el, fn) {
  const list = disposers.get(el) || [];
  list.push(fn);
  disposers.set(el, list);
  el.dataset.disposable = "";
}

export function dispose(el) {
  const all = [el, ...el.querySelectorAll("[data-disposable]")];
  for (const node of all) {
    for (const fn of disposers.get(node) || []) {
      try { fn(); } catch (error) { console.warn("dispose failed", error); }
    }
    disposers.delete(node);
  }
}

function disposeChildren(el) {
  for (const node of el.querySelectorAll("[data-disposable]")) dispose(node);
}

/**
 * Keyed list update: keeps the elements of items that stay (their state, focus and object
 * URLs survive), creates the new ones, removes and disposes the others, keeps the order.
 */
export function reconcile(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of container.children) {
    if (child.dataset.key !== undefined) existing.set(child.dataset.key, child);
  }
  const keep = new Set();
  let previous = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let el = existing.get(key);
    if (el) {
      if (update) update(el, item);
    } else {
      el = create(item);
      el.dataset.key = key;
    }
    keep.add(key);
    const expected = previous ? previous.nextElementSibling : container.firstElementChild;
    if (expected !== el) container.insertBefore(el, expected);
    previous = el;
  }
  for (const [key, el] of existing) {
    if (!keep.has(key)) {
      dispose(el);
      el.remove();
    }
  }
}

/** A status line with space reserved for it, so text appearing does not move the layout. */
export function statusLine(className = "status-line") {
  return h("p", { class: className, role: "status", "aria-live": "polite" });
}

let counter = 0;
export function uid(prefix = "id") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** Initials for a fixed-size avatar. */
export function avatar(name, { online = null, size = "md" } = {}) {
  const initials = (name || "?").replace(/[^a-z0-9]/gi, "").slice(0, 2).toUpperCase() || "?";
  const el = h("span", { class: ["avatar", `avatar-${size}`, `hue-${hue(name)}`], "aria-hidden": "true" }, initials);
  if (online !== null) el.append(h("span", { class: ["presence-dot", online ? "is-online" : ""] }));
  return el;
}

function hue(name) {
  let sum = 0;
  for (const ch of name || "") sum = (sum * 31 + ch.codePointAt(0)) % 8;
  return sum;
}

export function formatBytes(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
