// Progress reporting shared by key generation, uploads and downloads. Callers may report
// (loaded, total), a fraction, a percentage, a step name, or an object with those.
import { h } from "./dom.js";

const STEPS = {
  prelogin: "Asking the server for your key parameters…",
  derive: "Deriving keys from your password…",
  deriving: "Deriving keys from your password…",
  generate: "Generating your encryption and signing keys…",
  keys: "Generating your encryption and signing keys…",
  generating: "Generating your encryption and signing keys…",
  seal: "Encrypting your private keys with your password…",
  sealing: "Encrypting your private keys with your password…",
  register: "Creating the account…",
  registering: "Creating the account…",
  login: "Logging in…",
  unlock: "Unlocking your keys…",
  unlocking: "Unlocking your keys…",
  "generating keys": "Generating your encryption and signing keys…",
  encrypting: "Encrypting…",
  uploading: "Uploading…",
  sending: "Sharing…",
  downloading: "Downloading and decrypting…",
  done: "Done.",
};

// Where registration's named steps are on the bar (the rest is logging in).
const STEP_FRACTIONS = { deriving: 0.15, "generating keys": 0.45, registering: 0.65 };

export function createProgress(labelText) {
  const bar = h("progress", { class: "progress", max: 1, "aria-label": labelText });
  const text = h("span", { class: "progress-text" });
  const el = h("div", { class: "progress-row" }, bar, text);
  function set(fraction) {
    bar.value = Math.max(0, Math.min(1, fraction));
  }
  return {
    el,
    bar,
    text,
    indeterminate() {
      bar.removeAttribute("value");
    },
    step(message) {
      text.textContent = STEPS[message] || message;
    },
    set,
    /** A callback accepting every shape of progress report. */
    handler() {
      return (a, b) => {
        if (typeof a === "number" && typeof b === "number" && b > 0) set(a / b);
        else if (typeof a === "number") set(a > 1 ? a / 100 : a);
        else if (typeof a === "string") {
          this.step(a);
          if (STEP_FRACTIONS[a] !== undefined) set(STEP_FRACTIONS[a]);
        }
        else if (a && typeof a === "object") {
          if (typeof a.loaded === "number" && a.total) set(a.loaded / a.total);
          else if (typeof a.fraction === "number") set(a.fraction);
          else if (typeof a.progress === "number") set(a.progress > 1 ? a.progress / 100 : a.progress);
          else if (typeof a.done === "number" && a.total) set(a.done / a.total);
          const step = a.step || a.stage || a.label || a.phase;
          if (typeof step === "string") this.step(step);
          if (typeof a.index === "number" && a.count) set((a.index + 1) / a.count);
        }
      };
    },
  };
}
