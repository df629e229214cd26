// The one Chat of this page and its store. Two things the UI adds around it: failed messages
// are sent again after a reconnect, and presence is re-read when a new contact appears (the
// server sends user:online only to users who already shared a conversation).
import { Chat } from "../chat.js";
import { errorCode } from "./errors.js";

// Refusals that sending again cannot fix; everything else is retried after a reconnect.
const PRESENCE_REFRESH_MS = 60000;
const PERMANENT = new Set(["blocked", "payload_too_large", "forbidden", "not_found", "validation_error", "unauthorized", "crypto"]);

export async function createChat() {
  const chat = new Chat();
  const store = chat.store;
  let previous = store.connection;
  let contacts = "";
  store.subscribe(() => {
    const now = store.connection;
    if (now === "connected" && previous !== "connected" && previous !== "connecting") retryFailed(chat, store);
    previous = now;
    const current = contactKey(store);
    if (now === "connected" && current !== contacts) refreshPresence(chat, store);
    contacts = current;
  });
  // Presence hidden by a block is not re-announced when the block is lifted: re-read it now
  // and then, so a contact does not stay "offline" until the next reconnect.
  setInterval(() => {
    if (store.session && store.connection === "connected") refreshPresence(chat, store);
  }, PRESENCE_REFRESH_MS);
  return { chat, store, getState: () => store };
}

function contactKey(store) {
  const ids = new Set();
  for (const conversation of store.conversations.values()) {
    for (const member of conversation.members || []) ids.add(member.user_id);
  }
  return [...ids].sort().join(",");
}

async function refreshPresence(chat, store) {
  try {
    const ack = await chat.realtime.request("presence:list", {});
    if (ack && ack.ok) store.update((state) => { state.online = new Set(ack.online); });
  } catch (error) {
    console.warn("securechat: presence refresh failed", error);
  }
}

function retryFailed(chat, store) {
  for (const [conversationId, bucket] of store.messages) {
    for (const entry of bucket.pending.values()) {
      if (entry.status !== "failed" || PERMANENT.has(errorCode(entry.error))) continue;
      chat.resend(conversationId, entry.message_id).catch(() => {}); // shown as failed again
    }
  }
}
