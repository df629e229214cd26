// Application state and change notification. No DOM, no network, no crypto.
//
// The store is one plain object graph (Maps and Sets keyed by ids) that `chat.js` mutates
// inside `update(mutator)`; listeners get the store itself after every batch of updates
// (batched in a microtask). Views read it and never mutate it.
//
//   session        {user, token, signer, expiresAt} or null
//   connection     "offline" | "connecting" | "connected" | "disconnected" | "reconnecting" | "revoked"
//   revokedReason  why the last session ended (session:revoked reason, "unauthorized"…) or null
//   conversations  Map conversation id → conversation object (protocol §6.1)
//   messages       Map conversation id → {list, pending, hasMore, loading}
//                    list: messages in ascending seq, one per message_id:
//                      {conversation_id, seq, message_id, sender_id, sender_key_version, epoch,
//                       server_time, content (object|null), error (string|null),
//                       file (validated file reference|null), status: "sent"|undefined}
//                    pending: Map message_id → {conversation_id, message_id, sender_id,
//                       content, local_time, status: "sending"|"sent"|"failed", error}
//                    hasMore: older messages exist on the server (true/false; null: unknown)
//   reads          Map conversation id → Map user id → highest seq read
//   typing         Map conversation id → Map user id → expiry time (ms since the epoch)
//   online         Set of user ids
//   unread         Map conversation id → number of unread messages from others
//   reactions      Map conversation id → Map target message id → Map emoji → Set of user ids
//                  (files.aggregateReactions of the conversation's loaded messages)
//   keys           Map "userId:keyVersion" → PublicKeys
//   epochKeys      Map "conversationId:epoch" → Uint8Array
//   verified       Map user id → key version whose safety number the user verified (persisted)
//   knownKeys      Map user id → last key version seen and accepted (persisted)
//   keyWarnings    Set of user ids whose key changed since (knownKeys is older)
//   errors         [{error, context, at}] background failures, newest last (at most 20)
//   version        increases with every notification

const STORAGE_PREFIX = "securechat:v1:trust:";
const MAX_ERRORS = 20;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * The empty state: no session, nothing loaded.
 * @returns {object}
 */
export function emptyState() {
  return {
    session: null,
    connection: "offline",
    revokedReason: null,
    conversations: new Map(),
    messages: new Map(),
    reads: new Map(),
    typing: new Map(),
    online: new Set(),
    unread: new Map(),
    reactions: new Map(),
    keys: new Map(),
    epochKeys: new Map(),
    verified: new Map(),
    knownKeys: new Map(),
    keyWarnings: new Set(),
    errors: [],
    version: 0,
  };
}

/**
 * A store: the state fields of `emptyState()` plus `subscribe`, `update` and `reset`.
 * @param {{batch?: boolean}} [options] batch: notify once per microtask (default) or synchronously
 * @returns {object}
 */
export function createStore({ batch = true } = {}) {
  const listeners = new Set();
  let scheduled = false;
  const store = Object.assign(emptyState(), {
    /**
     * Call `listener(store)` after every (batch of) change(s).
     * @param {(state: object) => void} listener
     * @returns {() => void} unsubscribe
     */
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /**
     * Change the state: `mutator(state)` mutates it in place; listeners are notified.
     * @template T
     * @param {(state: object) => T} mutator
     * @returns {T} what the mutator returned
     */
    update(mutator) {
      const result = mutator(store);
      if (!batch) notify();
      else if (!scheduled) {
        scheduled = true;
        queueMicrotask(notify);
      }
      return result;
    },
    /** Forget everything (logout): every field back to `emptyState()`, listeners kept. */
    reset() {
      store.update((state) => {
        const version = state.version;
        Object.assign(state, emptyState(), { version });
      });
    },
  });

  function notify() {
    scheduled = false;
    store.version += 1;
    for (const listener of [...listeners]) {
      try {
        listener(store);
      } catch (error) {
        if (typeof globalThis.reportError === "function") globalThis.reportError(error);
        else console.error(error);
      }
    }
  }
  return store;
}

