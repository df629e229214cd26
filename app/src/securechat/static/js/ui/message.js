// One message: sender, content (text, file, or "could not be decrypted"), time, delivery
// state, reactions. The body is built once; footer and reactions are refreshed in place.
import { h, replace } from "./dom.js";
import { errorMessage } from "./errors.js";
import { fileCard } from "./files.js";
import { icon } from "./icons.js";
import * as model from "./model.js";

export const QUICK_EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🎉"];

export function contentOf(message) {
  if (message.content) return message.content;
  if (typeof message.text === "string") return { type: "text", text: message.text };
  return null;
}

export function timeOf(message) {
  const when = message.server_time || message.local_time || message.created_at;
  const date = when ? new Date(when) : new Date();
  return Number.isNaN(date.getTime()) ? new Date() : date;
}

function body(ctx, message) {
  const content = contentOf(message);
  if (!content) {
    return h("p", { class: "message-text is-undecryptable" }, message.error ? "🔒 This message could not be decrypted or verified." : "…");
  }
  if (content.type === "text") return h("p", { class: "message-text" }, String(content.text ?? ""));
  if (content.type === "file") return fileCard(ctx, message, content);
  return h("p", { class: "message-text is-unsupported" }, "Unsupported message (sent by a newer client).");
}

function delivery(ctx, state, message) {
  const status = message.status || model.pendingStatus(state, ctx.conversationId, message.message_id);
  if (message.seq === undefined || message.seq === null) {
    if (status === "failed") {
      const retry = h("button", { type: "button", class: "link-button", "aria-label": "Retry sending this message" }, "Retry");
      retry.addEventListener("click", () => ctx.retry(message));
      const why = message.error ? errorMessage(message.error) : "Not sent.";
      return [h("span", { class: "delivery is-failed", title: why }, "Not sent"), retry];
    }
    return [h("span", { class: "delivery is-sending" }, "Sending…")];
  }
  const conv = model.conversation(state, ctx.conversationId);
  const readers = model.readersOf(state, ctx.conversationId, message.seq);
  if (!readers.length) return [h("span", { class: "delivery is-sent" }, "Sent")];
  if (conv && conv.kind === "direct") return [h("span", { class: "delivery is-read" }, "Read")];
  const names = readers.map((id) => model.usernameOf(state, id)).join(", ");
  return [h("span", { class: "delivery is-read", title: `Read by ${names}` }, `Read by ${readers.length}`)];
}

function reactionRow(ctx, state, message) {
  const mine = model.myId(state);
  const chips = model.reactionsOf(state, ctx.conversationId, message.message_id).map(({ emoji, users }) => {
    const pressed = users.includes(mine);
    const names = users.map((id) => model.usernameOf(state, id)).join(", ");
    const chip = h(
      "button",
      { type: "button", class: ["reaction-chip", pressed ? "is-mine" : ""], "aria-pressed": String(pressed), "aria-label": `${emoji} ${users.length}: ${names}${pressed ? " (remove yours)" : ""}`, title: names },
      h("span", { "aria-hidden": "true" }, emoji),
      h("span", { class: "reaction-count" }, String(users.length)),
    );
    chip.addEventListener("click", () => ctx.react(message, emoji, pressed ? "remove" : "add"));
    return chip;
  });
  return chips;
}

function picker(ctx, message, mineSet) {
  const menu = h("div", { class: "reaction-picker", role: "group", "aria-label": "Pick a reaction", hidden: true });
  for (const emoji of QUICK_EMOJI) {
    const button = h("button", { type: "button", class: "reaction-option", "aria-label": `React with ${emoji}` }, emoji);
    button.addEventListener("click", () => {
      menu.hidden = true;
      ctx.react(message, emoji, mineSet().has(emoji) ? "remove" : "add");
    });
    menu.append(button);
  }
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      menu.hidden = true;
      menu.previousElementSibling.focus();
    }
  });
  menu.addEventListener("focusout", (event) => {
    if (!menu.contains(event.relatedTarget) && event.relatedTarget !== menu.previousElementSibling) menu.hidden = true;
  });
  return menu;
}

export function createMessage(ctx, state, message) {
  const mine = message.sender_id === model.myId(state) || (!message.sender_id && message.seq == null);
  const conv = model.conversation(state, ctx.conversationId);
  const time = timeOf(message);
  const footer = h("div", { class: "message-footer" });
  const reactions = h("div", { class: "reactions" });
  const el = h("li", { class: ["message", mine ? "is-mine" : "is-theirs"] });
  const mineSet = () => new Set(model.reactionsOf(ctx.state(), ctx.conversationId, message.message_id).filter((r) => r.users.includes(model.myId(ctx.state()))).map((r) => r.emoji));
  const reactButton = h("button", { type: "button", class: "react-button", "aria-label": "Add a reaction", "aria-haspopup": "true", title: "React" }, icon("smile"));
  const menu = picker(ctx, message, mineSet);
  reactButton.setAttribute("aria-expanded", "false");
  new MutationObserver(() => reactButton.setAttribute("aria-expanded", String(!menu.hidden))).observe(menu, { attributes: true, attributeFilter: ["hidden"] });
  reactButton.addEventListener("click", () => {
    menu.hidden = !menu.hidden;
    if (!menu.hidden) menu.querySelector("button").focus();
  });
  el.append(
    h(
      "div",
      { class: "bubble" },
      !mine && conv && conv.kind === "group" ? h("p", { class: "message-sender" }, model.usernameOf(state, message.sender_id)) : null,
      h("div", { class: "message-body" }, body(ctx, message)),
      footer,
    ),
    h("div", { class: "message-actions" }, reactButton, menu),
    reactions,
  );
  const timeEl = () => h("time", { dateTime: time.toISOString(), title: time.toLocaleString() }, time.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  el.dataset.contentState = contentOf(message) ? "content" : "empty";
  updateMessage(ctx, state, el, message, { footer, reactions, timeEl, mine });
  el.refresh = (nextState, next) => updateMessage(ctx, nextState, el, next, { footer, reactions, timeEl, mine });
  return el;
}

function updateMessage(ctx, state, el, message, parts) {
  if (message.seq !== undefined && message.seq !== null) el.dataset.seq = String(message.seq);
  const reactionList = model.reactionsOf(state, ctx.conversationId, message.message_id);
  const status = message.seq == null ? message.status || model.pendingStatus(state, ctx.conversationId, message.message_id) : "stored";
  const readers = message.seq == null ? 0 : model.readersOf(state, ctx.conversationId, message.seq).length;
  const signature = JSON.stringify([status, readers, reactionList, message.seq ?? null, model.myId(state)]);
  if (el.dataset.signature === signature) return;
  el.dataset.signature = signature;
  replace(parts.footer, parts.timeEl(), parts.mine ? delivery(ctx, state, message) : null);
  replace(parts.reactions, reactionRow(ctx, state, message));
  parts.reactions.classList.toggle("is-empty", reactionList.length === 0);
}
