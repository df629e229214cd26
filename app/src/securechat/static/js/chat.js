// The client logic: protocol cryptography + transport + store, mirroring the reference
// client `securechat.client.chat.ChatClient` (docs/protocol.md). No DOM.
//
// One Chat is one logged-in user at a time. Keys live in memory only: a reload asks for the
// password again. Server errors are thrown as ApiError, bad data as CryptoError; failures of
// background work (events, re-sends after a reconnect) are recorded in `store.errors`.
import {
  CryptoError,
  decryptEnvelope,
  deriveKeys,
  encryptEnvelope,
  generateIdentity,
  newEpochKey,
  openKeyBlob,
  publicKeysFromJson,
  publicKeysOf,
  publicKeysToJson,
  safetyNumber as computeSafetyNumber,
  sealKeyBlob,
  unwrapEpochKey,
  wrapEpochKey,
} from "./crypto.js";
import { b64decode, b64encode, equalBytes, randomBytes } from "./encoding.js";
import {
  aggregateReactions,
  decryptStream,
  encryptFile,
  fileContent,
  parseFileContent,
  reactionContent,
  safeName,
} from "./files.js";
import {
  acceptKeyVersion,
  addPending,
  bucketOf,
  createStore,
  dropConversation,
  highestSeq,
  insertMessages,
  loadTrust,
  lowestSeq,
  memberOf,
  myReadSeq,
  noteKeyVersion,
  pendingWithStatus,
  recomputeUnread,
  recordError,
  removeMessages,
  removePending,
  saveTrust,
  setPendingStatus,
  setRead,
  setTyping,
  upsertConversation,
} from "./store.js";
import { ApiError, Http, Realtime } from "./transport.js";

/** Clients refuse fewer PBKDF2 iterations than this (protocol §4.1). */
export const MIN_KDF_ITERATIONS = 600000;
/** A server asking for more than this would hang the tab: refused (the protocol's maximum). */
export const MAX_KDF_ITERATIONS = 10_000_000;
const KDF_NAME = "pbkdf2-sha256";
const KDF_SALT_BYTES = 16;
const TEXT_MAX_CODE_POINTS = 16000;
/** Messages per history page (`loadOlder`) and loaded per conversation at login. */
export const HISTORY_PAGE = 50;
const SYNC_LIMIT = 200;
const SYNC_MAX_CONVERSATIONS = 1000;
const SEND_TIMEOUT_MS = 30000;
const TYPING_ACK_TIMEOUT_MS = 5000;
/** A typing indicator disappears after this long without `typing:stop`. */
export const TYPING_TTL_MS = 8000;
const KEY_FETCH_CONCURRENCY = 8;
const MIME_NAME = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}";
const MIME_RE = new RegExp(`^${MIME_NAME}/${MIME_NAME}$`);
const AUDIT_FILTERS = {
  event: "event",
  actor_id: "actor_id",
  actorId: "actor_id",
  target_id: "target_id",
  targetId: "target_id",
  since: "since",
  until: "until",
  before: "before",
  limit: "limit",
};

