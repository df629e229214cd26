// Search users by username prefix and pick one (for new chats, groups and adding members).
import { avatar, h, replace, uid } from "./dom.js";
import { errorSlot } from "./errors.js";

export function createUserPicker({ chat, exclude = () => new Set(), actionLabel, onPick, label = "Search users" }) {
  const id = uid("user-search");
  const input = h("input", { id, type: "search", autocomplete: "off", autocapitalize: "none", spellcheck: false, placeholder: "Start typing a username" });
  const results = h("ul", { class: "user-results", "aria-label": "Matching users" });
  const status = h("p", { class: "status-line", role: "status", "aria-live": "polite" });
  const error = errorSlot();
  let timer = null;
  let generation = 0;

  async function search() {
    const prefix = input.value.trim().toLowerCase();
    const mine = ++generation;
    error.clear();
    if (!prefix) {
      replace(results);
      status.textContent = "";
      return;
    }
    try {
      const found = await chat.searchUsers(prefix);
      if (mine !== generation) return;
      const list = (Array.isArray(found) ? found : (found && found.users) || []).filter((user) => !exclude().has(user.id));
      status.textContent = list.length ? `${list.length} found` : "No matching user.";
      replace(
        results,
        list.map((user) => {
          const button = h("button", { type: "button", class: "button small", "aria-label": `${actionLabel} ${user.username}` }, actionLabel);
          button.addEventListener("click", async () => {
            button.disabled = true;
            try {
              await onPick(user, error);
            } finally {
              button.disabled = false;
            }
          });
          return h("li", { class: "user-result" }, avatar(user.username, { size: "sm" }), h("span", { class: "user-name" }, user.username), button);
        }),
      );
    } catch (failure) {
      if (mine === generation) error.show(failure);
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(timer);
      search();
    }
  });

  return {
    el: h("div", { class: "user-picker" }, h("label", { for: id }, label), input, status, error.el, results),
    refresh: search,
    focus: () => input.focus(),
  };
}