// ------------------------------------------------------------------------------ messages

/**
 * The message bucket of a conversation, created when missing.
 * @param {object} state
 * @param {string} conversationId
 * @returns {{list: object[], pending: Map<string, object>, hasMore: boolean|null, loading: boolean}}
 */
export function bucketOf(state, conversationId) {
  let bucket = state.messages.get(conversationId);
  if (!bucket) {
    bucket = { list: [], pending: new Map(), hasMore: null, loading: false };
    state.messages.set(conversationId, bucket);
  }
  return bucket;
}

/**
 * Insert messages into a conversation keeping ascending `seq` order, one entry per
 * `message_id` (a later copy replaces an earlier one); pending entries of the same ids are
 * dropped. Returns how many messages were new.
 * @param {object} state
 * @param {string} conversationId
 * @param {object[]} messages objects with `seq` and `message_id`
 * @returns {number}
 */
export function insertMessages(state, conversationId, messages) {
  const bucket = bucketOf(state, conversationId);
  const list = bucket.list;
  let added = 0;
  for (const message of messages) {
    const existing = list.findIndex((m) => m.message_id === message.message_id);
    if (existing >= 0) {
      const held = list[existing];
      // A verified message is never replaced by a copy that failed or names another sender.
      const worse = held.content !== null && (message.content === null || message.sender_id !== held.sender_id);
      if (held.seq === message.seq || worse) {
        if (!worse) list[existing] = message;
        bucket.pending.delete(message.message_id);
        continue;
      }
      list.splice(existing, 1);
    } else {
      added += 1;
    }
    list.splice(insertionIndex(list, message.seq), 0, message);
    bucket.pending.delete(message.message_id);
  }
  const conversation = state.conversations.get(conversationId);
  const highest = highestSeq(state, conversationId);
  if (conversation && highest > (Number(conversation.last_seq) || 0)) conversation.last_seq = highest;
  return added;
}

