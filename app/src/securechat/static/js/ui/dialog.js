// Modal dialogs on <dialog>: focus is trapped by the browser, Escape closes.
import { dispose, h, uid } from "./dom.js";

const open = new Set();

/** Refresh every open dialog that has an `update(state)` (set on the returned handle). */
export function updateDialogs(state) {
  for (const handle of open) if (handle.update) handle.update(state);
}

/** Close every open dialog (logout, session ended). */
export function closeDialogs() {
  for (const handle of [...open]) handle.close();
}

export function openDialog({ title, body, className = "", onClose = null }) {
  const titleId = uid("dialog-title");
  const closeButton = h("button", { type: "button", class: "button ghost dialog-close", "aria-label": "Close" }, "×");
  const dialog = h(
    "dialog",
    { class: ["dialog", className], "aria-labelledby": titleId },
    h("header", { class: "dialog-header" }, h("h2", { id: titleId }, title), closeButton),
    h("div", { class: "dialog-body" }, body),
  );
  const opener = document.activeElement;
  let closed = false;
  const handle = { dialog, close, update: null };
  function close() {
    if (closed) return;
    closed = true;
    open.delete(handle);
    if (dialog.open) dialog.close();
    dispose(dialog);
    dialog.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
  }
  closeButton.addEventListener("click", close);
  dialog.addEventListener("close", close);
  dialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    close();
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) close(); // a click on the backdrop
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector(".dialog-body input, .dialog-body textarea, .dialog-body select");
  if (first) first.focus();
  open.add(handle);
  return handle;
}
