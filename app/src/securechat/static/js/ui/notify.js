// Unread count in the window title; desktop notifications while the tab is hidden.
// Permission is asked only from the button, never on load.
import { h } from "./dom.js";
import { icon } from "./icons.js";
import * as model from "./model.js";

const BASE_TITLE = "Secure Chat M2M";

export function notificationButton() {
  const supported = "Notification" in window;
  const button = h("button", { type: "button", class: "button ghost", "aria-label": "Enable desktop notifications", title: "Enable desktop notifications" }, icon("bell"));
  const refresh = () => {
    button.hidden = !supported || Notification.permission !== "default";
  };
  button.addEventListener("click", async () => {
    if (!supported) return;
    try {
      await Notification.requestPermission();
    } finally {
      refresh();
    }
  });
  refresh();
  return button;
}

export function createNotifier({ onOpen }) {
  let previous = new Map();
  let first = true;
  const shown = new Set();

  function notify(state, convId, count) {
    if (!("Notification" in window) || Notification.permission !== "granted" || !document.hidden) return;
    const conv = model.conversation(state, convId);
    const last = model.lastMessageOf(state, convId);
    const sender = last ? model.usernameOf(state, last.sender_id) : "someone";
    const title = conv && conv.kind === "group" ? `${sender} in ${model.titleOf(state, conv)}` : `Message from ${sender}`;
    // The body names no content: notifications end up in the operating system's history.
    const notification = new Notification(title, {
      body: count === 1 ? "1 unread message" : `${count} unread messages`,
      tag: `securechat-${convId}`,
    });
    shown.add(notification);
    notification.addEventListener("click", () => {
      window.focus();
      onOpen(convId);
      notification.close();
    });
    notification.addEventListener("close", () => shown.delete(notification));
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) for (const n of shown) n.close();
  });

  return {
    update(state) {
      const total = model.totalUnread(state);
      document.title = total ? `(${total}) ${BASE_TITLE}` : BASE_TITLE;
      const current = new Map();
      for (const conv of model.sortedConversations(state)) current.set(conv.id, model.unreadOf(state, conv.id));
      if (!first) {
        for (const [id, count] of current) if (count > (previous.get(id) || 0)) notify(state, id, count);
      }
      first = false;
      previous = current;
    },
    reset() {
      document.title = BASE_TITLE;
      previous = new Map();
      first = true;
      for (const n of shown) n.close();
    },
  };
}
