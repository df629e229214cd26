// The safety number screen: 60 digits as 12 groups of 5, a QR code of them, and the
// "verified" toggle. The QR is drawn from uqr's module matrix with SVG elements, never
// from an SVG string.
import { encode } from "uqr";
import { h, svg } from "./dom.js";
import { errorSlot } from "./errors.js";
import { openDialog } from "./dialog.js";
import * as model from "./model.js";

export function digitsOf(value) {
  const text = typeof value === "string" ? value : (value && (value.digits || value.number || value.safetyNumber)) || "";
  return text.replace(/\D/g, "");
}

export function groupsOf(digits) {
  const groups = [];
  for (let i = 0; i < digits.length; i += 5) groups.push(digits.slice(i, i + 5));
  return groups;
}

/** The QR code of `text` as an <svg> of one path (a square per dark module). */
export function qrCode(text, label) {
  const { size, data } = encode(text, { border: 2 });
  let path = "";
  for (let y = 0; y < size; y += 1) {
    for (let x = 0; x < size; x += 1) if (data[y][x]) path += `M${x} ${y}h1v1h-1z`;
  }
  return svg(
    "svg",
    { viewBox: `0 0 ${size} ${size}`, class: "qr-code", role: "img", "aria-label": label, "shape-rendering": "crispEdges" },
    svg("rect", { width: size, height: size, class: "qr-light" }),
    svg("path", { d: path, class: "qr-dark" }),
  );
}

export function openSafetyDialog({ chat, getState, userId }) {
  const name = model.usernameOf(getState(), userId);
  const numberBox = h("div", { class: "safety-number", "aria-busy": "true" }, h("p", { class: "muted" }, "Computing the safety number…"));
  const qrBox = h("div", { class: "qr-box" });
  const error = errorSlot();
  const toggleId = `verified-${userId}`;
  const toggle = h("input", { type: "checkbox", id: toggleId, role: "switch", class: "switch", disabled: true });
  const toggleRow = h("div", { class: "toggle-row" }, toggle, h("label", { for: toggleId }, `Mark ${name} as verified`));
  const warning = h("p", { class: "banner warning", hidden: true }, `${name}'s key changed since you last verified it. Compare the new number before marking it verified again.`);

  function refresh() {
    const state = getState();
    toggle.checked = model.isVerified(state, userId);
    warning.hidden = !model.has(state.keyWarnings, userId);
  }

  toggle.addEventListener("change", async () => {
    error.clear();
    const on = toggle.checked;
    toggle.disabled = true;
    try {
      await chat.setVerified(userId, on);
    } catch (failure) {
      toggle.checked = !on;
      error.show(failure);
    } finally {
      toggle.disabled = false;
      refresh();
    }
  });

  const body = h(
    "div",
    { class: "safety" },
    warning,
    h("p", {}, `Compare these numbers with ${name} in person or over a channel you trust, or scan the code on their screen. If they match, nobody is intercepting your conversation.`),
    numberBox,
    qrBox,
    toggleRow,
    error.el,
  );
  const dialog = openDialog({ title: `Safety number with ${name}`, body, className: "safety-dialog" });

  Promise.resolve(chat.safetyNumber(userId))
    .then((value) => {
      const digits = digitsOf(value);
      if (digits.length !== 60) throw new Error("the safety number is malformed");
      const groups = groupsOf(digits);
      numberBox.removeAttribute("aria-busy");
      numberBox.replaceChildren(
        h("ol", { class: "safety-groups", "aria-label": `Safety number: ${groups.join(" ")}` }, groups.map((group) => h("li", { class: "safety-group" }, group))),
      );
      qrBox.replaceChildren(qrCode(digits, `QR code of the safety number with ${name}`));
      toggle.disabled = false;
      refresh();
    })
    .catch((failure) => {
      numberBox.removeAttribute("aria-busy");
      numberBox.replaceChildren();
      error.show(failure);
    });
  refresh();
  dialog.update = refresh;
  return dialog;
}