/** A path segment (ids come from the server or the user; never let them change the path). */
function seg(value) {
  return encodeURIComponent(String(value));
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function codePoints(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

async function mapLimit(items, limit, fn) {
  const results = new Array(items.length);
  let next = 0;
  async function worker() {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await fn(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function keyId(userId, keyVersion) {
  return `${userId}:${keyVersion}`;
}

function epochId(conversationId, epoch) {
  return `${conversationId}:${epoch}`;
}

function isReaction(message) {
  return Boolean(message && message.content && message.content.type === "reaction");
}

function recomputeReactions(state, conversationId) {
  const list = state.messages.get(conversationId)?.list || [];
  const folded = aggregateReactions(list.filter(isReaction));
  if (folded.size) state.reactions.set(conversationId, folded);
  else state.reactions.delete(conversationId);
}

function normaliseUsername(username) {
  if (typeof username !== "string") throw new TypeError("username must be a string");
  return username.trim().toLowerCase();
}

function uuid() {
  return globalThis.crypto.randomUUID();
}

/**
 * The chat client. `store` holds everything the UI shows (see store.js); `admin` holds the
 * Admin API calls (protocol §12).
 */
export class Chat {
  /**
   * @param {{base?: string, http?: Http, realtime?: Realtime, store?: object,
   *          minIterations?: number, storage?: Storage|null}} [options]
   *   `base`: the server's origin ("" = this page's); `minIterations` may only be lowered by
   *   tests against a test server; `storage`: where verifications are kept (localStorage).
   */
  constructor({ base = "", http, realtime, store, minIterations = MIN_KDF_ITERATIONS, storage } = {}) {
    /** @type {Http} */
    this.http = http ?? new Http(base);
    /** @type {Realtime} */
    this.realtime = realtime ?? new Realtime({ url: base });
    /** The application state (store.js). */
    this.store = store ?? createStore();
    this.minIterations = minIterations;
    this.storage = storage;
    /** Admin API (protocol §12); every call needs an administrator's session. */
    this.admin = Object.freeze({
      /**
       * @param {string} [search] part of a username ("" = all)
       * @param {{offset?: number, limit?: number}} [page]
       * @returns {Promise<{users: object[], total: number}>}
       */
      users: (search = "", { offset, limit } = {}) =>
        this.#call("GET", `/admin/users${query({ query: search, offset, limit })}`),
      /** @param {string} id @returns {Promise<null>} */
      disable: (id) => this.#call("POST", `/admin/users/${seg(id)}/disable`),
      /** @param {string} id @returns {Promise<null>} */
      enable: (id) => this.#call("POST", `/admin/users/${seg(id)}/enable`),
      /** @param {string} id @returns {Promise<null>} */
      resetSessions: (id) => this.#call("POST", `/admin/users/${seg(id)}/sessions/reset`),
      /** @param {string} id @param {boolean} on @returns {Promise<null>} */
      setAdmin: (id, on) => this.#call("PUT", `/admin/users/${seg(id)}/admin`, { is_admin: on === true }),
      /** @returns {Promise<object>} server statistics */
      stats: () => this.#call("GET", "/admin/stats"),
      /**
       * @param {{event?: string, actor_id?: string, target_id?: string, since?: string,
       *          until?: string, before?: number, limit?: number}} [filters]
       * @returns {Promise<{entries: object[], has_more: boolean}>} newest first
       */
      audit: (filters = {}) => {
        const params = {};
        for (const [name, value] of Object.entries(filters)) {
          if (!Object.hasOwn(AUDIT_FILTERS, name)) throw new TypeError(`unknown audit filter ${name}`);
          params[AUDIT_FILTERS[name]] = value;
        }
        return this.#call("GET", `/admin/audit${query(params)}`);
      },
    });
    this.#wire();
  }

  // Private state: never in the store.
  #outbox = new Map(); // message_id → {conversationId, content, files, envelope}
  #delivering = new Map(); // message_id → promise of the attempt in progress
  #keyFetches = new Map(); // "user:version" or "user:current" → promise
  #epochFetches = new Map(); // "conversation:epoch" → promise
  #undecrypted = new Map(); // "conversation:message" → raw message (failed for lack of an answer)
  #pendingReads = new Map(); // conversation id → seq to send once connected
  #typingTimers = new Map(); // "conversation:user" → timer
  #safetyVersions = new Map(); // user id → key version of the last safety number shown
  #rotateBeforeSend = new Set(); // conversations with a member whose keys changed since
  #syncChain = Promise.resolve();
  #everConnected = false;
  #catchUpFrom = new Map();

  // ------------------------------------------------------------------------- accounts

  /** @returns {object|null} the logged-in user (`{id, username, is_admin, key_version, created_at}`) */
  get user() {
    return this.store.session?.user ?? null;
  }

  /** @returns {{userId: string, keyVersion: number, identity: object}} */
  get signer() {
    const signer = this.store.session?.signer;
    if (!signer) throw new Error("log in first");
    return signer;
  }

  /**
   * Create an account (it does not log in). `onProgress` receives "deriving",
   * "generating keys" and "registering" as the steps start.
   * @param {string} username
   * @param {string} password
   * @param {{onProgress?: (step: string) => void}} [options]
   * @returns {Promise<object>} the new user
   * @throws {ApiError} e.g. `username_taken`, `validation_error`, `rate_limited`
   */
  async register(username, password, { onProgress } = {}) {
    const name = normaliseUsername(username);
    const { kdf } = await this.#call("POST", "/auth/prelogin", { username: name });
    this.#checkKdfName(kdf);
    const iterations = Math.min(Math.max(Number(kdf.iterations) || 0, this.minIterations), MAX_KDF_ITERATIONS);
    const userId = uuid();
    const salt = randomBytes(KDF_SALT_BYTES);
    onProgress?.("deriving");
    const { authKey, wrapKey } = await deriveKeys(password, salt, iterations, { minIterations: this.minIterations });
    try {
      onProgress?.("generating keys");
      const identity = await generateIdentity();
      const keys = publicKeysToJson(await publicKeysOf(identity, userId, 1));
      const keyBlob = await sealKeyBlob(wrapKey, userId, 1, identity);
      onProgress?.("registering");
      const answer = await this.#call("POST", "/auth/register", {
        user_id: userId,
        username: name,
        auth_key: b64encode(authKey),
        kdf: { name: KDF_NAME, iterations, salt: b64encode(salt) },
        keys,
        key_blob: keyBlob,
      });
      return answer.user;
    } finally {
      authKey.fill(0);
      wrapKey.fill(0);
    }
  }

  /**
   * Prelogin, derive, log in, unlock the key blob; then connect the socket, load the
   * conversations and the latest messages (a failure there is recorded in `store.errors`,
   * not thrown). Ends a previous session of this Chat first.
   * @param {string} username
   * @param {string} password
   * @returns {Promise<object>} the user
   * @throws {ApiError} `invalid_credentials`, `account_disabled`, `rate_limited`…
   * @throws {CryptoError} the server asks for a weak derivation (`code` "weak_kdf") or its
   *   key blob or public keys do not check out
   */
  async login(username, password) {
    if (this.store.session) await this.logout();
    const name = normaliseUsername(username);
    const { kdf } = await this.#call("POST", "/auth/prelogin", { username: name });
    this.#checkKdfName(kdf);
    const iterations = Number(kdf.iterations);
    if (!Number.isSafeInteger(iterations) || iterations < this.minIterations || iterations > MAX_KDF_ITERATIONS) {
      const error = new CryptoError(`the server asks for ${kdf.iterations} key-derivation iterations; at least ${this.minIterations} are required`);
      error.code = "weak_kdf";
      throw error;
    }
    const salt = b64decode(kdf.salt, { field: "kdf.salt" });
    const { authKey, wrapKey } = await deriveKeys(password, salt, iterations, { minIterations: this.minIterations });
    let answer;
    try {
      answer = await this.#call("POST", "/auth/login", { username: name, auth_key: b64encode(authKey) });
    } finally {
      authKey.fill(0);
    }
    this.http.token = answer.token;
    let session;
    try {
      const me = await this.#call("GET", "/accounts/me");
      const user = me.user;
      const keyVersion = Number(user.key_version);
      const identity = await openKeyBlob(wrapKey, user.id, keyVersion, me.key_blob);
      const own = await publicKeysOf(identity, user.id, keyVersion);
      const published = publicKeysFromJson(user.id, keyVersion, me.keys);
      if (!equalBytes(own.ecdhPublic, published.ecdhPublic) || !equalBytes(own.ecdsaPublic, published.ecdsaPublic)) {
        throw new CryptoError("the server publishes other public keys than the ones in your key blob");
      }
      session = { user, token: answer.token, signer: { userId: user.id, keyVersion, identity }, expiresAt: answer.expires_at };
      this.store.reset();
      this.store.update((state) => {
        state.session = session;
        state.connection = "connecting";
        state.keys.set(keyId(user.id, keyVersion), own);
        loadTrust(state, user.id, this.storage);
      });
    } catch (error) {
      // Unlocking failed: do not leave the session we just opened behind.
      await this.http.call("POST", "/auth/logout").catch((cleanup) => console.warn("securechat: logout after a failed unlock", cleanup));
      this.http.token = null;
      throw error;
    } finally {
      wrapKey.fill(0);
    }
    this.#everConnected = false;
    this.#catchUpFrom.clear();
    this.realtime.connect(answer.token);
    try {
      await this.loadConversations();
      await this.catchUp();
    } catch (error) {
      // Logged in and unlocked: a failed first load is shown (store.errors) and retried on
      // the next reconnect; only a session that ended meanwhile fails the login.
      if (!this.store.session) throw error;
      this.#report(error, "loading conversations");
    }
    return session.user;
  }

  /**
   * End the session on the server, close the socket and forget every key.
   * @returns {Promise<void>}
   */
  async logout() {
    if (!this.store.session) return;
    this.realtime.disconnect();
    try {
      await this.http.call("POST", "/auth/logout");
    } finally {
      this.#endSession("logout");
    }
  }

  #checkKdfName(kdf) {
    if (!kdf || kdf.name !== KDF_NAME) throw new CryptoError(`unsupported key derivation ${kdf && kdf.name}`);
  }

  #endSession(reason) {
    if (!this.store.session && reason === "logout") return;
    this.http.token = null;
    for (const key of this.store.epochKeys.values()) key.fill(0);
    for (const timer of this.#typingTimers.values()) clearTimeout(timer);
    this.#outbox.clear();
    this.#delivering.clear();
    this.#keyFetches.clear();
    this.#epochFetches.clear();
    this.#undecrypted.clear();
    this.#pendingReads.clear();
    this.#typingTimers.clear();
    this.#safetyVersions.clear();
    this.#rotateBeforeSend.clear();
    this.#everConnected = false;
    this.#catchUpFrom.clear();
    this.store.reset();
    this.store.update((state) => {
      state.connection = reason === "logout" ? "offline" : "revoked";
      state.revokedReason = reason === "logout" ? null : reason;
    });
    this.realtime.disconnect();
  }

  // -------------------------------------------------------------------- conversations

  /**
   * Read every conversation (`GET /conversations`) into the store; those no longer listed
   * are dropped.
   * @returns {Promise<object[]>}
   */
  async loadConversations() {
    const session = this.store.session;
    const { conversations } = await this.#call("GET", "/conversations");
    if (this.store.session !== session) return conversations;
    const ids = new Set(conversations.map((conversation) => conversation.id));
    this.store.update((state) => {
      for (const id of [...state.conversations.keys()]) if (!ids.has(id)) dropConversation(state, id);
      for (const conversation of conversations) this.#putConversation(state, conversation);
    });
    return conversations;
  }

  /**
   * Start a direct conversation; when one exists already, that one is returned.
   * @param {string} userId
   * @returns {Promise<object>} the conversation
   */
  async createDirect(userId) {
    try {
      return await this.#create("direct", null, [this.signer.userId, userId]);
    } catch (error) {
      if (error instanceof ApiError && error.code === "conversation_exists" && error.existingId) {
        const existing = await this.#refreshConversation(error.existingId);
        checkDirectMembers(existing, [this.signer.userId, userId]);
        return existing;
      }
      throw error;
    }
  }

  /**
   * Create a group with the caller (admin) and `userIds`.
   * @param {string} title at most 100 characters
   * @param {string[]} userIds
   * @returns {Promise<object>}
   */
  async createGroup(title, userIds) {
    const members = [...new Set([this.signer.userId, ...userIds])].sort();
    return this.#create("group", title, members);
  }

  /**
   * Rename a group (admins).
   * @param {string} id
   * @param {string} title
   * @returns {Promise<object>}
   */
  async rename(id, title) {
    const conversation = await this.#call("PATCH", `/conversations/${seg(id)}`, { title });
    this.store.update((state) => this.#putConversation(state, conversation));
    return conversation;
  }

  /**
   * Start a new epoch with this member set (adding or removing members needs a group admin),
   * wrapping a fresh key for every member; retried after `epoch_conflict`.
   * @param {string} id
   * @param {string[]} userIds the complete new member list (the caller included to stay)
   * @returns {Promise<object>}
   */
  async setMembers(id, userIds) {
    return this.#newEpoch(id, () => userIds, { retries: 2 });
  }

  /**
   * Rotate the conversation key (same members, new epoch). When another member's rotation
   * wins the race, the conversation as it is then is returned.
   * @param {string} id
   * @returns {Promise<object>}
   */
  async rotate(id) {
    return this.#newEpoch(id, (current) => current.members.map((member) => member.user_id), { retries: 0 });
  }

  /**
   * Leave a group; it disappears from the store.
   * @param {string} id
   * @returns {Promise<void>}
   */
  async leave(id) {
    await this.#call("POST", `/conversations/${seg(id)}/leave`);
    this.#forget(id);
  }

  async #create(kind, title, members) {
    const id = uuid();
    const epochKey = newEpochKey();
    const wraps = await this.#wraps(id, 1, epochKey, members, new Map());
    const conversation = await this.#call("POST", "/conversations", { id, kind, title, members, epoch_keys: wraps });
    this.store.update((state) => {
      state.epochKeys.set(epochId(id, 1), epochKey);
      this.#putConversation(state, conversation);
      bucketOf(state, id).hasMore = false;
    });
    // New contacts: their presence is only announced when they connect, so ask now.
    if (this.realtime.connected) this.#background(() => this.#refreshPresence(), "refreshing presence");
    return conversation;
  }

  async #newEpoch(id, chooseMembers, { retries }) {
    for (let attempt = 0; ; attempt += 1) {
      const current = await this.#refreshConversation(id);
      const epoch = Number(current.epoch) + 1;
      const members = [...new Set(chooseMembers(current))].sort();
      if (current.kind === "direct") {
        // Never wrap a direct conversation's key for anyone but its two people, whatever
        // member list the server sends.
        const peer = (this.store.conversations.get(id)?.members || current.members)
          .map((member) => member.user_id)
          .find((userId) => userId !== this.signer.userId);
        checkDirectMembers({ kind: "direct", members: members.map((user_id) => ({ user_id })) }, [this.signer.userId, peer]);
      }
      const versions = new Map(current.members.map((member) => [member.user_id, Number(member.key_version)]));
      const epochKey = newEpochKey();
      try {
        const wraps = await this.#wraps(id, epoch, epochKey, members, versions);
        const body = { epoch, members, epoch_keys: wraps };
        const conversation = await this.#call("POST", `/conversations/${seg(id)}/epochs`, body);
        this.#rotateBeforeSend.delete(id);
        this.store.update((state) => {
          state.epochKeys.set(epochId(id, epoch), epochKey);
          this.#putConversation(state, conversation);
        });
        return conversation;
      } catch (error) {
        epochKey.fill(0);
        if (!(error instanceof ApiError) || error.code !== "epoch_conflict") throw error;
        if (attempt < retries) continue;
        if (retries === 0) return this.#refreshConversation(id); // someone else rotated
        throw error;
      }
    }
  }

  async #wraps(conversationId, epoch, epochKey, members, versions) {
    const signer = this.signer;
    return mapLimit(members, KEY_FETCH_CONCURRENCY, async (memberId) => {
      const recipient = await this.#publicKeys(memberId, versions.get(memberId));
      return wrapEpochKey(epochKey, conversationId, epoch, signer, recipient);
    });
  }

  async #refreshConversation(id) {
    const session = this.store.session;
    try {
      const conversation = await this.#call("GET", `/conversations/${seg(id)}`);
      if (this.store.session === session) this.store.update((state) => this.#putConversation(state, conversation));
      return conversation;
    } catch (error) {
      if (error instanceof ApiError && error.code === "not_found") this.#forget(id);
      throw error;
    }
  }

  #putConversation(state, conversation) {
    // A member with new keys cannot unwrap the current epoch's key (it was wrapped for their
    // old key version): rotate before the next message so that they can read it.
    const previous = state.conversations.get(conversation.id);
    const me = state.session?.user?.id;
    for (const member of conversation.members || []) {
      if (member.user_id === me) continue;
      const before = previous ? memberOf(previous, member.user_id)?.key_version : state.knownKeys.get(member.user_id);
      if (before !== undefined && Number(member.key_version) > Number(before)) this.#rotateBeforeSend.add(conversation.id);
    }
    upsertConversation(state, conversation);
    let changed = false;
    for (const member of conversation.members || []) {
      changed = noteKeyVersion(state, member.user_id, Number(member.key_version)) || changed;
    }
    if (changed) saveTrust(state, this.storage);
    recomputeUnread(state, conversation.id);
  }

  #forget(id) {
    this.#rotateBeforeSend.delete(id);
    for (const [messageId, item] of this.#outbox) if (item.conversationId === id) this.#outbox.delete(messageId);
    this.#pendingReads.delete(id);
    this.store.update((state) => dropConversation(state, id));
  }

  // ------------------------------------------------------------------------- messages

  /**
   * Send a text message: it shows at once as pending ("sending"), becomes a stored message
   * ("sent", with its seq) on the server's ack, and is re-sent with the same id after a
   * reconnect when the socket is down. Resolves with the stored message, or with the pending
   * entry when it waits for the connection.
   * @param {string} id conversation id
   * @param {string} text at most 16,000 code points
   * @returns {Promise<object>}
   * @throws {ApiError} the server refused it (`blocked`, `payload_too_large`…); the pending
   *   entry is then "failed" (see `resend`, `discard`)
   */
  async sendText(id, text) {
    if (typeof text !== "string") throw new TypeError("text must be a string");
    if (codePoints(text) > TEXT_MAX_CODE_POINTS) throw new RangeError(`a message has at most ${TEXT_MAX_CODE_POINTS} characters`);
    return this.#sendContent(id, { type: "text", text });
  }

  /**
   * Add or remove the caller's reaction `emoji` on message `messageId` (a reaction message).
   * @param {string} id conversation id
   * @param {string} messageId
   * @param {string} emoji
   * @param {"add"|"remove"} [op]
   * @returns {Promise<object>}
   */
  async react(id, messageId, emoji, op = "add") {
    return this.#sendContent(id, reactionContent(messageId, emoji, op));
  }

  /**
   * Send a failed pending message again (same message id).
   * @param {string} id conversation id
   * @param {string} messageId
   * @returns {Promise<object|null>}
   */
  async resend(id, messageId) {
    if (!this.#outbox.has(messageId)) throw new Error("no such pending message");
    this.store.update((state) => setPendingStatus(state, id, messageId, "sending"));
    return this.#deliver(messageId);
  }

  /**
   * Give up a pending message (it disappears; if the server stored it after all, it comes
   * back with the next catch-up).
   * @param {string} id conversation id
   * @param {string} messageId
   */
  discard(id, messageId) {
    this.#outbox.delete(messageId);
    this.store.update((state) => removePending(state, id, messageId));
  }

  async #sendContent(id, content, files = null) {
    const signer = this.signer;
    const messageId = uuid();
    const entry = {
      conversation_id: id,
      message_id: messageId,
      sender_id: signer.userId,
      content,
      local_time: new Date().toISOString(),
      status: "sending",
      error: null,
    };
    this.#outbox.set(messageId, { conversationId: id, content, files, envelope: null });
    this.store.update((state) => addPending(state, id, entry));
    return this.#deliver(messageId);
  }

  #deliver(messageId) {
    const running = this.#delivering.get(messageId);
    if (running) return running;
    const attempt = this.#attempt(messageId);
    this.#delivering.set(messageId, attempt);
    const done = () => this.#delivering.delete(messageId);
    attempt.then(done, done);
    return attempt;
  }

  async #attempt(messageId) {
    const item = this.#outbox.get(messageId);
    if (!item) return null;
    const session = this.store.session;
    const id = item.conversationId;
    try {
      if (!item.envelope) item.envelope = await this.#encrypt(id, item.content, messageId, item.files);
      let ack = await this.realtime.request("message:send", item.envelope, SEND_TIMEOUT_MS);
      if (!ack.ok && ack.error?.code === "epoch_stale") {
        // A new epoch (or a pending rotation): re-read, rotate if needed, re-encrypt under
        // the same message id and send again.
        await this.#refreshConversation(id);
        item.envelope = await this.#encrypt(id, item.content, messageId, item.files);
        ack = await this.realtime.request("message:send", item.envelope, SEND_TIMEOUT_MS);
      }
      if (!ack.ok) throw ApiError.fromAck(ack);
      const message = this.#sentMessage(item, ack);
      this.#outbox.delete(messageId);
      if (this.store.session !== session) return message;
      this.store.update((state) => {
        if (!state.conversations.has(id)) return;
        insertMessages(state, id, [message]);
        if (isReaction(message)) recomputeReactions(state, id);
        recomputeUnread(state, id);
      });
      return message;
    } catch (error) {
      if (this.store.session !== session) throw error;
      // No connection: keep it as "sending". A timeout or network failure while the socket
      // is up fails it instead (the user can `resend`: the server de-duplicates by id).
      const offline =
        error instanceof ApiError &&
        (error.code === "disconnected" || ((error.code === "network" || error.code === "timeout") && !this.realtime.connected));
      if (offline && this.#outbox.has(messageId)) {
        // Kept as "sending": re-sent with the same envelope once the socket is back.
        return this.store.messages.get(id)?.pending.get(messageId) ?? null;
      }
      this.store.update((state) => setPendingStatus(state, id, messageId, "failed", error));
      throw error;
    }
  }

  async #encrypt(id, content, messageId, files) {
    let conversation = this.store.conversations.get(id) ?? (await this.#refreshConversation(id));
    if (conversation.rotation_required || this.#rotateBeforeSend.has(id)) conversation = await this.rotate(id);
    let epoch = Number(conversation.epoch);
    let key;
    try {
      key = await this.#epochKey(id, epoch);
    } catch (error) {
      // No usable key for the current epoch (our own keys changed since it was made, or its
      // wrap is bad): start a new epoch, wrapped by us, and use that.
      if (!(error instanceof CryptoError)) throw error;
      conversation = await this.rotate(id);
      epoch = Number(conversation.epoch);
      key = await this.#epochKey(id, epoch);
    }
    const envelope = await encryptEnvelope(content, id, epoch, key, this.signer, { messageId });
    if (files && files.length) envelope.files = files;
    return envelope;
  }

  #sentMessage(item, ack) {
    const envelope = item.envelope;
    const message = {
      conversation_id: envelope.conversation_id,
      seq: Number(ack.seq),
      message_id: envelope.message_id,
      sender_id: envelope.sender_id,
      sender_key_version: envelope.sender_key_version,
      epoch: envelope.epoch,
      server_time: ack.server_time,
      content: item.content,
      error: null,
      file: null,
      status: "sent",
    };
    if (item.content.type === "file") message.file = parseFileContent(item.content);
    return message;
  }

  async #resendPending() {
    for (const entry of pendingWithStatus(this.store, "sending")) {
      if (!this.store.session) return;
      try {
        await this.#deliver(entry.message_id);
      } catch (error) {
        this.#report(error, "re-sending a message");
      }
    }
  }

  /**
   * Load the page of messages before the oldest one held (the newest page when none is).
   * @param {string} id conversation id
   * @returns {Promise<{added: number, hasMore: boolean}>}
   */
  async loadOlder(id) {
    const bucket = this.store.messages.get(id);
    if (bucket?.loading || bucket?.hasMore === false) return { added: 0, hasMore: Boolean(bucket?.hasMore) };
    const session = this.store.session;
    const lowest = lowestSeq(this.store, id);
    this.store.update((state) => {
      bucketOf(state, id).loading = true;
    });
    try {
      const page = await this.#call("GET", `/conversations/${seg(id)}/messages${query({ limit: HISTORY_PAGE, before: lowest })}`);
      const messages = await Promise.all(ofConversation(page.messages, id).map((message) => this.#decrypt(message)));
      if (this.store.session !== session) return { added: 0, hasMore: false };
      const added = this.store.update((state) => {
        if (!state.conversations.has(id)) return 0;
        const count = insertMessages(state, id, messages);
        bucketOf(state, id).hasMore = Boolean(page.has_more);
        recomputeReactions(state, id);
        recomputeUnread(state, id);
        return count;
      });
      return { added, hasMore: Boolean(page.has_more) };
    } finally {
      this.store.update((state) => {
        const current = state.messages.get(id);
        if (current) current.loading = false;
      });
    }
  }

  /**
   * Fetch what was missed (`POST /sync` from the highest seq held, following `has_more`);
   * conversations with nothing loaded get their latest page. Runs one at a time.
   * @returns {Promise<void>}
   */
  catchUp() {
    const run = this.#syncChain.then(() => this.#catchUpOnce());
    this.#syncChain = run.catch(() => undefined); // the caller gets the error; the chain goes on
    return run;
  }

  async #catchUpOnce() {
    const since = {};
    const fresh = new Set();
    for (const conversation of this.store.conversations.values()) {
      const held = this.#catchUpFrom.get(conversation.id) ?? highestSeq(this.store, conversation.id);
      if (held > 0) since[conversation.id] = held;
      else {
        since[conversation.id] = Math.max(0, (Number(conversation.last_seq) || 0) - HISTORY_PAGE);
        fresh.add(conversation.id);
      }
    }
    await this.#sync(since, fresh);
    this.#catchUpFrom.clear(); // caught up: live events and history carry on from here
  }

  async #sync(since, fresh) {
    const session = this.store.session;
    let pending = Object.entries(since);
    while (pending.length) {
      const next = [];
      for (let start = 0; start < pending.length; start += SYNC_MAX_CONVERSATIONS) {
        const chunk = Object.fromEntries(pending.slice(start, start + SYNC_MAX_CONVERSATIONS));
        const answer = await this.#call("POST", "/sync", { since: chunk, limit: SYNC_LIMIT });
        for (const [id, page] of Object.entries(answer.conversations || {})) {
          if (!(id in chunk)) continue; // only what was asked for
          const messages = await Promise.all(ofConversation(page.messages, id).map((message) => this.#decrypt(message)));
          if (this.store.session !== session) return;
          this.store.update((state) => {
            if (!state.conversations.has(id)) return;
            insertMessages(state, id, messages);
            if (fresh.has(id)) bucketOf(state, id).hasMore = Number(since[id]) > 0;
            recomputeReactions(state, id);
            recomputeUnread(state, id);
          });
          const last = messages.length ? messages[messages.length - 1].seq : 0;
          // `has_more` only counts if the page moved forward: a server cannot keep us looping.
          if (page.has_more && last > Number(chunk[id])) next.push([id, last]);
        }
      }
      pending = next;
    }
  }

  async #decrypt(message) {
    const conversationId = message.conversation_id;
    const base = {
      conversation_id: conversationId,
      seq: Number(message.seq),
      message_id: message.message_id,
      sender_id: message.sender_id,
      sender_key_version: message.sender_key_version,
      epoch: message.epoch,
      server_time: message.server_time,
      content: null,
      error: null,
      file: null,
    };
    try {
      const key = await this.#epochKey(conversationId, Number(message.epoch));
      const sender = await this.#publicKeys(message.sender_id, Number(message.sender_key_version));
      const content = await decryptEnvelope(message, key, sender);
      this.#undecrypted.delete(`${conversationId}:${message.message_id}`);
      const received = { ...base, content };
      if (content.type === "file") {
        try {
          received.file = parseFileContent(content);
        } catch (error) {
          if (!(error instanceof CryptoError)) throw error;
          received.error = `invalid file: ${error.message}`;
        }
      }
      return received;
    } catch (error) {
      if (error instanceof ApiError) {
        // No answer, or the server failed: worth trying again after the next reconnect.
        if (error.status === 0 || error.status >= 500 || error.code === "rate_limited") {
          this.#undecrypted.set(`${conversationId}:${message.message_id}`, message);
        }
        return { ...base, error: error.message };
      }
      if (error instanceof CryptoError) return { ...base, error: error.message };
      throw error;
    }
  }

  async #retryUndecrypted() {
    const session = this.store.session;
    const raws = [...this.#undecrypted.values()];
    this.#undecrypted.clear();
    for (const raw of raws) {
      const received = await this.#decrypt(raw);
      if (this.store.session !== session) return;
      this.store.update((state) => {
        if (!state.conversations.has(raw.conversation_id)) return;
        insertMessages(state, raw.conversation_id, [received]);
        recomputeReactions(state, raw.conversation_id);
      });
    }
  }

  async #epochKey(conversationId, epoch) {
    const id = epochId(conversationId, epoch);
    const cached = this.store.epochKeys.get(id);
    if (cached) return cached;
    const running = this.#epochFetches.get(id);
    if (running) return running;
    const session = this.store.session;
    const fetching = (async () => {
      const { keys } = await this.#call("GET", `/conversations/${seg(conversationId)}/keys`);
      for (const wrap of keys) {
        if (Number(wrap.epoch) !== epoch) continue;
        let key;
        try {
          const wrapper = await this.#publicKeys(wrap.wrapper_id, Number(wrap.wrapper_key_version));
          key = await unwrapEpochKey(wrap, conversationId, epoch, wrapper, this.signer);
        } catch (error) {
          if (error instanceof CryptoError) continue; // a bad or foreign wrap: try the others
          throw error;
        }
        if (this.store.session === session) this.store.update((state) => state.epochKeys.set(id, key));
        return key;
      }
      throw new CryptoError(`no key for epoch ${epoch} of this conversation`);
    })();
    this.#epochFetches.set(id, fetching);
    const done = () => this.#epochFetches.delete(id);
    fetching.then(done, done);
    return fetching;
  }

  /** The public keys of a user: of `keyVersion`, or the current ones (fresh from the server). */
  async #publicKeys(userId, keyVersion) {
    if (keyVersion !== undefined) {
      const cached = this.store.keys.get(keyId(userId, keyVersion));
      if (cached) return cached;
    }
    const fetchId = keyVersion === undefined ? `${userId}:current` : keyId(userId, keyVersion);
    const running = this.#keyFetches.get(fetchId);
    if (running) return running;
    const fetching = (async () => {
      let keys;
      if (keyVersion === undefined) {
        const user = await this.#call("GET", `/users/${seg(userId)}`);
        keys = publicKeysFromJson(userId, Number(user.key_version), user.keys);
      } else {
        const found = await this.#call("GET", `/users/${seg(userId)}/keys/${seg(keyVersion)}`);
        keys = publicKeysFromJson(userId, keyVersion, found);
      }
      return this.#cacheKeys(keys);
    })();
    this.#keyFetches.set(fetchId, fetching);
    const done = () => this.#keyFetches.delete(fetchId);
    fetching.then(done, done);
    return fetching;
  }

  #cacheKeys(keys) {
    const id = keyId(keys.userId, keys.keyVersion);
    const cached = this.store.keys.get(id);
    if (cached) {
      // One (user, version) has one set of keys; a server that says otherwise is lying.
      if (!equalBytes(cached.ecdhPublic, keys.ecdhPublic) || !equalBytes(cached.ecdsaPublic, keys.ecdsaPublic)) {
        throw new CryptoError("the server sent different keys for the same key version");
      }
      return cached;
    }
    if (this.store.session) this.store.update((state) => state.keys.set(id, keys));
    return keys;
  }

  // --------------------------------------------------------------- reading and typing

  /**
   * Mark messages up to `seq` read (`message:read`). Sent once connected when offline.
   * @param {string} id conversation id
   * @param {number} seq
   * @returns {Promise<number>} the read position
   */
  async markRead(id, seq) {
    if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError("seq must be a positive integer");
    const me = this.signer.userId;
    if (seq <= myReadSeq(this.store, id)) return myReadSeq(this.store, id);
    this.store.update((state) => {
      setRead(state, id, me, seq);
      recomputeUnread(state, id);
    });
    if (!this.realtime.connected) {
      this.#pendingReads.set(id, Math.max(seq, this.#pendingReads.get(id) || 0));
      return seq;
    }
    try {
      return await this.#sendRead(id, seq);
    } catch (error) {
      if (error instanceof ApiError && (error.code === "disconnected" || error.code === "timeout")) {
        this.#pendingReads.set(id, Math.max(seq, this.#pendingReads.get(id) || 0));
        return seq;
      }
      throw error;
    }
  }

  async #sendRead(id, seq) {
    const ack = await this.realtime.request("message:read", { conversation_id: id, seq });
    if (!ack.ok) throw ApiError.fromAck(ack);
    this.store.update((state) => {
      setRead(state, id, this.signer.userId, Number(ack.seq));
      recomputeUnread(state, id);
    });
    return Number(ack.seq);
  }

  async #flushReads() {
    const reads = [...this.#pendingReads];
    this.#pendingReads.clear();
    for (const [id, seq] of reads) {
      if (!this.store.conversations.has(id)) continue;
      try {
        await this.#sendRead(id, seq);
      } catch (error) {
        this.#report(error, "sending a read receipt");
      }
    }
  }

  /**
   * Tell the other members that the user is typing (`on`) or stopped. Does nothing while
   * disconnected (returns false).
   * @param {string} id conversation id
   * @param {boolean} on
   * @returns {Promise<boolean>} whether it was sent
   */
  async typing(id, on) {
    if (!this.realtime.connected) return false;
    const ack = await this.realtime.request(on ? "typing:start" : "typing:stop", { conversation_id: id }, TYPING_ACK_TIMEOUT_MS);
    if (!ack.ok) throw ApiError.fromAck(ack);
    return true;
  }

  // ---------------------------------------------------------------------------- files

  /**
   * Encrypt a file, upload it and share it in a `file` message. `onProgress` receives
   * `{phase, fraction}` with phase "encrypting", "uploading", "sending", "done" and the
   * overall fraction (0 to 1).
   * @param {string} id conversation id
   * @param {File|Blob} file
   * @param {{caption?: string|null, onProgress?: (progress: {phase: string, fraction: number}) => void, signal?: AbortSignal}} [options]
   * @returns {Promise<{file: object, message: object}>} the upload's answer and the message
   * @throws {ApiError} `quota_exceeded`, `payload_too_large`, `blocked`…
   * @throws {CryptoError} the server stored something else than was sent
   */
  async uploadFile(id, file, { caption = null, onProgress, signal } = {}) {
    if (caption !== null && caption !== undefined && (typeof caption !== "string" || codePoints(caption) > TEXT_MAX_CODE_POINTS)) {
      throw new RangeError(`a caption has at most ${TEXT_MAX_CODE_POINTS} characters`);
    }
    if (!this.store.session) throw new Error("log in first");
    const name = safeName(typeof file.name === "string" && file.name ? file.name : "file");
    const mime = MIME_RE.test(file.type || "") ? file.type : "application/octet-stream";
    const report = (phase, fraction) => onProgress?.({ phase, fraction: Math.max(0, Math.min(1, fraction)) });
    report("encrypting", 0);
    const encrypted = await encryptFile(file, { onProgress: (done, total) => report("encrypting", total ? (0.2 * done) / total : 0.2) });
    try {
      const stored = await this.#guard(() =>
        this.http.upload(`/conversations/${seg(id)}/files`, encrypted.body, {
          signal,
          onProgress: (loaded, total) => report("uploading", 0.2 + (total ? (0.75 * loaded) / total : 0)),
        }),
      );
      if (stored.sha256 !== encrypted.sha256) throw new CryptoError("the server stored something else than was sent");
      const content = fileContent({
        fileId: stored.id,
        name,
        mime,
        size: encrypted.size,
        ciphertextSize: encrypted.ciphertextSize,
        sha256: encrypted.sha256,
        key: encrypted.key,
        caption,
      });
      report("sending", 0.95);
      const message = await this.#sendContent(id, content, [stored.id]);
      report("done", 1);
      return { file: stored, message };
    } finally {
      encrypted.key.fill(0);
    }
  }

  /**
   * Download, verify and decrypt a shared file. `onProgress` receives
   * `{phase: "downloading", fraction}`.
   * @param {object} fileRef `message.file` (parseFileContent's result) or a `file` content
   * @param {{onProgress?: (progress: {phase: string, fraction: number}) => void, signal?: AbortSignal}} [options]
   * @returns {Promise<Blob>} the plaintext
   * @throws {CryptoError} the blob is not the one the message shares, or was altered
   */
  async downloadFile(fileRef, { onProgress, signal } = {}) {
    const ref = fileRef && fileRef.type === "file" ? parseFileContent(fileRef) : fileRef;
    const fileId = ref?.fileId ?? ref?.file_id;
    if (typeof fileId !== "string") throw new TypeError("downloadFile needs a file reference");
    const key = ref.key instanceof Uint8Array ? ref.key : b64decode(ref.key, { field: "key", length: 32 });
    const total = Number(ref.ciphertextSize ?? ref.ciphertext_size) || 0;
    const response = await this.#guard(() => this.http.download(`/files/${seg(fileId)}`, { signal }));
    const served = response.headers.get("X-Content-SHA256");
    if (served && served !== ref.sha256) {
      await response.body?.cancel();
      throw new CryptoError("the server's file is not the one this message shares");
    }
    if (!response.body) throw new CryptoError("the download has no body");
    return decryptStream(response.body, key, ref.sha256, {
      onProgress: (read) => onProgress?.({ phase: "downloading", fraction: total ? Math.min(1, read / total) : 0 }),
    });
  }

  // ------------------------------------------------------------------- blocks, users

  /**
   * Block a user (protocol §11): their messages disappear from this client as from the
   * server's history, and presence is refreshed.
   * @param {string} userId
   * @returns {Promise<void>}
   */
  async block(userId) {
    await this.#call("PUT", `/blocks/${seg(userId)}`);
    this.store.update((state) => {
      state.online.delete(userId);
      for (const id of state.conversations.keys()) {
        removeMessages(state, id, (message) => message.sender_id === userId);
        setTyping(state, id, userId, null);
        recomputeReactions(state, id);
        recomputeUnread(state, id);
      }
    });
    if (this.realtime.connected) await this.#refreshPresence();
  }

  /**
   * Lift a block; the conversations shared with the user re-read their latest messages
   * (which now include the user's again) and presence is refreshed.
   * @param {string} userId
   * @returns {Promise<void>}
   */
  async unblock(userId) {
    await this.#call("DELETE", `/blocks/${seg(userId)}`);
    const since = {};
    const fresh = new Set();
    this.store.update((state) => {
      for (const conversation of state.conversations.values()) {
        if (!(conversation.members || []).some((member) => member.user_id === userId)) continue;
        bucketOf(state, conversation.id).list = [];
        since[conversation.id] = Math.max(0, (Number(conversation.last_seq) || 0) - HISTORY_PAGE);
        fresh.add(conversation.id);
      }
    });
    await this.#sync(since, fresh);
    if (this.realtime.connected) await this.#refreshPresence();
  }

  /**
   * The caller's blocks.
   * @returns {Promise<{user_id: string, username: string, created_at: string}[]>}
   */
  async blocks() {
    return (await this.#call("GET", "/blocks")).blocks;
  }

  /**
   * Users whose name starts with `prefix` (at most 50).
   * @param {string} prefix
   * @returns {Promise<{id: string, username: string, key_version: number, keys: object}[]>}
   */
  async searchUsers(prefix) {
    const text = normaliseUsername(prefix);
    if (!text) return [];
    return (await this.#call("GET", `/users${query({ prefix: text })}`)).users;
  }

  /**
   * The 60-digit safety number of the caller's and `userId`'s current keys (protocol §9);
   * show it with crypto.formatSafetyNumber.
   * @param {string} userId
   * @returns {Promise<string>}
   */
  async safetyNumber(userId) {
    const signer = this.signer;
    const mine = this.store.keys.get(keyId(signer.userId, signer.keyVersion));
    const theirs = await this.#publicKeys(userId);
    this.#safetyVersions.set(userId, theirs.keyVersion);
    this.store.update((state) => {
      if (noteKeyVersion(state, userId, theirs.keyVersion)) saveTrust(state, this.storage);
    });
    return computeSafetyNumber(mine, theirs);
  }

  /**
   * Record (or withdraw) that the user compared the safety number with `userId` out of band.
   * Verifying accepts the key version whose number was shown last and clears a key-change
   * warning. Persisted in localStorage for this account.
   * @param {string} userId
   * @param {boolean} on
   * @returns {Promise<void>}
   */
  async setVerified(userId, on) {
    if (!on) {
      this.store.update((state) => {
        state.verified.delete(userId);
        saveTrust(state, this.storage);
      });
      return;
    }
    const version = this.#safetyVersions.get(userId) ?? (await this.#publicKeys(userId)).keyVersion;
    this.store.update((state) => {
      state.verified.set(userId, version);
      acceptKeyVersion(state, userId, version);
      saveTrust(state, this.storage);
    });
  }

  /**
   * Acknowledge a contact's key change without verifying the safety number.
   * @param {string} userId
   * @returns {Promise<void>}
   */
  async dismissKeyWarning(userId) {
    const { keyVersion } = await this.#publicKeys(userId);
    this.store.update((state) => {
      acceptKeyVersion(state, userId, keyVersion);
      saveTrust(state, this.storage);
    });
  }

  // --------------------------------------------------------------------------- events

  #wire() {
    const handle = (event, handler) =>
      this.realtime.on(event, (data) => {
        if (!this.store.session) return;
        this.#background(() => handler(data), event);
      });
    handle("message:new", (data) => this.#onMessageNew(data));
    handle("message:read", (data) => this.#onRead(data));
    handle("typing:start", (data) => this.#onTyping(data, true));
    handle("typing:stop", (data) => this.#onTyping(data, false));
    handle("user:online", (data) => this.store.update((state) => state.online.add(data.user_id)));
    handle("user:offline", (data) => this.store.update((state) => state.online.delete(data.user_id)));
    handle("conversation:updated", (data) => this.#onConversationUpdated(data));
    handle("key:changed", (data) => this.#onKeyChanged(data));
    this.realtime.onStatus((status, detail) => this.#onStatus(status, detail || {}));
  }

  #background(work, context) {
    Promise.resolve()
      .then(work)
      .catch((error) => this.#report(error, context));
  }

  #report(error, context) {
    console.warn(`securechat: ${context} failed`, error);
    if (this.store.session) this.store.update((state) => recordError(state, error, context));
  }

  #onStatus(status, detail) {
    if (!this.store.session) return;
    if (status === "revoked") {
      this.#endSession(detail.reason || "revoked");
      return;
    }
    this.store.update((state) => {
      state.connection = status;
      if (status !== "connected") state.typing.clear();
    });
    if (status !== "connected") {
      if (this.#everConnected) this.#markCatchUpCursors();
      return;
    }
    const again = this.#everConnected;
    this.#everConnected = true;
    this.#background(() => this.#afterConnect(again), "reconnecting");
  }

  /**
   * Where catch-up must start once the connection is back: the newest message held when it
   * dropped. Live messages that arrive after the reconnect but before `/sync` answers must
   * not move this forward, or the gap before them would never be fetched.
   */
  #markCatchUpCursors() {
    for (const conversation of this.store.conversations.values()) {
      if (!this.#catchUpFrom.has(conversation.id)) {
        this.#catchUpFrom.set(conversation.id, highestSeq(this.store, conversation.id));
      }
    }
  }

  async #afterConnect(again) {
    const steps = [["refreshing presence", () => this.#refreshPresence()]];
    if (again) {
      steps.push(["reloading conversations", () => this.loadConversations()]);
      steps.push(["catching up", () => this.catchUp()]);
      steps.push(["decrypting messages again", () => this.#retryUndecrypted()]);
    }
    steps.push(["sending read receipts", () => this.#flushReads()]);
    steps.push(["re-sending messages", () => this.#resendPending()]);
    for (const [context, step] of steps) {
      if (!this.store.session || !this.realtime.connected) return;
      try {
        await step();
      } catch (error) {
        this.#report(error, context);
      }
    }
  }

  async #refreshPresence() {
    const ack = await this.realtime.request("presence:list", {});
    if (!ack.ok) throw ApiError.fromAck(ack);
    this.store.update((state) => {
      state.online = new Set(ack.online);
    });
  }

  async #onMessageNew(message) {
    const session = this.store.session;
    const id = message.conversation_id;
    if (!this.store.conversations.has(id)) await this.#refreshConversation(id);
    const received = await this.#decrypt(message);
    if (this.store.session !== session) return;
    this.store.update((state) => {
      if (!state.conversations.has(id)) return;
      insertMessages(state, id, [received]);
      setTyping(state, id, received.sender_id, null);
      if (isReaction(received)) recomputeReactions(state, id);
      recomputeUnread(state, id);
    });
  }

  #onRead({ conversation_id: id, user_id: userId, seq }) {
    this.store.update((state) => {
      setRead(state, id, userId, Number(seq));
      if (userId === state.session?.user?.id) recomputeUnread(state, id);
    });
  }

  #onTyping({ conversation_id: id, user_id: userId }, on) {
    const timerId = `${id}:${userId}`;
    clearTimeout(this.#typingTimers.get(timerId));
    this.#typingTimers.delete(timerId);
    if (on) {
      this.#typingTimers.set(
        timerId,
        setTimeout(() => {
          this.#typingTimers.delete(timerId);
          this.store.update((state) => setTyping(state, id, userId, null));
        }, TYPING_TTL_MS),
      );
    }
    this.store.update((state) => setTyping(state, id, userId, on ? Date.now() + TYPING_TTL_MS : null));
  }

  async #onConversationUpdated(conversation) {
    if (conversation.removed) {
      this.#forget(conversation.id);
      return;
    }
    const known = this.store.conversations.has(conversation.id);
    this.store.update((state) => this.#putConversation(state, conversation));
    if (!known && this.realtime.connected) await this.#refreshPresence();
    const last = Number(conversation.last_seq) || 0;
    if (!known && last > 0) {
      await this.#sync({ [conversation.id]: Math.max(0, last - HISTORY_PAGE) }, new Set([conversation.id]));
    }
  }

  async #onKeyChanged({ user_id: userId, key_version: keyVersion }) {
    const signer = this.signer;
    if (userId === signer.userId) {
      // Our own keys changed in another session: this one can neither sign nor unwrap.
      if (Number(keyVersion) !== signer.keyVersion) this.#endSession("keys_changed");
      return;
    }
    await this.#publicKeys(userId, Number(keyVersion));
    this.store.update((state) => {
      for (const [id, conversation] of state.conversations) {
        if (!(conversation.members || []).some((member) => member.user_id === userId)) continue;
        const members = conversation.members.map((member) =>
          member.user_id === userId ? { ...member, key_version: Number(keyVersion) } : member,
        );
        state.conversations.set(id, { ...conversation, members });
        this.#rotateBeforeSend.add(id);
      }
      if (noteKeyVersion(state, userId, Number(keyVersion))) saveTrust(state, this.storage);
    });
  }

  // -------------------------------------------------------------------------- helpers

  /** An API call; a 401 `unauthorized` while logged in ends the session. */
  async #call(method, path, body) {
    return this.#guard(() => this.http.call(method, path, body));
  }

  async #guard(request) {
    try {
      return await request();
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && error.code === "unauthorized" && this.store.session) {
        this.#endSession("unauthorized");
      }
      throw error;
    }
  }
}

/** Messages that really belong to conversation `id` (a server could mix in others). */
function ofConversation(messages, id) {
  return (messages || []).filter((message) => message && message.conversation_id === id);
}

/** A direct conversation has exactly its two people: anything else is refused. */
function checkDirectMembers(conversation, people) {
  const expected = [...new Set(people)].sort().join(",");
  const actual = [...new Set((conversation.members || []).map((member) => member.user_id))].sort().join(",");
  if (conversation.kind !== "direct" || actual !== expected) {
    throw new CryptoError("the server lists other members for this direct conversation; nothing was sent");
  }
}