function insertionIndex(list, seq) {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (list[middle].seq <= seq) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Drop messages matching `predicate` from a conversation (for example a blocked sender's).
 * @param {object} state
 * @param {string} conversationId
 * @param {(message: object) => boolean} predicate
 * @returns {number} how many were removed
 */
export function removeMessages(state, conversationId, predicate) {
  const bucket = state.messages.get(conversationId);
  if (!bucket) return 0;
  const before = bucket.list.length;
  bucket.list = bucket.list.filter((message) => !predicate(message));
  return before - bucket.list.length;
}

/**
 * The highest `seq` held for a conversation (0 when none).
 * @param {object} state
 * @param {string} conversationId
 * @returns {number}
 */
export function highestSeq(state, conversationId) {
  const list = state.messages.get(conversationId)?.list;
  return list && list.length ? list[list.length - 1].seq : 0;
}

/**
 * The lowest `seq` held for a conversation (null when none).
 * @param {object} state
 * @param {string} conversationId
 * @returns {number|null}
 */
export function lowestSeq(state, conversationId) {
  const list = state.messages.get(conversationId)?.list;
  return list && list.length ? list[0].seq : null;
}

/**
 * Add (or replace) a pending outgoing message.
 * @param {object} state
 * @param {string} conversationId
 * @param {{message_id: string, status: string}} entry
 */
export function addPending(state, conversationId, entry) {
  bucketOf(state, conversationId).pending.set(entry.message_id, entry);
}

/**
 * Change a pending message's status (`sending`, `sent`, `failed`) and error.
 * @param {object} state
 * @param {string} conversationId
 * @param {string} messageId
 * @param {string} status
 * @param {unknown} [error]
 * @returns {object|null} the updated entry
 */
export function setPendingStatus(state, conversationId, messageId, status, error = null) {
  const pending = state.messages.get(conversationId)?.pending;
  const entry = pending?.get(messageId);
  if (!entry) return null;
  const updated = { ...entry, status, error };
  pending.set(messageId, updated);
  return updated;
}

/**
 * Remove a pending message.
 * @param {object} state
 * @param {string} conversationId
 * @param {string} messageId
 */
export function removePending(state, conversationId, messageId) {
  state.messages.get(conversationId)?.pending.delete(messageId);
}

/**
 * Every pending message with a given status, oldest first, across conversations.
 * @param {object} state
 * @param {string} status
 * @returns {object[]}
 */
export function pendingWithStatus(state, status) {
  const found = [];
  for (const bucket of state.messages.values()) {
    for (const entry of bucket.pending.values()) if (entry.status === status) found.push(entry);
  }
  return found.sort((a, b) => String(a.local_time).localeCompare(String(b.local_time)));
}

// ------------------------------------------------------------------------- conversations

/**
 * Add or replace a conversation object.
 * @param {object} state
 * @param {object} conversation
 */
export function upsertConversation(state, conversation) {
  const previous = state.conversations.get(conversation.id);
  // Keep the highest last_seq seen: messages may have arrived after the object was read.
  if (previous && Number(previous.last_seq) > Number(conversation.last_seq)) {
    conversation = { ...conversation, last_seq: previous.last_seq };
  }
  state.conversations.set(conversation.id, conversation);
}

/**
 * Forget a conversation and everything about it (left, removed, deleted).
 * @param {object} state
 * @param {string} conversationId
 */
export function dropConversation(state, conversationId) {
  state.conversations.delete(conversationId);
  state.messages.delete(conversationId);
  state.reads.delete(conversationId);
  state.typing.delete(conversationId);
  state.unread.delete(conversationId);
  state.reactions.delete(conversationId);
  for (const [key, value] of state.epochKeys) {
    if (key.startsWith(`${conversationId}:`)) {
      value.fill(0);
      state.epochKeys.delete(key);
    }
  }
}

/**
 * The member object of a user in a conversation, or null.
 * @param {object} conversation
 * @param {string} userId
 * @returns {object|null}
 */
export function memberOf(conversation, userId) {
  return (conversation?.members || []).find((member) => member.user_id === userId) || null;
}

/**
 * Record a read position (never moving backwards).
 * @param {object} state
 * @param {string} conversationId
 * @param {string} userId
 * @param {number} seq
 */
export function setRead(state, conversationId, userId, seq) {
  if (!state.reads.has(conversationId)) state.reads.set(conversationId, new Map());
  const reads = state.reads.get(conversationId);
  reads.set(userId, Math.max(reads.get(userId) || 0, Number(seq) || 0));
}

/**
 * The logged-in user's read position in a conversation.
 * @param {object} state
 * @param {string} conversationId
 * @returns {number}
 */
export function myReadSeq(state, conversationId) {
  const me = state.session?.user?.id;
  if (!me) return 0;
  const member = memberOf(state.conversations.get(conversationId), me);
  return Math.max(Number(member?.last_read_seq) || 0, state.reads.get(conversationId)?.get(me) || 0);
}

/**
 * Recount unread messages of a conversation: messages from others above my read position
 * (reactions not counted); for a conversation with nothing loaded, `last_seq` minus it.
 * @param {object} state
 * @param {string} conversationId
 * @returns {number}
 */
export function recomputeUnread(state, conversationId) {
  const conversation = state.conversations.get(conversationId);
  const me = state.session?.user?.id;
  if (!conversation || !me) {
    state.unread.delete(conversationId);
    return 0;
  }
  const read = myReadSeq(state, conversationId);
  const list = state.messages.get(conversationId)?.list || [];
  let count;
  if (list.length) {
    count = list.filter((m) => m.seq > read && m.sender_id !== me && m.content?.type !== "reaction").length;
  } else {
    count = Math.max(0, (Number(conversation.last_seq) || 0) - read);
  }
  state.unread.set(conversationId, count);
  return count;
}

// -------------------------------------------------------------------------------- typing

/**
 * Mark a user typing in a conversation until `expiresAt` (ms), or not typing (null).
 * @param {object} state
 * @param {string} conversationId
 * @param {string} userId
 * @param {number|null} expiresAt
 */
export function setTyping(state, conversationId, userId, expiresAt) {
  if (!state.typing.has(conversationId)) state.typing.set(conversationId, new Map());
  const typing = state.typing.get(conversationId);
  if (expiresAt === null) typing.delete(userId);
  else typing.set(userId, expiresAt);
  if (!typing.size) state.typing.delete(conversationId);
}

// ------------------------------------------------------------------------ errors, trust

/**
 * Record a failure of background work (an event handler, a re-send) for the UI to show.
 * @param {object} state
 * @param {unknown} error
 * @param {string} context what was being done
 */
export function recordError(state, error, context) {
  state.errors.push({ error, context, at: Date.now() });
  if (state.errors.length > MAX_ERRORS) state.errors.splice(0, state.errors.length - MAX_ERRORS);
}

function storageKey(userId) {
  return `${STORAGE_PREFIX}${userId}`;
}

function defaultStorage() {
  try {
    return globalThis.localStorage || null;
  } catch {
    return null; // storage disabled by the browser's settings
  }
}

/**
 * Load `verified` and `knownKeys` of a user from localStorage into the state.
 * @param {object} state
 * @param {string} userId
 * @param {Storage|null} [storage]
 */
export function loadTrust(state, userId, storage = defaultStorage()) {
  state.verified = new Map();
  state.knownKeys = new Map();
  if (!storage) return;
  const raw = storage.getItem(storageKey(userId));
  if (!raw) return;
  let data;
  try {
    data = JSON.parse(raw);
  } catch {
    storage.removeItem(storageKey(userId));
    return;
  }
  for (const [name, target] of [
    ["verified", state.verified],
    ["knownKeys", state.knownKeys],
  ]) {
    const entries = data && typeof data[name] === "object" && data[name] ? Object.entries(data[name]) : [];
    for (const [id, version] of entries) {
      if (UUID_RE.test(id) && Number.isSafeInteger(version) && version > 0) target.set(id, version);
    }
  }
}

/**
 * Save `verified` and `knownKeys` of the logged-in user to localStorage.
 * @param {object} state
 * @param {Storage|null} [storage]
 */
export function saveTrust(state, storage = defaultStorage()) {
  const userId = state.session?.user?.id;
  if (!storage || !userId) return;
  const data = {
    verified: Object.fromEntries(state.verified),
    knownKeys: Object.fromEntries(state.knownKeys),
  };
  storage.setItem(storageKey(userId), JSON.stringify(data));
}

/**
 * Note a contact's current key version: the first one seen is accepted (trust on first
 * use); a newer one than accepted raises a key-change warning and voids the verification.
 * Returns whether the state changed.
 * @param {object} state
 * @param {string} userId
 * @param {number} keyVersion
 * @returns {boolean}
 */
export function noteKeyVersion(state, userId, keyVersion) {
  const me = state.session?.user?.id;
  if (!userId || userId === me || !Number.isSafeInteger(keyVersion)) return false;
  const known = state.knownKeys.get(userId);
  if (known === undefined) {
    state.knownKeys.set(userId, keyVersion);
    return true;
  }
  let changed = false;
  if (keyVersion > known && !state.keyWarnings.has(userId)) {
    state.keyWarnings.add(userId);
    changed = true;
  }
  const verified = state.verified.get(userId);
  if (verified !== undefined && keyVersion > verified) {
    state.verified.delete(userId);
    changed = true;
  }
  return changed;
}

/**
 * Accept a contact's key version (after a warning was seen or the number verified).
 * @param {object} state
 * @param {string} userId
 * @param {number} keyVersion
 */
export function acceptKeyVersion(state, userId, keyVersion) {
  state.knownKeys.set(userId, keyVersion);
  state.keyWarnings.delete(userId);
}
