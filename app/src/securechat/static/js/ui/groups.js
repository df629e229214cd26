// Dialogs about conversations: new direct chat, new group, group settings (rename, add and
// remove members, leave) and a contact's info (presence, safety number, block / unblock).
import { isBlocked, setBlocked } from "./blocks.js";
import { avatar, h, replace, uid } from "./dom.js";
import { errorCode, errorSlot } from "./errors.js";
import { openDialog } from "./dialog.js";
import * as model from "./model.js";
import { openSafetyDialog } from "./safety.js";
import { createUserPicker } from "./userpicker.js";

const idOf = (result) => (result && (result.id || (result.conversation && result.conversation.id))) || result;

export function openNewDirectDialog({ chat, getState, onOpen }) {
  let dialog;
  const picker = createUserPicker({
    chat,
    actionLabel: "Chat with",
    exclude: () => new Set([model.myId(getState())]),
    onPick: async (user, error) => {
      try {
        const conv = await chat.createDirect(user.id);
        dialog.close();
        onOpen(idOf(conv));
      } catch (failure) {
        const existing = failure && (failure.existingId || (failure.body && failure.body.error && failure.body.error.existing_id));
        if (errorCode(failure) === "conversation_exists" && existing) {
          dialog.close();
          onOpen(existing);
        } else error.show(failure);
      }
    },
  });
  dialog = openDialog({ title: "New chat", body: h("div", {}, h("p", { class: "muted" }, "Find someone by username."), picker.el) });
  return dialog;
}

