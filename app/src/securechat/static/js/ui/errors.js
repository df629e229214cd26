// A readable message for every error the server (protocol §7) or the browser can produce.
import { h } from "./dom.js";

const MESSAGES = {
  invalid_credentials: "Wrong username or password.",
  username_taken: "This username is already taken. Choose another one.",
  account_disabled: "This account is disabled. Ask your administrator to enable it.",
  unauthorized: "Your session has ended. Log in again.",
  forbidden: "You are not allowed to do this.",
  not_found: "Not found: it no longer exists, or you are no longer a member.",
  blocked: "Messages between you and this user are blocked.",
  epoch_stale: "The conversation's keys changed; the message is sent again with the new keys.",
  epoch_conflict: "Someone changed this group at the same moment. Try again.",
  conversation_exists: "You already have a conversation with this user.",
  conflict: "This conflicts with a change made elsewhere. Reload and try again.",
  last_admin: "There must always be an enabled administrator: promote another account first.",
  payload_too_large: "This is too large to send.",
  quota_exceeded: "Your file storage is full. Delete conversations or ask your administrator for more space.",
  truncated: "The upload was interrupted before it finished. Try again.",
  length_required: "The upload was refused (no length was sent). Reload the page and try again.",
  unsupported_media_type: "The server refused the request format. Reload the page and try again.",
  method_not_allowed: "The server does not accept this request. Reload the page; the client may be outdated.",
  token_in_url: "The request was refused because the address carried credentials. Open the chat from its plain address and log in again.",
  validation_error: "The server did not accept this.",
  internal_error: "The server had a problem. Try again later, or tell your administrator.",
  timeout: "The server did not answer in time. Check the connection and try again.",
  disconnected: "Not connected to the chat server; it is sent when the connection is back.",
  aborted: "Cancelled.",
  http_error: "The server gave an unexpected answer. Try again, or tell your administrator.",
  network: "Cannot reach the chat server. Check the network connection and try again.",
  crypto: "A cryptographic check failed: the data may have been altered.",
  weak_kdf: "The server asked for a weaker password derivation than allowed; refusing to log in.",
};

export function errorCode(error) {
  if (!error) return "internal_error";
  if (typeof error === "string") return error;
  if (error.code && typeof error.code === "string") return error.code;
  if (error.error && error.error.code) return error.error.code;
  if (error.name === "CryptoError") return "crypto";
  if (error.name === "TimeoutError" || /time(d)? ?out/i.test(error.message || "")) return "timeout";
  if (error instanceof TypeError && /fetch|network|load failed/i.test(error.message || "")) return "network";
  if (error.status === 0) return "network";
  return "";
}

function retryAfter(error) {
  const body = error && error.body;
  const value =
    (error && (error.retryAfter ?? error.retry_after)) ??
    (body && (body.retry_after ?? (body.error && body.error.retry_after)));
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds > 0 ? Math.ceil(seconds) : null;
}

/** The text to show for `error` (an ApiError, an ack error, a CryptoError, a TypeError…). */
export function errorMessage(error) {
  const code = errorCode(error);
  const serverText = (error && (error.message || (error.error && error.error.message))) || "";
  if (code === "rate_limited") {
    const seconds = retryAfter(error);
    return seconds
      ? `Too many attempts. Wait ${seconds} second${seconds === 1 ? "" : "s"} and try again.`
      : "Too many attempts. Wait a moment and try again.";
  }
  if (code === "blocked" && /unblock|does not accept/.test(serverText)) {
    return serverText.charAt(0).toUpperCase() + serverText.slice(1) + ".";
  }
  if (code === "validation_error") {
    const field = error.field || (error.error && error.error.field);
    return field ? `The server did not accept “${field}”: ${serverText}` : `${MESSAGES.validation_error} ${serverText}`;
  }
  if (code === "payload_too_large" && (error.field === "ciphertext")) {
    return "This message is too long. Split it into several messages.";
  }
  if (code === "crypto") return `${MESSAGES.crypto} (${serverText})`;
  if (MESSAGES[code]) return MESSAGES[code];
  if (serverText) return `Something went wrong: ${serverText}`;
  return "Something went wrong. Try again.";
}

/** An inline error slot (space reserved) placed next to the action it belongs to. */
export function errorSlot() {
  const el = h("p", { class: "error-slot", role: "alert" });
  return {
    el,
    show(error) {
      el.textContent = errorMessage(error);
      el.classList.add("is-visible");
      if (error && !(error.code || error.name === "TypeError")) console.warn(error);
    },
    text(message) {
      el.textContent = message;
      el.classList.toggle("is-visible", Boolean(message));
    },
    clear() {
      el.textContent = "";
      el.classList.remove("is-visible");
    },
  };
}

/** Run `action` while `button` is disabled; show its error in `slot`. Returns the result. */
export async function attempt(slot, action, button = null) {
  if (slot) slot.clear();
  if (button) button.disabled = true;
  try {
    return await action();
  } catch (error) {
    if (slot) slot.show(error);
    else console.warn(error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}
