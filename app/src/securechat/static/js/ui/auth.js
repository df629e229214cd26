// Log in and create an account. Keys live in memory only: a reload asks for the password.
import { h, statusLine, uid } from "./dom.js";
import { errorSlot } from "./errors.js";
import { passwordStrength, USERNAME_RULES, usernameProblem } from "./password.js";
import { createProgress } from "./progress.js";

function field(label, input, ...extra) {
  input.id = input.id || uid("field");
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, ...extra);
}

function normaliseUsername(input) {
  const lower = input.value.toLowerCase();
  if (lower !== input.value) {
    const at = input.selectionStart;
    input.value = lower;
    input.setSelectionRange(at, at);
  }
  return lower.trim();
}

function loginForm(chat, onDone, notice) {
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: false });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "button primary" }, "Log in");
  const status = statusLine();
  const error = errorSlot();
  if (notice) error.text(notice);
  username.addEventListener("input", () => normaliseUsername(username));
  const form = h("form", { class: "auth-form", "aria-label": "Log in" }, field("Username", username), field("Password", password), submit, status, error.el);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    submit.disabled = true;
    status.textContent = "Deriving keys from your password and unlocking…";
    try {
      await chat.login(normaliseUsername(username), password.value);
      password.value = "";
      status.textContent = "";
      onDone();
    } catch (problem) {
      status.textContent = "";
      error.show(problem);
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  return { form, focus: () => username.focus() };
}

function registerForm(chat, onDone) {
  const rulesId = uid("rules");
  const strengthId = uid("strength");
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: false, maxLength: 32, "aria-describedby": rulesId });
  const usernameHint = h("p", { class: "hint", id: rulesId }, USERNAME_RULES);
  const usernameError = h("p", { class: "field-error", "aria-live": "polite" });
  const password = h("input", { type: "password", name: "new-password", autocomplete: "new-password", required: true, "aria-describedby": strengthId });
  const confirm = h("input", { type: "password", name: "confirm-password", autocomplete: "new-password", required: true });
  const meter = h("meter", { class: "strength-meter", min: 0, max: 100, low: 45, high: 60, optimum: 90, value: 0, "aria-label": "Password strength" });
  const strengthText = h("p", { class: "hint strength-text", id: strengthId, "aria-live": "polite" }, "At least 12 characters. Several unrelated words make a strong password.");
  const reasons = h("ul", { class: "strength-reasons" });
  const confirmError = h("p", { class: "field-error", "aria-live": "polite" });
  const submit = h("button", { type: "submit", class: "button primary" }, "Create account");
  const progress = createProgress("Key generation progress");
  progress.el.classList.add("is-idle");
  const error = errorSlot();

  username.addEventListener("input", () => {
    usernameError.textContent = usernameProblem(normaliseUsername(username));
  });
  password.addEventListener("input", () => {
    const strength = passwordStrength(password.value);
    meter.value = Math.min(100, strength.bits);
    strengthText.textContent = password.value ? `${strength.label}: about ${strength.bits} bits of entropy.` : "At least 12 characters.";
    reasons.replaceChildren(...strength.reasons.map((reason) => h("li", {}, reason)));
  });
  confirm.addEventListener("input", () => {
    confirmError.textContent = confirm.value && confirm.value !== password.value ? "The passwords do not match." : "";
  });

  const form = h(
    "form",
    { class: "auth-form", "aria-label": "Create an account" },
    field("Username", username, usernameHint, usernameError),
    field("Password", password, meter, strengthText, reasons),
    field("Repeat the password", confirm, confirmError),
    h("p", { class: "hint" }, "Your password encrypts your keys on this device. Nobody, not even the administrator, can recover it."),
    submit,
    progress.el,
    error.el,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    const name = normaliseUsername(username);
    const problem = usernameProblem(name) || (name ? "" : "Choose a username.");
    const strength = passwordStrength(password.value);
    if (problem) return error.text(problem);
    if (!strength.ok) return error.text(strength.reasons[0]);
    if (confirm.value !== password.value) return error.text("The passwords do not match.");
    submit.disabled = true;
    progress.el.classList.remove("is-idle");
    progress.set(0.05);
    progress.step("generate");
    try {
      await chat.register(name, password.value, { onProgress: progress.handler() });
      progress.set(0.8);
      progress.step("Account created. Logging in…");
      await chat.login(name, password.value);
      progress.set(1);
      password.value = "";
      confirm.value = "";
      onDone();
    } catch (failure) {
      progress.el.classList.add("is-idle");
      progress.step("");
      error.show(failure);
    } finally {
      submit.disabled = false;
    }
  });
  return { form, focus: () => username.focus() };
}

/** The login / registration screen. `notice` explains why it is shown (session ended…). */
export function createAuthView(chat, { onLoggedIn, notice = "" }) {
  const login = loginForm(chat, onLoggedIn, notice);
  const register = registerForm(chat, onLoggedIn);
  const loginTab = h("button", { type: "button", role: "tab", class: "tab", id: "tab-login" }, "Log in");
  const registerTab = h("button", { type: "button", role: "tab", class: "tab", id: "tab-register" }, "Create account");
  const loginPanel = h("section", { role: "tabpanel", "aria-labelledby": "tab-login", class: "tab-panel" }, login.form);
  const registerPanel = h("section", { role: "tabpanel", "aria-labelledby": "tab-register", class: "tab-panel" }, register.form);

  function select(which, focus = true) {
    const isLogin = which === "login";
    loginTab.setAttribute("aria-selected", String(isLogin));
    registerTab.setAttribute("aria-selected", String(!isLogin));
    loginTab.tabIndex = isLogin ? 0 : -1;
    registerTab.tabIndex = isLogin ? -1 : 0;
    loginPanel.hidden = !isLogin;
    registerPanel.hidden = isLogin;
    if (focus) (isLogin ? login : register).focus();
  }
  loginTab.addEventListener("click", () => select("login"));
  registerTab.addEventListener("click", () => select("register"));
  for (const tab of [loginTab, registerTab]) {
    tab.addEventListener("keydown", (event) => {
      if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        const next = tab === loginTab ? "register" : "login";
        select(next, false);
        (next === "login" ? loginTab : registerTab).focus();
      }
    });
  }
  select("login", false);

  const el = h(
    "main",
    { class: "auth" },
    h(
      "div",
      { class: "auth-card" },
      h("h1", { class: "auth-title" }, "Secure Chat"),
      h("p", { class: "muted" }, "End-to-end encrypted chat for this network."),
      h("div", { role: "tablist", class: "tabs", "aria-label": "Log in or create an account" }, loginTab, registerTab),
      loginPanel,
      registerPanel,
    ),
  );
  return { el, focus: () => login.focus() };
}
