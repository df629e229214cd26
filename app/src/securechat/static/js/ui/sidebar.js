// The sidebar: who I am, connection state, actions, and the conversation list.
import { avatar, h, reconcile, replace } from "./dom.js";
import { errorMessage } from "./errors.js";
import * as model from "./model.js";
import { notificationButton } from "./notify.js";

const CONNECTION_TEXT = {
  connected: "Online",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  disconnected: "Offline: reconnecting…",
  revoked: "Session ended",
  offline: "Offline",
};

export function createSidebar({ onOpen, onNewDirect, onNewGroup, onAdmin, onLogout }) {
  const who = h("span", { class: "sidebar-user" });
  const conn = h("span", { class: "connection", role: "status", "aria-live": "polite" });
  const adminButton = h("button", { type: "button", class: "button ghost", hidden: true, onClick: onAdmin }, "Admin");
  const list = h("ul", { class: "conversation-list", "aria-label": "Conversations" });
  const problemText = h("span", {});
  const dismiss = h("button", { type: "button", class: "link-button", "aria-label": "Dismiss this error" }, "Dismiss");
  const problem = h("p", { class: "background-error", role: "alert", hidden: true }, problemText, dismiss);
  let dismissedAt = 0;
  let latestAt = 0;
  dismiss.addEventListener("click", () => {
    dismissedAt = latestAt;
    problem.hidden = true;
  });
  const empty = h("p", { class: "muted empty-list", hidden: true }, "No conversations yet. Start one with “New chat”.");
  const el = h(
    "nav",
    { class: "sidebar", "aria-label": "Conversations and account" },
    h(
      "header",
      { class: "sidebar-header" },
      h("div", { class: "sidebar-identity" }, h("span", { class: "brand" }, "Secure Chat"), who, conn),
      h(
        "div",
        { class: "sidebar-tools" },
        notificationButton(),
        adminButton,
        h("button", { type: "button", class: "button ghost", onClick: onLogout }, "Log out"),
      ),
    ),
    h(
      "div",
      { class: "sidebar-actions" },
      h("button", { type: "button", class: "button primary", onClick: onNewDirect }, "New chat"),
      h("button", { type: "button", class: "button", onClick: onNewGroup }, "New group"),
    ),
    problem,
    empty,
    list,
  );

  function item(conv) {
    const link = h("a", { href: `#/c/${conv.id}`, class: "conversation-link" });
    link.addEventListener("click", (event) => {
      event.preventDefault();
      onOpen(conv.id);
    });
    return h("li", { class: "conversation-item" }, link);
  }

  function fill(li, conv, state, activeId) {
    const link = li.firstElementChild;
    const title = model.titleOf(state, conv);
    const contact = model.contactOf(state, conv);
    const unread = model.unreadOf(state, conv.id);
    const typing = model.typingIn(state, conv.id);
    const last = model.lastMessageOf(state, conv.id);
    const preview = typing.length ? `${model.usernameOf(state, typing[0])} is typing…` : previewOf(state, last);
    const signature = JSON.stringify([title, contact && model.isOnline(state, contact.user_id), unread, preview, activeId === conv.id, conv.kind]);
    if (link.dataset.signature === signature) return;
    link.dataset.signature = signature;
    link.classList.toggle("is-active", activeId === conv.id);
    if (activeId === conv.id) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
    const online = contact ? model.isOnline(state, contact.user_id) : null;
    const label = [title, conv.kind === "group" ? "group" : online ? "online" : "offline", unread ? `${unread} unread` : ""].filter(Boolean).join(", ");
    link.setAttribute("aria-label", label);
    replace(
      link,
      avatar(title, { online }),
      h("span", { class: "conversation-text" }, h("span", { class: "conversation-name" }, title), h("span", { class: ["conversation-preview", typing.length ? "is-typing" : ""] }, preview)),
      h("span", { class: ["unread-badge", unread ? "" : "is-empty"], "aria-hidden": "true" }, unread ? String(unread > 99 ? "99+" : unread) : ""),
    );
  }

  return {
    el,
    update(state, activeId) {
      const user = model.me(state);
      who.textContent = user ? user.username : "";
      const status = model.connection(state);
      conn.textContent = CONNECTION_TEXT[status] || status;
      conn.className = `connection is-${status}`;
      adminButton.hidden = !(user && user.is_admin);
      const errors = state.errors || [];
      const latest = errors[errors.length - 1];
      latestAt = latest ? latest.at : 0;
      problem.hidden = !latest || latest.at <= dismissedAt;
      if (latest) problemText.textContent = `${latest.context ? `${latest.context}: ` : ""}${errorMessage(latest.error)} `;
      const conversations = model.sortedConversations(state);
      empty.hidden = conversations.length > 0;
      reconcile(list, conversations, (conv) => conv.id, item, () => {});
      for (const li of list.children) {
        const conv = model.conversation(state, li.dataset.key);
        if (conv) fill(li, conv, state, activeId);
      }
    },
  };
}

function previewOf(state, message) {
  if (!message) return "";
  const who = message.sender_id === model.myId(state) ? "You: " : "";
  const content = message.content;
  if (!content) return message.error ? `${who}(could not be decrypted)` : "";
  if (content.type === "text") return who + String(content.text || "").slice(0, 80);
  if (content.type === "file") return `${who}File: ${content.name || "file"}`;
  return `${who}(unsupported message)`;
}
