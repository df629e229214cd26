// The application shell: login screen or sidebar + main pane, a hash router
// (#/c/<conversation id>, #/admin), store subscription; open dialogs are refreshed on every change.
import { createChat } from "./client.js";
import { createAdminView } from "./admin.js";
import { createAuthView } from "./auth.js";
import { loadBlocks, onBlocksChanged, resetBlocks } from "./blocks.js";
import { createConversationView } from "./conversation.js";
import { closeDialogs, updateDialogs } from "./dialog.js";
import { h, replace } from "./dom.js";
import { openContactInfo, openGroupSettings, openNewDirectDialog, openNewGroupDialog } from "./groups.js";
import * as model from "./model.js";
import { createNotifier } from "./notify.js";
import { openSafetyDialog } from "./safety.js";
import { createSidebar } from "./sidebar.js";

const REVOKED_TEXT = {
  logout: "You logged out.",
  password_changed: "Your password was changed on another device. Log in again.",
  disabled: "Your account was disabled by an administrator.",
  reset: "An administrator ended your sessions. Log in again.",
  deleted: "This account was deleted.",
  expired: "Your session expired. Log in again.",
  unauthorized: "Your session is no longer valid. Log in again.",
  keys_changed: "Your keys were changed in another session. Log in again.",
};

function parseRoute() {
  const hash = window.location.hash.replace(/^#\/?/, "");
  const [kind, id] = hash.split("/");
  if (kind === "c" && id) return { name: "conversation", id };
  if (kind === "admin") return { name: "admin" };
  return { name: "home" };
}

export async function mountApp(root) {
  root.removeAttribute("aria-live"); // live regions are set where text changes, not on the app
  const { chat, store, getState } = await createChat();
  let shell = null;
  let scheduled = false;
  let lastUserId = null;

  function showAuth(notice = "") {
    if (shell) shell.destroy();
    shell = null;
    closeDialogs();
    resetBlocks();
    notifier.reset();
    const view = createAuthView(chat, { onLoggedIn: schedule, notice });
    replace(root, view.el);
    view.focus();
  }

  function showShell() {
    lastUserId = model.myId(getState());
    shell = createShell();
    replace(root, shell.el);
    shell.route(parseRoute());
    loadBlocks(chat).catch((error) => console.warn("could not load blocks", error));
    render();
  }

  const notifier = createNotifier({ onOpen: (id) => navigate(`#/c/${id}`) });

  function navigate(hash) {
    if (window.location.hash !== hash) window.location.hash = hash;
    else if (shell) shell.route(parseRoute());
  }

  function createShell() {
    const main = h("main", { class: "main-pane", id: "main", tabIndex: -1 });
    const placeholder = () => h("div", { class: "placeholder" }, h("p", {}, "Choose a conversation, or start one with “New chat”."));
    let view = null;
    let current = { name: "home" };
    const sidebar = createSidebar({
      onOpen: (id) => navigate(`#/c/${id}`),
      onNewDirect: () => openNewDirectDialog({ chat, getState, onOpen: (id) => navigate(`#/c/${id}`) }),
      onNewGroup: () => openNewGroupDialog({ chat, getState, onOpen: (id) => navigate(`#/c/${id}`) }),
      onAdmin: () => navigate("#/admin"),
      onLogout: async () => {
        try {
          await chat.logout();
        } catch (error) {
          console.warn("logout failed", error);
        }
        window.location.hash = "";
        showAuth("You logged out. Your keys were removed from this page.");
      },
    });
    const el = h("div", { class: "shell" }, h("a", { href: "#main", class: "skip-link" }, "Skip to conversation"), sidebar.el, main);
    const back = () => navigate("#/");

    function route(next) {
      const state = getState();
      if (view && next.name === current.name && next.id === current.id) {
        view.focus();
        return;
      }
      if (view) view.destroy();
      view = null;
      current = next;
      if (next.name === "conversation" && model.conversation(state, next.id)) {
        view = createConversationView({
          chat,
          getState,
          conversationId: next.id,
          onBack: back,
          onInfo: (id) => {
            const conv = model.conversation(getState(), id);
            conv && conv.kind === "group" ? openGroupSettings({ chat, getState, conversationId: id, onLeft: back }) : openContactInfo({ chat, getState, conversationId: id });
          },
          onSafety: (userId) => openSafetyDialog({ chat, getState, userId }),
        });
      } else if (next.name === "admin" && model.me(state) && model.me(state).is_admin) {
        view = createAdminView({ chat, onBack: back });
      } else {
        current = { name: "home" };
      }
      el.classList.toggle("is-main-open", current.name !== "home");
      replace(main, view ? view.el : placeholder());
      if (view) view.focus();
      sidebar.update(state, current.id);
    }

    return {
      el,
      route,
      update(state) {
        if (current.name === "conversation" && !model.conversation(state, current.id)) {
          navigate("#/"); // removed from the group, or it was deleted
          return;
        }
        if (current.name === "home" && parseRoute().name === "conversation" && model.conversation(state, parseRoute().id)) {
          route(parseRoute()); // the conversation arrived after the page was opened
          return;
        }
        sidebar.update(state, current.id);
        if (view) view.update(state);
      },
      destroy() {
        if (view) view.destroy();
      },
    };
  }

  function render() {
    scheduled = false;
    const state = getState();
    const user = model.me(state);
    if (!user) {
      if (shell) {
        const reason = state.revokedReason || "";
        showAuth(REVOKED_TEXT[reason] || (reason ? "Your session ended. Log in again." : "Your session ended. Log in again."));
      }
      return;
    }
    if (!shell || user.id !== lastUserId) {
      showShell();
      return;
    }
    shell.update(state);
    updateDialogs(state);
    notifier.update(state);
  }

  function schedule() {
    if (scheduled) return;
    scheduled = true;
    // Animation frames stop while the tab is hidden; the title and notifications must not.
    if (document.hidden) setTimeout(render, 100);
    else requestAnimationFrame(render);
  }

  store.subscribe(schedule);
  onBlocksChanged(schedule);
  window.addEventListener("hashchange", () => {
    if (shell) shell.route(parseRoute());
  });
  document.addEventListener("visibilitychange", schedule);
  showAuth();
}
