// The open conversation: header, key-change and block banners, the message list (older
// history loaded on scrolling up, scroll position kept), typing line and composer.
import { isBlocked, onBlocksChanged } from "./blocks.js";
import { avatar, h, reconcile, replace } from "./dom.js";
import { errorSlot } from "./errors.js";
import { contentOf, createMessage, timeOf } from "./message.js";
import { createComposer } from "./composer.js";
import { icon } from "./icons.js";
import * as model from "./model.js";

const LOAD_OLDER_THRESHOLD = 120;

function dayLabel(date) {
  const today = new Date();
  const start = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((start(today) - start(date)) / 86400000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

function dayKey(date) {
  return `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
}

function withDays(messages) {
  const items = [];
  let previous = null;
  for (const message of messages) {
    const date = timeOf(message);
    const key = dayKey(date);
    if (key !== previous) items.push({ day: key, label: dayLabel(date) });
    previous = key;
    items.push(message);
  }
  return items;
}

function typingText(state, ids) {
  const names = ids.map((id) => model.usernameOf(state, id));
  if (!names.length) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names.length} people are typing…`;
}

export function createConversationView({ chat, getState, conversationId, onBack, onInfo, onSafety }) {
  const title = h("h2", { class: "conversation-title" });
  const subtitle = h("p", { class: "conversation-subtitle" });
  const avatarBox = h("span", { class: "avatar-box" });
  const infoButton = h("button", { type: "button", class: "button ghost" }, "Info");
  infoButton.addEventListener("click", () => onInfo(conversationId));
  const back = h("button", { type: "button", class: "button ghost back-button", "aria-label": "Back to conversations" }, icon("back"));
  back.addEventListener("click", onBack);
  const banners = h("div", { class: "banners" });
  const historyStatus = h("p", { class: "history-status", role: "status", "aria-live": "polite" });
  const list = h("ol", { class: "message-list" });
  const scroller = h("div", { class: "message-scroll", tabIndex: 0, role: "log", "aria-label": "Messages", "aria-live": "polite" }, historyStatus, list);
  const typingLine = h("p", { class: "typing-line", "aria-live": "polite" });
  const historyError = errorSlot();
  const el = h(
    "section",
    { class: "conversation", "aria-labelledby": `title-${conversationId}` },
    h("header", { class: "conversation-header" }, back, avatarBox, h("div", { class: "conversation-heading" }, title, subtitle), infoButton),
    banners,
    scroller,
    historyError.el,
    typingLine,
  );
  title.id = `title-${conversationId}`;
  const composer = createComposer({ chat, conversationId, dropTarget: el });
  el.append(composer.el, h("div", { class: "drop-overlay", "aria-hidden": "true" }, "Drop files to send them encrypted"));

  let loadingOlder = false;
  let placed = false;
  let exhausted = false;
  let lastMarked = 0;
  let destroyed = false;

  const ctx = {
    chat,
    conversationId,
    state: getState,
    react: async (message, emoji, op) => {
      historyError.clear();
      try {
        await chat.react(conversationId, message.message_id, emoji, op);
      } catch (failure) {
        historyError.show(failure);
      }
    },
    retry: async (message) => {
      historyError.clear();
      try {
        await retryMessage(chat, conversationId, message);
      } catch (failure) {
        historyError.show(failure);
      }
    },
  };

  function header(state) {
    const conv = model.conversation(state, conversationId);
    if (!conv) return;
    const name = model.titleOf(state, conv);
    const contact = model.contactOf(state, conv);
    title.textContent = name;
    infoButton.textContent = conv.kind === "group" ? "Group settings" : "Contact info";
    infoButton.setAttribute("aria-label", conv.kind === "group" ? `Settings of ${name}` : `About ${name}`);
    const online = contact ? model.isOnline(state, contact.user_id) : null;
    replace(avatarBox, avatar(name, { online }));
    if (conv.kind === "group") {
      const count = conv.members.length;
      const onlineCount = model.otherMembers(state, conv).filter((m) => model.isOnline(state, m.user_id)).length;
      subtitle.textContent = `${count} member${count === 1 ? "" : "s"}${onlineCount ? `, ${onlineCount} online` : ""}`;
    } else {
      subtitle.textContent = online ? "Online" : "Offline";
    }
  }

  function bannerList(state) {
    const conv = model.conversation(state, conversationId);
    const items = [];
    for (const userId of model.keyWarningsIn(state, conv)) {
      const name = model.usernameOf(state, userId);
      const verify = h("button", { type: "button", class: "button small" }, "Verify safety number");
      verify.addEventListener("click", () => onSafety(userId));
      items.push(h("div", { class: "banner warning", role: "alert" }, h("span", {}, `⚠ ${name}'s security key changed. Check the new safety number with ${name} before trusting this conversation.`), verify));
    }
    const contact = model.contactOf(state, conv);
    if (contact && isBlocked(contact.user_id)) {
      items.push(h("div", { class: "banner info" }, `You blocked ${contact.username}. Unblock them in Contact info to send messages again.`));
    }
    return items;
  }

  let bannerSignature = "";
  function updateBanners(state) {
    const conv = model.conversation(state, conversationId);
    const contact = model.contactOf(state, conv);
    const signature = JSON.stringify([model.keyWarningsIn(state, conv), contact && isBlocked(contact.user_id)]);
    if (signature === bannerSignature) return;
    bannerSignature = signature;
    replace(banners, bannerList(state));
  }

  function renderMessages(state) {
    const messages = model.visibleMessages(state, conversationId);
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 48;
    const firstBefore = list.firstElementChild && list.firstElementChild.nextElementSibling;
    const firstKey = firstBefore ? firstBefore.dataset.key : null;
    const oldHeight = scroller.scrollHeight;
    const oldTop = scroller.scrollTop;
    reconcile(
      list,
      withDays(messages),
      (item) => (item.day ? `day:${item.day}` : `m:${item.message_id}:${contentOf(item) || item.error ? "c" : "e"}`),
      (item) => (item.day ? h("li", { class: "day-separator" }, h("span", {}, item.label)) : createMessage(ctx, state, item)),
      (node, item) => {
        if (!item.day && node.refresh) node.refresh(state, item);
      },
    );
    const firstAfter = list.firstElementChild && list.firstElementChild.nextElementSibling;
    const prepended = firstKey && firstAfter && firstAfter.dataset.key !== firstKey;
    if (!placed) {
      // The first render happens before the view is in the page: start at the newest message
      // once it has a size.
      if (scroller.clientHeight > 0) {
        scroller.scrollTop = scroller.scrollHeight;
        placed = true;
      }
    } else if (prepended) scroller.scrollTop = oldTop + (scroller.scrollHeight - oldHeight);
    else if (atBottom) scroller.scrollTop = scroller.scrollHeight;
    if (exhausted && !loadingOlder) historyStatus.textContent = messages.length ? "This is the beginning of the conversation." : "No messages yet. Say hello!";
  }

  async function loadOlder() {
    const conv = model.conversation(getState(), conversationId);
    if (loadingOlder || exhausted || !conv) return;
    const before = model.storedMessages(getState(), conversationId);
    if (!conv.last_seq || (before.length && before[0].seq <= 1)) {
      exhausted = true;
      historyStatus.textContent = before.length ? "This is the beginning of the conversation." : "No messages yet. Say hello!";
      return;
    }
    loadingOlder = true;
    historyStatus.textContent = "Loading older messages…";
    historyError.clear();
    try {
      const result = await chat.loadOlder(conversationId);
      const after = model.storedMessages(getState(), conversationId);
      const more = result && typeof result === "object" && "has_more" in result ? result.has_more : result && typeof result === "object" && "hasMore" in result ? result.hasMore : result;
      const bucket = model.get(getState().messages, conversationId);
      if (bucket && bucket.hasMore === false) exhausted = true;
      if (more === false || after.length === before.length || (after.length && after[0].seq <= 1)) exhausted = true;
      historyStatus.textContent = exhausted ? (after.length ? "This is the beginning of the conversation." : "No messages yet. Say hello!") : "";
    } catch (failure) {
      historyStatus.textContent = "";
      historyError.show(failure);
    } finally {
      loadingOlder = false;
    }
    if (!destroyed && !exhausted && scroller.scrollHeight <= scroller.clientHeight + LOAD_OLDER_THRESHOLD) loadOlder();
  }

  function markRead() {
    if (destroyed || document.visibilityState !== "visible" || !el.isConnected || el.offsetParent === null) return;
    const view = scroller.getBoundingClientRect();
    const nodes = list.querySelectorAll("li.message[data-seq]");
    for (let i = nodes.length - 1; i >= 0; i -= 1) {
      const rect = nodes[i].getBoundingClientRect();
      if (rect.top < view.bottom && rect.bottom > view.top) {
        const seq = Number(nodes[i].dataset.seq);
        const mine = model.readsOf(getState(), conversationId).get(model.myId(getState())) || 0;
        if (seq > lastMarked && (seq > mine || model.unreadOf(getState(), conversationId) > 0)) {
          lastMarked = seq;
          Promise.resolve(chat.markRead(conversationId, seq)).catch(() => {
            lastMarked = 0;
          });
        }
        return;
      }
    }
  }

  let scrollTimer = null;
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < LOAD_OLDER_THRESHOLD) loadOlder();
    clearTimeout(scrollTimer);
    scrollTimer = setTimeout(markRead, 150);
  });
  const onVisible = () => markRead();
  document.addEventListener("visibilitychange", onVisible);
  window.addEventListener("focus", onVisible);
  const stopBlocks = onBlocksChanged(() => {
    bannerSignature = "";
    updateBanners(getState());
  });

  function update(state) {
    if (destroyed) return;
    header(state);
    updateBanners(state);
    renderMessages(state);
    typingLine.textContent = typingText(state, model.typingIn(state, conversationId));
    requestAnimationFrame(markRead);
  }

  update(getState());
  // Once in the page: start at the bottom, and fill the screen with history if it is short.
  requestAnimationFrame(() => {
    if (destroyed) return;
    renderMessages(getState());
    if (!model.storedMessages(getState(), conversationId).length || scroller.scrollHeight <= scroller.clientHeight + LOAD_OLDER_THRESHOLD) loadOlder();
  });

  return {
    el,
    update,
    focus: () => composer.focus(),
    destroy() {
      destroyed = true;
      composer.destroy();
      stopBlocks();
      document.removeEventListener("visibilitychange", onVisible);
      window.removeEventListener("focus", onVisible);
    },
  };
}

/** Send a failed message again: chat.retry when the client has it, else a fresh send. */
export async function retryMessage(chat, conversationId, message) {
  if (typeof chat.retry === "function") return chat.retry(conversationId, message.message_id);
  if (typeof chat.resend === "function") return chat.resend(conversationId, message.message_id);
  const content = contentOf(message);
  if (content && content.type === "text") return chat.sendText(conversationId, content.text);
  throw new Error("this message cannot be sent again");
}
