// Admin dashboard: users (search, disable/enable, reset sessions, promote/demote), server
// statistics and the audit trail (filters and paging). Shows accounts, never content.
import { formatBytes, h, replace, uid } from "./dom.js";
import { errorSlot } from "./errors.js";
import { icon } from "./icons.js";

const PAGE = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const EVENTS = ["account.registered", "account.deleted", "login.succeeded", "login.failed", "logout", "keys.changed", "password.changed", "conversation.created", "conversation.epoch", "conversation.members_changed", "conversation.left", "conversation.renamed", "conversation.role_changed", "block.added", "block.removed", "file.uploaded", "file.collected", "admin.user_disabled", "admin.user_enabled", "admin.sessions_reset", "admin.granted", "admin.revoked", "server.started", "settings.changed", "schema.upgraded"];

function field(label, input) {
  input.id = input.id || uid("admin");
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}

function dateText(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso || "") : date.toLocaleString();
}

function usersPanel(chat, names) {
  const search = h("input", { type: "search", autocomplete: "off", placeholder: "Part of a username" });
  const body = h("tbody");
  const summary = h("p", { class: "status-line", role: "status", "aria-live": "polite" });
  const error = errorSlot();
  const prev = h("button", { type: "button", class: "button small" }, "Previous");
  const next = h("button", { type: "button", class: "button small" }, "Next");
  let offset = 0;
  let timer = null;

  function action(label, aria, run) {
    const button = h("button", { type: "button", class: "button small", "aria-label": aria }, label);
    button.addEventListener("click", async () => {
      button.disabled = true;
      error.clear();
      try {
        await run();
        await load();
      } catch (failure) {
        error.show(failure);
        button.disabled = false;
      }
    });
    return button;
  }

  function row(user) {
    names.set(user.id, user.username);
    return h(
      "tr",
      { class: user.disabled ? "is-disabled" : "" },
      h("th", { scope: "row" }, user.username),
      h("td", {}, user.is_admin ? "Admin" : "User"),
      h("td", {}, user.disabled ? "Disabled" : "Active"),
      h("td", { class: "num" }, String(user.sessions ?? 0)),
      h("td", { class: "num" }, String(user.key_version ?? "")),
      h("td", {}, dateText(user.created_at)),
      h(
        "td",
        { class: "actions" },
        user.disabled
          ? action("Enable", `Enable ${user.username}`, () => chat.admin.enable(user.id))
          : action("Disable", `Disable ${user.username}`, () => chat.admin.disable(user.id)),
        action("Reset sessions", `Reset the sessions of ${user.username}`, () => chat.admin.resetSessions(user.id)),
        user.is_admin
          ? action("Remove admin", `Remove admin rights of ${user.username}`, () => chat.admin.setAdmin(user.id, false))
          : action("Make admin", `Make ${user.username} an admin`, () => chat.admin.setAdmin(user.id, true)),
      ),
    );
  }

  async function load() {
    error.clear();
    try {
      const answer = await chat.admin.users(search.value.trim().toLowerCase(), { offset, limit: PAGE });
      const users = (answer && answer.users) || (Array.isArray(answer) ? answer : []);
      const total = answer && typeof answer.total === "number" ? answer.total : users.length;
      replace(body, users.length ? users.map(row) : h("tr", {}, h("td", { colSpan: 7, class: "muted" }, "No matching account.")));
      summary.textContent = total ? `${offset + 1}–${offset + users.length} of ${total} accounts` : "No accounts";
      prev.disabled = offset === 0;
      next.disabled = offset + users.length >= total;
    } catch (failure) {
      error.show(failure);
    }
  }
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      offset = 0;
      load();
    }, 250);
  });
  prev.addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    load();
  });
  next.addEventListener("click", () => {
    offset += PAGE;
    load();
  });
  const table = h(
    "table",
    { class: "admin-table" },
    h("caption", { class: "visually-hidden" }, "Accounts"),
    h("thead", {}, h("tr", {}, ["Username", "Role", "Status", "Sessions", "Key", "Created", "Actions"].map((name) => h("th", { scope: "col" }, name)))),
    body,
  );
  return { el: h("section", { class: "admin-panel", "aria-label": "Users" }, field("Search users", search), error.el, h("div", { class: "table-wrap" }, table), h("div", { class: "pager" }, prev, summary, next)), load };
}

function statsPanel(chat) {
  const grid = h("dl", { class: "stats-grid" });
  const chart = h("div", { class: "bar-chart", role: "img", "aria-label": "Messages per day" });
  const error = errorSlot();
  function stat(label, value) {
    return h("div", { class: "stat" }, h("dt", {}, label), h("dd", {}, String(value)));
  }
  async function load() {
    error.clear();
    try {
      const s = await chat.admin.stats();
      const uptime = Number(s.uptime_seconds) || 0;
      replace(
        grid,
        stat("Users", s.users),
        stat("Disabled", s.disabled_users),
        stat("Online now", s.online_now),
        stat("Messages", s.messages_total),
        stat("Stored files", s.files),
        stat("Storage", formatBytes(s.storage_bytes)),
        stat("Version", s.version),
        stat("Schema", s.schema),
        stat("Uptime", uptime >= 3600 ? `${Math.floor(uptime / 3600)} h ${Math.floor((uptime % 3600) / 60)} min` : `${Math.floor(uptime / 60)} min`),
      );
      const days = s.messages_per_day || [];
      const max = Math.max(1, ...days.map((d) => d.messages));
      chart.setAttribute("aria-label", `Messages per day: ${days.map((d) => `${d.day}: ${d.messages}`).join(", ") || "none in the last 14 days"}`);
      replace(
        chart,
        days.length
          ? days.map((d) => {
              const bar = h("span", { class: "bar-fill" });
              bar.style.height = `${Math.round((d.messages / max) * 100)}%`;
              return h("div", { class: "bar", title: `${d.day}: ${d.messages}` }, h("span", { class: "bar-value" }, String(d.messages)), h("span", { class: "bar-track" }, bar), h("span", { class: "bar-label" }, d.day.slice(5)));
            })
          : h("p", { class: "muted" }, "No messages in the last 14 days."),
      );
    } catch (failure) {
      error.show(failure);
    }
  }
  return { el: h("section", { class: "admin-panel", "aria-label": "Statistics" }, error.el, grid, h("h3", {}, "Messages per day (UTC, last 14 days)"), chart), load };
}

