// Read-only views of the store for the UI. The store holds plain objects, Maps or Sets
// depending on the field; these helpers accept either so the views stay simple.

export function get(container, key) {
  if (!container) return undefined;
  if (container instanceof Map) return container.get(key);
  return container[key];
}

export function has(container, key) {
  if (!container) return false;
  if (container instanceof Set || container instanceof Map) return container.has(key);
  if (Array.isArray(container)) return container.includes(key);
  return Boolean(container[key]);
}

export function values(container) {
  if (!container) return [];
  if (container instanceof Map || container instanceof Set) return [...container.values()];
  if (Array.isArray(container)) return container;
  return Object.values(container);
}

export function keys(container) {
  if (!container) return [];
  if (container instanceof Map || container instanceof Set) return [...container.keys()];
  if (Array.isArray(container)) return container;
  return Object.keys(container).filter((key) => container[key]);
}

export function me(state) {
  return (state.session && state.session.user) || null;
}

export function myId(state) {
  const user = me(state);
  return user ? user.id : null;
}

export function conversation(state, id) {
  return get(state.conversations, id) || null;
}

export function otherMembers(state, conv) {
  const mine = myId(state);
  return (conv && conv.members ? conv.members : []).filter((member) => member.user_id !== mine);
}

/** The contact of a direct conversation (a member object), or null. */
export function contactOf(state, conv) {
  if (!conv || conv.kind !== "direct") return null;
  return otherMembers(state, conv)[0] || null;
}

export function titleOf(state, conv) {
  if (!conv) return "";
  if (conv.kind === "group") return conv.title || "Untitled group";
  const contact = contactOf(state, conv);
  return contact ? contact.username : "(just you)";
}

export function isOnline(state, userId) {
  return has(state.online, userId);
}

export function unreadOf(state, id) {
  return Number(get(state.unread, id)) || 0;
}

export function totalUnread(state) {
  return values(state.unread).reduce((sum, n) => sum + (Number(n) || 0), 0);
}

/** Users typing in a conversation (user ids, without me). */
export function typingIn(state, id) {
  const entry = get(state.typing, id);
  const now = Date.now();
  let ids;
  if (!entry) ids = [];
  else if (entry instanceof Set || Array.isArray(entry)) ids = [...entry];
  else if (entry instanceof Map) ids = [...entry.entries()].filter(([, until]) => !(typeof until === "number" && until > 1e12 && until < now)).map(([key]) => key);
  else ids = Object.entries(entry).filter(([, until]) => until && !(typeof until === "number" && until > 1e12 && until < now)).map(([key]) => key);
  const mine = myId(state);
  return ids.filter((userId) => userId !== mine);
}

export function usernameOf(state, userId) {
  for (const conv of values(state.conversations)) {
    for (const member of conv.members || []) if (member.user_id === userId) return member.username;
  }
  const user = me(state);
  if (user && user.id === userId) return user.username;
  return "someone";
}

function messageBucket(state, id) {
  return get(state.messages, id);
}

/** Stored messages of a conversation (ascending seq), without the pending ones. */
export function storedMessages(state, id) {
  const bucket = messageBucket(state, id);
  if (!bucket) return [];
  if (Array.isArray(bucket)) return bucket;
  for (const name of ["list", "items", "bySeq", "messages", "stored"]) {
    if (bucket[name]) return values(bucket[name]).slice().sort((a, b) => a.seq - b.seq);
  }
  return [];
}

export function pendingMessages(state, id) {
  const bucket = messageBucket(state, id);
  const pending = bucket && bucket.pending;
  if (!pending) return [];
  return values(pending);
}

/** Stored then pending messages not yet stored; content type `reaction` is left out. */
export function visibleMessages(state, id) {
  const stored = storedMessages(state, id);
  const seen = new Set(stored.map((m) => m.message_id));
  const pending = pendingMessages(state, id).filter((m) => !seen.has(m.message_id));
  return [...stored, ...pending].filter((m) => !(m.content && m.content.type === "reaction"));
}

export function pendingStatus(state, id, messageId) {
  const entry = pendingMessages(state, id).find((m) => m.message_id === messageId);
  return entry ? entry.status : null;
}

/** Highest seq read by each user of a conversation: store.reads, else members' last_read_seq. */
export function readsOf(state, id) {
  const reads = new Map();
  const conv = conversation(state, id);
  for (const member of (conv && conv.members) || []) reads.set(member.user_id, Number(member.last_read_seq) || 0);
  const entry = get(state.reads, id);
  if (entry) {
    const pairs = entry instanceof Map ? [...entry.entries()] : Object.entries(entry);
    for (const [userId, seq] of pairs) reads.set(userId, Math.max(reads.get(userId) || 0, Number(seq) || 0));
  }
  return reads;
}

/** Members other than me who have read `seq`. */
export function readersOf(state, id, seq) {
  const mine = myId(state);
  const readers = [];
  for (const [userId, readSeq] of readsOf(state, id)) {
    if (userId !== mine && readSeq >= seq) readers.push(userId);
  }
  return readers;
}

/** {emoji: [userIds]} for a message. */
export function reactionsOf(state, id, messageId) {
  const forConv = get(state.reactions, id);
  const entry = get(forConv, messageId);
  const result = [];
  if (!entry) return result;
  const pairs = entry instanceof Map ? [...entry.entries()] : Object.entries(entry);
  for (const [emoji, users] of pairs) {
    const list = users instanceof Set ? [...users] : Array.isArray(users) ? users : keys(users);
    if (list.length) result.push({ emoji, users: list });
  }
  return result;
}

export function isVerified(state, userId) {
  const entry = get(state.verified, userId);
  return Boolean(entry);
}

/** Contacts whose key changed since last verified (user ids). */
export function keyWarningsIn(state, conv) {
  if (!conv) return [];
  const warnings = state.keyWarnings;
  return otherMembers(state, conv)
    .map((member) => member.user_id)
    .filter((userId) => has(warnings, userId));
}

export function connection(state) {
  return state.connection || state.status || "connected";
}

export function sortedConversations(state) {
  return values(state.conversations)
    .filter((conv) => conv && !conv.removed)
    .slice()
    .sort((a, b) => lastActivity(state, b) - lastActivity(state, a) || titleOf(state, a).localeCompare(titleOf(state, b)));
}

function lastActivity(state, conv) {
  const stored = storedMessages(state, conv.id);
  const last = stored[stored.length - 1];
  const time = last && last.server_time ? Date.parse(last.server_time) : Date.parse(conv.created_at || 0);
  return Number.isFinite(time) ? time : 0;
}

export function lastMessageOf(state, id) {
  const list = visibleMessages(state, id);
  return list[list.length - 1] || null;
}