export function openNewGroupDialog({ chat, getState, onOpen }) {
  const titleId = uid("group-title");
  const title = h("input", { id: titleId, type: "text", maxLength: 100, required: true, autocomplete: "off" });
  const chosen = new Map();
  const chips = h("ul", { class: "chips", "aria-label": "Members to add" });
  const error = errorSlot();
  const create = h("button", { type: "submit", class: "button primary" }, "Create group");
  function drawChips() {
    replace(
      chips,
      [...chosen.values()].map((user) => {
        const remove = h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${user.username}` }, "✕");
        remove.addEventListener("click", () => {
          chosen.delete(user.id);
          drawChips();
          picker.refresh();
        });
        return h("li", { class: "chip" }, user.username, remove);
      }),
    );
  }
  const picker = createUserPicker({
    chat,
    label: "Add members",
    actionLabel: "Add",
    exclude: () => new Set([model.myId(getState()), ...chosen.keys()]),
    onPick: async (user) => {
      chosen.set(user.id, user);
      drawChips();
      picker.refresh();
    },
  });
  const form = h("form", { class: "stack" }, h("div", { class: "field" }, h("label", { for: titleId }, "Group name"), title), h("p", { class: "muted" }, "Members:"), chips, picker.el, create, error.el);
  const dialog = openDialog({ title: "New group", body: form });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    if (!title.value.trim()) return error.text("Give the group a name.");
    create.disabled = true;
    try {
      const conv = await chat.createGroup(title.value.trim(), [...chosen.keys()]);
      dialog.close();
      onOpen(idOf(conv));
    } catch (failure) {
      error.show(failure);
    } finally {
      create.disabled = false;
    }
  });
  return dialog;
}

function memberRow({ chat, getState, conv, member, amAdmin, onError }) {
  const state = getState();
  const me = model.myId(state);
  const isMe = member.user_id === me;
  const online = isMe ? model.connection(state) === "connected" : model.isOnline(state, member.user_id);
  const actions = [];
  if (!isMe) {
    const safety = h("button", { type: "button", class: "button small ghost", "aria-label": `Safety number with ${member.username}` }, "Safety number");
    safety.addEventListener("click", () => openSafetyDialog({ chat, getState, userId: member.user_id }));
    actions.push(safety);
  }
  if (amAdmin && !isMe) {
    const remove = h("button", { type: "button", class: "button small danger", "aria-label": `Remove ${member.username} from the group` }, "Remove");
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      onError.clear();
      try {
        const ids = conv.members.map((m) => m.user_id).filter((id) => id !== member.user_id);
        await chat.setMembers(conv.id, ids);
      } catch (failure) {
        onError.show(failure);
        remove.disabled = false;
      }
    });
    actions.push(remove);
  }
  return h(
    "li",
    { class: "member-row" },
    avatar(member.username, { online, size: "sm" }),
    h("span", { class: "member-name" }, member.username, isMe ? " (you)" : "", h("span", { class: "muted member-role" }, member.role === "admin" ? " · admin" : ""), h("span", { class: "visually-hidden" }, online ? ", online" : ", offline")),
    h("span", { class: "member-actions" }, actions),
  );
}

export function openGroupSettings({ chat, getState, conversationId, onLeft }) {
  const body = h("div", { class: "stack" });
  const renameError = errorSlot();
  const membersError = errorSlot();
  const leaveError = errorSlot();
  const titleId = uid("rename");
  const titleInput = h("input", { id: titleId, type: "text", maxLength: 100, autocomplete: "off" });
  const renameButton = h("button", { type: "submit", class: "button" }, "Rename");
  const renameForm = h("form", { class: "inline-form" }, h("label", { for: titleId }, "Group name"), h("div", { class: "row" }, titleInput, renameButton), renameError.el);
  const members = h("ul", { class: "member-list", "aria-label": "Members" });
  const adminHint = h("p", { class: "muted", hidden: true }, "Only group admins can rename the group and change its members.");
  const picker = createUserPicker({
    chat,
    label: "Add a member",
    actionLabel: "Add",
    exclude: () => new Set((model.conversation(getState(), conversationId)?.members || []).map((m) => m.user_id)),
    onPick: async (user, error) => {
      const conv = model.conversation(getState(), conversationId);
      try {
        await chat.setMembers(conversationId, [...conv.members.map((m) => m.user_id), user.id]);
        picker.refresh();
      } catch (failure) {
        error.show(failure);
      }
    },
  });
  const leave = h("button", { type: "button", class: "button danger" }, "Leave group");
  let confirmLeave = false;
  leave.addEventListener("click", async () => {
    if (!confirmLeave) {
      confirmLeave = true;
      leave.textContent = "Click again to leave the group";
      return;
    }
    leave.disabled = true;
    try {
      await chat.leave(conversationId);
      dialog.close();
      onLeft();
    } catch (failure) {
      leaveError.show(failure);
      leave.disabled = false;
    }
  });
  renameForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    renameError.clear();
    if (!titleInput.value.trim()) return renameError.text("The name cannot be empty.");
    renameButton.disabled = true;
    try {
      await chat.rename(conversationId, titleInput.value.trim());
      renameError.text("");
    } catch (failure) {
      renameError.show(failure);
    } finally {
      renameButton.disabled = false;
    }
  });

  let lastSignature = "";
  function update() {
    const state = getState();
    const conv = model.conversation(state, conversationId);
    if (!conv) return dialog && dialog.close();
    const me = conv.members.find((m) => m.user_id === model.myId(state));
    const amAdmin = Boolean(me && me.role === "admin");
    const signature = JSON.stringify([conv.title, conv.members.map((m) => [m.user_id, m.role, model.isOnline(state, m.user_id)]), amAdmin]);
    if (signature === lastSignature) return;
    lastSignature = signature;
    if (document.activeElement !== titleInput) titleInput.value = conv.title || "";
    titleInput.disabled = !amAdmin;
    renameButton.hidden = !amAdmin;
    picker.el.hidden = !amAdmin;
    replace(members, conv.members.map((member) => memberRow({ chat, getState, conv, member, amAdmin, onError: membersError })));
    adminHint.hidden = amAdmin;
  }

  body.append(
    renameForm,
    h("h3", {}, "Members"),
    adminHint,
    members,
    membersError.el,
    picker.el,
    h("p", { class: "muted" }, "Adding or removing members changes the group's key: removed members cannot read new messages."),
    leave,
    leaveError.el,
  );
  const dialog = openDialog({ title: "Group settings", body, className: "settings-dialog" });
  update();
  dialog.update = update;
  return dialog;
}

export function openContactInfo({ chat, getState, conversationId }) {
  const conv = model.conversation(getState(), conversationId);
  const contact = model.contactOf(getState(), conv);
  if (!contact) return null;
  const status = h("p", { class: "contact-status" });
  const verified = h("p", { class: "contact-verified" });
  const blockText = h("p", { class: "muted" });
  const blockButton = h("button", { type: "button", class: "button" });
  const error = errorSlot();
  const safety = h("button", { type: "button", class: "button" }, "Show safety number");
  safety.addEventListener("click", () => openSafetyDialog({ chat, getState, userId: contact.user_id }));
  blockButton.addEventListener("click", async () => {
    error.clear();
    blockButton.disabled = true;
    try {
      await setBlocked(chat, contact.user_id, !isBlocked(contact.user_id));
    } catch (failure) {
      error.show(failure);
    } finally {
      blockButton.disabled = false;
      update();
    }
  });
  function update() {
    const state = getState();
    const blocked = isBlocked(contact.user_id);
    status.textContent = model.isOnline(state, contact.user_id) ? "● Online" : "○ Offline";
    status.classList.toggle("is-online", model.isOnline(state, contact.user_id));
    verified.textContent = model.has(state.keyWarnings, contact.user_id)
      ? "⚠ Their key changed: verify the safety number again."
      : model.isVerified(state, contact.user_id)
        ? "✔ Safety number verified."
        : "Safety number not verified yet.";
    blockButton.textContent = blocked ? `Unblock ${contact.username}` : `Block ${contact.username}`;
    blockButton.classList.toggle("danger", !blocked);
    blockText.textContent = blocked
      ? "You blocked this user: neither of you can send messages in this conversation, and you do not see their presence, typing or messages in groups."
      : "Blocking stops messages between you in this conversation and hides their presence, typing and group messages from you. They are not told.";
  }
  const body = h(
    "div",
    { class: "stack contact-info" },
    h("div", { class: "contact-head" }, avatar(contact.username, { size: "lg" }), h("div", {}, h("p", { class: "contact-name" }, contact.username), status)),
    verified,
    safety,
    h("h3", {}, "Blocking"),
    blockText,
    blockButton,
    error.el,
  );
  const dialog = openDialog({ title: `About ${contact.username}`, body });
  update();
  dialog.update = update;
  return dialog;
}