function toIso(localValue) {
  if (!localValue) return "";
  const date = new Date(localValue);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

function auditPanel(chat, names) {
  const eventInput = h("select", {}, h("option", { value: "" }, "Any event"), EVENTS.map((name) => h("option", { value: name }, name)));
  const actor = h("input", { type: "text", autocomplete: "off", placeholder: "username or user id" });
  const since = h("input", { type: "datetime-local" });
  const until = h("input", { type: "datetime-local" });
  const apply = h("button", { type: "submit", class: "button primary" }, "Apply filters");
  const body = h("tbody");
  const more = h("button", { type: "button", class: "button", hidden: true }, "Load older entries");
  const error = errorSlot();
  let filters = {};
  let smallest = null;

  async function actorId() {
    const value = actor.value.trim().toLowerCase();
    if (!value || UUID.test(value)) return value;
    const answer = await chat.admin.users(value, { offset: 0, limit: 200 });
    const match = ((answer && answer.users) || []).find((user) => user.username === value);
    if (!match) throw Object.assign(new Error(`no account named “${value}”`), { code: "", name: "Error" });
    return match.id;
  }

  function row(entry) {
    const who = (id) => (id ? names.get(id) || id : "—");
    const details = entry.details && Object.keys(entry.details).length ? JSON.stringify(entry.details) : "";
    return h(
      "tr",
      {},
      h("td", { class: "num" }, String(entry.id)),
      h("td", {}, dateText(entry.created_at)),
      h("th", { scope: "row" }, entry.event),
      h("td", {}, who(entry.actor_id)),
      h("td", {}, who(entry.target_id)),
      h("td", {}, entry.ip || ""),
      h("td", { class: "details" }, details),
    );
  }

  async function load(append) {
    error.clear();
    try {
      const query = { ...filters, limit: PAGE };
      if (append && smallest !== null) query.before = smallest;
      const answer = await chat.admin.audit(query);
      const entries = (answer && answer.entries) || [];
      if (!append) replace(body);
      body.append(...entries.map(row));
      if (!append && !entries.length) body.append(h("tr", {}, h("td", { colSpan: 7, class: "muted" }, "No entries match.")));
      if (entries.length) smallest = Math.min(...entries.map((e) => e.id));
      more.hidden = !(answer && answer.has_more);
    } catch (failure) {
      error.show(failure);
    }
  }

  const form = h("form", { class: "audit-filters" }, field("Event", eventInput), field("Actor", actor), field("Since", since), field("Until", until), apply);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    try {
      filters = {};
      if (eventInput.value) filters.event = eventInput.value;
      const id = await actorId();
      if (id) filters.actor_id = id;
      if (toIso(since.value)) filters.since = toIso(since.value);
      if (toIso(until.value)) filters.until = toIso(until.value);
      smallest = null;
      await load(false);
    } catch (failure) {
      error.show(failure);
    }
  });
  more.addEventListener("click", () => load(true));
  const table = h(
    "table",
    { class: "admin-table audit-table" },
    h("caption", { class: "visually-hidden" }, "Audit trail, newest first"),
    h("thead", {}, h("tr", {}, ["#", "Time", "Event", "Actor", "Target", "IP", "Details"].map((name) => h("th", { scope: "col" }, name)))),
    body,
  );
  return { el: h("section", { class: "admin-panel", "aria-label": "Audit trail" }, form, error.el, h("div", { class: "table-wrap" }, table), more), load: () => load(false) };
}

export function createAdminView({ chat, onBack }) {
  const names = new Map();
  const panels = { users: usersPanel(chat, names), stats: statsPanel(chat), audit: auditPanel(chat, names) };
  const labels = { users: "Users", stats: "Statistics", audit: "Audit trail" };
  const tabs = {};
  const holder = h("div", { class: "admin-body", role: "tabpanel" });
  function select(name) {
    for (const [key, tab] of Object.entries(tabs)) {
      tab.setAttribute("aria-selected", String(key === name));
      tab.tabIndex = key === name ? 0 : -1;
    }
    replace(holder, panels[name].el);
    panels[name].load();
  }
  for (const name of Object.keys(panels)) {
    tabs[name] = h("button", { type: "button", role: "tab", class: "tab" }, labels[name]);
    tabs[name].addEventListener("click", () => select(name));
    tabs[name].addEventListener("keydown", (event) => {
      const names = Object.keys(panels);
      const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = names[(names.indexOf(name) + step + names.length) % names.length];
      select(next);
      tabs[next].focus();
    });
  }
  const back = h("button", { type: "button", class: "button ghost back-button", "aria-label": "Back to conversations" }, icon("back"));
  back.addEventListener("click", onBack);
  const el = h(
    "section",
    { class: "admin", "aria-labelledby": "admin-title" },
    h("header", { class: "conversation-header" }, back, h("h2", { id: "admin-title", class: "conversation-title" }, "Administration")),
    h("div", { role: "tablist", class: "tabs", "aria-label": "Administration sections" }, Object.values(tabs)),
    holder,
  );
  select("users");
  return { el, update() {}, focus: () => tabs.users.focus(), destroy() {} };
}
